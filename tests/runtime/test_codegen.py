"""The committed generated modules are exactly what `make gen` produces now."""

from __future__ import annotations

from pathlib import Path

from authsvc.runtime.codegen import CLIENT_ROOT, PACKAGE, generate, rewrite_imports


def test_generated_stubs_are_not_stale(tmp_path: Path):
    generate(tmp_path)
    fresh = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert fresh, "protoc generated nothing"
    for relative, content in fresh.items():
        committed = CLIENT_ROOT / relative
        assert committed.exists(), f"clients/python/{relative} is not committed: run `make gen`"
        assert committed.read_bytes() == content, (
            f"clients/python/{relative} is stale: run `make gen`"
        )
    generated = CLIENT_ROOT / PACKAGE / "v1"
    committed = {p.relative_to(CLIENT_ROOT) for p in generated.glob("*_pb2*") if p.is_file()}
    assert committed == set(fresh), "generated files without a proto: run `make gen`"


def test_stubs_import_the_client_package_and_keep_the_wire_names():
    moved = [
        "from authsvc.v1 import auth_service_pb2 as x",
        "Build(DESCRIPTOR, 'authsvc.v1.auth_service_pb2', g)",
        "code in authsvc/v1/auth_service_pb2_grpc.py",
    ]
    for before in moved:
        after = before.replace("authsvc.v1", "authsvc_client.v1")
        assert rewrite_imports(before) == after.replace("authsvc/v1", "authsvc_client/v1")
    # The proto's own names are the wire contract: the descriptor and the method paths.
    kept = [
        r"AddSerializedFile(b'\n\x1d\x61uthsvc/v1/auth_service.proto\x12\nauthsvc.v1\x1a')",
        "# source: authsvc/v1/auth_service.proto",
        "'/authsvc.v1.AuthService/CreateUser'",
        "add_registered_method_handlers('authsvc.v1.AuthService', handlers)",
    ]
    for line in kept:
        assert rewrite_imports(line) == line
