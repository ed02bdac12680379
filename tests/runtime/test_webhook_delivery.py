"""Webhook deliveries to real HTTP receivers, verified with the ``standardwebhooks`` library.

Servers here run on the real clock (retries must come due) with a fast retry schedule
(three retries 50 ms apart) and loopback receivers allowed.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from authsvc.rules.secrets_at_rest import SecretKeys
from authsvc.runtime import webhook_http
from authsvc.runtime.assembly import AuthServer, create_server
from authsvc.runtime.settings import Settings
from authsvc.storage.engine import Database
from authsvc.storage.models import Webhook, WebhookDelivery, utcnow
from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc
from tests.certs import SERVER_NAME, make_pki
from tests.helpers import wait_until
from tests.node_tools import ROOT, node
from tests.webhook_receiver import Receiver, emit, webhook_settings


@pytest.fixture
def live(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., Any]]:
    """Starts servers on the real clock with webhook test settings; stops them after."""
    started: list[tuple[AuthServer, grpc.Channel]] = []

    def start(**overrides: Any) -> pb_grpc.AuthServiceStub:
        server, port = create_server(webhook_settings(make_settings, **overrides), clock=utcnow)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        started.append((server, channel))
        return pb_grpc.AuthServiceStub(channel)

    yield start
    for server, channel in started:
        channel.close()
        server.stop(0)


def add(stub: Any, url: str, *types: str) -> tuple[str, str]:
    reply = stub.CreateWebhook(pb.CreateWebhookRequest(url=url, types=list(types)), timeout=10)
    return reply.webhook.id, reply.secret


def deliveries(stub: Any, webhook_id: str, **kw: Any) -> list[Any]:
    request = pb.ListWebhookDeliveriesRequest(webhook_id=webhook_id, **kw)
    return list(stub.ListWebhookDeliveries(request, timeout=10).deliveries)


def state_of(stub: Any, webhook_id: str) -> int:
    hooks = stub.ListWebhooks(pb.ListWebhooksRequest(), timeout=10).webhooks
    return next(h.state for h in hooks if h.id == webhook_id)


def test_events_are_delivered_signed_per_standard_webhooks(
    live: Callable[..., Any], database: Database
) -> None:
    stub = live()
    user_id = uuid.uuid4()
    with Receiver() as receiver:
        webhook_id, secret = add(stub, receiver.url)
        emit(database, user_id, count=2)
        wait_until(lambda: len(receiver.delivered()) == 3, what="three deliveries")
        created, first, second = receiver.verified(secret)  # raises on a bad signature
        request = receiver.delivered()[1]
    assert created["type"] == "webhook.created" and created["data"]["webhook_id"] == webhook_id
    assert (first["type"], first["user_id"], first["session_id"]) == (
        "user.enabled",
        str(user_id),
        None,
    )
    assert first["actor"] == {"kind": "SYSTEM", "name": ""} and first["data"] == {}
    assert first["time"].endswith("Z") and first["id"] != second["id"]
    assert request.headers["webhook-id"] == first["id"]  # the event id: deduplicate on it
    assert request.headers["webhook-signature"].startswith("v1,")
    assert request.headers["Content-Type"] == "application/json"
    assert request.path == "/hooks"
    states = {d.state for d in deliveries(stub, webhook_id)}
    wait_until(lambda: {d.state for d in deliveries(stub, webhook_id)} == {2}, what="DELIVERED")
    assert states <= {pb.WEBHOOK_DELIVERY_STATE_PENDING, pb.WEBHOOK_DELIVERY_STATE_DELIVERED}


def test_a_forged_or_altered_delivery_does_not_verify(
    live: Callable[..., Any], database: Database
) -> None:
    from standardwebhooks.webhooks import Webhook as Verifier
    from standardwebhooks.webhooks import WebhookVerificationError

    stub = live()
    with Receiver() as receiver:
        _, secret = add(stub, receiver.url)
        wait_until(lambda: len(receiver.delivered()) == 1)
        [request] = receiver.delivered()
    with pytest.raises(WebhookVerificationError):
        Verifier(secret).verify(request.body.replace(b"webhook", b"webhooK"), request.headers)
    with pytest.raises(WebhookVerificationError):
        Verifier("whsec_" + "A" * 43).verify(request.body, request.headers)


def test_only_the_chosen_types_are_sent(live: Callable[..., Any], database: Database) -> None:
    stub = live()
    with Receiver() as picky, Receiver() as everything:
        add(stub, picky.url, "webhook.deleted")
        all_id, _ = add(stub, everything.url)
        emit(database, uuid.uuid4())
        stub.DeleteWebhook(pb.DeleteWebhookRequest(id=all_id), timeout=10)
        wait_until(lambda: len(picky.delivered()) == 1, what="the deletion")
        assert [r.event()["type"] for r in picky.delivered()] == ["webhook.deleted"]


@pytest.mark.parametrize("failure", ["status", "timeout", "refused"])
def test_failures_are_retried_then_the_endpoint_is_failing(
    live: Callable[..., Any], database: Database, failure: str
) -> None:
    stub = live(webhook_timeout=timedelta(milliseconds=300))
    with Receiver(status=503) as receiver:
        if failure == "timeout":
            receiver.hold = True  # never answers within the timeout
        url = receiver.url if failure != "refused" else closed_port_url()
        webhook_id, _ = add(stub, url)

        def failed() -> bool:
            found = deliveries(stub, webhook_id)
            return bool(found) and found[0].state == pb.WEBHOOK_DELIVERY_STATE_FAILED

        wait_until(failed, what="the delivery to fail for good")
        [delivery] = deliveries(stub, webhook_id)
        if failure == "status":
            assert len(receiver.all()) == 4  # the first try and three retries
    assert delivery.attempts == 4 and delivery.event_type == "webhook.created"
    expected = {
        "status": (503, "HTTP 503"),
        "timeout": (0, "timed out"),
        "refused": (0, "connection refused"),
    }[failure]
    assert (delivery.last_status_code, delivery.last_error) == expected
    assert delivery.HasField("last_attempt_time") and not delivery.HasField("next_attempt_time")
    assert state_of(stub, webhook_id) == pb.WEBHOOK_STATE_FAILING


def closed_port_url() -> str:
    import socket

    with socket.socket() as sock:  # bound, never listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/hooks"


def test_a_success_after_failures_is_delivered_and_the_endpoint_recovers(
    live: Callable[..., Any], database: Database
) -> None:
    stub = live()
    with Receiver() as receiver:
        receiver.answers = [500, 500]
        webhook_id, secret = add(stub, receiver.url)
        wait_until(lambda: len(receiver.delivered()) == 1)
        [event] = receiver.verified(secret)
        assert [r.answered for r in receiver.all()] == [500, 500, 204]
        assert {r.headers["webhook-id"] for r in receiver.all()} == {event["id"]}
    wait_until(lambda: deliveries(stub, webhook_id)[0].state == 2, what="DELIVERED")
    [delivery] = deliveries(stub, webhook_id)
    assert (delivery.attempts, delivery.last_status_code, delivery.last_error) == (3, 204, "")
    assert state_of(stub, webhook_id) == pb.WEBHOOK_STATE_ACTIVE


def test_a_dead_endpoint_delays_neither_other_endpoints_nor_rpcs(
    live: Callable[..., Any], database: Database
) -> None:
    stub = live(webhook_timeout=timedelta(seconds=60))
    with Receiver() as dead, Receiver() as alive:
        dead.hold = True  # takes every request and never answers (until released)
        add(stub, dead.url)
        wait_until(lambda: dead.arrived == 1, what="the dead endpoint to hang on a request")
        add(stub, alive.url)
        emit(database, uuid.uuid4(), count=3)
        wait_until(lambda: len(alive.delivered()) == 4, what="the live endpoint's deliveries")
        reply = stub.CreateUser(
            pb.CreateUserRequest(
                email="ada@example.com",
                password="correct horse battery staple",
                first_name="Ada",
                last_name="Lovelace",
            ),
            timeout=10,
        )
        assert reply.user.id
        assert dead.all() == []  # still hanging on its first request all along
        dead.release()


def test_one_users_events_arrive_in_order(live: Callable[..., Any], database: Database) -> None:
    stub = live()
    ada, bob = uuid.uuid4(), uuid.uuid4()
    with Receiver() as receiver:
        add(stub, receiver.url, "user.enabled")
        failures = [500, 500, 500]  # the first three requests about Ada fail

        def fail_ada(body: bytes) -> int | None:
            about_ada = json.loads(body)["user_id"] == str(ada)
            return failures.pop() if about_ada and failures else None

        receiver.decide = fail_ada
        emit(database, ada)
        emit(database, bob)
        emit(database, ada, count=3)
        wait_until(lambda: len(receiver.delivered()) == 5, what="every event")
        arrivals = [(r.event()["user_id"], r.event()["id"]) for r in receiver.all()]
    ada_ids = [event_id for user, event_id in arrivals if user == str(ada)]
    first = ada_ids[0]
    assert ada_ids[:4] == [first] * 4  # retried until delivered, before any later one
    with database.transaction(writes=False) as db:
        order = list(
            db.scalars(
                select(WebhookDelivery.event_id)
                .where(WebhookDelivery.user_id == ada)
                .order_by(WebhookDelivery.event_position)
            )
        )
    assert [uuid.UUID(i) for i in dict.fromkeys(ada_ids)] == order


def test_the_address_is_checked_again_at_send_time() -> None:
    with Receiver() as receiver:
        port = int(receiver.url.split(":")[2].split("/")[0])
        url = f"http://hooks.example.com:{port}/hooks"

        def rebound(host: str, _port: int) -> list[Any]:
            import ipaddress

            assert host == "hooks.example.com"
            return [ipaddress.ip_address("127.0.0.1")]  # resolved public once, now loopback

        refused = webhook_http.post(url, "{}", {}, 5, False, rebound)
        assert refused.status_code == 0 and "private" in refused.error
        assert receiver.all() == []
        # Allowed, the request goes to the checked address and still names the host.
        allowed = webhook_http.post(url, "{}", {}, 5, True, rebound)
        assert allowed.delivered
        [request] = receiver.all()
        assert request.headers["Host"] == f"hooks.example.com:{port}"


def test_deleting_an_endpoint_drops_its_pending_deliveries(
    live: Callable[..., Any], database: Database
) -> None:
    stub = live(webhook_retry_schedule=(timedelta(hours=1),))
    with Receiver(status=500) as receiver:
        webhook_id, _ = add(stub, receiver.url)
        wait_until(lambda: len(receiver.all()) == 1)
        stub.DeleteWebhook(pb.DeleteWebhookRequest(id=webhook_id), timeout=10)
    with database.transaction(writes=False) as db:
        assert list(db.scalars(select(WebhookDelivery))) == []
        assert list(db.scalars(select(Webhook))) == []


def test_deliveries_page_newest_first(live: Callable[..., Any], database: Database) -> None:
    stub = live()
    with Receiver() as receiver:
        webhook_id, _ = add(stub, receiver.url)
        emit(database, uuid.uuid4(), count=4)
        wait_until(lambda: len(receiver.delivered()) == 5)
        sent = [r.headers["webhook-id"] for r in receiver.delivered()]
    request = pb.ListWebhookDeliveriesRequest(webhook_id=webhook_id, page_size=2)
    seen: list[str] = []
    while True:
        reply = stub.ListWebhookDeliveries(request, timeout=10)
        seen += [d.event_id for d in reply.deliveries]
        if not reply.next_page_token:
            break
        request.page_token = reply.next_page_token
    assert seen == sent[::-1]


VERIFY_IN_NODE = """
const { Webhook } = require("standardwebhooks");
let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const { secret, requests } = JSON.parse(input);
  const wh = new Webhook(secret);
  const events = requests.map((r) => wh.verify(r.body, r.headers));
  let forged = "verified";
  try {
    wh.verify(requests[0].body + " ", requests[0].headers);
  } catch (e) {
    forged = e.constructor.name;
  }
  console.log(JSON.stringify({ types: events.map((e) => e.type), forged }));
});
"""


def test_deliveries_verify_with_the_npm_standardwebhooks_library(
    live: Callable[..., Any], database: Database
) -> None:
    stub = live()
    with Receiver() as receiver:
        _, secret = add(stub, receiver.url)
        emit(database, uuid.uuid4())
        wait_until(lambda: len(receiver.delivered()) == 2)
        requests = [
            {"body": r.body.decode(), "headers": {k.lower(): v for k, v in r.headers.items()}}
            for r in receiver.delivered()
        ]
    done = subprocess.run(
        [node(), "-e", VERIFY_IN_NODE],
        input=json.dumps({"secret": secret, "requests": requests}),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout) == {
        "types": ["webhook.created", "user.enabled"],
        "forged": "WebhookVerificationError",
    }


def test_two_replicas_send_each_event_once_and_each_users_in_order(
    live: Callable[..., Any], database: Database
) -> None:
    keys = SecretKeys.parse(Fernet.generate_key().decode())  # the replicas share their key
    first, _second = live(secret_key=keys), live(secret_key=keys)  # both delivering
    users = [uuid.uuid4() for _ in range(3)]
    with Receiver() as receiver:
        add(first, receiver.url, "user.enabled")
        for i in range(30):
            emit(database, users[i % 3])
        wait_until(lambda: len(receiver.delivered()) >= 30, what="every event")
        arrived = [r.event() for r in receiver.all()]
    ids = [e["id"] for e in arrived]
    assert len(ids) == len(set(ids)) == 30  # no attempt made twice
    with database.transaction(writes=False) as db:
        committed = list(
            db.scalars(select(WebhookDelivery.event_id).order_by(WebhookDelivery.event_position))
        )
    for user in users:
        mine = [uuid.UUID(e["id"]) for e in arrived if e["user_id"] == str(user)]
        assert mine == [c for c in committed if c in set(mine)]  # commit order per user


def test_https_checks_the_certificate_against_the_host_not_the_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pki = make_pki(tmp_path)

    def pinned(host: str, _port: int) -> list[Any]:
        return [ipaddress.ip_address("127.0.0.1")]

    with Receiver(tls=(str(pki.server.cert), str(pki.server.key))) as receiver:
        url = f"https://{SERVER_NAME}:{receiver.port}/hooks"
        untrusted = webhook_http.post(url, "{}", {}, 5, True, pinned)
        assert untrusted.status_code == 0 and "CERTIFICATE_VERIFY_FAILED" in untrusted.error
        monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca.cert))  # now the test CA is trusted
        assert webhook_http.post(url, "{}", {}, 5, True, pinned).delivered
        wrong_name = f"https://other.test:{receiver.port}/hooks"  # not in the certificate
        mismatch = webhook_http.post(wrong_name, "{}", {}, 5, True, pinned)
        assert mismatch.status_code == 0 and "CERTIFICATE_VERIFY_FAILED" in mismatch.error
        assert len(receiver.delivered()) == 1
