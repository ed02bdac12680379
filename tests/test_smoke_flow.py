from authsvc.v1 import auth_service_pb2 as pb
from tests.helpers import fails, sign_in, sign_up


def test_sign_up_sign_in_validate_refresh_sign_out(stub):
    user = sign_up(stub)
    s = sign_in(stub)
    v = stub.ValidateToken(pb.ValidateTokenRequest(session_token=s.session_token))
    assert v.user.id == user.id
    r = stub.RefreshSession(pb.RefreshSessionRequest(update_token=s.update_token))
    assert (
        fails(stub.ValidateToken, pb.ValidateTokenRequest(session_token=s.session_token)).reason
        == "TOKEN_INVALID"
    )
    stub.DeleteSession(pb.DeleteSessionRequest(session_token=r.session_token))
    assert (
        fails(stub.ValidateToken, pb.ValidateTokenRequest(session_token=r.session_token)).reason
        == "TOKEN_INVALID"
    )
