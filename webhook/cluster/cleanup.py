"""What ``helm uninstall`` runs around the release's own deletion (``otel-injector uninstall``).

helm 3 deletes a MutatingWebhookConfiguration last (its kind is not in helm 3's uninstall
order; helm 4 puts webhooks first), so pods created during an uninstall would still be
sent to a webhook whose pods are going away. And helm knows nothing of what the injector
itself creates. The chart runs two hook Jobs with the webhook's image:

* ``pre-delete``, :func:`unregister`: delete the MutatingWebhookConfiguration and wait
  until it is gone, before anything else of the release is touched. From then on the
  apiserver calls no webhook for a new pod.
* ``post-delete``, :func:`remove_leftovers`: once the injector's pods are gone (so no
  reconciler can repair what is removed), delete what the injector made: the collector
  ConfigMap copies it manages (the ``managed-by`` label; never a user's, never one
  annotated ``otel-injector.io/managed: "false"``), its certificate Secret in
  self-managed mode, and its leader Lease.

Each step is idempotent: a missing object is not an error, so a re-run uninstall passes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from webhook.cluster.client import ApiError, Kube
from webhook.cluster.copies import MANAGED_BY, MANAGED_BY_LABEL, Ownership, ownership
from webhook.cluster.objects import object_key
from webhook.cluster.paths import api_path, configmap_path, lease_path, mutating_webhook_path, secret_path
from webhook.config.settings import Settings

log = logging.getLogger("webhook.cluster.cleanup")

WAIT_SECONDS = 120.0


def _wait(what: str, done: Callable[[], bool], timeout: float, interval: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise ApiError(0, f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def unregister(kube: Kube, settings: Settings, *, timeout: float = WAIT_SECONDS) -> bool:
    """Delete the MutatingWebhookConfiguration and wait until it is gone; returns
    whether it existed."""
    path = mutating_webhook_path(settings.webhook_config_name)
    existed = kube.delete(path)
    _wait(f"{path} to go", lambda: kube.get_or_none(path) is None, timeout)
    log.info("webhook configuration removed", extra={"name": settings.webhook_config_name, "existed": existed})
    return existed


def remove_leftovers(kube: Kube, settings: Settings, *, pod_selector: str, timeout: float = WAIT_SECONDS) -> list[str]:
    """Wait until no pod matches ``pod_selector`` in the injector's namespace, then
    delete the managed copies, the self-managed Secret and the Lease; returns what it
    deleted (``kind namespace/name``)."""
    namespace = settings.injection.namespace

    def no_pods() -> bool:
        items, _ = kube.list(api_path("v1", "pods", namespace), label_selector=pod_selector)
        return not items

    _wait(f"the pods {pod_selector} in {namespace} to go", no_pods, timeout)
    removed: list[str] = []
    copies, _ = kube.list(api_path("v1", "configmaps"), label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY}")
    for copy in copies:
        copy_namespace, copy_name = object_key(copy)
        if copy_name != settings.injection.config_map or ownership(copy) is not Ownership.MANAGED:
            continue
        uid = str((copy.get("metadata") or {}).get("uid") or "") or None
        if kube.delete(configmap_path(copy_namespace, copy_name), uid=uid):
            removed.append(f"configmap {copy_namespace}/{copy_name}")
    if settings.cert_mode == "self-managed" and kube.delete(secret_path(namespace, settings.cert_secret)):
        removed.append(f"secret {namespace}/{settings.cert_secret}")
    if kube.delete(lease_path(namespace, settings.lease_name)):
        removed.append(f"lease {namespace}/{settings.lease_name}")
    log.info("leftovers removed", extra={"removed": removed})
    return removed
