"""Calls of the account-lifecycle RPCs shared by their tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import grpc
from sqlalchemy import func, select

from authsvc.storage.models import AuditRecord, UserToken
from authsvc_client.v1 import auth_service_pb2 as pb
from tests.helpers import failure

NEW_PASSWORD = "a brand new passphrase 42"


def start_reset(stub: Any, email: str = "ada@example.com", **kw: str) -> Any:
    return stub.StartPasswordReset(pb.StartPasswordResetRequest(email=email, **kw), timeout=10)


def complete_reset(stub: Any, token: str, password: str = NEW_PASSWORD, **kw: str) -> Any:
    request = pb.CompletePasswordResetRequest(reset_token=token, new_password=password, **kw)
    return stub.CompletePasswordReset(request, timeout=10)


def start_verification(stub: Any, user_id: str) -> Any:
    request = pb.StartEmailVerificationRequest(user_id=user_id)
    return stub.StartEmailVerification(request, timeout=10)


def verify(stub: Any, token: str) -> Any:
    return stub.VerifyEmail(pb.VerifyEmailRequest(verification_token=token), timeout=10)


def disable(stub: Any, user_id: str) -> Any:
    return stub.DisableUser(pb.DisableUserRequest(id=user_id), timeout=10)


def enable(stub: Any, user_id: str) -> Any:
    return stub.EnableUser(pb.EnableUserRequest(id=user_id), timeout=10)


def token_rows(database: Any) -> list[UserToken]:
    with database.transaction(writes=False) as db:
        return list(db.scalars(select(UserToken)))


def events(database: Any, name: str) -> int:
    with database.transaction(writes=False) as db:
        query = select(func.count()).where(AuditRecord.event == name)
        return int(db.scalar(query.select_from(AuditRecord)) or 0)


def race(call: Callable[[], Any], threads: int = 6) -> list[Any]:
    """Runs ``call`` in ``threads`` threads at once; each result or failure reason."""
    return race_each([call] * threads)


def race_each(calls: list[Callable[[], Any]]) -> list[Any]:
    """Runs each call in its own thread, all at once; each result or failure reason."""
    results: list[Any] = []
    barrier = threading.Barrier(len(calls))

    def attempt(call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results.append(call())
        except grpc.RpcError as exc:
            results.append(failure(exc).reason)

    running = [threading.Thread(target=attempt, args=(call,)) for call in calls]
    for t in running:
        t.start()
    for t in running:
        t.join()
    return results
