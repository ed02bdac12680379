"""Importing users with their old password hashes (ImportUsers and `authsvc import`)."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import uuid
from datetime import UTC, datetime

import argon2
import bcrypt
import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from authsvc.flows.importing import Importing
from authsvc.runtime import cli
from authsvc.storage.models import User
from authsvc_client.v1 import auth_service_pb2 as pb
from tests.helpers import fails, sign_in, sign_up

OLD_PASSWORD = "the password of the old system"
CURRENT_METHOD = "pbkdf2:sha256:1000"  # the tests' cheap current method (conftest)


def django_hash(password: str, iterations: int = 1000, salt: str = "seasalt") -> str:
    """What Django's PBKDF2PasswordHasher stores."""
    key = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${base64.b64encode(key).decode()}"


def old_hashes(password: str = OLD_PASSWORD) -> dict[str, str]:
    """One hash of ``password`` per accepted format, made by each format's own library
    (with cheap costs: the formats are the point, not their strength)."""
    bcrypt_b = bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()
    cheap_argon2 = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}
    return {
        "werkzeug-pbkdf2": generate_password_hash(password, "pbkdf2:sha256:2000"),
        "werkzeug-scrypt": generate_password_hash(password, "scrypt:1024:8:1"),
        "bcrypt-2b": bcrypt_b,
        "bcrypt-2a": "$2a$" + bcrypt_b.removeprefix("$2b$"),
        "bcrypt-2y": "$2y$" + bcrypt_b.removeprefix("$2b$"),
        "argon2id": argon2.PasswordHasher(**cheap_argon2).hash(password),
        "argon2i": argon2.PasswordHasher(type=argon2.Type.I, **cheap_argon2).hash(password),
        "django": django_hash(password),
    }


def imported(email: str, password_hash: str, **more) -> pb.ImportedUser:
    fields = {"first_name": "Old", "last_name": "User", **more}
    return pb.ImportedUser(email=email, password_hash=password_hash, **fields)


def stored_hash(database, email: str) -> str:
    with database.transaction() as db:
        return db.scalar(select(User.password_hash).where(User.email == email))


def test_users_of_each_hash_format_sign_in_with_their_old_password_and_are_rehashed(stub, database):
    hashes = old_hashes()
    users = [imported(f"{name}@example.com", h) for name, h in hashes.items()]
    reply = stub.ImportUsers(pb.ImportUsersRequest(users=users), timeout=10)
    assert all(uuid.UUID(r.user_id) for r in reply.results), reply
    for name, old in hashes.items():
        email = f"{name}@example.com"
        assert stored_hash(database, email) == old  # kept as it was until the sign-in
        signed_in = sign_in(stub, email, OLD_PASSWORD)
        assert signed_in.user.email == email
        new = stored_hash(database, email)
        assert new != old and new.startswith(f"{CURRENT_METHOD}$"), name
        sign_in(stub, email, OLD_PASSWORD)  # and again, with the new hash


def test_a_wrong_password_of_an_imported_user_fails_alike_and_keeps_the_old_hash(stub, database):
    for name, old in old_hashes().items():
        email = f"{name}@example.com"
        stub.ImportUsers(pb.ImportUsersRequest(users=[imported(email, old)]), timeout=10)
        failure = fails(stub.CreateSession, pb.CreateSessionRequest(email=email, password="nope"))
        assert (failure.code, failure.reason) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "INVALID_CREDENTIALS",
        ), name
        assert stored_hash(database, email) == old


def test_a_bcrypt_password_longer_than_72_bytes_signs_in_as_the_old_system_cut_it(stub):
    long_password = "a long passphrase " * 6  # 108 bytes: the old bcrypt used 72 of them
    old = bcrypt.hashpw(long_password.encode()[:72], bcrypt.gensalt(4)).decode()
    stub.ImportUsers(pb.ImportUsersRequest(users=[imported("long@example.com", old)]), timeout=10)
    assert sign_in(stub, "long@example.com", long_password).user.email == "long@example.com"


def test_each_user_gets_its_own_result_and_a_bad_one_never_fails_the_batch(stub):
    sign_up(stub, "taken@example.com")
    good = old_hashes()["django"]
    users = [
        imported("new@example.com", good),
        imported("not-an-email", good, first_name=""),
        imported("md5@example.com", "md5$salt$5f4dcc3b5aa765d61d8327deb882cf99"),
        imported("cut@example.com", good[:-5]),
        imported("TAKEN@example.com", good),
        imported("new@example.com", good),  # the same email twice in one batch
        imported("nohash@example.com", ""),
    ]
    results = stub.ImportUsers(pb.ImportUsersRequest(users=users), timeout=10).results
    assert len(results) == len(users)
    assert uuid.UUID(results[0].user_id)
    assert not any(r.user_id for r in results[1:])

    def error(i: int) -> tuple[str, list[str]]:
        e = results[i].error
        return pb.ErrorReason.Name(e.reason), [v.field for v in e.field_violations]

    assert error(1) == ("ERROR_REASON_INVALID_ARGUMENT", ["users[1].email", "users[1].first_name"])
    assert error(2) == ("ERROR_REASON_UNSUPPORTED_HASH_FORMAT", ["users[2].password_hash"])
    assert error(3) == ("ERROR_REASON_UNSUPPORTED_HASH_FORMAT", ["users[3].password_hash"])
    assert error(4) == ("ERROR_REASON_EMAIL_TAKEN", ["users[4].email"])
    assert error(5) == ("ERROR_REASON_EMAIL_TAKEN", ["users[5].email"])
    assert error(6) == ("ERROR_REASON_INVALID_ARGUMENT", ["users[6].password_hash"])
    assert "md5" not in results[2].error.message and good[:20] not in str(results[3])


@pytest.mark.parametrize("count", [0, 1001])
def test_an_empty_or_oversized_batch_fails_the_call(stub, count):
    users = [pb.ImportedUser(email=f"u{i}@e.io") for i in range(count)]
    failure = fails(stub.ImportUsers, pb.ImportUsersRequest(users=users))
    assert (failure.code, failure.reason, failure.fields) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
        ["users"],
    )


def test_import_keeps_the_creation_time_and_the_verified_email(stub, database):
    created = Timestamp()
    created.FromDatetime(datetime(2019, 3, 1, 12, 0, tzinfo=UTC))
    hash_ = old_hashes()["django"]
    users = [
        imported("verified@example.com", hash_, email_verified=True, create_time=created),
        imported("unverified@example.com", hash_),
    ]
    stub.ImportUsers(pb.ImportUsersRequest(users=users), timeout=10)
    with database.transaction() as db:
        verified = db.scalar(select(User).where(User.email == "verified@example.com"))
        unverified = db.scalar(select(User).where(User.email == "unverified@example.com"))
        assert verified.created_at == datetime(2019, 3, 1, 12, 0, tzinfo=UTC)
        assert verified.email_verified_at == verified.created_at
        assert unverified.email_verified_at is None
        assert unverified.created_at.year >= 2026


def test_an_import_is_audited_with_its_count(stub):
    hash_ = old_hashes()["django"]
    users = [imported(f"u{i}@example.com", hash_) for i in range(3)] + [imported("bad", hash_)]
    stub.ImportUsers(pb.ImportUsersRequest(users=users), timeout=10)
    events = stub.ListAuditEvents(pb.ListAuditEventsRequest(), timeout=10).audit_events
    (event,) = [e for e in events if e.type == pb.AUDIT_EVENT_TYPE_USERS_IMPORTED]
    assert event.detail == "imported 3 of 4 users"


# --- `authsvc import FILE.jsonl` ---


def write_users(path, count: int, bad_every: int = 0) -> list[int]:
    """Writes ``count`` users (a few real hashes of each format, repeated); returns the
    line numbers of the users made bad on purpose (every ``bad_every``-th line)."""
    hashes = list(old_hashes().values())
    bad = []
    with path.open("w") as out:
        for i in range(count):
            line = {
                "email": f"user{i}@example.com",
                "first_name": "Old",
                "last_name": f"User {i}",
                "password_hash": hashes[i % len(hashes)],
                "create_time": "2019-03-01 12:00:00",  # as SQLite prints a timestamp
            }
            if bad_every and i % bad_every == bad_every - 1:
                line["password_hash"] = "md5$x$" + "0" * 32
                bad.append(i + 1)
            out.write(json.dumps(line) + "\n")
    return bad


def run_import(path, db_url: str, capsys, batch_size: int = 300) -> tuple[int, list[str]]:
    status = cli.main(
        ["import", str(path), "--database-url", db_url, "--batch-size", str(batch_size)]
    )
    return status, capsys.readouterr().out.splitlines()


def test_the_import_command_imports_a_file_in_batches_and_resumes_safely(
    db_url, tmp_path, capsys, database, start_server
):
    path = tmp_path / "users.jsonl"
    bad = write_users(path, 2000, bad_every=500)
    half = tmp_path / "half.jsonl"
    half.write_text("".join(path.read_text().splitlines(keepends=True)[:1000]))

    status, out = run_import(half, db_url, capsys)  # an import cut short
    assert status == 1 and out[0].startswith("imported 998, existing 0, refused 2 ")
    status, out = run_import(path, db_url, capsys)  # run again, on the whole file
    assert out[0].startswith("imported 998, existing 998, refused 4 ")
    assert [line.split(":")[0] for line in out[1:]] == [f"line {n}" for n in bad]
    assert "UNSUPPORTED_HASH_FORMAT: password_hash is in no accepted format" in out[1]
    status, out = run_import(path, db_url, capsys)  # and once more: nothing new
    assert out[0].startswith("imported 0, existing 1996, refused 4 ")
    with database.transaction() as db:
        assert len(db.scalars(select(User.id)).all()) == 1996

    _, stub = start_server()
    for i in range(8):  # one user of each hash format, imported by the command
        assert sign_in(stub, f"user{i}@example.com", OLD_PASSWORD).user.last_name == f"User {i}"


def test_the_import_command_refuses_lines_that_are_not_users(db_url, tmp_path, capsys):
    path = tmp_path / "users.jsonl"
    good = json.dumps(
        {
            "email": "a@example.com",
            "first_name": "A",
            "last_name": "B",
            "password_hash": old_hashes()["django"],
            "email_verified": True,
        }
    )
    path.write_text(f'{good}\nnot json\n\n["a list"]\n{{"email": "b@example.com", "fname": "B"}}\n')
    status, out = run_import(path, db_url, capsys)
    assert status == 1
    assert out[0].startswith("imported 1, existing 0, refused 3 ")
    assert out[1:] == [
        "line 2: INVALID_ARGUMENT: the line is not valid JSON",
        "line 4: INVALID_ARGUMENT: the line is not a JSON object",
        "line 5: INVALID_ARGUMENT: the line has unknown fields: fname (expected email, "
        "first_name, last_name, locale, password_hash, email_verified, create_time)",
    ]


def test_the_import_command_refuses_a_batch_size_over_the_rpc_maximum(db_url, tmp_path, capsys):
    path = tmp_path / "users.jsonl"
    path.write_text("")
    status = cli.main(["import", str(path), "--database-url", db_url, "--batch-size", "1001"])
    assert status == 2
    assert "AUTHSVC_IMPORT_BATCH_SIZE" in capsys.readouterr().err


def test_two_imports_of_the_same_users_at_once_bring_each_user_exactly_once(stub, database):
    hash_ = old_hashes()["django"]
    users = [imported(f"u{i}@example.com", hash_) for i in range(200)]
    start = threading.Barrier(2)
    replies: list[pb.ImportUsersResponse] = []

    def run() -> None:
        start.wait()
        replies.append(stub.ImportUsers(pb.ImportUsersRequest(users=users), timeout=30))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(200):
        first, second = (reply.results[i] for reply in replies)
        assert bool(first.user_id) != bool(second.user_id), i  # exactly one brought it
        loser = second if first.user_id else first
        assert loser.error.reason == pb.ERROR_REASON_EMAIL_TAKEN
    with database.transaction() as db:
        assert len(db.scalars(select(User.id)).all()) == 200


def test_an_import_stopped_by_a_failing_batch_resumes_where_it_stopped(
    db_url, tmp_path, capsys, monkeypatch
):
    path = tmp_path / "users.jsonl"
    write_users(path, 600)
    real = Importing.import_users
    calls = []

    def fail_the_second_batch(self, batch):
        calls.append(len(batch))
        if len(calls) == 2:
            raise ConnectionError("the database went away")
        return real(self, batch)

    monkeypatch.setattr(Importing, "import_users", fail_the_second_batch)
    status = cli.main(["import", str(path), "--database-url", db_url, "--batch-size", "200"])
    captured = capsys.readouterr()
    assert status == 1
    assert captured.out.startswith("imported 200, existing 0, refused 0 ")
    assert "stopped at line 201: ConnectionError" in captured.err
    monkeypatch.setattr(Importing, "import_users", real)
    status, out = run_import(path, db_url, capsys, batch_size=200)
    assert status == 0 and out[0].startswith("imported 400, existing 200, refused 0 ")


# Hostile users (issue 17): each refused on its own, the others imported.


def test_hostile_users_are_refused_one_by_one_and_the_batch_goes_on(stub):
    good = old_hashes()["django"]
    users = [
        imported("first@example.com", good),
        imported("digits@example.com", "pbkdf2:sha256:²$salt$" + "ab" * 32),
        imported("indic@example.com", "$2b$\u0661\u0662$" + old_hashes()["bcrypt-2b"][7:]),
        imported("nul-salt@example.com", "pbkdf2:sha256:1000$sa\x00lt$" + "ab" * 32),
        imported("nul-name@example.com", good, first_name="Old\x00"),
        imported("bidi@example.com", good, last_name="\u202eresU"),
        imported("costly@example.com", "$2b$16$" + "a" * 21 + "u" + "a" * 30 + "C"),
        imported("unverifiable@example.com", "scrypt:16:1:1$salt$" + "ab" * 64),
        imported("last@example.com", good),
    ]
    results = stub.ImportUsers(pb.ImportUsersRequest(users=users), timeout=10).results
    reasons = [pb.ErrorReason.Name(r.error.reason) if not r.user_id else "OK" for r in results]
    unsupported = "ERROR_REASON_UNSUPPORTED_HASH_FORMAT"
    invalid = "ERROR_REASON_INVALID_ARGUMENT"
    assert reasons == ["OK", *[unsupported] * 3, invalid, invalid, *[unsupported] * 2, "OK"]
    fields = [[v.field for v in r.error.field_violations] for r in results]
    assert fields[4] == ["users[4].first_name"] and fields[5] == ["users[5].last_name"]
    assert fields[6] == ["users[6].password_hash"]
    assert "cost" in results[6].error.field_violations[0].description
    assert "hashlib" in results[7].error.field_violations[0].description
    assert sign_in(stub, "last@example.com", OLD_PASSWORD).user.email == "last@example.com"


def test_the_import_command_reports_hostile_lines_and_goes_on(db_url, tmp_path, capsys):
    good = {"first_name": "Old", "last_name": "User", "password_hash": old_hashes()["django"]}
    lines = [
        json.dumps({**good, "email": "a@example.com", "password_hash": "pbkdf2:sha256:²$s$ab"}),
        "[" * 5000 + "]" * 5000,
        '{"email": "\\ud800@example.com"}',
        json.dumps({**good, "email": "c@example.com", "create_time": "0001-01-01T00:00:00+01:00"}),
        json.dumps({**good, "email": "d@example.com", "first_name": "\x00"}),
        json.dumps({**good, "email": "ok@example.com"}),
    ]
    path = tmp_path / "users.jsonl"
    path.write_text("\n".join(lines) + "\n")
    status, out = run_import(path, db_url, capsys)
    assert status == 1
    assert out[0].startswith("imported 1, existing 0, refused 5 ")
    assert [line.split(":")[0] for line in out[1:]] == [f"line {n}" for n in range(1, 6)]
    assert out[1].startswith("line 1: UNSUPPORTED_HASH_FORMAT: password_hash ")
    assert out[5] == "line 5: INVALID_ARGUMENT: first_name must not contain control characters"
