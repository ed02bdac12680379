"""Settings of the performance and scale-out area: defaults and validation."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from authsvc.runtime import cli
from authsvc.runtime.settings import DEFAULT_CACHE_SIZE, ConfigError, load_settings
from authsvc.runtime.workers import worker_settings
from tests.conftest import CHEAP_HASH

PG = "postgresql://postgres@127.0.0.1:5432/authsvc"


def settings(**env: str):
    env.setdefault("password_hash", CHEAP_HASH)  # checking the default scrypt is slow
    return load_settings({f"AUTHSVC_{k.upper()}": v for k, v in env.items()})


def test_defaults_follow_the_database():
    sqlite = settings()
    assert (sqlite.worker_count, sqlite.cache_size) == (1, DEFAULT_CACHE_SIZE)
    pg = settings(database_url=PG)
    assert (pg.worker_count, pg.cache_size) == (os.cpu_count(), DEFAULT_CACHE_SIZE)
    assert pg.purge_interval == timedelta(minutes=15)
    assert pg.hash_queue_timeout == timedelta(seconds=10)
    assert (pg.hash_queue_length, pg.hash_slots) == (64, os.cpu_count())


def test_sqlite_with_several_workers_has_no_cache_by_default():
    assert settings(workers="2").cache_size == 0


def test_sqlite_with_several_workers_refuses_a_cache():
    with pytest.raises(ConfigError, match="AUTHSVC_VALIDATION_CACHE"):
        settings(workers="2", validation_cache="100")


def test_explicit_values_win():
    s = settings(
        database_url=PG,
        workers="3",
        validation_cache="0",
        hash_queue_timeout="250ms",
        hash_queue_length="0",
        purge_interval="0",
        purge_batch_size="50",
    )
    assert (s.worker_count, s.cache_size, s.purge_batch_size) == (3, 0, 50)
    assert s.hash_queue_timeout == timedelta(milliseconds=250)
    assert s.hash_queue_length == 0
    assert s.purge_interval == timedelta(0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("workers", "-1"),
        ("workers", "many"),
        ("validation_cache", "-5"),
        ("purge_batch_size", "0"),
        ("purge_interval", "soon"),
        ("hash_queue_timeout", "-1s"),
        ("hash_queue_length", "-1"),
        ("hash_queue_length", "many"),
    ],
)
def test_bad_values_name_the_setting(name, value):
    with pytest.raises(ConfigError, match=f"AUTHSVC_{name.upper()}"):
        settings(**{name: value})


def test_bad_workers_flag_is_a_one_line_error(capsys):
    assert cli.main(["serve", "--workers", "two"]) == 2
    assert "AUTHSVC_WORKERS" in capsys.readouterr().err


def test_each_worker_serves_metrics_on_its_own_port():
    s = settings(database_url=PG, workers="3", metrics_address="0.0.0.0:9090")
    ports = [worker_settings(s, slot).metrics_address for slot in range(3)]
    assert ports == ["0.0.0.0:9090", "0.0.0.0:9091", "0.0.0.0:9092"]
    assert worker_settings(settings(database_url=PG), 1).metrics_address == ""
