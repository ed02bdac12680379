"""The one thing pyproject.toml cannot say: where authsvc-client comes from.

authsvc imports its generated stubs from authsvc-client (``clients/python``, its own slim
distribution, so calling services never install the server). Neither is on a package
index, so a plain ``pip install .`` must find the client in this checkout. PEP 508 allows
no relative path in a dependency, so the build names the checkout's client by an absolute
``file://`` URL; pip installs it with the server, in the same command. Built from a tree
without ``clients/python`` (an sdist alone), authsvc asks for ``authsvc-client`` by
version from the configured index instead.
"""

from pathlib import Path

from setuptools import setup

CLIENT = Path(__file__).resolve().parent / "clients" / "python"
CLIENT_VERSION = "0.1.0"

DEPENDENCIES = [
    "grpcio>=1.85.1,<2",
    "grpcio-health-checking>=1.85.1,<2",
    "grpcio-reflection>=1.85.1,<2",
    "grpcio-status>=1.85.1,<2",
    "protobuf>=7.35.1,<8",
    "SQLAlchemy>=2.1,<2.2",
    "alembic>=1.14,<2",
    "psycopg2-binary>=2.9.9,<3",
    "Werkzeug>=3.1,<4",
    "zxcvbn==4.5.0",
    "prometheus-client>=0.21,<1",
    # Checking the password hashes of imported users (ImportUsers).
    "bcrypt>=4.1,<6",
    "argon2-cffi>=23.1,<26",
    "cryptography>=44",
    "pyotp>=2.9,<3",
    "webauthn>=2.0,<4",
    "cbor2>=5.6",
    # Signing webhook deliveries (Standard Webhooks); the tests verify with it too.
    "standardwebhooks>=1.3,<2",
    # The mail authsvc sends (AUTHSVC_MAIL_DELIVERY=smtp): its templates.
    "Jinja2>=3.1,<4",
]


def client_requirement() -> str:
    """The checkout's client by file URL, or the released one by version."""
    if (CLIENT / "pyproject.toml").is_file():
        return f"authsvc-client @ {CLIENT.as_uri()}"
    return f"authsvc-client=={CLIENT_VERSION}"


setup(install_requires=[client_requirement(), *DEPENDENCIES])
