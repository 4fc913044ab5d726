"""Certificate generation for the webhook's TLS: a small CA and a serving cert it signs.

Used by ``otel-injector certs`` (the manual path and the local control plane) and by the
self-managed certificate mode. Keys are ECDSA P-256: small, fast to generate, and
accepted by the apiserver's Go TLS stack.

:func:`new_ca` and :func:`sign_cert` are the general pieces (any key usage, subject and
validity); the local control plane's throw-away PKI builds on them too.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

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
        write_private(out / "tls.key", self.tls_key)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` (a private key) to ``path`` with mode 0600, tightening an existing file
    before the key lands in it."""
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(data)


def new_key() -> ec.EllipticCurvePrivateKey:
    """A fresh ECDSA P-256 private key."""
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """``key`` as unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def signature_key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    """digitalSignature, plus keyCertSign and cRLSign for a CA (``cert_sign``)."""
    return x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )


def _name(common_name: str, organizations: Iterable[str] = ()) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, days: int, backdate: dt.timedelta
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - backdate)
        .not_valid_after(now + dt.timedelta(days=days))
    )


def new_ca(
    common_name: str, *, days: int, path_length: int | None = 0, backdate: dt.timedelta = _BACKDATE
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed CA on a fresh key, valid from ``backdate`` ago for ``days``;
    ``path_length`` ``None`` lets it sign intermediate CAs. Returns (cert, key)."""
    key = new_key()
    name = _name(common_name)
    cert = (
        _builder(name, name, key.public_key(), days, backdate)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(signature_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def sign_cert(
    issuer_cert: x509.Certificate,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    common_name: str,
    organizations: Iterable[str] = (),
    dns_names: Iterable[str] = (),
    ips: Iterable[str] = (),
    usages: Sequence[ObjectIdentifier] = (ExtendedKeyUsageOID.SERVER_AUTH,),
    key_usage: x509.KeyUsage | None = None,
    days: int = 365,
    backdate: dt.timedelta = _BACKDATE,
) -> tuple[bytes, bytes]:
    """A leaf cert on a fresh key, signed by the issuer; returns (cert PEM, key PEM).

    The subject is ``O=<each of organizations>, CN=common_name``; ``dns_names`` and
    ``ips`` become subjectAltNames (the extension is left out when both are empty);
    ``usages`` are the extended key usages; ``key_usage``, when given, is added as a
    critical extension. Raises ``ValueError`` for a malformed IP."""
    key = new_key()
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    builder = _builder(_name(common_name, organizations), issuer_cert.subject, key.public_key(), days, backdate)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    cert = (
        builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )
    return _cert_pem(cert), key_pem(key)


def generate_ca(common_name: str = "otel-injector-ca", days: int = 3650) -> tuple[bytes, bytes]:
    """A self-signed CA; returns (cert PEM, key PEM)."""
    cert, key = new_ca(common_name, days=days)
    return _cert_pem(cert), key_pem(key)


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
    return sign_cert(
        ca_cert, ca_key, common_name=dns_names[0] if dns_names else ips[0], dns_names=dns_names, ips=ips, days=days
    )


def generate_bundle(dns_names: Sequence[str], ips: Sequence[str] = (), days: int = 365) -> CertBundle:
    """A new CA and a serving cert for the given SANs, valid for ``days``."""
    ca_cert, ca_key = generate_ca(days=max(days, 3650))
    tls_cert, tls_key = sign_serving_cert(ca_cert, ca_key, dns_names=dns_names, ips=ips, days=days)
    return CertBundle(ca_cert=ca_cert, ca_key=ca_key, tls_cert=tls_cert, tls_key=tls_key)


def not_after(cert_pem: bytes) -> dt.datetime:
    """When the (first) certificate in ``cert_pem`` expires."""
    return x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc
