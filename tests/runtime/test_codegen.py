"""The committed generated modules are exactly what `make gen` produces now."""

from __future__ import annotations

from pathlib import Path

from authsvc.runtime.codegen import ROOT, generate


def test_generated_stubs_are_not_stale(tmp_path: Path):
    generate(tmp_path)
    fresh = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert fresh, "protoc generated nothing"
    for relative, content in fresh.items():
        committed = ROOT / relative
        assert committed.exists(), f"{relative} is not committed: run `make gen`"
        assert committed.read_bytes() == content, f"{relative} is stale: run `make gen`"
    committed = {
        p.relative_to(ROOT) for p in (ROOT / "authsvc" / "v1").glob("*_pb2*") if p.is_file()
    }
    assert committed == set(fresh), "generated files without a proto: run `make gen`"
