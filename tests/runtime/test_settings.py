"""Settings parsing: durations, database URLs, defaults."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from authsvc.edge.access_log import AccessLogMode
from authsvc.runtime import cli
from authsvc.runtime.codegen import ROOT, with_events_table, with_settings_table
from authsvc.runtime.settings import (
    ConfigError,
    Settings,
    flags,
    load_settings,
    normalize_database_url,
    parse_duration,
    specs,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("1h", timedelta(hours=1)),
        ("7d", timedelta(days=7)),
        ("250ms", timedelta(milliseconds=250)),
    ],
)
def test_durations_take_ms_s_m_h_and_d_units(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7", "1w", "-1h", "1.5h", "h"])
def test_durations_other_than_a_non_negative_integer_and_a_known_unit_are_refused(text):
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg2://u@h/db"),
        ("postgres://u:p@h:5/db", "postgresql+psycopg2://u:p@h:5/db"),
        ("postgresql+psycopg2://u@h/db", "postgresql+psycopg2://u@h/db"),
        ("sqlite:///authsvc.db", "sqlite:///authsvc.db"),
    ],
)
def test_postgresql_urls_select_psycopg2(url, expected):
    assert normalize_database_url(url) == expected


@pytest.mark.parametrize("url", ["mysql://u@h/db", "postgresql+psycopg://u@h/db", "nonsense"])
def test_database_urls_other_than_sqlite_and_psycopg2_are_refused(url):
    with pytest.raises(ValueError):
        normalize_database_url(url)


def test_with_an_empty_environment_settings_take_their_defaults():
    s = load_settings(environ={}, overrides={"password_hash": "pbkdf2:sha256:1000"})
    assert s.address == "127.0.0.1:50051"
    assert s.database_url == "sqlite:///authsvc.db"
    assert (s.session_ttl, s.refresh_ttl, s.session_max_age) == (
        timedelta(hours=1),
        timedelta(days=7),
        timedelta(days=30),
    )
    assert s.max_sessions_per_user == 0
    assert Settings.password_hash == "scrypt:32768:8:3"  # the default, built lazily


def test_settings_come_from_environment_variables_and_from_flags():
    s = load_settings(
        environ={
            "AUTHSVC_SESSION_TTL": "15m",
            "AUTHSVC_DATABASE_URL": "postgresql://p@h/d",
            "AUTHSVC_PASSWORD_HASH": "pbkdf2:sha256:1000",
        },
        overrides={"address": "0.0.0.0:9000"},
    )
    assert (s.session_ttl, s.database_url, s.address) == (
        timedelta(minutes=15),
        "postgresql+psycopg2://p@h/d",
        "0.0.0.0:9000",
    )


def test_bad_value_names_the_variable():
    with pytest.raises(ConfigError, match="AUTHSVC_REFRESH_TTL"):
        load_settings(environ={"AUTHSVC_REFRESH_TTL": "forever"})


def test_hash_concurrency_is_the_whole_replicas_whatever_its_workers():
    pg = "postgresql+psycopg2://p@h/d"
    cheap = "pbkdf2:sha256:1000"
    # Not divided among the workers: they share the replica's slots.
    assert (
        Settings(database_url=pg, password_hash=cheap, hash_concurrency=4, workers=2).hash_slots
        == 4
    )
    assert Settings(database_url=pg, password_hash=cheap, workers=2).hash_slots == os.cpu_count()
    assert Settings(password_hash=cheap, hash_concurrency=3).hash_slots == 3  # SQLite: 1 worker
    with pytest.raises(ConfigError, match="AUTHSVC_HASH_CONCURRENCY"):
        Settings(password_hash=cheap, hash_concurrency=-1)


def test_the_readme_settings_table_is_the_declarations():
    readme = (ROOT / "README.md").read_text()
    assert with_settings_table(readme) == readme, "run `make gen` and commit README.md"
    assert with_events_table(readme) == readme, "run `make gen` and commit README.md"
    for spec in specs().values():
        assert f"| `{spec.env}` |" in readme


def _options(parser):
    """Every option string of ``parser`` and of its nested subcommands."""
    found = set()
    for action in parser._actions:
        found |= set(action.option_strings)
        for sub in (getattr(action, "choices", None) or {}).values():
            if hasattr(sub, "_actions"):
                found |= _options(sub)
    return found


def test_every_flag_comes_from_a_declared_setting():
    parser = cli._parser()
    commands = parser._subparsers._group_actions[0].choices
    own = {
        "health": {"--timeout"},
        "api-key": {"--id"},
        "webhook": {"--type", "--limit"},
        "mail": {"--status", "--limit", "--failed"},
    }
    for command, sub in commands.items():
        declared = {flag for _, flag, _ in flags(command)}
        assert _options(sub) == declared | {"-h", "--help"} | own.get(command, set()), command
    assert {flag for _, flag, _ in flags("serve")} >= {"--address", "--database-url", "--workers"}


def test_the_old_thread_setting_name_still_works():
    assert load_settings({"AUTHSVC_MAX_WORKERS": "3"}).rpc_threads == 3
    assert load_settings({"AUTHSVC_RPC_THREADS": "4", "AUTHSVC_MAX_WORKERS": "3"}).rpc_threads == 4


def test_access_log_modes_parse_in_any_case():
    settings = load_settings({"AUTHSVC_ACCESS_LOG": "Full"})
    assert settings.access_log is AccessLogMode.FULL
    assert Settings().access_log is AccessLogMode.SUMMARY
    with pytest.raises(ConfigError, match="AUTHSVC_ACCESS_LOG: 'loud' is not one of summary"):
        load_settings({"AUTHSVC_ACCESS_LOG": "loud"})


def test_multi_factor_settings_parse_a_key_list_that_repr_hides_and_name_a_bad_key() -> None:
    from cryptography.fernet import Fernet

    new, old = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    s = load_settings(
        {
            "AUTHSVC_SECRET_KEY": f"{new}, {old}",
            "AUTHSVC_REQUIRE_MFA": "true",
            "AUTHSVC_REAUTH_MAX_AGE": "5m",
            "AUTHSVC_WEBAUTHN_RP_ID": "example.com",
            "AUTHSVC_WEBAUTHN_ORIGINS": "https://example.com, https://app.example.com",
        }
    )
    assert s.secret_key.configured and s.require_mfa
    assert s.reauth_max_age == timedelta(minutes=5)
    assert s.webauthn_origins == ("https://example.com", "https://app.example.com")
    assert new not in repr(s) and old not in repr(s)
    defaults = load_settings({})
    assert not defaults.secret_key.configured and not defaults.require_mfa
    assert defaults.challenge_ttl == timedelta(minutes=5)
    with pytest.raises(ConfigError, match="AUTHSVC_SECRET_KEY: key 2"):
        load_settings({"AUTHSVC_SECRET_KEY": f"{new},nope"})
