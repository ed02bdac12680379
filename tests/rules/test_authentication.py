"""Authentication methods: named in rules, stored by storage as plain text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.dialects import sqlite

from authsvc.rules.authentication import AuthMethod, assurance_level, method_names, proven
from authsvc.rules.sessions import with_method
from authsvc.storage.models import Authentication, Authentications
from authsvc_client.v1 import auth_service_pb2 as pb

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
COLUMN = Authentications()
DIALECT = sqlite.dialect()


def stored_and_loaded(*methods: AuthMethod) -> tuple[Authentication, ...]:
    """The session's methods as they come back from the database: plain names."""
    text = COLUMN.process_bind_param(tuple(proven(m, NOW) for m in methods), DIALECT)
    loaded = COLUMN.process_result_value(text, DIALECT)
    assert loaded is not None
    return loaded


def test_the_column_keeps_the_names_and_times_as_json_text():
    text = COLUMN.process_bind_param((proven(AuthMethod.TOTP, NOW),), DIALECT)
    assert text == f'[["TOTP", {NOW.timestamp()}]]'


@pytest.mark.parametrize(
    ("methods", "level"),
    [
        ((AuthMethod.PASSWORD,), 1),
        ((AuthMethod.RESET,), 1),
        ((AuthMethod.PASSWORD, AuthMethod.TOTP), 2),
        ((AuthMethod.PASSWORD, AuthMethod.RECOVERY_CODE), 2),
        ((AuthMethod.PASSKEY,), 2),
    ],
)
def test_loaded_methods_give_the_assurance_level_of_their_members(methods, level):
    assert assurance_level(stored_and_loaded(*methods)) == level


def test_a_method_proven_again_on_a_loaded_session_replaces_its_entry():
    later = NOW.replace(hour=4)
    loaded = stored_and_loaded(AuthMethod.PASSWORD, AuthMethod.TOTP)
    again = with_method(loaded, AuthMethod.PASSWORD, later)
    assert [(a.method, a.time) for a in again] == [("TOTP", NOW), ("PASSWORD", later)]


def test_every_method_is_a_method_of_the_proto():
    names = method_names(stored_and_loaded(*AuthMethod))
    for name in names:
        assert pb.AuthenticationMethodType.Value(f"AUTHENTICATION_METHOD_TYPE_{name}")
