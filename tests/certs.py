"""Throwaway certificate authorities and certificates, made at test time.

Keys are EC P-256 (fast to generate); everything is written as PEM files, as an operator
would hand them to authsvc.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_NAME = "authsvc.test"


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, as PEM files."""

    cert: Path
    key: Path


class CertificateAuthority:
    """A self-signed CA that issues server and client certificates into ``directory``."""

    def __init__(self, directory: Path, name: str = "authsvc test CA") -> None:
        self.directory = directory
        self.name = name
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.now(UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )
        self.cert = directory / f"{_slug(name)}.pem"
        self.cert.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    def server(self, dns: str = SERVER_NAME, *, also_client: bool = False) -> Issued:
        """A server certificate for ``dns`` and 127.0.0.1 (usable as a client one too?)."""
        sans: list[x509.GeneralName] = [
            x509.DNSName(dns),
            x509.IPAddress(ip_address("127.0.0.1")),
        ]
        usages = [ExtendedKeyUsageOID.SERVER_AUTH]
        if also_client:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        return self.issue(dns, sans, *usages)

    def client(self, common_name: str, *, dns: str = "", uri: str = "") -> Issued:
        """A client certificate with subject CN ``common_name`` and optional SANs."""
        sans: list[x509.GeneralName] = []
        if dns:
            sans.append(x509.DNSName(dns))
        if uri:
            sans.append(x509.UniformResourceIdentifier(uri))
        return self.issue(common_name, sans, ExtendedKeyUsageOID.CLIENT_AUTH)

    def issue(
        self, common_name: str, sans: list[x509.GeneralName], *usages: x509.ObjectIdentifier
    ) -> Issued:
        """A certificate signed by this CA, written as ``<cn>.pem`` and ``<cn>.key``."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        stem = self.directory / f"{_slug(self.name)}-{_slug(common_name)}"
        issued = Issued(stem.with_suffix(".pem"), stem.with_suffix(".key"))
        issued.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        issued.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return issued


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text)


@dataclass(frozen=True)
class Pki:
    """A client/server CA with a server certificate, and an unrelated CA."""

    ca: CertificateAuthority
    server: Issued
    other_ca: CertificateAuthority

    def tls_settings(self, *, mutual: bool = True) -> dict[str, str]:
        """Setting overrides for a TLS server (requiring client certificates if ``mutual``)."""
        settings = {"tls_cert": str(self.server.cert), "tls_key": str(self.server.key)}
        if mutual:
            settings["tls_client_ca"] = str(self.ca.cert)
        return settings


def make_pki(directory: Path) -> Pki:
    """A fresh Pki in ``directory``."""
    ca = CertificateAuthority(directory)
    return Pki(ca, ca.server(), CertificateAuthority(directory, "another CA"))


def secure_channel(port: int, ca: Path, client: Issued | None = None) -> grpc.Channel:
    """A TLS channel to 127.0.0.1:``port`` trusting ``ca``, presenting ``client`` if given."""
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca.read_bytes(),
        private_key=client.key.read_bytes() if client else None,
        certificate_chain=client.cert.read_bytes() if client else None,
    )
    return grpc.secure_channel(
        f"127.0.0.1:{port}", credentials, options=[("grpc.ssl_target_name_override", SERVER_NAME)]
    )
