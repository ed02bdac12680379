"""The Python client (``authsvc_client``) against a real authsvc: plaintext, TLS, mutual TLS.

Its retry policy, deadlines, API key and error decoding against a fake server, and its
install alone into a fresh virtualenv, are tested in ``clients/python/tests``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.fernet import Fernet

from authsvc.rules.secrets_at_rest import SecretKeys
from authsvc.runtime.assembly import create_server
from authsvc_client import AuthClient, AuthClientError
from authsvc_client.v1 import auth_service_pb2 as pb
from tests.certs import SERVER_NAME, Issued, Pki, make_pki
from tests.helpers import PASSWORD


@pytest.fixture
def client(server_address: str) -> Iterator[AuthClient]:
    with AuthClient(server_address, timeout=10) as c:
        yield c


def test_client_covers_the_whole_lifecycle(client: AuthClient):
    user = client.create_user("ada@example.com", PASSWORD, "Ada", "Lovelace")
    assert client.get_user(user.id).email == "ada@example.com"
    assert client.update_user(user.id, first_name="Augusta").first_name == "Augusta"
    assert client.get_user(user.id).last_name == "Lovelace"  # outside the mask: unchanged
    assert [u.id for u in client.list_users().users] == [user.id]

    signed_in = client.create_session("ADA@example.com", PASSWORD, user_agent="test")
    validated = client.validate_token(signed_in.session_token)
    assert validated.user.id == user.id
    assert validated.session.user_agent == "test"
    assert len(client.list_sessions(user.id).sessions) == 1

    refreshed = client.refresh_session(signed_in.update_token)
    client.change_password(refreshed.session_token, PASSWORD, "a new and long passphrase")
    client.delete_session(refreshed.session_token)
    with pytest.raises(AuthClientError) as ended:
        client.validate_token(refreshed.session_token)
    assert ended.value.reason == "TOKEN_INVALID"

    client.delete_user(user.id)
    with pytest.raises(AuthClientError) as gone:
        client.get_user(user.id)
    assert (gone.value.code, gone.value.reason) == (grpc.StatusCode.NOT_FOUND, "USER_NOT_FOUND")


def test_client_passes_any_profile_field_by_name(client: AuthClient):
    user = client.create_user("ada@example.com", PASSWORD, "Ada", "Lovelace", locale="de_ch")
    assert user.locale == "de-CH"
    updated = client.update_user(user.id, locale="fr")
    assert (updated.locale, updated.first_name) == ("fr", "Ada")  # only the named field
    with pytest.raises(AuthClientError) as bad:
        client.update_user(user.id, locale="not a tag")
    assert [v.field for v in bad.value.violations] == ["user.locale"]


def test_client_covers_the_account_lifecycle(client: AuthClient):
    user = client.create_user("ada@example.com", PASSWORD, "Ada", "Lovelace")
    started = client.start_password_reset("ada@example.com", ip_address="203.0.113.1")
    assert client.start_password_reset("nobody@example.com").reset_token == ""
    reset = client.complete_password_reset(started.reset_token, "a reset passphrase 1")
    assert reset.email_verified
    client.update_user(user.id, email="ada@new.example.com")
    token = client.start_email_verification(user.id).verification_token
    assert client.verify_email(token).email_verified

    s = client.create_session("ada@new.example.com", "a reset passphrase 1")
    client.revoke_session(s.session.id)
    client.create_session("ada@new.example.com", "a reset passphrase 1")
    assert client.revoke_user_sessions(user.id) == 1
    client.set_password(user.id, "an admin passphrase 2")
    assert client.disable_user(user.id).state == pb.USER_STATE_DISABLED
    with pytest.raises(AuthClientError) as refused:
        client.create_session("ada@new.example.com", "an admin passphrase 2")
    assert refused.value.reason == "USER_DISABLED"
    assert client.enable_user(user.id).state == pb.USER_STATE_ACTIVE
    assert client.create_session("ada@new.example.com", "an admin passphrase 2").session_token


def test_client_error_exposes_code_reason_and_fields(client: AuthClient):
    client.create_user("ada@example.com", PASSWORD, "Ada", "Lovelace")
    with pytest.raises(AuthClientError) as taken:
        client.create_user("ada@example.com", PASSWORD, "Ada", "Lovelace")
    assert taken.value.code == grpc.StatusCode.ALREADY_EXISTS
    assert taken.value.reason == "EMAIL_TAKEN"
    assert taken.value.domain == "authsvc"
    assert str(taken.value).count("EMAIL_TAKEN") == 1

    with pytest.raises(AuthClientError) as bad:
        client.create_user("not an email", "short", "", "Lovelace")
    assert bad.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert {v.field for v in bad.value.violations} >= {"email", "password", "first_name"}

    with pytest.raises(AuthClientError) as wrong:
        client.create_session("ada@example.com", "wrong password!")
    assert wrong.value.reason == "INVALID_CREDENTIALS"
    assert "wrong password!" not in str(wrong.value)


def test_str_of_an_invalid_argument_says_the_code_once(client: AuthClient):
    with pytest.raises(AuthClientError) as bad:
        client.create_user("not an email", PASSWORD, "Ada", "Lovelace")
    assert str(bad.value).startswith("INVALID_ARGUMENT: invalid email")
    assert str(bad.value).count("INVALID_ARGUMENT") == 1


# TLS: the credentials= the client's README shows, against a server started with
# AUTHSVC_TLS_CERT/KEY (and AUTHSVC_TLS_CLIENT_CA for mutual TLS). SQLite only: transport
# security does not depend on the database.


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_client(port: int, ca: Path, identity: Issued | None = None) -> AuthClient:
    """An AuthClient configured as the client's README shows, trusting ``ca``."""
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca.read_bytes(),
        private_key=identity.key.read_bytes() if identity else None,
        certificate_chain=identity.cert.read_bytes() if identity else None,
    )
    override = (("grpc.ssl_target_name_override", SERVER_NAME),)
    return AuthClient(f"127.0.0.1:{port}", timeout=10, credentials=credentials, options=override)


StartServer = Callable[..., tuple[Any, Any]]


@pytest.mark.parametrize("migrated_url", ["sqlite"], indirect=True)
def test_tls_client_trusting_the_servers_ca_is_served(start_server: StartServer, pki: Pki):
    server, _ = start_server(**pki.tls_settings(mutual=False))
    with tls_client(server.port, pki.ca.cert) as auth:
        assert auth.create_user("ada@example.com", PASSWORD, "Ada", "Lovelace").id


@pytest.mark.parametrize("migrated_url", ["sqlite"], indirect=True)
def test_mutual_tls_client_needs_its_certificate(start_server: StartServer, pki: Pki):
    server, _ = start_server(**pki.tls_settings())
    port = server.port
    with tls_client(port, pki.ca.cert, pki.ca.client("orders")) as auth:
        assert auth.create_user("ada@example.com", PASSWORD, "Ada", "Lovelace").id
    with tls_client(port, pki.ca.cert) as anonymous, pytest.raises(AuthClientError) as caught:
        anonymous.get_user("00000000-0000-0000-0000-000000000000")
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE


def test_client_imports_users_over_several_calls_with_paths_of_the_whole_list(client):
    from tests.flows.test_import import OLD_PASSWORD, django_hash

    old = django_hash(OLD_PASSWORD)
    users = [
        pb.ImportedUser(
            email=f"user{i}@example.com", first_name="Old", last_name="User", password_hash=old
        )
        for i in range(600)  # more than one 64 KiB message
    ]
    users[450].email = "not an email"
    results = client.import_users(users)
    assert len(results) == 600
    assert sum(1 for r in results if r.user_id) == 599
    assert [v.field for v in results[450].error.field_violations] == ["users[450].email"]
    again = client.import_users(users[:3])
    assert [pb.ErrorReason.Name(r.error.reason) for r in again] == ["ERROR_REASON_EMAIL_TAKEN"] * 3
    assert client.create_session("user7@example.com", OLD_PASSWORD).user.email == (
        "user7@example.com"
    )


def test_client_signs_in_with_totp_and_with_a_passkey(make_settings, clock):
    import pyotp
    from cryptography.fernet import Fernet

    from authsvc.rules.secrets_at_rest import SecretKeys
    from tests.webauthn_authenticator import SoftAuthenticator

    settings = make_settings(
        secret_key=SecretKeys.parse(Fernet.generate_key().decode()),
        webauthn_rp_id="example.com",
    )
    server, port = create_server(settings, clock=clock)
    try:
        with AuthClient(f"127.0.0.1:{port}", timeout=10) as client:
            client.create_user("ada@example.com", PASSWORD, "Ada", "Lovelace")
            token = client.create_session("ada@example.com", PASSWORD).session_token
            enrolment = client.start_totp_enrollment(token)
            totp = pyotp.TOTP(enrolment.secret)
            codes = client.confirm_totp_enrollment(token, totp.at(clock.now))
            clock.advance(timedelta(seconds=30))
            challenge = client.create_session("ada@example.com", PASSWORD).challenge
            done = client.complete_sign_in(challenge.challenge_token, totp_code=totp.at(clock.now))
            assert done.session.assurance_level == pb.ASSURANCE_LEVEL_AAL2
            client.reauthenticate_session(done.session_token, password=PASSWORD)

            device = SoftAuthenticator("https://example.com")
            started = client.start_passkey_registration(done.session_token)
            passkey = client.finish_passkey_registration(
                started.challenge_token, device.create(started.options_json), "phone"
            )
            assert [p.id for p in client.list_passkeys(done.session_token)] == [passkey.id]
            started = client.start_passkey_sign_in()
            signed_in = client.finish_passkey_sign_in(
                started.challenge_token, device.get(started.options_json)
            )
            assert signed_in.user.email == "ada@example.com"
            client.remove_passkey(done.session_token, passkey.id)
            client.remove_totp(done.session_token, codes[0])
            assert client.create_session("ada@example.com", PASSWORD).session_token
    finally:
        server.stop(0)


def test_client_completes_a_password_sign_in_with_a_passkey(make_settings, clock):
    """Password, then a passkey as the second factor: ``complete_sign_in`` with
    ``passkey_assertion`` (and a passkey step-up the same way)."""
    from tests.webauthn_authenticator import SoftAuthenticator

    # Passkey sign-in challenges are sealed with the secret key.
    keys = SecretKeys.parse(Fernet.generate_key().decode())
    settings = make_settings(webauthn_rp_id="example.com", secret_key=keys)
    server, port = create_server(settings, clock=clock)
    try:
        with AuthClient(f"127.0.0.1:{port}", timeout=10) as client:
            client.create_user("ada@example.com", PASSWORD, "Ada", "Lovelace")
            token = client.create_session("ada@example.com", PASSWORD).session_token
            device = SoftAuthenticator("https://example.com")
            started = client.start_passkey_registration(token)
            client.finish_passkey_registration(
                started.challenge_token, device.create(started.options_json), "laptop"
            )
            challenge = client.create_session("ada@example.com", PASSWORD).challenge
            assert list(challenge.factors) == [pb.SECOND_FACTOR_PASSKEY]
            ceremony = client.start_passkey_sign_in("ada@example.com")
            assertion = pb.PasskeyAssertion(
                challenge_token=ceremony.challenge_token,
                assertion_json=device.get(ceremony.options_json),
            )
            done = client.complete_sign_in(challenge.challenge_token, passkey_assertion=assertion)
            methods = [m.method for m in done.session.authentication_methods]
            assert methods == [
                pb.AUTHENTICATION_METHOD_TYPE_PASSWORD,
                pb.AUTHENTICATION_METHOD_TYPE_PASSKEY,
            ]

            ceremony = client.start_passkey_sign_in("ada@example.com")
            again = pb.PasskeyAssertion(
                challenge_token=ceremony.challenge_token,
                assertion_json=device.get(ceremony.options_json),
            )
            session = client.reauthenticate_session(done.session_token, passkey_assertion=again)
            assert session.id == done.session.id
    finally:
        server.stop(0)


def test_client_manages_webhooks(start_server: StartServer) -> None:
    keys = SecretKeys.parse(Fernet.generate_key().decode())
    server, _ = start_server(secret_key=keys, webhook_allow_private=True)
    with AuthClient(f"127.0.0.1:{server.port}", timeout=10) as client:
        created = client.create_webhook("http://127.0.0.1:9/hooks", ["user.created"])
        assert created.secret.startswith("whsec_")
        assert [w.id for w in client.list_webhooks()] == [created.webhook.id]
        page = client.list_webhook_deliveries(created.webhook.id, page_size=10)
        assert all(d.event_type == "webhook.created" for d in page.deliveries)
        client.delete_webhook(created.webhook.id)
        assert client.list_webhooks() == []
        with pytest.raises(AuthClientError) as caught:
            client.delete_webhook(created.webhook.id)
        assert caught.value.reason == "WEBHOOK_NOT_FOUND"
