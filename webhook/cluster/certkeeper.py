"""Self-managed certificates (``cert_mode: self-managed``): the webhook keeps its own CA and
serving certificate in a Secret, serves them, renews them and publishes the caBundle.

The Secret ``settings.cert_secret`` in the injector's namespace (type kubernetes.io/tls)
holds ``tls.crt``/``tls.key`` (the serving cert), ``ca.crt`` (the CA bundle: the current
CA first, then a previous one until it expires) and ``ca.key`` (the current CA's key).

Start-up, :func:`bootstrap` (called by ``otel-injector serve`` before the server loads
TLS): find the Secret or create it. Creation is create-if-absent: when two replicas race,
one POST wins and the other gets 409 Conflict, re-reads and uses the winner's Secret; a
renewal is a compare-and-swap PUT on the resourceVersion, with the same outcome. Then the
cert and key are written to ``settings.tls_cert``/``settings.tls_key`` (each by an atomic
rename, the key first, see :func:`write_files`) and the ``caBundle`` of every webhook in
the MutatingWebhookConfiguration ``settings.webhook_config_name`` is patched when it
differs (a JSON patch guarded by a ``test`` of the resourceVersion).

Running, :class:`CertKeeper` (one per process, started by :mod:`webhook.cluster.controllers`):
every ``OTEL_INJECTOR_CERT_SYNC_SECONDS`` (default 30) it reads the Secret. The leader
renews it when due, and every replica rewrites its local files when the Secret's cert
differs from them. The server's file watcher (:mod:`webhook.http.server`) then reloads the
same SSLContext: new handshakes get the new cert, connections in flight keep theirs, no
restart, no failed request. The leader also re-patches the caBundle when it drifts.

Lifetimes: serving cert 90 days, renewed once 2/3 of its lifetime has passed (30 days
before expiry), or at once when its SANs or issuer no longer match. The CA lives 10 years
and is reused across renewals; it is replaced at 2/3 of its life too, and the old CA stays
in the bundle until it expires, so the apiserver trusts both during the switch.

Forcing a renewal (tests, or after a suspected key leak)::

    kubectl -n <ns> annotate secret <cert_secret> otel-injector.io/renew=now

The leader renews the serving cert (same CA) at its next sync and removes the annotation;
:func:`request_renewal` does the same from Python. The value ``ca`` renews the CA too.
The SANs are ``<service>``, ``<service>.<ns>``, ``<service>.<ns>.svc`` and
``<service>.<ns>.svc.cluster.local``.

Modes ``cert-manager`` and ``secret`` need none of this: the chart mounts the Secret, the
kubelet updates the files in place, and the server's file watcher reloads them.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from webhook.cluster.client import ApiError, JSONDict, Kube, annotations_of, mutating_webhook_path, secret_path
from webhook.config.settings import Settings
from webhook.core import names
from webhook.tls.certs import generate_ca, sign_serving_cert

log = logging.getLogger("webhook.cluster.certkeeper")

RENEW_ANNOTATION = names.ANNOTATION_PREFIX + "renew"
SERVING_DAYS = 90
CA_DAYS = 3650
RENEW_AT = 2 / 3
SYNC_SECONDS_ENV = "OTEL_INJECTOR_CERT_SYNC_SECONDS"
DEFAULT_SYNC_SECONDS = 30.0
BOOTSTRAP_TIMEOUT_SECONDS = 60.0
DEFAULT_CERT_DIR = Path(tempfile.gettempdir()) / "otel-injector-tls"


class SelfCertError(RuntimeError):
    """The certificate could not be bootstrapped; the message says what failed."""


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


# --- Files --------------------------------------------------------------------------


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_files(material: Material, cert_path: str, key_path: str) -> bool:
    """Write the serving cert and key, each by an atomic rename; returns whether anything
    changed. The key goes first: a reader that sees the new key with the old cert fails
    to load the pair and keeps its current one (OpenSSL refuses a key that does not match
    the loaded cert), then loads both at its next look; the old key with a new cert would
    be the pair no reader can see, since the cert is only replaced after its key."""
    cert, key = Path(cert_path), Path(key_path)
    if _read(cert) == material.tls_cert and _read(key) == material.tls_key:
        return False
    if _read(key) != material.tls_key:
        _atomic_write(key, material.tls_key, 0o600)
    _atomic_write(cert, material.tls_cert, 0o644)
    return True


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


# --- API ----------------------------------------------------------------------------


def ensure_secret(
    kube: Kube,
    *,
    namespace: str,
    name: str,
    dns_names: Sequence[str],
    may_renew: bool = True,
    attempts: int = 5,
) -> tuple[Material, bool]:
    """Find or create the Secret; renew it when due (or asked to) and ``may_renew``.

    Returns (material, written). Conflicts (a racing replica) are resolved by re-reading:
    whoever wrote first wins and everyone converges on that Secret. Raises
    :class:`ApiError`."""
    path = secret_path(namespace, name)
    for _ in range(attempts):
        secret = kube.get_or_none(path)
        current = material_from_secret(secret)
        if secret is None:
            material = issue(None, dns_names)
            try:
                kube.create(secret_path(namespace), secret_body(name, namespace, material))
            except ApiError as err:
                if err.conflict:
                    continue  # another replica created it first: use theirs
                raise
            serial = f"{serial_of(material.tls_cert):x}"
            log.info("created certificate Secret %s/%s", namespace, name, extra={"serial": serial})
            return material, True
        requested = str(annotations_of(secret).get(RENEW_ANNOTATION, "")).strip()
        problem = check(current, dns_names) if current is not None else "the Secret lacks ca.crt/ca.key/tls.crt/tls.key"
        if current is not None and problem is None and not requested:
            return current, False
        if not may_renew:
            if current is None:
                raise ApiError(0, f"Secret {namespace}/{name}: {problem}; waiting for the leader to renew it")
            return current, False
        reason = problem or f"renewal requested ({RENEW_ANNOTATION}={requested})"
        material = issue(current, dns_names, renew_ca=requested.lower() == "ca")
        try:
            kube.replace(path, secret_body(name, namespace, material, existing=secret))
        except ApiError as err:
            if err.conflict:
                continue
            raise
        log.info(
            "renewed certificate Secret %s/%s: %s",
            namespace,
            name,
            reason,
            extra={"serial": f"{serial_of(material.tls_cert):x}"},
        )
        return material, True
    raise ApiError(409, f"Secret {namespace}/{name}: still conflicting after {attempts} attempts")


def patch_ca_bundle(kube: Kube, config_name: str, ca_bundle_b64: str) -> bool:
    """Set ``caBundle`` on every webhook of the MutatingWebhookConfiguration where it
    differs; returns whether it patched. A JSON patch with a ``test`` of the
    resourceVersion, so a concurrent edit is never overwritten (409/422 → read again)."""
    path = mutating_webhook_path(config_name)
    for _ in range(5):
        config = kube.get(path)
        operations: list[dict[str, Any]] = []
        for index, hook in enumerate(config.get("webhooks") or []):
            client = hook.get("clientConfig") or {}
            if client.get("caBundle") != ca_bundle_b64:
                operations.append(
                    {"op": "add", "path": f"/webhooks/{index}/clientConfig/caBundle", "value": ca_bundle_b64}
                )
        if not operations:
            return False
        version = (config.get("metadata") or {}).get("resourceVersion")
        try:
            kube.json_patch(path, [{"op": "test", "path": "/metadata/resourceVersion", "value": version}, *operations])
        except ApiError as err:
            if err.conflict or err.status == 422:
                continue
            raise
        log.info("patched the caBundle of %d webhook(s) in %s", len(operations), config_name)
        return True
    raise ApiError(409, f"MutatingWebhookConfiguration {config_name}: still conflicting after 5 attempts")


def request_renewal(kube: Kube, namespace: str, name: str, value: str = "now") -> None:
    """Ask the leader to renew the serving cert (``value="ca"``: the CA too) by annotating
    the Secret; the renewal removes the annotation."""
    kube.merge_patch(secret_path(namespace, name), {"metadata": {"annotations": {RENEW_ANNOTATION: value}}})


def with_cert_paths(settings: Settings) -> Settings:
    """``settings`` with tls_cert/tls_key defaulted to files under the temp directory
    when they are not set (self-managed mode writes them itself)."""
    import dataclasses

    cert = settings.tls_cert or str(DEFAULT_CERT_DIR / "tls.crt")
    key = settings.tls_key or str(DEFAULT_CERT_DIR / "tls.key")
    return dataclasses.replace(settings, tls_cert=cert, tls_key=key)


def bootstrap(settings: Settings, kube: Kube | None = None, *, timeout: float = BOOTSTRAP_TIMEOUT_SECONDS) -> Material:
    """Start-up: find or create the Secret, write the cert files, patch the caBundle.

    Retries API failures with a bounded backoff for ``timeout`` seconds, then raises
    :class:`SelfCertError`. A missing MutatingWebhookConfiguration is logged, not fatal
    (it may be applied after the Deployment; the running process patches it later)."""
    from webhook.cluster.client import Backoff

    namespace = settings.injection.namespace
    dns_names = service_dns_names(settings.service_name, namespace)
    deadline = time.monotonic() + timeout
    backoff = Backoff(0.5, 5.0)
    last: Exception | None = None
    client = kube
    while time.monotonic() < deadline:
        try:
            if client is None:
                client = Kube.connect(settings.kubeconfig)
            material, _ = ensure_secret(client, namespace=namespace, name=settings.cert_secret, dns_names=dns_names)
            if write_files(material, settings.tls_cert, settings.tls_key):
                log.info("wrote the serving certificate", extra={"cert": settings.tls_cert})
            try:
                patch_ca_bundle(client, settings.webhook_config_name, material.ca_bundle_b64)
            except ApiError as err:
                if not err.not_found:
                    raise
                log.warning(
                    "MutatingWebhookConfiguration %s not found; its caBundle will be patched once it exists",
                    settings.webhook_config_name,
                )
        except ApiError as err:
            last = err
            log.warning("certificate bootstrap: %s", err)
        else:
            return material
        time.sleep(min(backoff.next(), max(0.0, deadline - time.monotonic())))
    raise SelfCertError(f"could not bootstrap the serving certificate within {timeout:.0f}s: {last}")


class CertKeeper:
    """Keeps this process's cert files, the Secret and the caBundle current (a thread)."""

    def __init__(
        self,
        kube: Kube,
        settings: Settings,
        *,
        is_leader: Callable[[], bool] = lambda: True,
        interval: float | None = None,
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.namespace = settings.injection.namespace
        self.dns_names = service_dns_names(settings.service_name, self.namespace)
        self.is_leader = is_leader
        self.interval = (
            interval if interval is not None else float(os.environ.get(SYNC_SECONDS_ENV, DEFAULT_SYNC_SECONDS))
        )
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Sync every ``interval`` seconds in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="cert-keeper", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop syncing (bounded)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        """Sync now (say, on becoming leader)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync()
            except ApiError as err:
                log.warning("certificate sync: %s", err)
            except Exception:
                log.exception("certificate sync failed")
            self._wake.wait(self.interval)
            self._wake.clear()

    def sync(self) -> bool:
        """One round; returns whether the local files changed."""
        leader = self.is_leader()
        material, _ = ensure_secret(
            self.kube,
            namespace=self.namespace,
            name=self.settings.cert_secret,
            dns_names=self.dns_names,
            may_renew=leader,
        )
        changed = write_files(material, self.settings.tls_cert, self.settings.tls_key)
        if changed:
            log.info("serving certificate files updated", extra={"serial": f"{serial_of(material.tls_cert):x}"})
        if leader:
            try:
                patch_ca_bundle(self.kube, self.settings.webhook_config_name, material.ca_bundle_b64)
            except ApiError as err:
                if not err.not_found:
                    raise
        return changed
