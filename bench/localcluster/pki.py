"""Throw-away PKI for the local control plane: a CA, certificates it issues, SA keys.

Everything here is for tests on loopback: keys are unencrypted ECDSA P-256 (fast to
generate, accepted by kube-apiserver for serving, client and service-account keys) and
certificates are valid from a minute ago for ``valid_days``. The certificates themselves
are made by :mod:`webhook.tls.certs`, the product's own CA and signing code.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from webhook.tls.certs import key_pem, new_ca, new_key, sign_cert, signature_key_usage, write_private

_BACKDATE = datetime.timedelta(minutes=1)


@dataclass(frozen=True)
class CertKeyPair:
    """A PEM certificate and its unencrypted PEM private key."""

    cert_pem: bytes
    key_pem: bytes

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        """Write ``<stem>.crt`` and ``<stem>.key`` (mode 0600) into ``directory``; return both paths."""
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert_path.write_bytes(self.cert_pem)
        write_private(key_path, self.key_pem)
        return cert_path, key_path


class CertificateAuthority:
    """A self-signed CA that issues serving and client certificates."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        self._key = key
        self._cert = cert

    @classmethod
    def generate(cls, common_name: str = "otel-injector-bench-ca", *, valid_days: int = 365) -> CertificateAuthority:
        """Create a new CA with a fresh key."""
        cert, key = new_ca(common_name, days=valid_days, path_length=None, backdate=_BACKDATE)
        return cls(key, cert)

    @property
    def cert_pem(self) -> bytes:
        """The CA certificate in PEM form (what clients trust)."""
        return self._cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pair(self) -> CertKeyPair:
        """The CA certificate together with its private key."""
        return CertKeyPair(self.cert_pem, key_pem(self._key))

    def issue(
        self,
        common_name: str,
        *,
        organizations: Iterable[str] = (),
        dns_names: Iterable[str] = (),
        ip_addresses: Iterable[str] = (),
        server: bool = False,
        client: bool = False,
        valid_days: int = 365,
    ) -> CertKeyPair:
        """Issue a leaf certificate signed by this CA.

        ``organizations`` become O= attributes (Kubernetes reads them as groups, e.g.
        ``system:masters``); ``dns_names`` and ``ip_addresses`` become subjectAltNames;
        ``server``/``client`` select the extended key usages. At least one of them must
        be true.
        """
        if not (server or client):
            raise ValueError("a leaf certificate needs server and/or client usage")
        usages = []
        if server:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        if client:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        cert, key = sign_cert(
            self._cert,
            self._key,
            common_name=common_name,
            organizations=organizations,
            dns_names=dns_names,
            ips=ip_addresses,
            usages=usages,
            key_usage=signature_key_usage(cert_sign=False),
            days=valid_days,
            backdate=_BACKDATE,
        )
        return CertKeyPair(cert, key)


def service_account_key_pair() -> CertKeyPair:
    """Return a fresh signing key for service-account tokens.

    ``cert_pem`` holds the PEM *public key* (for ``--service-account-key-file``) and
    ``key_pem`` the private key (for ``--service-account-signing-key-file``).
    """
    key = new_key()
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return CertKeyPair(public, key_pem(key))
