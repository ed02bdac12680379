"""Sign-up and user management, as a caller observes them."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, timedelta

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy import select

from authsvc.storage.models import AuditRecord, Session, User
from authsvc_client.v1 import auth_service_pb2 as pb
from tests.helpers import PASSWORD, fails, sign_in, sign_up

OK = pb.CreateUserRequest(
    email="ada@example.com", password=PASSWORD, first_name="Ada", last_name="Lovelace"
)


def create(stub, **changes):
    request = pb.CreateUserRequest()
    request.CopyFrom(OK)
    for key, value in changes.items():
        setattr(request, key, value)
    return request


def test_create_user_returns_the_user_without_any_password(stub):
    user = stub.CreateUser(OK).user
    assert uuid.UUID(user.id)
    assert (user.email, user.first_name, user.last_name) == ("ada@example.com", "Ada", "Lovelace")
    assert user.create_time.seconds > 0
    assert user.update_time.seconds > 0
    assert "password" not in str(user)
    assert not [f for f in pb.User.DESCRIPTOR.fields if "pass" in f.name]


def test_database_holds_a_werkzeug_hash_never_the_password(stub, database):
    stub.CreateUser(OK)
    with database.transaction(writes=False) as db:
        stored = db.scalars(select(User)).one()
    assert stored.password_hash.startswith("pbkdf2:sha256:1000$")
    assert PASSWORD not in stored.password_hash


def test_email_is_trimmed_and_lower_cased(stub):
    user = stub.CreateUser(create(stub, email="  Ada.L@Example.COM ")).user
    assert user.email == "ada.l@example.com"


@pytest.mark.parametrize(
    "email",
    [
        "",
        "plain",
        "a@b",
        "a b@example.com",
        "a@example..com",
        "@example.com",
        "a@-x.com",
        "a\x00@example.com",
        "x" * 245 + "@example.com",
    ],
)
def test_malformed_email_is_invalid_argument_naming_email(stub, email):
    failure = fails(stub.CreateUser, create(stub, email=email))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.fields == ["email"]
    assert failure.domain == "authsvc"


def test_email_of_254_characters_is_accepted(stub):
    email = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".com"
    assert len(email) == 254
    assert stub.CreateUser(create(stub, email=email)).user.email == email


@pytest.mark.parametrize("field", ["first_name", "last_name"])
@pytest.mark.parametrize("value", ["", "   ", "x" * 129, "bad\x07name", "nul\x00"])
def test_empty_overlong_or_control_character_names_are_refused_naming_the_field(stub, field, value):
    failure = fails(stub.CreateUser, create(stub, **{field: value}))
    assert (failure.code, failure.fields) == (grpc.StatusCode.INVALID_ARGUMENT, [field])


def test_names_are_trimmed_and_may_be_128_characters(stub):
    user = stub.CreateUser(create(stub, first_name="  Ada ", last_name="L" * 128)).user
    assert (user.first_name, user.last_name) == ("Ada", "L" * 128)


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("", "required"),
        ("short12", "at least 8"),
        ("p" * 257, "at most 256"),
        ("password1", "common"),
        ("Qwertyuiop", "common"),
        ("iloveyou", "common"),
    ],
)
def test_missing_short_long_or_common_passwords_are_refused_saying_why(stub, password, why):
    failure = fails(stub.CreateUser, create(stub, password=password))
    assert (failure.code, failure.fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["password"])
    assert why in failure.message


@pytest.mark.parametrize(
    "password", ["p" * 8 + "é", "ñ" * 256, "пароль-🙂-密码-long", "x\x00y" * 4]
)
def test_any_unicode_password_of_8_to_256_characters_works(stub, password):
    stub.CreateUser(create(stub, password=password))
    assert sign_in(stub, password=password).session_token


def test_every_bad_field_is_named_at_once(stub):
    request = pb.CreateUserRequest(email="nope", password="x", first_name="", last_name="")
    failure = fails(stub.CreateUser, request)
    assert failure.fields == ["email", "password", "first_name", "last_name"]


def test_email_taken_regardless_of_case(stub):
    stub.CreateUser(OK)
    failure = fails(stub.CreateUser, create(stub, email="ADA@example.com "))
    assert (failure.code, failure.reason) == (grpc.StatusCode.ALREADY_EXISTS, "EMAIL_TAKEN")


def test_concurrent_sign_ups_with_one_email_exactly_one_wins(stub, database):
    outcomes: list[object] = []
    barrier = threading.Barrier(8)

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            stub.CreateUser(create(stub, email=f"Race@Example.com{' ' * i}"), timeout=30)
            outcomes.append("ok")
        except grpc.RpcError as exc:
            outcomes.append((exc.code(), fails_reason(exc)))

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 1
    assert (
        sorted(o for o in outcomes if o != "ok")
        == [(grpc.StatusCode.ALREADY_EXISTS, "EMAIL_TAKEN")] * 7
    )
    with database.transaction(writes=False) as db:
        assert len(db.scalars(select(User)).all()) == 1


def fails_reason(exc):
    from tests.helpers import failure

    return failure(exc).reason


def test_get_user_returns_the_user_as_created(stub):
    user = sign_up(stub)
    assert stub.GetUser(pb.GetUserRequest(id=user.id)).user == user


def test_get_unknown_user_is_not_found(stub):
    failure = fails(stub.GetUser, pb.GetUserRequest(id=str(uuid.uuid4())))
    assert (failure.code, failure.reason) == (grpc.StatusCode.NOT_FOUND, "USER_NOT_FOUND")


@pytest.mark.parametrize("bad", ["", "42", "not-a-uuid", "'; DROP TABLE users;--"])
def test_get_user_with_malformed_id_names_the_field(stub, bad):
    failure = fails(stub.GetUser, pb.GetUserRequest(id=bad))
    assert (failure.code, failure.fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["id"])


def test_update_user_changes_only_masked_fields_and_bumps_update_time(stub, clock):
    user = sign_up(stub)
    clock.advance(timedelta(seconds=1))
    change = pb.User(id=user.id, first_name=" Augusta ", last_name="ignored", email="x@y.z")
    updated = stub.UpdateUser(
        pb.UpdateUserRequest(user=change, update_mask=FieldMask(paths=["first_name"]))
    ).user
    assert (updated.first_name, updated.last_name, updated.email) == (
        "Augusta",
        "Lovelace",
        "ada@example.com",
    )
    assert updated.update_time.ToDatetime(UTC) == clock.now  # the injected clock's time
    assert user.update_time.ToDatetime(UTC) == clock.now - timedelta(seconds=1)
    assert updated.create_time == user.create_time
    assert stub.GetUser(pb.GetUserRequest(id=user.id)).user == updated


def test_update_user_without_mask_updates_the_fields_that_are_set(stub):
    user = sign_up(stub)
    updated = stub.UpdateUser(
        pb.UpdateUserRequest(user=pb.User(id=user.id, last_name="King", email="ADA@king.org"))
    ).user
    assert (updated.first_name, updated.last_name, updated.email) == ("Ada", "King", "ada@king.org")
    assert sign_in(stub, email="ada@king.org").session_token


def test_update_to_an_email_taken_in_another_case_is_email_taken(stub):
    sign_up(stub, email="other@example.com")
    user = sign_up(stub)
    request = pb.UpdateUserRequest(
        user=pb.User(id=user.id, email="Other@example.com"), update_mask=FieldMask(paths=["email"])
    )
    assert fails(stub.UpdateUser, request).reason == "EMAIL_TAKEN"


@pytest.mark.parametrize(
    ("user", "paths", "field"),
    [
        (pb.User(first_name="x"), ["first_name"], "user.id"),
        (pb.User(first_name="x"), ["password_hash"], "update_mask"),
        (pb.User(first_name=""), ["first_name"], "user.first_name"),
        (pb.User(email="bad"), ["email"], "user.email"),
        (pb.User(), [], "update_mask"),
    ],
)
def test_update_user_bad_requests_name_the_field(stub, user, paths, field):
    existing = sign_up(stub)
    if field != "user.id":
        user.id = existing.id
    failure = fails(
        stub.UpdateUser, pb.UpdateUserRequest(user=user, update_mask=FieldMask(paths=paths))
    )
    assert (failure.code, failure.fields) == (grpc.StatusCode.INVALID_ARGUMENT, [field])


def test_update_user_audit_entry_names_the_changed_fields_never_a_value(stub, database):
    user = sign_up(stub)
    change = pb.User(
        id=user.id, email="ada@example.org", first_name="Augusta", last_name="Lovelace"
    )
    mask = FieldMask(paths=["email", "first_name", "last_name"])  # last_name keeps its value
    stub.UpdateUser(pb.UpdateUserRequest(user=change, update_mask=mask))
    with database.transaction(writes=False) as db:
        (row,) = db.scalars(select(AuditRecord).where(AuditRecord.event == "USER_UPDATED"))
        password_hash = db.scalars(select(User.password_hash)).one()
    assert (row.user_id, row.detail) == (uuid.UUID(user.id), "email first_name")
    (listed,) = [
        e
        for e in stub.ListAuditEvents(pb.ListAuditEventsRequest(user_id=user.id)).audit_events
        if e.type == pb.AUDIT_EVENT_TYPE_USER_UPDATED
    ]
    assert listed.detail == "email first_name"
    stored = repr(vars(row)) + listed.SerializeToString().decode(errors="replace")
    for secret in (PASSWORD, password_hash, "Augusta", "ada@example.org"):
        assert secret not in stored


def test_update_user_that_changes_no_value_is_not_audited(stub, database):
    user = sign_up(stub)
    same = pb.UpdateUserRequest(user=pb.User(id=user.id, first_name="Ada"))
    assert stub.UpdateUser(same).user.first_name == "Ada"
    with database.transaction(writes=False) as db:
        events = db.scalars(select(AuditRecord.event)).all()
    assert "USER_UPDATED" not in events


def test_update_unknown_user_is_not_found(stub):
    request = pb.UpdateUserRequest(user=pb.User(id=str(uuid.uuid4()), first_name="x"))
    assert fails(stub.UpdateUser, request).reason == "USER_NOT_FOUND"


def test_delete_user_removes_the_user_and_every_session(stub, database):
    user = sign_up(stub)
    tokens = [sign_in(stub).session_token for _ in range(3)]
    stub.DeleteUser(pb.DeleteUserRequest(id=user.id))
    for token in tokens:
        assert fails(stub.ValidateToken, pb.ValidateTokenRequest(session_token=token)).reason == (
            "TOKEN_INVALID"
        )
    assert fails(
        stub.CreateSession, pb.CreateSessionRequest(email=user.email, password=PASSWORD)
    ).reason == ("INVALID_CREDENTIALS")
    assert fails(stub.GetUser, pb.GetUserRequest(id=user.id)).reason == "USER_NOT_FOUND"
    assert fails(stub.DeleteUser, pb.DeleteUserRequest(id=user.id)).reason == "USER_NOT_FOUND"
    with database.transaction(writes=False) as db:
        assert db.scalars(select(Session)).all() == []
    sign_up(stub)  # the email is free again


def test_list_users_pages_through_everyone_oldest_first(stub, clock):
    created = []
    for i in range(7):
        created.append(sign_up(stub, email=f"user{i}@example.com").id)
        clock.advance(timedelta(seconds=1))  # the injected clock orders them, not real time
    seen, token, pages = [], "", 0
    while True:
        reply = stub.ListUsers(pb.ListUsersRequest(page_size=3, page_token=token))
        seen += [u.id for u in reply.users]
        pages += 1
        token = reply.next_page_token
        if not token:
            break
    assert seen == created
    assert pages == 3


def test_list_users_default_page_size(stub):
    for i in range(3):
        sign_up(stub, email=f"user{i}@example.com")
    reply = stub.ListUsers(pb.ListUsersRequest())
    assert (len(reply.users), reply.next_page_token) == (3, "")


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.ListUsersRequest(page_size=-1), "page_size"),
        (pb.ListUsersRequest(page_token="garbage!"), "page_token"),
        (pb.ListUsersRequest(page_token="eyJjIjoxfQ"), "page_token"),
    ],
)
def test_list_users_bad_paging_names_the_field(stub, request_, field):
    failure = fails(stub.ListUsers, request_)
    assert (failure.code, failure.fields) == (grpc.StatusCode.INVALID_ARGUMENT, [field])
