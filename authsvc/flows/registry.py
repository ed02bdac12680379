"""Every flow of the service, as the composition root builds them for the edge."""

from __future__ import annotations

from dataclasses import dataclass

from authsvc.flows.access_tokens import AccessTokens
from authsvc.flows.accounts import Accounts
from authsvc.flows.api_keys import ApiKeys
from authsvc.flows.audit_trail import AuditTrail
from authsvc.flows.email_verification import EmailVerification
from authsvc.flows.event_feed import EventFeed
from authsvc.flows.factor_enrolment import FactorEnrolment
from authsvc.flows.housekeeping import Housekeeping
from authsvc.flows.importing import Importing
from authsvc.flows.mail_delivery import MailDelivery
from authsvc.flows.passkeys import Passkeys
from authsvc.flows.password_changes import PasswordChanges
from authsvc.flows.password_reset import PasswordReset
from authsvc.flows.revocation_watch import RevocationWatch
from authsvc.flows.sessions import Sessions
from authsvc.flows.sign_in import SignIn
from authsvc.flows.step_up import StepUp
from authsvc.flows.webhooks import Webhooks


@dataclass(frozen=True)
class Flows:
    """The flows behind AuthService's RPCs."""

    accounts: Accounts
    sign_in: SignIn
    sessions: Sessions
    password_changes: PasswordChanges
    audit_trail: AuditTrail
    housekeeping: Housekeeping
    password_reset: PasswordReset
    email_verification: EmailVerification
    api_keys: ApiKeys
    importing: Importing
    factor_enrolment: FactorEnrolment
    step_up: StepUp
    passkeys: Passkeys
    events: EventFeed
    webhooks: Webhooks
    access_tokens: AccessTokens
    revocation_watch: RevocationWatch
    mail: MailDelivery
