"""``buf curl`` through server reflection: no proto files, just a running authsvc.

This is how an operator or a caller in any language pokes the service from a shell; the
README shows the same commands.
"""

from __future__ import annotations

import base64
import json
import subprocess
from typing import Any

from google.rpc import error_details_pb2

from tests.helpers import PASSWORD
from tests.node_tools import npm_tool


def buf_curl(
    address: str, method: str, body: dict[str, Any] | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs one unary call with ``buf curl`` (gRPC over plaintext HTTP/2, via reflection)."""
    args = [npm_tool("buf"), "curl", "--protocol", "grpc", "--http2-prior-knowledge"]
    if body is not None:
        args += ["--data", json.dumps(body)]
    return subprocess.run(
        [*args, f"http://{address}/{method}"], capture_output=True, text=True, timeout=60
    )


def call(address: str, method: str, body: dict[str, Any] | None = None) -> Any:
    """A call that must succeed; returns its response as parsed JSON."""
    result = buf_curl(address, method, body)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_buf_curl_signs_up_signs_in_and_validates_by_reflection(server_address: str):
    user = call(
        server_address,
        "authsvc.v1.AuthService/CreateUser",
        {
            "email": "Grace@Example.com",
            "password": PASSWORD,
            "firstName": "Grace",
            "lastName": "Hopper",
        },
    )["user"]
    assert user["email"] == "grace@example.com"
    assert "password" not in json.dumps(user).lower()

    signed_in = call(
        server_address,
        "authsvc.v1.AuthService/CreateSession",
        {"email": "grace@example.com", "password": PASSWORD},
    )
    valid = call(
        server_address,
        "authsvc.v1.AuthService/ValidateToken",
        {"sessionToken": signed_in["sessionToken"]},
    )
    assert valid["user"]["id"] == user["id"]
    assert valid["session"]["id"] == signed_in["session"]["id"]


def test_buf_curl_reports_grpc_error_with_error_info(server_address: str):
    body = {"email": "ada@example.com", "password": PASSWORD, "firstName": "A", "lastName": "L"}
    call(server_address, "authsvc.v1.AuthService/CreateUser", body)
    result = buf_curl(server_address, "authsvc.v1.AuthService/CreateUser", body)
    assert result.returncode != 0
    error = json.loads(result.stderr)
    assert error["code"] == "already_exists"
    [detail] = error["details"]
    assert detail["type"] == "google.rpc.ErrorInfo"
    # buf curl prints the detail's bytes as unpadded base64 when it cannot resolve the type.
    raw = base64.b64decode(detail["value"] + "=" * (-len(detail["value"]) % 4))
    info = error_details_pb2.ErrorInfo.FromString(raw)
    assert (info.reason, info.domain) == ("EMAIL_TAKEN", "authsvc")


def test_buf_curl_health_check_is_serving(server_address: str):
    assert call(server_address, "grpc.health.v1.Health/Check") == {"status": "SERVING"}
