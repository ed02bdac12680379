"""AuthService over gRPC: parse the request, call one flow, build the response.

No SQL, no rules and no error handling here: errors propagate to
``edge.error_interceptor``, the one place they become statuses.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeAlias

import grpc

from authsvc.edge import requests, responses
from authsvc.edge.end_user import EndUser
from authsvc.flows.registry import Flows
from authsvc.rules import cursors, values
from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc

Ctx: TypeAlias = grpc.ServicerContext


class AuthServicer(pb_grpc.AuthServiceServicer):
    """Implements ``authsvc.v1.AuthService``."""

    def __init__(self, flows: Flows) -> None:
        self._flows = flows

    def CreateUser(self, request: pb.CreateUserRequest, context: Ctx) -> pb.CreateUserResponse:
        user = self._flows.accounts.create_user(requests.create_user(request, EndUser.of(context)))
        return pb.CreateUserResponse(user=responses.user(user))

    def GetUser(self, request: pb.GetUserRequest, context: Ctx) -> pb.GetUserResponse:
        user = self._flows.accounts.get_user(requests.one("id", values.uuid_id, request.id))
        return pb.GetUserResponse(user=responses.user(user))

    def UpdateUser(self, request: pb.UpdateUserRequest, context: Ctx) -> pb.UpdateUserResponse:
        user = self._flows.accounts.update_user(requests.update_user(request))
        return pb.UpdateUserResponse(user=responses.user(user))

    def DeleteUser(self, request: pb.DeleteUserRequest, context: Ctx) -> pb.DeleteUserResponse:
        self._flows.accounts.delete_user(requests.one("id", values.uuid_id, request.id))
        return pb.DeleteUserResponse()

    def ListUsers(self, request: pb.ListUsersRequest, context: Ctx) -> pb.ListUsersResponse:
        return responses.users(self._flows.accounts.list_users(requests.list_users(request)))

    def ChangePassword(
        self, request: pb.ChangePasswordRequest, context: Ctx
    ) -> pb.ChangePasswordResponse:
        self._flows.password_changes.change_password(requests.change_password(request))
        return pb.ChangePasswordResponse()

    def CreateSession(
        self, request: pb.CreateSessionRequest, context: Ctx
    ) -> pb.CreateSessionResponse:
        credentials = requests.create_session(request, EndUser.of(context))
        return responses.signed_in(self._flows.sign_in.sign_in(credentials))

    def ValidateToken(
        self, request: pb.ValidateTokenRequest, context: Ctx
    ) -> pb.ValidateTokenResponse:
        token = requests.one("session_token", values.required, request.session_token)
        return responses.validation(self._flows.sessions.validate(token))

    def RefreshSession(
        self, request: pb.RefreshSessionRequest, context: Ctx
    ) -> pb.RefreshSessionResponse:
        token = requests.one("update_token", values.required, request.update_token)
        return responses.refreshed(self._flows.sessions.refresh(token))

    def DeleteSession(
        self, request: pb.DeleteSessionRequest, context: Ctx
    ) -> pb.DeleteSessionResponse:
        token = requests.one("session_token", values.required, request.session_token)
        self._flows.sessions.sign_out(token)
        return pb.DeleteSessionResponse()

    def ListSessions(
        self, request: pb.ListSessionsRequest, context: Ctx
    ) -> pb.ListSessionsResponse:
        query = requests.list_sessions(request)
        return responses.sessions(query.user_id, self._flows.sessions.list_sessions(query))

    def ListAuditEvents(
        self, request: pb.ListAuditEventsRequest, context: Ctx
    ) -> pb.ListAuditEventsResponse:
        query = requests.list_audit_events(request)
        return responses.audit_events(query.user_id, self._flows.audit_trail.list_events(query))

    # Account lifecycle (issue 9)

    def StartPasswordReset(
        self, request: pb.StartPasswordResetRequest, context: Ctx
    ) -> pb.StartPasswordResetResponse:
        started = self._flows.password_reset.start(
            requests.start_password_reset(request, EndUser.of(context))
        )
        return responses.started_reset(started)

    def CompletePasswordReset(
        self, request: pb.CompletePasswordResetRequest, context: Ctx
    ) -> pb.CompletePasswordResetResponse:
        new = requests.complete_password_reset(request, EndUser.of(context))
        user = self._flows.password_reset.complete(new)
        return pb.CompletePasswordResetResponse(user=responses.user(user))

    def StartEmailVerification(
        self, request: pb.StartEmailVerificationRequest, context: Ctx
    ) -> pb.StartEmailVerificationResponse:
        started = self._flows.email_verification.start(requests.start_email_verification(request))
        return responses.started_verification(started)

    def VerifyEmail(self, request: pb.VerifyEmailRequest, context: Ctx) -> pb.VerifyEmailResponse:
        user = self._flows.email_verification.verify(
            requests.verify_email(request, EndUser.of(context))
        )
        return pb.VerifyEmailResponse(user=responses.user(user))

    def DisableUser(self, request: pb.DisableUserRequest, context: Ctx) -> pb.DisableUserResponse:
        user = self._flows.accounts.disable_user(requests.one("id", values.uuid_id, request.id))
        return pb.DisableUserResponse(user=responses.user(user))

    def EnableUser(self, request: pb.EnableUserRequest, context: Ctx) -> pb.EnableUserResponse:
        user = self._flows.accounts.enable_user(requests.one("id", values.uuid_id, request.id))
        return pb.EnableUserResponse(user=responses.user(user))

    def RevokeSession(
        self, request: pb.RevokeSessionRequest, context: Ctx
    ) -> pb.RevokeSessionResponse:
        session_id = requests.one("session_id", values.uuid_id, request.session_id)
        self._flows.sessions.revoke_session(session_id)
        return pb.RevokeSessionResponse()

    def RevokeUserSessions(
        self, request: pb.RevokeUserSessionsRequest, context: Ctx
    ) -> pb.RevokeUserSessionsResponse:
        user_id = requests.one("user_id", values.uuid_id, request.user_id)
        count = self._flows.sessions.revoke_user_sessions(user_id)
        return pb.RevokeUserSessionsResponse(revoked_count=count)

    def SetPassword(self, request: pb.SetPasswordRequest, context: Ctx) -> pb.SetPasswordResponse:
        self._flows.password_changes.set_password(requests.set_password(request))
        return pb.SetPasswordResponse()

    def ImportUsers(self, request: pb.ImportUsersRequest, context: Ctx) -> pb.ImportUsersResponse:
        batch = requests.import_users(request)
        return responses.imported(self._flows.importing.import_users(batch))

    # --- Multi-factor sign-in (issue 10) ---

    def StartTotpEnrollment(
        self, request: pb.StartTotpEnrollmentRequest, context: Ctx
    ) -> pb.StartTotpEnrollmentResponse:
        started = self._flows.factor_enrolment.start_totp(requests.session_token(request))
        return responses.totp_enrollment(started)

    def ConfirmTotpEnrollment(
        self, request: pb.ConfirmTotpEnrollmentRequest, context: Ctx
    ) -> pb.ConfirmTotpEnrollmentResponse:
        codes = self._flows.factor_enrolment.confirm_totp(requests.confirm_totp(request))
        return pb.ConfirmTotpEnrollmentResponse(recovery_codes=codes)

    def RemoveTotp(self, request: pb.RemoveTotpRequest, context: Ctx) -> pb.RemoveTotpResponse:
        self._flows.factor_enrolment.remove_totp(requests.remove_totp(request))
        return pb.RemoveTotpResponse()

    def CompleteSignIn(
        self, request: pb.CompleteSignInRequest, context: Ctx
    ) -> pb.CompleteSignInResponse:
        step = requests.complete_sign_in(request)
        if step.code is None:
            return responses.completed(self._flows.passkeys.complete_sign_in(step))
        return responses.completed(self._flows.sign_in.complete(step))

    def ReauthenticateSession(
        self, request: pb.ReauthenticateSessionRequest, context: Ctx
    ) -> pb.ReauthenticateSessionResponse:
        session = self._flows.step_up.reauthenticate(requests.reauthenticate(request))
        return pb.ReauthenticateSessionResponse(session=responses.session(session))

    def StartPasskeyRegistration(
        self, request: pb.StartPasskeyRegistrationRequest, context: Ctx
    ) -> pb.StartPasskeyRegistrationResponse:
        started = self._flows.passkeys.start_registration(requests.session_token(request))
        return pb.StartPasskeyRegistrationResponse(
            challenge_token=started.challenge_token, options_json=started.options_json
        )

    def FinishPasskeyRegistration(
        self, request: pb.FinishPasskeyRegistrationRequest, context: Ctx
    ) -> pb.FinishPasskeyRegistrationResponse:
        registration = requests.finish_passkey_registration(request)
        stored = self._flows.passkeys.finish_registration(registration)
        return pb.FinishPasskeyRegistrationResponse(passkey=responses.passkey(stored))

    def ListPasskeys(
        self, request: pb.ListPasskeysRequest, context: Ctx
    ) -> pb.ListPasskeysResponse:
        found = self._flows.passkeys.list(requests.session_token(request))
        return pb.ListPasskeysResponse(passkeys=[responses.passkey(p) for p in found])

    def RemovePasskey(
        self, request: pb.RemovePasskeyRequest, context: Ctx
    ) -> pb.RemovePasskeyResponse:
        self._flows.passkeys.remove(requests.remove_passkey(request))
        return pb.RemovePasskeyResponse()

    def StartPasskeySignIn(
        self, request: pb.StartPasskeySignInRequest, context: Ctx
    ) -> pb.StartPasskeySignInResponse:
        started = self._flows.passkeys.start_sign_in(requests.start_passkey_sign_in(request))
        return pb.StartPasskeySignInResponse(
            challenge_token=started.challenge_token, options_json=started.options_json
        )

    def FinishPasskeySignIn(
        self, request: pb.FinishPasskeySignInRequest, context: Ctx
    ) -> pb.FinishPasskeySignInResponse:
        finish = requests.finish_passkey_sign_in(request, EndUser.of(context))
        done = self._flows.passkeys.finish_sign_in(finish)
        return responses.passkey_signed_in(done)

    # --- Account events (issue 19) ---

    def WatchEvents(self, request: pb.WatchEventsRequest, context: Ctx) -> Iterator[pb.Event]:
        query = requests.watch_events(request)
        for item in self._flows.events.watch(query, context.is_active):
            yield responses.event(item)

    def ListEvents(self, request: pb.ListEventsRequest, context: Ctx) -> pb.ListEventsResponse:
        found = self._flows.events.list_events(requests.list_events(request))
        return responses.events(found, request.after_cursor)

    # --- Webhooks (issue 19) ---

    def CreateWebhook(
        self, request: pb.CreateWebhookRequest, context: Ctx
    ) -> pb.CreateWebhookResponse:
        created, secret = self._flows.webhooks.create(requests.create_webhook(request))
        return pb.CreateWebhookResponse(webhook=responses.webhook(created), secret=secret)

    def ListWebhooks(
        self, request: pb.ListWebhooksRequest, context: Ctx
    ) -> pb.ListWebhooksResponse:
        found = self._flows.webhooks.list_all()
        return pb.ListWebhooksResponse(webhooks=[responses.webhook(w) for w in found])

    def DeleteWebhook(
        self, request: pb.DeleteWebhookRequest, context: Ctx
    ) -> pb.DeleteWebhookResponse:
        self._flows.webhooks.delete(requests.one("id", values.uuid_id, request.id))
        return pb.DeleteWebhookResponse()

    def ListWebhookDeliveries(
        self, request: pb.ListWebhookDeliveriesRequest, context: Ctx
    ) -> pb.ListWebhookDeliveriesResponse:
        query = requests.list_webhook_deliveries(request)
        page = self._flows.webhooks.deliveries(query)
        return responses.webhook_deliveries(query.webhook_id, page)

    # --- Local verification of access tokens (issue 21) ---

    def GetSigningKeys(
        self, request: pb.GetSigningKeysRequest, context: Ctx
    ) -> pb.GetSigningKeysResponse:
        return pb.GetSigningKeysResponse(jwks_json=self._flows.access_tokens.jwks_json())

    def WatchRevocations(
        self, request: pb.WatchRevocationsRequest, context: Ctx
    ) -> Iterator[pb.Revocation]:
        after = requests.one("after_cursor", cursors.REVOCATIONS.after, request.after_cursor)
        for item in self._flows.revocation_watch.watch(after, context.is_active):
            yield responses.revocation(item)
