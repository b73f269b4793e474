"""A swarm's X.509 material, made with the ``cryptography`` package (no openssl command line).

One CA per swarm signs a broker server certificate (its subject alternative names are the broker's
host names and addresses) and one client certificate per identity, whose common name is the
identity (a peer id, or ``watch``): Mosquitto's ``use_identity_as_username`` turns it into the
user name its ACL file speaks of. Keys are ECDSA P-256; private keys are PEM (PKCS#8), written
0600 and never overwritten.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from peer.security.credentials import write_secret
from protocol.errors import ConfigError

__all__ = [
    "Authority",
    "issue_client",
    "issue_server",
    "new_authority",
    "write_cert",
    "write_key",
]

_CA_DAYS = 3650
_LEAF_DAYS = 825


@dataclass(frozen=True)
class Authority:
    """The swarm CA: its certificate and private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def load(cls, cert_path: Path, key_path: Path) -> Authority:
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"swarm CA {str(cert_path)!r}: cannot load it ({exc})") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigError(f"swarm CA key {str(key_path)!r}: expected an EC private key")
        return cls(cert, key)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: str, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, days: int
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
    )


def new_authority(swarm: str) -> Authority:
    """A fresh self-signed CA for ``swarm``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(f"rumor swarm {swarm} CA")
    cert = (
        _builder(f"rumor swarm {swarm} CA", name, key, _CA_DAYS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
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
        .sign(key, hashes.SHA256())
    )
    return Authority(cert, key)


def _leaf(
    ca: Authority, subject: str, usage: x509.ObjectIdentifier, names: list[x509.GeneralName]
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _builder(subject, ca.cert.subject, key, _LEAF_DAYS)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca.key, hashes.SHA256()), key


Leaf = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def issue_client(ca: Authority, identity: str) -> Leaf:
    """A TLS client certificate whose common name is ``identity``."""
    return _leaf(ca, identity, ExtendedKeyUsageOID.CLIENT_AUTH, [])


def issue_server(ca: Authority, hosts: list[str]) -> Leaf:
    """The broker's certificate, valid for each of ``hosts`` (names or IP addresses)."""
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return _leaf(ca, hosts[0], ExtendedKeyUsageOID.SERVER_AUTH, names)


def write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """Write a private key 0600; ConfigError if the file exists (never silently replaced)."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_secret(path, pem)
