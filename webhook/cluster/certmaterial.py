"""The self-managed certificate material: what the Secret holds, whether it is due for
renewal, and new material when it is. Pure (no I/O beyond the crypto library); the
lifetimes and the renewal rule are described in :mod:`webhook.cluster.certkeeper`.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from webhook.cluster.objects import JSONDict, annotations_of
from webhook.core import names
from webhook.tls.certs import generate_ca, sign_serving_cert

RENEW_ANNOTATION = names.ANNOTATION_PREFIX + "renew"
SERVING_DAYS = 90
CA_DAYS = 3650
RENEW_AT = 2 / 3


@dataclass(frozen=True)
class Material:
    """The PEM contents of the Secret."""

    ca_bundle: bytes  # current CA first, then any previous CA still valid
    ca_key: bytes
    tls_cert: bytes
    tls_key: bytes

    @property
    def ca_cert(self) -> bytes:
        """The current CA (the first certificate of the bundle)."""
        return _split_pem(self.ca_bundle)[0]

    @property
    def ca_bundle_b64(self) -> str:
        """The ``caBundle`` value for a webhook configuration."""
        return base64.b64encode(self.ca_bundle).decode("ascii")


def service_dns_names(service: str, namespace: str) -> list[str]:
    """The serving cert's SANs for the webhook Service."""
    return [service, f"{service}.{namespace}", f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local"]


_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def _split_pem(bundle: bytes) -> list[bytes]:
    """The PEM certificates in ``bundle``, each ending in a newline."""
    return [match.group(0) + b"\n" for match in _PEM_CERT.finditer(bundle)]


def material_from_secret(secret: JSONDict | None) -> Material | None:
    """The :class:`Material` in a Secret, or ``None`` when a key is missing or not PEM."""
    data = (secret or {}).get("data") or {}
    try:
        values = {k: base64.b64decode(data[k], validate=True) for k in ("ca.crt", "ca.key", "tls.crt", "tls.key")}
    except (KeyError, ValueError, TypeError):
        return None
    if not all(v.startswith(b"-----BEGIN") for v in values.values()):
        return None
    return Material(
        ca_bundle=values["ca.crt"], ca_key=values["ca.key"], tls_cert=values["tls.crt"], tls_key=values["tls.key"]
    )


def secret_body(name: str, namespace: str, material: Material, existing: JSONDict | None = None) -> JSONDict:
    """The Secret holding ``material``. With ``existing`` its metadata is kept (so a PUT is
    a compare-and-swap) minus the renew annotation, which this write answers."""
    metadata: JSONDict = {"name": name, "namespace": namespace}
    if existing is not None:
        metadata = {k: v for k, v in (existing.get("metadata") or {}).items() if k != "managedFields"}
        annotations = {k: v for k, v in annotations_of(existing).items() if k != RENEW_ANNOTATION}
        metadata["annotations"] = annotations
    metadata["labels"] = {**(metadata.get("labels") or {}), "app.kubernetes.io/managed-by": "otel-injector"}

    def b64(value: bytes) -> str:
        return base64.b64encode(value).decode("ascii")

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": metadata,
        "data": {
            "ca.crt": b64(material.ca_bundle),
            "ca.key": b64(material.ca_key),
            "tls.crt": b64(material.tls_cert),
            "tls.key": b64(material.tls_key),
        },
    }


def _due(cert: x509.Certificate, now: dt.datetime, fraction: float = RENEW_AT) -> bool:
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    return now >= start + (end - start) * fraction


def check(material: Material, dns_names: Sequence[str], now: dt.datetime | None = None) -> str | None:
    """Why ``material`` must be renewed now, or ``None`` when it is good. Pure."""
    moment = now or dt.datetime.now(dt.UTC)
    try:
        ca = x509.load_pem_x509_certificate(material.ca_cert)
        leaf = x509.load_pem_x509_certificate(material.tls_cert)
        ca_key = serialization.load_pem_private_key(material.ca_key, password=None)
        key = serialization.load_pem_private_key(material.tls_key, password=None)
    except (ValueError, TypeError, IndexError) as err:
        return f"unreadable certificate or key: {err}"
    if _public(ca_key) != _public_of(ca):
        return "the CA key does not match the CA certificate"
    if _public(key) != _public_of(leaf):
        return "the serving key does not match the serving certificate"
    if _due(ca, moment):
        return f"the CA is due for renewal (expires {ca.not_valid_after_utc:%Y-%m-%d})"
    try:
        leaf.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return "the serving certificate was not signed by the current CA"
    if _due(leaf, moment):
        return f"the serving certificate is due for renewal (expires {leaf.not_valid_after_utc:%Y-%m-%d})"
    try:
        sans = set(
            leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
        )
    except x509.ExtensionNotFound:
        sans = set()
    missing = sorted(set(dns_names) - sans)
    if missing:
        return f"the serving certificate lacks the SANs {', '.join(missing)}"
    return None


def _public(key: Any) -> bytes:
    return bytes(
        key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _public_of(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def issue(
    previous: Material | None,
    dns_names: Sequence[str],
    *,
    renew_ca: bool = False,
    now: dt.datetime | None = None,
    serving_days: int = SERVING_DAYS,
) -> Material:
    """New material: a fresh serving cert, signed by the previous CA when it is readable,
    not due and not ``renew_ca``; otherwise by a new CA, with the previous CA kept in the
    bundle while it is still valid."""
    moment = now or dt.datetime.now(dt.UTC)
    ca_cert, ca_key, older = b"", b"", b""
    if previous is not None:
        try:
            ca = x509.load_pem_x509_certificate(previous.ca_cert)
            serialization.load_pem_private_key(previous.ca_key, password=None)
            usable = not renew_ca and not _due(ca, moment)
            if usable:
                ca_cert, ca_key = previous.ca_cert, previous.ca_key
                older = b"".join(p for p in _split_pem(previous.ca_bundle)[1:] if _valid(p, moment))
            elif ca.not_valid_after_utc > moment:
                older = previous.ca_cert
        except (ValueError, TypeError, IndexError):
            pass
    if not ca_cert:
        ca_cert, ca_key = generate_ca(days=CA_DAYS)
    tls_cert, tls_key = sign_serving_cert(ca_cert, ca_key, dns_names=dns_names, days=serving_days)
    return Material(ca_bundle=ca_cert + older, ca_key=ca_key, tls_cert=tls_cert, tls_key=tls_key)


def _valid(pem: bytes, now: dt.datetime) -> bool:
    try:
        return x509.load_pem_x509_certificate(pem).not_valid_after_utc > now
    except ValueError:
        return False


def serial_of(cert_pem: bytes) -> int:
    """The serial number of the first certificate in ``cert_pem``."""
    return int(x509.load_pem_x509_certificate(cert_pem).serial_number)
