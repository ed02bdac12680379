"""Multi-factor sign-in: what sessions prove, TOTP, recovery codes, challenges, step-up."""

from __future__ import annotations

from authsvc.v1 import auth_service_pb2 as pb
from tests.helpers import sign_in, sign_up

PASSWORD_METHOD = pb.AUTHENTICATION_METHOD_TYPE_PASSWORD


def test_password_sign_in_records_the_password_at_aal1(stub, clock) -> None:
    sign_up(stub)
    done = sign_in(stub)
    for _ in range(2):  # the second answer comes from the validation cache
        seen = stub.ValidateToken(pb.ValidateTokenRequest(session_token=done.session_token))
        methods = seen.session.authentication_methods
        assert [m.method for m in methods] == [PASSWORD_METHOD]
        assert methods[0].time.ToDatetime().timestamp() == clock.now.timestamp()
        assert seen.session.assurance_level == pb.ASSURANCE_LEVEL_AAL1
    assert done.session.assurance_level == pb.ASSURANCE_LEVEL_AAL1
    assert not done.HasField("challenge")
    assert not done.second_factor_enrollment_required
