"""The mail settings: every missing or malformed one is a one-line start-up error."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from authsvc.rules.values import Rejected, locale
from authsvc.runtime import cli
from authsvc.runtime.settings import ConfigError, load_settings
from authsvc.runtime.smtp import SmtpUrl

KEY = "2N3xV8Jm3lXq3lV5jV9mS6Qe8oJcTqg0mVv1e4aF3cM="
SMTP = {
    "AUTHSVC_MAIL_DELIVERY": "smtp",
    "AUTHSVC_SMTP_URL": "smtp://mailer:pa%40ss-word-7@mail.example.com",
    "AUTHSVC_MAIL_FROM": "Example <no-reply@example.com>",
    "AUTHSVC_RESET_URL": "https://app.example.com/reset?token={token}",
    "AUTHSVC_VERIFY_URL": "https://app.example.com/verify?token={token}",
    "AUTHSVC_SECRET_KEY": KEY,
}


def test_smtp_mode_loads_and_the_password_never_shows() -> None:
    settings = load_settings(SMTP)
    assert settings.sends_mail
    url = settings.smtp_url
    assert url is not None
    assert (url.host, url.port, url.username, url.password) == (
        "mail.example.com",
        587,
        "mailer",
        "pa@ss-word-7",
    )
    assert url.starttls and not url.implicit_tls
    for shown in (repr(settings), str(url), repr(url)):
        assert "pa@ss-word-7" not in shown and "pa%40ss" not in shown


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("AUTHSVC_SMTP_URL", "", "AUTHSVC_SMTP_URL: required"),
        ("AUTHSVC_MAIL_FROM", "", "AUTHSVC_MAIL_FROM: required"),
        ("AUTHSVC_RESET_URL", "", "AUTHSVC_RESET_URL: required"),
        ("AUTHSVC_VERIFY_URL", "", "AUTHSVC_VERIFY_URL: required"),
        ("AUTHSVC_SECRET_KEY", "", "AUTHSVC_SECRET_KEY: required"),
        ("AUTHSVC_SMTP_URL", "http://mail.example.com", "smtp:// or smtps://"),
        ("AUTHSVC_SMTP_URL", "smtp://u:secret-9@", "names no host"),
        ("AUTHSVC_SMTP_URL", "smtp://u:secret-9@h:99999", "not a URL"),
        ("AUTHSVC_SMTP_URL", "smtp://h?starttls=maybe", "starttls must be"),
        ("AUTHSVC_MAIL_FROM", "not an address", "AUTHSVC_MAIL_FROM"),
        ("AUTHSVC_RESET_URL", "https://app.example.com/reset", "{token}"),
        ("AUTHSVC_VERIFY_URL", "ftp://x/{token}", "https://"),
        ("AUTHSVC_MAIL_DELIVERY", "sendmail", "caller, smtp"),
        ("AUTHSVC_MAIL_NOTICES", "password_changed,birthday", "birthday"),
        ("AUTHSVC_MAIL_TEMPLATES", "/nonexistent/templates", "not a directory"),
    ],
)
def test_a_missing_or_malformed_mail_setting_is_named(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"^" + name) as caught:
        load_settings({**SMTP, name: value})
    assert message in str(caught.value)
    assert "secret-9" not in str(caught.value) and "\n" not in str(caught.value)


def test_smtp_only_settings_need_smtp_mode() -> None:
    with pytest.raises(ConfigError, match="needs AUTHSVC_MAIL_DELIVERY=smtp"):
        load_settings({"AUTHSVC_VERIFY_EMAIL_ON_SIGN_UP": "true"})


def test_smtps_and_an_explicit_no_starttls_parse() -> None:
    assert SmtpUrl.parse("smtps://h").port == 465
    assert SmtpUrl.parse("smtps://h").implicit_tls
    assert not SmtpUrl.parse("smtp://h:25?starttls=false").starttls


def test_serve_exits_2_with_one_line_on_a_bad_mail_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in {**SMTP, "AUTHSVC_SMTP_URL": ""}.items():
        monkeypatch.setenv(name, value)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert cli.main(["serve", "--database-url", f"sqlite:///{tmp_path / 'x.db'}"]) == 2
    assert err.getvalue().count("\n") == 1 and "AUTHSVC_SMTP_URL" in err.getvalue()


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("", ""),
        ("en", "en"),
        ("de-ch", "de-CH"),
        ("zh_hant_tw", "zh-Hant-TW"),
        ("es-419", "es-419"),
    ],
)
def test_locales_are_canonical_bcp47(given: str, canonical: str) -> None:
    assert locale(given) == canonical


@pytest.mark.parametrize("bad", ["english", "d", "de-", "de--CH", "x" * 40, "de CH", "dé"])
def test_malformed_locales_are_rejected(bad: str) -> None:
    with pytest.raises(Rejected):
        locale(bad)
