"""``authsvc webhook add | list | remove | deliveries`` against a real database."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from authsvc.rules.secrets_at_rest import SecretKeys
from authsvc.runtime import cli
from authsvc.runtime.assembly import create_server
from authsvc.runtime.settings import Settings
from authsvc.storage.engine import Database
from authsvc.storage.models import Webhook, utcnow
from tests.conftest import CHEAP_HASH
from tests.helpers import wait_until
from tests.leak_watch import WATCH
from tests.webhook_receiver import Receiver, webhook_settings

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture(autouse=True)
def cli_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A secret key and loopback URLs allowed; the root logger restored afterwards."""
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("AUTHSVC_PASSWORD_HASH", CHEAP_HASH)
    monkeypatch.setenv("AUTHSVC_SECRET_KEY", key)
    monkeypatch.setenv("AUTHSVC_WEBHOOK_ALLOW_PRIVATE", "true")
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield key
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def run(db_url: str, capsys: pytest.CaptureFixture[str]) -> Run:
    """Runs ``authsvc webhook ARGS --database-url <test db>``: (status, stdout, stderr)."""

    def webhook(*args: str) -> tuple[int, str, str]:
        status = cli.main(["webhook", *args, "--database-url", db_url])
        out, err = capsys.readouterr()
        for line in out.splitlines():
            WATCH.learn(line)
        return status, out, err

    return webhook


def test_add_prints_the_secret_alone_and_list_shows_the_endpoint(run: Run) -> None:
    status, out, err = run("add", "http://127.0.0.1:9/hooks", "--type", "user.created")
    assert status == 0
    secret = out.strip()
    assert secret.startswith("whsec_") and out == secret + "\n"
    assert "shown only this once" in err and secret not in err
    webhook_id = err.split("added webhook ")[1].split()[0]
    status, out, _ = run("list")
    assert status == 0
    [line] = out.splitlines()[1:]
    assert line.split() == [
        webhook_id,
        "ACTIVE",
        line.split()[2],
        "http://127.0.0.1:9/hooks",
        "user.created",
    ]
    assert secret not in out


def test_remove_deletes_and_reports_unknown_ids(run: Run) -> None:
    run("add", "http://127.0.0.1:9/hooks")
    _, out, _ = run("list")
    webhook_id = out.splitlines()[1].split()[0]
    assert run("remove", webhook_id)[0] == 0
    status, _, err = run("remove", webhook_id)
    assert status == 1 and "no webhook endpoint has this id" in err
    assert run("remove", "not-a-uuid")[0] == 2
    assert run("list")[1].splitlines()[1:] == []


def test_add_refuses_a_bad_url_type_or_private_address_and_needs_a_secret_key(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    status, _, err = run("add", "ftp://example.com/")
    assert status == 2 and "http:// or https://" in err
    status, _, err = run("add", "http://127.0.0.1:9/", "--type", "user.exploded")
    assert status == 2 and "--type" in err
    monkeypatch.setenv("AUTHSVC_WEBHOOK_ALLOW_PRIVATE", "false")
    status, _, err = run("add", "http://127.0.0.1:9/")
    assert status == 2 and "private" in err
    monkeypatch.delenv("AUTHSVC_SECRET_KEY")
    monkeypatch.setenv("AUTHSVC_WEBHOOK_ALLOW_PRIVATE", "true")
    status, out, err = run("add", "http://127.0.0.1:9/")
    assert (status, out) == (1, "") and "AUTHSVC_SECRET_KEY" in err


def test_deliveries_show_the_attempts_of_a_failing_endpoint(
    run: Run, make_settings: Callable[..., Settings], cli_environment: str
) -> None:
    with Receiver(status=500) as receiver:
        status, _, err = run("add", receiver.url)
        webhook_id = err.split("added webhook ")[1].split()[0]
        # A server on the real clock delivers (and fails) with the same secret key.
        keys = SecretKeys.parse(cli_environment)
        settings = webhook_settings(make_settings, secret_key=keys)
        server, _ = create_server(settings, clock=utcnow)
        try:
            wait_until(lambda: "FAILED" in run("deliveries", webhook_id)[1], what="FAILED")
        finally:
            server.stop(0)
    status, out, _ = run("deliveries", webhook_id)
    assert status == 0
    [header, line] = out.splitlines()
    assert header.split()[:4] == ["EVENT", "TYPE", "STATE", "TRIES"]
    fields = line.split()
    assert uuid.UUID(fields[0]) and fields[1:4] == ["webhook.created", "FAILED", "4"]
    assert fields[-3:] == ["500", "HTTP", "500"]
    assert run("list")[1].splitlines()[1].split()[1] == "FAILING"
    assert run("deliveries", str(uuid.uuid4()))[0] == 1


def test_reencrypt_secrets_seals_webhook_secrets_with_the_new_key(
    run: Run, db_url: str, database: Database, monkeypatch: pytest.MonkeyPatch, cli_environment: str
) -> None:
    secret = run("add", "http://127.0.0.1:9/hooks")[1].strip()
    new = Fernet.generate_key().decode()
    monkeypatch.setenv("AUTHSVC_SECRET_KEY", f"{new},{cli_environment}")
    assert cli.main(["reencrypt-secrets", "--database-url", db_url]) == 0
    with database.transaction(writes=False) as db:
        [sealed] = db.scalars(select(Webhook.secret))
    assert SecretKeys.parse(new).unseal(sealed) == secret  # the old key can go now
