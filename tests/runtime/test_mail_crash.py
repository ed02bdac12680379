"""``kill -9`` of ``authsvc serve`` between queueing a mail and sending it loses nothing:
the restarted server delivers it (with the Message-ID it was queued with)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from sqlalchemy import select

from authsvc.storage import migrate
from authsvc.storage.engine import Database, make_engine
from authsvc.storage.models import MailRow
from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc
from tests.conftest import create_pg_database, drop_pg_database
from tests.helpers import sign_up, wait_until
from tests.mail_server import MailServer, link_token
from tests.serve_process import ServeProcess


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    if request.param == "postgresql":
        url = create_pg_database("authsvc_mail_crash")
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    if request.param == "postgresql":
        drop_pg_database(url)


def queued(url: str) -> list[MailRow]:
    database = Database(make_engine(url))
    try:
        with database.transaction() as db:
            return list(db.scalars(select(MailRow)))
    finally:
        database.dispose()


@pytest.mark.slow
def test_a_mail_queued_before_a_kill_9_is_delivered_after_the_restart(
    url: str, tmp_path: Path
) -> None:
    smtp = MailServer(tmp_path)  # not started yet: the mail cannot go out
    env = smtp.env(AUTHSVC_SMTP_TIMEOUT="1s")
    server = ServeProcess(url, tmp_path / "first.log", **env)
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.AuthServiceStub(channel)
            sign_up(stub)
            stub.StartPasswordReset(pb.StartPasswordResetRequest(email="ada@example.com"))
        (row,) = wait_until(lambda: queued(url), what="the queued mail")
    finally:
        server.kill()
    assert [m.status for m in queued(url)] == ["queued"]
    smtp.start()
    restarted = ServeProcess(url, tmp_path / "second.log", **env)
    try:
        (mail,) = smtp.wait_for("ada@example.com", timeout=60)
        assert mail["Message-ID"] == row.message_id
        with grpc.insecure_channel(restarted.address) as channel:
            pb_grpc.AuthServiceStub(channel).CompletePasswordReset(
                pb.CompletePasswordResetRequest(
                    reset_token=link_token(mail, "reset"), new_password="a new passphrase 42"
                )
            )
        sent = {m.message_id for m in queued(url) if m.status == "sent"}
        assert row.message_id in sent
    finally:
        restarted.terminate()
        smtp.stop()


@pytest.mark.slow
def test_a_kill_9_mid_send_delivers_again_with_the_same_message_id(
    url: str, tmp_path: Path
) -> None:
    smtp = MailServer(tmp_path)
    smtp.released.clear()  # the first delivery stops in the middle of DATA
    smtp.start()
    env = smtp.env(AUTHSVC_SMTP_TIMEOUT="1s")
    server = ServeProcess(url, tmp_path / "first.log", **env)
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.AuthServiceStub(channel)
            sign_up(stub)
            stub.StartPasswordReset(pb.StartPasswordResetRequest(email="ada@example.com"))
        wait_until(lambda: smtp.in_data, what="a send in progress")
    finally:
        server.kill()
    (row,) = queued(url)
    assert row.status == "queued" and row.attempts == 1  # claimed, never marked sent
    smtp.released.set()  # the server may still accept the half-sent mail: a duplicate
    restarted = ServeProcess(url, tmp_path / "second.log", **env)
    try:
        wait_until(lambda: [m.status for m in queued(url)] == ["sent"], 60, what="sent")
        delivered = smtp.messages("ada@example.com")
        assert delivered and {m["Message-ID"] for m in delivered} == {row.message_id}
    finally:
        restarted.terminate()
        smtp.stop()
