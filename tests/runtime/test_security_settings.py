"""Settings for TLS, the caller policy and load shedding: bad values are one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from authsvc.runtime import cli
from authsvc.runtime.settings import ConfigError, Settings, load_settings
from tests.certs import Pki, make_pki
from tests.conftest import CHEAP_HASH


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def callers_file(tmp_path: Path) -> str:
    path = tmp_path / "callers.toml"
    path.write_text('[callers]\n"admin-tool" = ["*"]\n')
    return str(path)


@pytest.fixture(autouse=True)
def cheap_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings check the hash method by hashing once; keep that cheap here."""
    monkeypatch.setenv("AUTHSVC_PASSWORD_HASH", CHEAP_HASH)


def settings_error(**environ: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"AUTHSVC_PASSWORD_HASH": CHEAP_HASH, **environ})
    return str(caught.value)


def test_tls_settings_are_read_from_the_environment(pki: Pki, callers_file: str) -> None:
    settings = load_settings(
        environ={
            "AUTHSVC_PASSWORD_HASH": CHEAP_HASH,
            "AUTHSVC_TLS_CERT": str(pki.server.cert),
            "AUTHSVC_TLS_KEY": str(pki.server.key),
            "AUTHSVC_TLS_CLIENT_CA": str(pki.ca.cert),
            "AUTHSVC_CALLERS": callers_file,
            "AUTHSVC_MAX_CONCURRENT_RPCS": "7",
        }
    )
    assert (settings.tls_cert, settings.tls_client_ca) == (str(pki.server.cert), str(pki.ca.cert))
    assert settings.callers is not None
    assert settings.callers.allows(["admin-tool"], "/authsvc.v1.AuthService/ListUsers")
    assert settings.max_concurrent_rpcs == 7


def test_certificate_without_key_is_an_error(pki: Pki) -> None:
    message = settings_error(AUTHSVC_TLS_CERT=str(pki.server.cert))
    assert message == "AUTHSVC_TLS_CERT and AUTHSVC_TLS_KEY: set both or neither"


def test_key_without_certificate_is_an_error(pki: Pki) -> None:
    message = settings_error(AUTHSVC_TLS_KEY=str(pki.server.key))
    assert message == "AUTHSVC_TLS_CERT and AUTHSVC_TLS_KEY: set both or neither"


def test_missing_certificate_file_is_an_error(pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    message = settings_error(AUTHSVC_TLS_CERT=str(missing), AUTHSVC_TLS_KEY=str(pki.server.key))
    assert message == (
        f"AUTHSVC_TLS_CERT: '{missing}' cannot be read (No such file or directory): "
        "a readable PEM file is needed"
    )


def test_unreadable_client_ca_is_an_error(pki: Pki, tmp_path: Path) -> None:
    message = settings_error(
        AUTHSVC_TLS_CERT=str(pki.server.cert),
        AUTHSVC_TLS_KEY=str(pki.server.key),
        AUTHSVC_TLS_CLIENT_CA=str(tmp_path),  # a directory cannot be read as a file
    )
    assert message.startswith(f"AUTHSVC_TLS_CLIENT_CA: '{tmp_path}' cannot be read")


def test_a_file_that_is_not_pem_is_an_error(pki: Pki, tmp_path: Path) -> None:
    junk = tmp_path / "key.pem"
    junk.write_text("not a key")
    message = settings_error(AUTHSVC_TLS_CERT=str(pki.server.cert), AUTHSVC_TLS_KEY=str(junk))
    assert message == f"AUTHSVC_TLS_KEY: '{junk}' is not a PEM file"


def test_client_ca_needs_a_server_certificate(pki: Pki) -> None:
    message = settings_error(AUTHSVC_TLS_CLIENT_CA=str(pki.ca.cert))
    assert message.startswith("AUTHSVC_TLS_CLIENT_CA: mutual TLS needs AUTHSVC_TLS_CERT")


@pytest.mark.parametrize("transport", ["plaintext", "tls"])
def test_caller_policy_works_without_mutual_tls_for_api_keys(
    pki: Pki, callers_file: str, transport: str
) -> None:
    tls = {"AUTHSVC_TLS_CERT": str(pki.server.cert), "AUTHSVC_TLS_KEY": str(pki.server.key)}
    settings = load_settings(
        environ={
            "AUTHSVC_PASSWORD_HASH": CHEAP_HASH,
            "AUTHSVC_CALLERS": callers_file,
            **(tls if transport == "tls" else {}),
        }
    )
    assert settings.callers is not None
    assert not settings.tls_client_ca


def load(**environ: str) -> Settings:
    return load_settings(environ={"AUTHSVC_PASSWORD_HASH": CHEAP_HASH, **environ})


def test_protected_mode_is_on_unless_turned_off() -> None:
    assert load().privileged_from_anywhere is False
    for text, expected in [("true", True), ("1", True), ("FALSE", False), ("no", False)]:
        assert load(AUTHSVC_PRIVILEGED_FROM_ANYWHERE=text).privileged_from_anywhere is expected
    message = settings_error(AUTHSVC_PRIVILEGED_FROM_ANYWHERE="sure")
    assert message == "AUTHSVC_PRIVILEGED_FROM_ANYWHERE: 'sure' is not true or false"


def test_opting_out_of_protected_mode_contradicts_a_caller_policy(callers_file: str) -> None:
    message = settings_error(AUTHSVC_CALLERS=callers_file, AUTHSVC_PRIVILEGED_FROM_ANYWHERE="true")
    assert message.startswith("AUTHSVC_PRIVILEGED_FROM_ANYWHERE: has no effect with a caller")


def test_api_key_cache_ttl_is_a_duration_or_zero() -> None:
    assert load().api_key_cache_ttl.total_seconds() == 5
    assert load(AUTHSVC_API_KEY_CACHE_TTL="0").api_key_cache_ttl.total_seconds() == 0
    message = settings_error(AUTHSVC_API_KEY_CACHE_TTL="soon")
    assert message.startswith("AUTHSVC_API_KEY_CACHE_TTL: 'soon' is not a duration")


def test_bad_caller_policy_names_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "callers.toml"
    path.write_text('[callers]\n"web" = ["CreatUser"]\n')
    message = settings_error(AUTHSVC_CALLERS=str(path))
    reason = "callers.web: 'CreatUser' is not a method authsvc serves"
    assert message == f"AUTHSVC_CALLERS: {path}: {reason}"


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_max_concurrent_rpcs_must_be_a_positive_number(value: str) -> None:
    assert settings_error(AUTHSVC_MAX_CONCURRENT_RPCS=value).startswith(
        "AUTHSVC_MAX_CONCURRENT_RPCS: "
    )


def test_serve_reports_a_bad_tls_setting_in_one_line_and_exits_2(
    pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["serve", "--tls-cert", str(pki.server.cert)]) == 2
    err = capsys.readouterr().err
    assert err == "authsvc: AUTHSVC_TLS_CERT and AUTHSVC_TLS_KEY: set both or neither\n"


def test_health_reports_a_missing_ca_file_in_one_line_and_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "ca.pem"
    assert cli.main(["health", "--tls-ca", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"authsvc: --tls-ca (AUTHSVC_TLS_CA): '{missing}' cannot be read "
        "(No such file or directory): a readable PEM file is needed\n"
    )
