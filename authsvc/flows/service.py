"""Every flow of the service, as the composition root builds them for the edge."""

from __future__ import annotations

from dataclasses import dataclass

from authsvc.flows.accounts import Accounts
from authsvc.flows.audit_trail import AuditTrail
from authsvc.flows.credentials import Credentials
from authsvc.flows.factors import Factors
from authsvc.flows.housekeeping import Housekeeping
from authsvc.flows.passkeys import Passkeys
from authsvc.flows.sessions import Sessions
from authsvc.flows.sign_in import SignIn
from authsvc.flows.step_up import StepUp


@dataclass(frozen=True)
class Flows:
    """The flows behind AuthService's RPCs."""

    accounts: Accounts
    sign_in: SignIn
    sessions: Sessions
    credentials: Credentials
    audit_trail: AuditTrail
    housekeeping: Housekeeping
    factors: Factors
    step_up: StepUp
    passkeys: Passkeys
