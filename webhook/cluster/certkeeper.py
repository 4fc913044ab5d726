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
rename, the key first, see :func:`webhook.cluster.certfiles.write_files`) and the ``caBundle`` of every webhook in
the MutatingWebhookConfiguration ``settings.webhook_config_name`` is patched when it
differs (a JSON patch guarded by a ``test`` of the resourceVersion).

Running, :class:`CertKeeper` (one per process, started by :mod:`webhook.cluster.controllers`):
every ``cert_sync_seconds`` (a setting, default 30) it reads the Secret. The leader
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

The material itself (checks, issuing) is :mod:`webhook.cluster.certmaterial`; the local
files are :mod:`webhook.cluster.certfiles`.

Modes ``cert-manager`` and ``secret`` need none of this: the chart mounts the Secret, the
kubelet updates the files in place, and the server's file watcher reloads them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from webhook.cluster.backoff import Backoff
from webhook.cluster.certfiles import write_files
from webhook.cluster.certmaterial import (
    RENEW_ANNOTATION,
    Material,
    check,
    issue,
    material_from_secret,
    secret_body,
    serial_of,
    service_dns_names,
)
from webhook.cluster.client import ApiError, Kube
from webhook.cluster.objects import annotations_of
from webhook.cluster.paths import mutating_webhook_path, secret_path
from webhook.config.settings import Settings
from webhook.config.timings import ClusterTimings
from webhook.telemetry.controllerspans import decide, work_span

log = logging.getLogger("webhook.cluster.certkeeper")

BOOTSTRAP_TIMEOUT_SECONDS = 60.0


class SelfCertError(RuntimeError):
    """The certificate could not be bootstrapped; the message says what failed."""


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
            with work_span(kube.tracer, "certificate creation", _span_attributes(namespace, name)) as span:
                decide(span, "create", "no certificate Secret")
                material = issue(None, dns_names)
                try:
                    kube.create(secret_path(namespace), secret_body(name, namespace, material))
                except ApiError as err:
                    if err.conflict:
                        decide(span, "conflict", "another replica created it first: using theirs")
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
        with work_span(kube.tracer, "certificate renewal", _span_attributes(namespace, name)) as span:
            decide(span, "renew-ca" if requested.lower() == "ca" else "renew", reason)
            material = issue(current, dns_names, renew_ca=requested.lower() == "ca")
            try:
                kube.replace(path, secret_body(name, namespace, material, existing=secret))
            except ApiError as err:
                if err.conflict:
                    decide(span, "conflict", "another replica renewed it first: using theirs")
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


def _span_attributes(namespace: str, name: str) -> dict[str, str]:
    return {"otel_injector.object": f"secret/{namespace}/{name}", "k8s.namespace.name": namespace}


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
        attributes = {"otel_injector.object": f"mutatingwebhookconfiguration/{config_name}"}
        with work_span(kube.tracer, "caBundle patch", attributes) as span:
            decide(span, "patch", f"caBundle differs in {len(operations)} webhook(s)")
            try:
                kube.json_patch(
                    path, [{"op": "test", "path": "/metadata/resourceVersion", "value": version}, *operations]
                )
            except ApiError as err:
                if err.conflict or err.status == 422:
                    decide(span, "conflict", "the configuration changed meanwhile: reading it again")
                    continue
                raise
        log.info("patched the caBundle of %d webhook(s) in %s", len(operations), config_name)
        return True
    raise ApiError(409, f"MutatingWebhookConfiguration {config_name}: still conflicting after 5 attempts")


def request_renewal(kube: Kube, namespace: str, name: str, value: str = "now") -> None:
    """Ask the leader to renew the serving cert (``value="ca"``: the CA too) by annotating
    the Secret; the renewal removes the annotation."""
    kube.merge_patch(secret_path(namespace, name), {"metadata": {"annotations": {RENEW_ANNOTATION: value}}})


def bootstrap(settings: Settings, kube: Kube | None = None, *, timeout: float = BOOTSTRAP_TIMEOUT_SECONDS) -> Material:
    """Start-up: find or create the Secret, write the cert files, patch the caBundle.

    Retries API failures with a bounded backoff for ``timeout`` seconds, then raises
    :class:`SelfCertError`. A missing MutatingWebhookConfiguration is logged, not fatal
    (it may be applied after the Deployment; the running process patches it later)."""
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
        interval: float = ClusterTimings().cert_sync_seconds,
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.namespace = settings.injection.namespace
        self.dns_names = service_dns_names(settings.service_name, self.namespace)
        self.is_leader = is_leader
        self.interval = interval
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
