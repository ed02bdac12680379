"""``kill -9`` of ``authsvc serve`` while a webhook endpoint is failing: after a restart,
every event is still delivered (deliveries live in the database, not in memory)."""

from __future__ import annotations

import uuid
from pathlib import Path

import grpc
from cryptography.fernet import Fernet
from sqlalchemy import select

from authsvc.storage.engine import Database
from authsvc.storage.models import WebhookDelivery
from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc
from tests.helpers import wait_until
from tests.serve_process import ServeProcess
from tests.webhook_receiver import Receiver, emit

RETRIES = ",".join(["100ms"] * 300)  # half a minute of retries, ten a second


def test_deliveries_survive_a_crash_mid_retry(
    db_url: str, database: Database, tmp_path: Path
) -> None:
    env = {
        "AUTHSVC_SECRET_KEY": Fernet.generate_key().decode(),
        "AUTHSVC_WEBHOOK_ALLOW_PRIVATE": "true",
        "AUTHSVC_WEBHOOK_RETRY_SCHEDULE": RETRIES,
        "AUTHSVC_WEBHOOK_POLL_INTERVAL": "100ms",
        "AUTHSVC_WEBHOOK_TIMEOUT": "1s",
    }
    with Receiver(status=500) as receiver:
        first = ServeProcess(db_url, tmp_path / "first.log", **env)
        try:
            with grpc.insecure_channel(first.address) as channel:
                stub = pb_grpc.AuthServiceStub(channel)
                request = pb.CreateWebhookRequest(url=receiver.url)
                secret = stub.CreateWebhook(request, timeout=10).secret
            emit(database, uuid.uuid4(), count=2)
            wait_until(lambda: len(receiver.all()) >= 3, what="failing attempts")
        finally:
            first.kill()  # SIGKILL: mid-retry, nothing drained
        assert receiver.delivered() == []
        receiver.status = 204
        second = ServeProcess(db_url, tmp_path / "second.log", **env)
        try:
            wait_until(lambda: len(receiver.delivered()) >= 3, timeout=60, what="deliveries")
            delivered = receiver.verified(secret)
        finally:
            assert second.terminate() == 0
    unique = {e["id"]: e["type"] for e in delivered}  # at least once: dedupe on the id
    assert sorted(unique.values()) == ["user.enabled", "user.enabled", "webhook.created"]
    with database.transaction(writes=False) as db:
        states = list(db.scalars(select(WebhookDelivery.state)))
    assert states == ["DELIVERED"] * 3
