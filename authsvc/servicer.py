"""AuthService over gRPC: protobuf in, one AuthApp call, protobuf out.

No SQL, no rules and no error handling here: errors propagate to
``authsvc.interceptors.ErrorInterceptor``.
"""

from __future__ import annotations

from typing import TypeAlias

import grpc

from authsvc import convert
from authsvc.app import AuthApp
from authsvc.v1 import auth_service_pb2 as pb
from authsvc.v1 import auth_service_pb2_grpc as pb_grpc

Ctx: TypeAlias = grpc.ServicerContext


class AuthServicer(pb_grpc.AuthServiceServicer):
    """Implements ``authsvc.v1.AuthService``."""

    def __init__(self, app: AuthApp) -> None:
        self._app = app

    def CreateUser(self, request: pb.CreateUserRequest, context: Ctx) -> pb.CreateUserResponse:
        r = request
        user = self._app.create_user(r.email, r.password, r.first_name, r.last_name)
        return pb.CreateUserResponse(user=convert.user(user))

    def GetUser(self, request: pb.GetUserRequest, context: Ctx) -> pb.GetUserResponse:
        return pb.GetUserResponse(user=convert.user(self._app.get_user(request.id)))

    def UpdateUser(self, request: pb.UpdateUserRequest, context: Ctx) -> pb.UpdateUserResponse:
        u = request.user
        values = {"first_name": u.first_name, "last_name": u.last_name, "email": u.email}
        user = self._app.update_user(u.id, values, list(request.update_mask.paths))
        return pb.UpdateUserResponse(user=convert.user(user))

    def DeleteUser(self, request: pb.DeleteUserRequest, context: Ctx) -> pb.DeleteUserResponse:
        self._app.delete_user(request.id)
        return pb.DeleteUserResponse()

    def ListUsers(self, request: pb.ListUsersRequest, context: Ctx) -> pb.ListUsersResponse:
        users, token = self._app.list_users(request.page_size, request.page_token)
        return pb.ListUsersResponse(users=[convert.user(u) for u in users], next_page_token=token)

    def ChangePassword(
        self, request: pb.ChangePasswordRequest, context: Ctx
    ) -> pb.ChangePasswordResponse:
        r = request
        self._app.change_password(r.session_token, r.current_password, r.new_password)
        return pb.ChangePasswordResponse()

    def CreateSession(
        self, request: pb.CreateSessionRequest, context: Ctx
    ) -> pb.CreateSessionResponse:
        r = request
        done = self._app.sign_in(r.email, r.password, r.user_agent, r.ip_address)
        return pb.CreateSessionResponse(
            session=convert.session(done.issued.session),
            session_token=done.issued.session_token,
            update_token=done.issued.update_token,
            user=convert.user(done.user),
        )

    def ValidateToken(
        self, request: pb.ValidateTokenRequest, context: Ctx
    ) -> pb.ValidateTokenResponse:
        return convert.validation(self._app.validate(request.session_token))

    def RefreshSession(
        self, request: pb.RefreshSessionRequest, context: Ctx
    ) -> pb.RefreshSessionResponse:
        issued = self._app.refresh(request.update_token)
        return pb.RefreshSessionResponse(
            session=convert.session(issued.session),
            session_token=issued.session_token,
            update_token=issued.update_token,
        )

    def DeleteSession(
        self, request: pb.DeleteSessionRequest, context: Ctx
    ) -> pb.DeleteSessionResponse:
        self._app.sign_out(request.session_token)
        return pb.DeleteSessionResponse()

    def ListSessions(
        self, request: pb.ListSessionsRequest, context: Ctx
    ) -> pb.ListSessionsResponse:
        r = request
        sessions, token = self._app.list_sessions(r.user_id, r.page_size, r.page_token)
        return pb.ListSessionsResponse(
            sessions=[convert.session(s) for s in sessions], next_page_token=token
        )

    def ListAuditEvents(
        self, request: pb.ListAuditEventsRequest, context: Ctx
    ) -> pb.ListAuditEventsResponse:
        r = request
        events, token = self._app.list_audit_events(r.user_id, r.page_size, r.page_token)
        return pb.ListAuditEventsResponse(
            audit_events=[convert.audit_event(e) for e in events], next_page_token=token
        )
