"""Settings parsing: durations, database URLs, defaults."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from authsvc.runtime.settings import (
    ConfigError,
    Settings,
    load_settings,
    normalize_database_url,
    parse_duration,
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
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7", "1w", "-1h", "1.5h", "h"])
def test_bad_durations(text):
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
def test_unsupported_urls(url):
    with pytest.raises(ValueError):
        normalize_database_url(url)


def test_defaults():
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


def test_environment_and_flags():
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
