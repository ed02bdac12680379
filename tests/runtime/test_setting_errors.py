"""Every setting error is one line on stderr and exit status 2, naming the setting, the bad
value and what is allowed; each runs ``authsvc`` as an operator would (a subprocess).

Also: unknown ``AUTHSVC_*`` variables, a database that cannot be reached, ``--version``
without the heavy imports, and a TLS mismatch in ``authsvc health``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from authsvc.runtime.assembly import AuthServer, create_server
from authsvc.runtime.settings import (
    NOT_SETTINGS_PREFIX,
    ConfigError,
    Settings,
    load_settings,
    parse_int,
    parse_list,
    specs,
    unknown_variables,
)
from tests.certs import SERVER_NAME, Pki, make_pki
from tests.conftest import FakeClock


def authsvc(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m authsvc ARGS`` with only ``env`` among the AUTHSVC_* variables."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSVC_")}
    return subprocess.run(
        [sys.executable, "-m", "authsvc", *args],
        env={**environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


# (command line, environment, what the one line must contain: the setting, the value and
# what is allowed). migrate stands for every command: settings are read before it runs.
BAD_VALUES: list[tuple[list[str], dict[str, str], list[str]]] = [
    (["serve", "--address", "127.0.0.1:99999"], {}, ["--address", "127.0.0.1:99999", "0 to 65535"]),
    (["serve", "--address", "localhost"], {}, ["--address", "'localhost'", "HOST:PORT"]),
    (["migrate"], {"AUTHSVC_ADDRESS": "h:port"}, ["AUTHSVC_ADDRESS", "'h:port'", "HOST:PORT"]),
    (["migrate"], {"AUTHSVC_LOG_LEVEL": "LOUD"}, ["AUTHSVC_LOG_LEVEL", "'LOUD'", "DEBUG, INFO"]),
    (["serve", "--workers", "abc"], {}, ["--workers", "'abc'", "whole number"]),
    (["serve", "--workers", "-1"], {}, ["--workers", "'-1'", "0 (one per CPU) or more"]),
    (["migrate"], {"AUTHSVC_SESSION_TTL": "5x"}, ["AUTHSVC_SESSION_TTL", "'5x'", "90s, 15m"]),
    (["migrate"], {"AUTHSVC_SESSION_TTL": "0s"}, ["AUTHSVC_SESSION_TTL", "'0s'", "longer than 0"]),
    (["migrate"], {"AUTHSVC_LOG_FORMAT": "xml"}, ["AUTHSVC_LOG_FORMAT", "'xml'", "text, json"]),
    (["migrate"], {"AUTHSVC_ACCESS_LOG": "all"}, ["AUTHSVC_ACCESS_LOG", "'all'", "summary"]),
    (["migrate"], {"AUTHSVC_REQUIRE_MFA": "maybe"}, ["AUTHSVC_REQUIRE_MFA", "'maybe'", "true or"]),
    (
        ["migrate", "--database-url", "mysql://u:secret@h/db"],
        {},
        ["--database-url", "mysql://u:***@h/db", "postgresql:// and sqlite://"],
    ),
    (
        ["migrate"],
        {"AUTHSVC_TLS_CERT": "/no/such/cert.pem"},
        ["AUTHSVC_TLS_CERT", "/no/such/cert.pem", "PEM file"],
    ),
    (
        ["migrate"],
        {"AUTHSVC_PASSWORD_HASH": "md5"},
        ["AUTHSVC_PASSWORD_HASH", "'md5'", "scrypt:32768:8:3"],
    ),
    (["migrate"], {"AUTHSVC_IMPORT_BATCH_SIZE": "0"}, ["AUTHSVC_IMPORT_BATCH_SIZE", "'0'", "1 to"]),
    (["health", "--timeout", "soon"], {}, ["--timeout", "'soon'", "seconds above 0"]),
    (["migrate"], {"AUTHSVC_SESSIN_TTL": "1h"}, ["AUTHSVC_SESSIN_TTL", "AUTHSVC_SESSION_TTL?"]),
    (["serve", "--wokers", "2"], {}, ["--wokers"]),
]


@pytest.mark.parametrize(("argv", "env", "expected"), BAD_VALUES)
def test_each_bad_value_is_one_line_and_exit_2(
    argv: list[str], env: dict[str, str], expected: list[str]
) -> None:
    result = authsvc(*argv, **env)
    line = one_line(result.stderr)
    assert result.returncode == 2, result.stderr
    assert line.startswith("authsvc"), line
    for part in expected:
        assert part in line, line
    assert "secret" not in line  # a database password is never echoed


def test_every_setting_refuses_garbage_naming_itself() -> None:
    """Each declared setting that parses its text (not a plain string) refuses garbage with
    a ConfigError naming it and the value: the same message the subprocesses print."""
    for spec in specs().values():
        if spec.parse in (str, str.strip, parse_list):  # free text, checked elsewhere if at all
            continue
        with pytest.raises(ConfigError) as caught:
            load_settings({spec.env: "%garbage%"})
        message = str(caught.value)
        assert message.startswith(spec.env), message
        assert "\n" not in message
        # A key is never echoed back, even a bad one; nor a URL that may carry a password.
        if spec.env not in ("AUTHSVC_SECRET_KEY", "AUTHSVC_SMTP_URL"):
            assert "%garbage%" in message, message


def test_an_unknown_variable_names_the_closest_setting(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    refused = authsvc("migrate", AUTHSVC_DATABASE_URL=url, AUTHSVC_SESSIN_TTL="2h")
    assert refused.returncode == 2
    assert one_line(refused.stderr) == (
        "authsvc: AUTHSVC_SESSIN_TTL is not an authsvc setting (did you mean "
        "AUTHSVC_SESSION_TTL?); set AUTHSVC_ALLOW_UNKNOWN_SETTINGS=true to start anyway"
    )
    allowed = authsvc(
        "migrate",
        AUTHSVC_DATABASE_URL=url,
        AUTHSVC_SESSIN_TTL="2h",
        AUTHSVC_ALLOW_UNKNOWN_SETTINGS="true",
    )
    assert allowed.returncode == 0, allowed.stderr
    assert "AUTHSVC_SESSIN_TTL is not an authsvc setting" in allowed.stderr  # a warning


def test_variables_of_tests_and_tools_are_not_settings(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    result = authsvc(
        "migrate",
        AUTHSVC_DATABASE_URL=url,
        **{f"{NOT_SETTINGS_PREFIX}POSTGRES_URL": "postgresql://x", "AUTHSVC_API_KEY": "k"},
    )
    assert result.returncode == 0, result.stderr
    assert "not an authsvc setting" not in result.stderr


def test_an_unreachable_database_is_one_line_with_host_port_database_and_reason() -> None:
    result = authsvc("migrate", "--database-url", "postgresql://ops:pw@127.0.0.1:1/accounts")
    assert result.returncode == 1
    assert one_line(result.stderr) == (
        "authsvc: cannot connect to PostgreSQL at 127.0.0.1:1, database accounts (user ops): "
        "Connection refused"
    )


def test_a_missing_sqlite_directory_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "authsvc.db"
    result = authsvc("migrate", "--database-url", f"sqlite:///{path}")
    assert result.returncode == 1
    assert one_line(result.stderr) == (
        f"authsvc: cannot open SQLite database {path}: unable to open database file"
    )


def test_version_answers_without_importing_grpc_or_sqlalchemy() -> None:
    """``authsvc --version`` imports no heavy module (they take seconds), so it answers at
    once; checked by what it imported, not by a clock."""
    probe = (
        "import sys, contextlib, io, json\n"
        "from authsvc.runtime.command import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    status = main(['--version'])\n"
        "heavy = ('grpc', 'sqlalchemy', 'google.protobuf', 'authsvc_client',\n"
        "         'authsvc.runtime.cli')\n"
        "found = sorted(m for m in sys.modules if m in heavy)\n"
        "print(json.dumps([status, out.getvalue(), found]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    status, printed, imported = json.loads(result.stdout)
    assert (status, imported) == (0, [])
    from importlib import metadata

    assert printed == f"authsvc {metadata.version('authsvc')}\n"
    assert authsvc("--version").stdout == printed  # the command itself


def test_int_parser_names_the_text() -> None:
    assert parse_int(" 42 ") == 42
    with pytest.raises(ValueError, match="'4x' is not a whole number"):
        parse_int("4x")


# --- A TLS mismatch in `authsvc health` ---


@pytest.fixture
def tls_server(
    make_settings: Callable[..., Settings], clock: FakeClock, tmp_path: Path
) -> Iterator[tuple[int, Pki]]:
    pki = make_pki(tmp_path)
    server: AuthServer
    server, port = create_server(make_settings(**pki.tls_settings(mutual=False)), clock=clock)
    yield port, pki
    server.stop(0)


@pytest.mark.parametrize("migrated_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], "expects TLS, but this check spoke plaintext"),
        (["--tls-ca", "{other_ca}"], "not signed by the CA in AUTHSVC_TLS_CA"),
    ],
)
def test_a_tls_mismatch_in_health_is_one_line(
    tls_server: tuple[int, Pki], flags: list[str], expected: str
) -> None:
    port, pki = tls_server
    values: dict[str, Any] = {"other_ca": pki.other_ca.cert}
    args = [flag.format(**values) for flag in flags]
    if args:
        args += ["--tls-server-name", SERVER_NAME]
    result = authsvc("health", "--address", f"127.0.0.1:{port}", *args)
    assert result.returncode == 1
    line = one_line(result.stderr)  # no "Handshake failed" line of gRPC's own
    assert line.startswith("authsvc: health check failed: ") and expected in line, line


def test_the_shipped_deployment_files_name_only_settings() -> None:
    """The image and the manifests would not start if they set a variable that is no
    setting (start-up refuses unknown ``AUTHSVC_*`` variables)."""
    root = Path(__file__).resolve().parents[2]
    files = [root / "Dockerfile", *sorted((root / "deploy").rglob("*.yaml"))]
    known = {name for spec in specs().values() for name in (spec.env, *spec.aliases)}
    for path in files:
        for name in set(re.findall(r"AUTHSVC_[A-Z0-9_]+", path.read_text())):
            problems = [] if name in known else unknown_variables({name: "x"})
            assert problems == [], f"{path.name}: {problems}"
