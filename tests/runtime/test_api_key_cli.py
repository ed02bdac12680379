"""``authsvc api-key create | list | revoke`` against a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from sqlalchemy import select

from authsvc.edge.caller_policy import load_policy
from authsvc.runtime import cli
from authsvc.runtime.assembly import AuthServer
from authsvc.storage.engine import Database
from authsvc.storage.models import ApiKey, AuditRecord
from authsvc_client import AuthClient, AuthClientError
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc
from tests.conftest import CHEAP_HASH
from tests.leak_watch import WATCH

KEY = re.compile(r"^asv_ak_[A-Za-z0-9_-]{43}$")


@pytest.fixture(autouse=True)
def cli_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A cheap hash for the settings check; the root logger restored after the command
    (``configure_logging`` replaces its handlers with one on the captured stderr)."""
    monkeypatch.setenv("AUTHSVC_PASSWORD_HASH", CHEAP_HASH)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def run(db_url: str, capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Runs ``authsvc api-key ARGS --database-url <test db>``: (status, stdout, stderr)."""

    def api_key(*args: str) -> tuple[int, str, str]:
        status = cli.main(["api-key", *args, "--database-url", db_url])
        out, err = capsys.readouterr()
        for line in out.splitlines():
            WATCH.learn(line)
        return status, out, err

    return api_key


def keys(database: Database) -> list[ApiKey]:
    with database.transaction(writes=False) as db:
        return list(db.scalars(select(ApiKey).order_by(ApiKey.created_at)))


def audited(database: Database, event: str) -> list[str]:
    with database.transaction(writes=False) as db:
        return list(db.scalars(select(AuditRecord.detail).where(AuditRecord.event == event)))


def test_create_prints_the_key_once_and_stores_only_its_hash(
    run: Callable[..., tuple[int, str, str]], database: Database
) -> None:
    status, out, err = run("create", "billing-service")
    assert status == 0
    key = out.strip()
    assert KEY.match(key) and out == key + "\n"  # alone on stdout: KEY=$(authsvc api-key ...)
    [row] = keys(database)
    assert (row.name, row.key_hash) == ("billing-service", hashlib.sha256(key.encode()).digest())
    assert row.revoked_at is None
    assert f"created API key 'billing-service' (id {row.id})" in err
    assert "shown only this once" in err
    assert key not in err  # the log lines (on stderr) never carry it
    assert audited(database, "API_KEY_CREATED") == [f"billing-service ({row.id})"]


def test_list_shows_names_ids_and_times_never_the_keys(
    run: Callable[..., tuple[int, str, str]], database: Database
) -> None:
    first = run("create", "billing-service")[1].strip()
    second = run("create", "reporting")[1].strip()
    run("revoke", "reporting")
    status, out, _ = run("list")
    assert status == 0
    header, *lines = out.splitlines()
    assert header.split()[:3] == ["ID", "NAME", "CREATED"]
    by_name = {row.name: row for row in keys(database)}
    assert [line.split()[:2] for line in lines] == [
        [str(by_name["billing-service"].id), "billing-service"],
        [str(by_name["reporting"].id), "reporting"],
    ]
    assert lines[0].split()[-1] == "-" and lines[1].split()[-1] != "-"  # revoked time
    for secret in (first, second):
        assert secret not in out and hashlib.sha256(secret.encode()).hexdigest() not in out


def test_revoke_by_name_ends_every_live_key_of_that_name(
    run: Callable[..., tuple[int, str, str]], database: Database
) -> None:
    run("create", "billing-service")
    run("create", "billing-service")
    run("create", "reporting")
    status, _, err = run("revoke", "billing-service")
    assert status == 0
    assert err.count("revoked API key 'billing-service'") == 2
    live = [k.name for k in keys(database) if k.revoked_at is None]
    assert live == ["reporting"]
    assert len(audited(database, "API_KEY_REVOKED")) == 2


def test_revoke_by_id_ends_only_that_key(
    run: Callable[..., tuple[int, str, str]], database: Database
) -> None:
    run("create", "billing-service")
    run("create", "billing-service")
    old = keys(database)[0]
    assert run("revoke", "--id", str(old.id))[0] == 0
    assert [k.revoked_at is not None for k in keys(database)] == [True, False]
    assert audited(database, "API_KEY_REVOKED") == [f"billing-service ({old.id})"]


def test_revoking_nothing_live_fails_and_audits_nothing(
    run: Callable[..., tuple[int, str, str]], database: Database
) -> None:
    run("create", "billing-service")
    assert run("revoke", "billing-service")[0] == 0
    status, _, err = run("revoke", "billing-service")
    assert status == 1
    assert "no live API key has name 'billing-service'" in err
    assert len(audited(database, "API_KEY_REVOKED")) == 1


@pytest.mark.parametrize(
    "args",
    [
        ("create", "billing service"),
        ("create", "-"),
        ("create", "x" * 65),
        ("revoke", "--id", "not-a-uuid"),
    ],
)
def test_bad_names_and_ids_are_one_line_errors(
    run: Callable[..., tuple[int, str, str]], database: Database, args: tuple[str, ...]
) -> None:
    status, out, err = run(*args)
    assert (status, out) == (2, "")
    assert err.strip().splitlines()[-1].startswith("authsvc: ")
    assert keys(database) == []


def test_a_key_from_the_command_works_until_the_command_revokes_it(
    run: Callable[..., tuple[int, str, str]],
    start_server: Callable[..., tuple[AuthServer, pb_grpc.AuthServiceStub]],
    tmp_path: Path,
) -> None:
    policy = tmp_path / "callers.toml"
    policy.write_text('[callers]\n"admin-tool" = ["ListUsers"]\n')
    server, _ = start_server(callers=load_policy(str(policy)), api_key_cache_ttl=timedelta(0))
    key = run("create", "admin-tool")[1].strip()
    with AuthClient(f"127.0.0.1:{server.port}", api_key=key) as client:
        assert client.list_users().users == []
        assert run("revoke", "admin-tool")[0] == 0
        with pytest.raises(AuthClientError) as caught:
            client.list_users()
    assert (caught.value.code, caught.value.reason) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "API_KEY_INVALID",
    )
