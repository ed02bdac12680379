"""CreateWebhook, ListWebhooks, DeleteWebhook and ListWebhookDeliveries over gRPC."""

from __future__ import annotations

import base64
import sqlite3
import subprocess
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from authsvc.rules.events import event_data
from authsvc.runtime.assembly import AuthServer
from authsvc.runtime.settings import Settings
from authsvc.storage import events
from authsvc.storage.engine import Database
from authsvc.storage.models import Webhook
from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc
from tests.helpers import fails
from tests.webhook_receiver import webhook_settings

Start = Callable[..., tuple[AuthServer, pb_grpc.AuthServiceStub]]


@pytest.fixture
def hooks_stub(start_server: Start, make_settings: Callable[..., Settings]) -> Any:
    """A server with webhooks configured (a secret key, loopback URLs allowed)."""
    settings = webhook_settings(make_settings)
    return start_server(secret_key=settings.secret_key, webhook_allow_private=True)[1]


def create(stub: Any, url: str = "http://127.0.0.1:9/hooks", types: tuple[str, ...] = ()) -> Any:
    return stub.CreateWebhook(pb.CreateWebhookRequest(url=url, types=list(types)), timeout=10)


def test_create_returns_the_endpoint_and_a_standard_webhooks_secret(
    hooks_stub: Any, database: Database
) -> None:
    reply = create(hooks_stub, types=("user.created", "user.deleted"))
    hook = reply.webhook
    assert uuid.UUID(hook.id) and hook.url == "http://127.0.0.1:9/hooks"
    assert list(hook.types) == ["user.created", "user.deleted"]
    assert hook.state == pb.WEBHOOK_STATE_ACTIVE and hook.create_time.seconds > 0
    assert reply.secret.startswith("whsec_")
    assert len(base64.b64decode(reply.secret.removeprefix("whsec_"))) >= 24
    listed = hooks_stub.ListWebhooks(pb.ListWebhooksRequest(), timeout=10).webhooks
    assert [w.id for w in listed] == [hook.id]
    assert "secret" not in str(listed[0]).lower()  # listing never shows it again


def test_create_and_delete_are_audited_account_events(hooks_stub: Any, database: Database) -> None:
    hook = create(hooks_stub, types=("user.created",)).webhook
    hooks_stub.DeleteWebhook(pb.DeleteWebhookRequest(id=hook.id), timeout=10)
    with database.transaction(writes=False) as db:
        created, deleted = events.events_after(db, 0, 10)
        assert (created.type, deleted.type) == ("webhook.created", "webhook.deleted")
        assert event_data(created) == {
            "webhook_id": hook.id,
            "url": hook.url,
            "types": ["user.created"],
        }
        assert event_data(deleted) == {"webhook_id": hook.id, "url": hook.url}
    assert not hooks_stub.ListWebhooks(pb.ListWebhooksRequest(), timeout=10).webhooks
    audited = hooks_stub.ListAuditEvents(pb.ListAuditEventsRequest(), timeout=10).audit_events
    assert sorted((e.type, e.detail) for e in audited) == [  # one time: the test's clock
        (pb.AUDIT_EVENT_TYPE_WEBHOOK_CREATED, f"{hook.id} {hook.url}"),
        (pb.AUDIT_EVENT_TYPE_WEBHOOK_DELETED, f"{hook.id} {hook.url}"),
    ]


def test_deleting_an_unknown_webhook_is_not_found(hooks_stub: Any) -> None:
    failed = fails(hooks_stub.DeleteWebhook, pb.DeleteWebhookRequest(id=str(uuid.uuid4())))
    assert (failed.code, failed.reason) == (grpc.StatusCode.NOT_FOUND, "WEBHOOK_NOT_FOUND")
    request = pb.ListWebhookDeliveriesRequest(webhook_id=str(uuid.uuid4()))
    failed = fails(hooks_stub.ListWebhookDeliveries, request)
    assert (failed.code, failed.reason) == (grpc.StatusCode.NOT_FOUND, "WEBHOOK_NOT_FOUND")


@pytest.mark.parametrize(
    ("url", "types", "fields"),
    [
        ("", (), ["url"]),
        ("ftp://example.com/x", (), ["url"]),
        ("file:///etc/passwd", (), ["url"]),
        ("http://user:pw@example.com/", (), ["url"]),
        ("http:///nohost", (), ["url"]),
        ("http://example.com/" + "a" * 3000, (), ["url"]),
        ("http://127.0.0.1/", ("user.exploded",), ["types"]),
        ("javascript:alert(1)", ("Nope",), ["url", "types"]),
    ],
)
def test_bad_requests_name_their_fields(
    hooks_stub: Any, url: str, types: tuple[str, ...], fields: list[str]
) -> None:
    request = pb.CreateWebhookRequest(url=url, types=list(types))
    failed = fails(hooks_stub.CreateWebhook, request)
    assert (failed.code, failed.reason, failed.fields) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
        fields,
    )
    for bad in ("not-a-uuid", ""):
        failed = fails(hooks_stub.DeleteWebhook, pb.DeleteWebhookRequest(id=bad))
        assert (failed.code, failed.fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["id"])


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hooks",
        "http://localhost/hooks",
        "https://10.1.2.3/",
        "http://192.168.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/",
        "http://[fe80::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://100.64.0.1/",
    ],
)
def test_private_addresses_are_refused_unless_allowed(
    start_server: Start, make_settings: Callable[..., Settings], url: str
) -> None:
    _, stub = start_server(secret_key=webhook_settings(make_settings).secret_key)
    failed = fails(stub.CreateWebhook, pb.CreateWebhookRequest(url=url))
    assert (failed.code, failed.fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["url"])
    assert "AUTHSVC_WEBHOOK_ALLOW_PRIVATE" in failed.message
    assert not stub.ListWebhooks(pb.ListWebhooksRequest(), timeout=10).webhooks


def test_without_a_secret_key_webhooks_are_refused(start_server: Start) -> None:
    _, stub = start_server(webhook_allow_private=True)
    failed = fails(stub.CreateWebhook, pb.CreateWebhookRequest(url="http://127.0.0.1:9/"))
    assert (failed.code, failed.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "WEBHOOKS_NOT_CONFIGURED",
    )
    assert "AUTHSVC_SECRET_KEY" in failed.message


def test_the_secret_is_stored_only_encrypted(hooks_stub: Any, database: Database) -> None:
    secret = create(hooks_stub).secret
    raw = base64.b64decode(secret.removeprefix("whsec_"))
    dump = dump_database(database)
    assert "webhooks" in dump  # the dump holds the table...
    for form in (secret, secret.removeprefix("whsec_"), raw.hex(), base64.urlsafe_b64encode(raw)):
        assert (form if isinstance(form, str) else form.decode()) not in dump  # ...not the secret
    with database.transaction(writes=False) as db:
        [row] = db.scalars(select(Webhook))
        assert row.secret.startswith("gAAAAA")  # a Fernet token


def dump_database(database: Database) -> str:
    """The whole database as SQL text (``pg_dump`` or SQLite's ``.dump``)."""
    url = make_url(database.engine.url.render_as_string(hide_password=False))
    if url.get_backend_name() == "sqlite":
        with sqlite3.connect(str(url.database)) as conn:
            return "\n".join(conn.iterdump())
    target = url.set(drivername="postgresql").render_as_string(hide_password=False)
    done = subprocess.run(["pg_dump", target], capture_output=True, check=True, timeout=60)
    return done.stdout.decode()


def test_deliveries_of_a_new_endpoint_page_newest_first(hooks_stub: Any) -> None:
    hook = create(hooks_stub).webhook
    request = pb.ListWebhookDeliveriesRequest(webhook_id=hook.id, page_size=5)
    reply = hooks_stub.ListWebhookDeliveries(request, timeout=10)
    assert reply.next_page_token == "" or reply.deliveries
    request.page_token = "garbage"
    failed = fails(hooks_stub.ListWebhookDeliveries, request)
    assert (failed.code, failed.fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["page_token"])
