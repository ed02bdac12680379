"""authsvc mails links and security notices itself (AUTHSVC_MAIL_DELIVERY=smtp).

A real SMTP server (aiosmtpd, STARTTLS with a test CA, AUTH) receives them; every test
runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import MetaData, select, text

from authsvc.edge.caller_policy import Admission
from authsvc.rules.mail import FAILED, QUEUED
from authsvc.runtime import cli
from authsvc.runtime.assembly import AuthServer
from authsvc.runtime.settings import ConfigError
from authsvc.storage.engine import Database
from authsvc.storage.models import MailRow
from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc
from tests.conftest import FakeClock
from tests.edge.test_callers import REMOTE_IP
from tests.helpers import PASSWORD, fails, sign_in, sign_up, wait_until
from tests.mail_server import MailServer, body, link_token

Start = Callable[..., tuple[AuthServer, pb_grpc.AuthServiceStub]]
NEW_PASSWORD = "another long passphrase 42"


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[MailServer]:
    server = MailServer(tmp_path)
    server.start()
    yield server
    server.stop()


def mails(database: Database) -> list[MailRow]:
    with database.transaction() as db:
        return list(db.scalars(select(MailRow).order_by(MailRow.created_at)))


def test_a_reset_link_is_mailed_and_its_token_completes_the_reset(
    start_server: Start, smtp: MailServer
) -> None:
    _, stub = start_server(**smtp.settings())
    sign_up(stub)
    started = stub.StartPasswordReset(pb.StartPasswordResetRequest(email="ADA@example.com"))
    assert started.reset_token == ""  # the token never leaves authsvc
    (mail,) = smtp.wait_for("ada@example.com")
    assert mail["Subject"] == "Reset your password"
    assert mail["From"] == "Example <no-reply@example.com>"
    assert mail["Message-ID"].endswith("@example.com>")
    token = link_token(mail, "reset")
    assert token in body(mail, "html")
    stub.CompletePasswordReset(
        pb.CompletePasswordResetRequest(reset_token=token, new_password=NEW_PASSWORD)
    )
    sign_in(stub, password=NEW_PASSWORD)
    notices = smtp.wait_for("ada@example.com", 2)
    assert notices[1]["Subject"] == "Your password was reset"
    assert token not in body(notices[1])


def test_an_unknown_email_gets_the_same_answer_and_no_mail(
    start_server: Start, smtp: MailServer, database: Database
) -> None:
    _, stub = start_server(**smtp.settings())
    answer = stub.StartPasswordReset(pb.StartPasswordResetRequest(email="nobody@example.com"))
    assert answer.reset_token == "" and answer.HasField("expire_time")
    assert mails(database) == []


def test_the_no_account_mail_goes_out_when_turned_on(start_server: Start, smtp: MailServer) -> None:
    _, stub = start_server(**smtp.settings(mail_no_account=True))
    stub.StartPasswordReset(pb.StartPasswordResetRequest(email="nobody@example.com"))
    (mail,) = smtp.wait_for("nobody@example.com")
    assert "there is no account" in body(mail)
    assert "token=" not in body(mail)


def test_a_verification_link_by_the_users_own_session_verifies_the_email(
    start_server: Start, smtp: MailServer
) -> None:
    _, stub = start_server(**smtp.settings())
    user = sign_up(stub)
    session = sign_in(stub)
    started = stub.StartEmailVerification(
        pb.StartEmailVerificationRequest(session_token=session.session_token)
    )
    assert started.verification_token == ""
    (mail,) = smtp.wait_for("ada@example.com")
    verified = stub.VerifyEmail(
        pb.VerifyEmailRequest(verification_token=link_token(mail, "verify"))
    )
    assert verified.user.id == user.id and verified.user.email_verified


def test_a_session_token_of_another_user_is_refused(start_server: Start, smtp: MailServer) -> None:
    _, stub = start_server(**smtp.settings())
    sign_up(stub)
    bob = sign_up(stub, "bob@example.com")
    session = sign_in(stub)
    failed = fails(
        stub.StartEmailVerification,
        pb.StartEmailVerificationRequest(user_id=bob.id, session_token=session.session_token),
    )
    assert (failed.code, failed.fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["user_id"])


def test_sign_up_mails_a_verification_link_when_asked(
    start_server: Start, smtp: MailServer
) -> None:
    _, stub = start_server(**smtp.settings(verify_email_on_sign_up=True))
    sign_up(stub)
    (mail,) = smtp.wait_for("ada@example.com")
    token = link_token(mail, "verify")
    assert stub.VerifyEmail(pb.VerifyEmailRequest(verification_token=token)).user.email_verified


def test_security_notices_arrive_and_hold_no_secret(start_server: Start, smtp: MailServer) -> None:
    _, stub = start_server(**smtp.settings())
    user = sign_up(stub)
    session = sign_in(stub)
    stub.ChangePassword(
        pb.ChangePasswordRequest(
            session_token=session.session_token,
            current_password=PASSWORD,
            new_password=NEW_PASSWORD,
        )
    )
    changed = smtp.wait_for("ada@example.com")[0]
    assert changed["Subject"] == "Your password was changed"
    stub.UpdateUser(pb.UpdateUserRequest(user=pb.User(id=user.id, email="ada@example.org")))
    moved = smtp.wait_for("ada@example.com", 2)[1]  # to the old address
    assert "ada@example.org" in body(moved)
    stub.DisableUser(pb.DisableUserRequest(id=user.id))
    disabled = smtp.wait_for("ada@example.org")[0]
    assert disabled["Subject"] == "Your account was disabled"
    for mail in (changed, moved, disabled):
        for secret in (PASSWORD, NEW_PASSWORD, session.session_token, session.update_token):
            assert secret not in mail.as_string()


def test_a_notice_turned_off_is_not_sent(
    start_server: Start, smtp: MailServer, database: Database
) -> None:
    _, stub = start_server(**smtp.settings(mail_notices=("account_disabled",)))
    user = sign_up(stub)
    stub.SetPassword(pb.SetPasswordRequest(user_id=user.id, new_password=NEW_PASSWORD))
    stub.DisableUser(pb.DisableUserRequest(id=user.id))
    smtp.wait_for("ada@example.com")
    assert [m.kind for m in mails(database)] == ["account_disabled"]


def test_templates_are_overridden_per_locale_with_fallback(
    start_server: Start, smtp: MailServer, tmp_path: Path
) -> None:
    templates = tmp_path / "templates"
    (templates / "de").mkdir(parents=True)
    (templates / "de" / "password_reset.subject.txt").write_text(
        "Passwort zurücksetzen, {{ user.first_name }}"
    )
    (templates / "de" / "password_reset.html").write_text("<p>{{ user.last_name }}</p>")
    _, stub = start_server(**smtp.settings(mail_templates=str(templates)))
    stub.CreateUser(
        pb.CreateUserRequest(
            email="hans@example.ch",
            password=PASSWORD,
            first_name="Hans",
            last_name="<Muster>",
            locale="de-ch",
        )
    )
    sign_up(stub)  # no locale: the defaults
    for email in ("hans@example.ch", "ada@example.com"):
        stub.StartPasswordReset(pb.StartPasswordResetRequest(email=email))
    (german,) = smtp.wait_for("hans@example.ch")
    assert german["Subject"] == "Passwort zurücksetzen, Hans"  # de-CH fell back to de
    assert "&lt;Muster&gt;" in body(german, "html")  # HTML is autoescaped
    assert "token=" in body(german)  # the plain text part is still the default
    assert smtp.wait_for("ada@example.com")[0]["Subject"] == "Reset your password"


def test_a_broken_template_stops_the_start(
    make_settings: Callable[..., Any], smtp: MailServer, tmp_path: Path
) -> None:
    (tmp_path / "fr").mkdir()
    (tmp_path / "fr" / "account_disabled.txt").write_text("{{ user.nickname }}")
    with pytest.raises(ConfigError, match=r"AUTHSVC_MAIL_TEMPLATES: .*account_disabled"):
        make_settings(**smtp.settings(mail_templates=str(tmp_path)))
    (tmp_path / "fr" / "account_disabled.txt").write_text("{% if %}")
    with pytest.raises(ConfigError, match="line 1"):
        make_settings(**smtp.settings(mail_templates=str(tmp_path)))


def test_mail_queued_while_smtp_is_down_is_delivered_when_it_is_back(
    start_server: Start, smtp: MailServer, database: Database, clock: FakeClock
) -> None:
    smtp.stop()
    server, stub = start_server(**smtp.settings())
    sign_up(stub)
    stub.StartPasswordReset(pb.StartPasswordResetRequest(email="ada@example.com"))
    row = wait_until(lambda: [m for m in mails(database) if m.last_error], what="an attempt")[0]
    assert row.status == QUEUED and row.attempts == 1
    assert row.next_attempt_at - clock.now <= timedelta(seconds=10)  # first retry soon
    smtp.start()
    clock.advance(timedelta(seconds=10))
    assert server.mail_sender is not None
    server.mail_sender.wake()
    (mail,) = smtp.wait_for("ada@example.com")
    assert mail["Message-ID"] == row.message_id


def test_a_5xx_fails_the_mail_and_mail_list_shows_it(
    start_server: Start, smtp: MailServer, database: Database, db_url: str
) -> None:
    smtp.reply = "550 5.1.1 mailbox unavailable"
    _, stub = start_server(**smtp.settings())
    sign_up(stub)
    stub.StartPasswordReset(pb.StartPasswordResetRequest(email="ada@example.com"))
    row = wait_until(lambda: [m for m in mails(database) if m.status == FAILED], what="failed")[0]
    assert row.sealed_token is None  # its token is forgotten
    out = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:  # configure_logging replaces the root's handlers: put them back after
        with contextlib.redirect_stdout(out):
            assert cli.main(["mail", "list", "--status", "failed", "--database-url", db_url]) == 0
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert str(row.id) in out.getvalue()
    assert "SMTP 550" in out.getvalue()


def test_no_raw_token_is_in_a_database_dump(
    start_server: Start, smtp: MailServer, database: Database, clock: FakeClock
) -> None:
    smtp.stop()
    server, stub = start_server(**smtp.settings())
    sign_up(stub)
    stub.StartPasswordReset(pb.StartPasswordResetRequest(email="ada@example.com"))
    wait_until(lambda: [m for m in mails(database) if m.attempts], what="an attempt")
    dump = dump_database(database)
    smtp.start()
    clock.advance(timedelta(seconds=10))
    assert server.mail_sender is not None
    server.mail_sender.wake()
    token = link_token(smtp.wait_for("ada@example.com")[0], "reset")
    assert token not in dump
    assert "mail_outbox" in dump and "ada@example.com" in dump  # the dump did read it


def dump_database(database: Database) -> str:
    meta = MetaData()
    meta.reflect(database.engine)
    lines = []
    with database.engine.connect() as conn:
        for table in meta.sorted_tables:
            lines.append(table.name)
            lines += [repr(tuple(row)) for row in conn.execute(table.select())]
    return "\n".join(lines)


def test_mail_is_throttled_per_recipient(
    start_server: Start, smtp: MailServer, database: Database
) -> None:
    _, stub = start_server(**smtp.settings(mail_recipient_limit=2))
    sign_up(stub)
    sign_up(stub, "bob@example.com")
    for _ in range(4):
        stub.StartPasswordReset(pb.StartPasswordResetRequest(email="ada@example.com"))
    stub.StartPasswordReset(pb.StartPasswordResetRequest(email="bob@example.com"))
    smtp.wait_for("bob@example.com")  # another recipient is not held back
    assert sorted(m.recipient for m in mails(database)) == [
        "ada@example.com",
        "ada@example.com",
        "bob@example.com",
    ]


def test_caller_mode_still_hands_out_tokens_and_sends_nothing(
    stub: pb_grpc.AuthServiceStub, database: Database
) -> None:
    sign_up(stub)
    assert stub.StartPasswordReset(
        pb.StartPasswordResetRequest(email="ada@example.com")
    ).reset_token
    assert mails(database) == []


def test_smtp_mode_opens_the_token_mailing_rpcs_to_unprivileged_callers() -> None:
    reset = "/authsvc.v1.AuthService/StartPasswordReset"
    verify = "/authsvc.v1.AuthService/StartEmailVerification"
    caller_mode, smtp_mode = Admission(None), Admission(None, tokens_mailed=True)
    for method in (reset, verify):
        assert caller_mode.refusal([], method, local=False) is not None
        assert smtp_mode.refusal([], method, local=False) is None
    assert smtp_mode.refusal([], "/authsvc.v1.AuthService/ListUsers", local=False) is not None


def test_enumeration_safe_sign_up_answers_a_taken_email_as_a_new_one(
    start_server: Start, smtp: MailServer, database: Database
) -> None:
    _, stub = start_server(**smtp.settings(sign_up_enumeration_safe=True))
    first = sign_up(stub)
    again = stub.CreateUser(
        pb.CreateUserRequest(
            email="ada@example.com", password=PASSWORD, first_name="Eve", last_name="X"
        )
    ).user
    assert again.id != first.id and again.email == "ada@example.com"
    (mail,) = smtp.wait_for("ada@example.com")
    assert "tried to sign up" in body(mail)
    with database.transaction() as db:
        assert db.scalar(text("SELECT count(*) FROM users")) == 1


def test_smtps_speaks_tls_from_the_first_byte(start_server: Start, tmp_path: Path) -> None:
    implicit = MailServer(tmp_path, tls="implicit")
    implicit.start()
    try:
        _, stub = start_server(**implicit.settings())
        sign_up(stub)
        stub.StartPasswordReset(pb.StartPasswordResetRequest(email="ada@example.com"))
        assert implicit.wait_for("ada@example.com")[0]["Subject"] == "Reset your password"
    finally:
        implicit.stop()


def test_a_server_without_starttls_gets_no_mail(
    start_server: Start, tmp_path: Path, database: Database
) -> None:
    plain = MailServer(tmp_path, tls="none")
    plain.start()
    try:
        _, stub = start_server(**plain.settings())
        sign_up(stub)
        stub.StartPasswordReset(pb.StartPasswordResetRequest(email="ada@example.com"))
        (row,) = wait_until(lambda: [m for m in mails(database) if m.last_error], what="error")
        assert "STARTTLS" in row.last_error and row.status == QUEUED
        assert plain.messages() == []
    finally:
        plain.stop()


def test_the_locale_is_checked_stored_updated_and_returned(stub: pb_grpc.AuthServiceStub) -> None:
    failed = fails(
        stub.CreateUser,
        pb.CreateUserRequest(
            email="ada@example.com", password=PASSWORD, first_name="A", last_name="L", locale="x1"
        ),
    )
    assert (failed.code, failed.fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["locale"])
    user = stub.CreateUser(
        pb.CreateUserRequest(
            email="ada@example.com",
            password=PASSWORD,
            first_name="A",
            last_name="L",
            locale="fr-ca",
        )
    ).user
    assert user.locale == "fr-CA"
    stub.UpdateUser(
        pb.UpdateUserRequest(
            user=pb.User(id=user.id, locale="de"), update_mask={"paths": ["locale"]}
        )
    )
    assert stub.GetUser(pb.GetUserRequest(id=user.id)).user.locale == "de"
    session = sign_in(stub)
    validated = stub.ValidateToken(pb.ValidateTokenRequest(session_token=session.session_token))
    assert validated.user.locale == "de"


def test_adding_and_removing_totp_mail_notices_without_the_secret_or_codes(
    start_server: Start, smtp: MailServer, clock: FakeClock
) -> None:
    from tests.flows.test_multi_factor import complete, enrolled_user

    _, stub = start_server(**smtp.settings())
    secret, codes = enrolled_user(stub, clock)
    (added,) = smtp.wait_for("ada@example.com")
    assert added["Subject"] == "A second factor was added to your account"
    assert "authenticator app" in body(added)
    done = complete(stub, sign_in(stub).challenge.challenge_token, recovery_code=codes[0])
    stub.RemoveTotp(pb.RemoveTotpRequest(session_token=done.session_token, code=codes[1]))
    removed = smtp.wait_for("ada@example.com", 2)[1]
    assert removed["Subject"] == "A second factor was removed from your account"
    for mail in (added, removed):
        assert secret not in mail.as_string()
        assert not any(c in mail.as_string() for c in codes)


def test_adding_a_passkey_mails_a_notice_naming_it(start_server: Start, smtp: MailServer) -> None:
    from tests.flows.test_passkeys import ORIGIN, RP_ID, register
    from tests.webauthn_authenticator import SoftAuthenticator

    _, stub = start_server(**smtp.settings(webauthn_rp_id=RP_ID, webauthn_origins=(ORIGIN,)))
    sign_up(stub)
    register(stub, sign_in(stub).session_token, SoftAuthenticator(ORIGIN), "YubiKey <5>")
    (mail,) = smtp.wait_for("ada@example.com")
    assert mail["Subject"] == "A passkey was added to your account"
    assert '"YubiKey <5>"' in body(mail)
    assert "YubiKey &lt;5&gt;" in body(mail, "html")


def test_a_4xx_is_retried_with_backoff_for_the_retry_window_then_fails(
    start_server: Start, smtp: MailServer, database: Database, clock: FakeClock
) -> None:
    smtp.reply = "451 4.3.0 try again later"
    server, stub = start_server(**smtp.settings(mail_retry_for=timedelta(hours=24)))
    assert server.mail_sender is not None
    sign_up(stub)
    user = stub.GetUser(pb.GetUserRequest(id=sign_up(stub, "bob@example.com").id)).user
    stub.DisableUser(pb.DisableUserRequest(id=user.id))  # a notice: no link to expire

    def deferred(n: int) -> list[MailRow]:
        # Deferred after attempt n (while claimed, its next attempt is a lease away).
        soon = clock.now + timedelta(minutes=1)
        return [m for m in mails(database) if m.attempts == n and m.next_attempt_at < soon]

    waits = []
    for attempt in range(1, 4):
        row = wait_until(lambda n=attempt: deferred(n))[0]
        assert row.status == QUEUED and "SMTP 451" in row.last_error
        waits.append(row.next_attempt_at - clock.now)
        clock.advance(waits[-1])
        server.mail_sender.wake()
    assert waits == [timedelta(seconds=5), timedelta(seconds=10), timedelta(seconds=20)]
    wait_until(lambda: deferred(4))
    clock.advance(timedelta(hours=25))
    server.mail_sender.wake()
    row = wait_until(lambda: [m for m in mails(database) if m.status == FAILED])[0]
    assert row.last_error.startswith("gave up after") and "SMTP 451" in row.last_error


def test_a_non_loopback_caller_may_start_a_reset_in_smtp_mode_only(
    start_server: Start, smtp: MailServer
) -> None:
    assert REMOTE_IP is not None, "needs a non-loopback IPv4 address on this machine"
    server, local = start_server(address="0.0.0.0:0", **smtp.settings())
    sign_up(local)
    remote = grpc.insecure_channel(f"{REMOTE_IP}:{server.port}")
    stranger = pb_grpc.AuthServiceStub(remote)
    stranger.StartPasswordReset(pb.StartPasswordResetRequest(email="ada@example.com"))
    assert smtp.wait_for("ada@example.com")
    assert fails(stranger.ListUsers, pb.ListUsersRequest()).reason == "CALLER_NOT_ALLOWED"
    remote.close()
