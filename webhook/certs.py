"""Certificate generation for the webhook's TLS: a small CA and a serving cert it signs.

Used by ``otel-injector certs`` (the manual path and the local control plane) and by the
self-managed certificate mode. Keys are ECDSA P-256: small, fast to generate, and
accepted by the apiserver's Go TLS stack.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Backdating absorbs clock skew between the machine that signs and the apiserver.
_BACKDATE = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class CertBundle:
    """PEM bytes of a CA cert and of a serving cert + key signed by it."""

    ca_cert: bytes
    ca_key: bytes
    tls_cert: bytes
    tls_key: bytes

    @property
    def ca_bundle(self) -> str:
        """The base64 ``caBundle`` for a webhook configuration."""
        return base64.b64encode(self.ca_cert).decode("ascii")

    def write(self, out: Path) -> None:
        """Write ``ca.crt``, ``tls.crt`` and ``tls.key`` (mode 0600) into ``out``.

        The CA key is not written: the manual path never needs to sign again."""
        out.mkdir(parents=True, exist_ok=True)
        (out / "ca.crt").write_bytes(self.ca_cert)
        (out / "tls.crt").write_bytes(self.tls_cert)
        key = out / "tls.key"
        key.touch(mode=0o600, exist_ok=True)
        key.chmod(0o600)
        key.write_bytes(self.tls_key)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def generate_ca(common_name: str = "otel-injector-ca", days: int = 3650) -> tuple[bytes, bytes]:
    """A self-signed CA; returns (cert PEM, key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def sign_serving_cert(
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    *,
    dns_names: Sequence[str],
    ips: Sequence[str] = (),
    days: int = 365,
) -> tuple[bytes, bytes]:
    """A serving cert for ``dns_names`` and ``ips`` signed by the CA; (cert PEM, key PEM).

    Raises ``ValueError`` for no SANs or a malformed IP."""
    if not dns_names and not ips:
        raise ValueError("a serving cert needs at least one --dns-name or --ip")
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TypeError("the CA key must be an EC key")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(dns_names[0] if dns_names else ips[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def generate_bundle(dns_names: Sequence[str], ips: Sequence[str] = (), days: int = 365) -> CertBundle:
    """A new CA and a serving cert for the given SANs, valid for ``days``."""
    ca_cert, ca_key = generate_ca(days=max(days, 3650))
    tls_cert, tls_key = sign_serving_cert(ca_cert, ca_key, dns_names=dns_names, ips=ips, days=days)
    return CertBundle(ca_cert=ca_cert, ca_key=ca_key, tls_cert=tls_cert, tls_key=tls_key)


def not_after(cert_pem: bytes) -> dt.datetime:
    """When the (first) certificate in ``cert_pem`` expires."""
    return x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc
