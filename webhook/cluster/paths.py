"""REST paths of the Kubernetes objects the cluster layer reads and writes.

Names and namespaces are percent-encoded, so a path can never be steered elsewhere by a
name (names come from the cluster or from settings, both validated upstream, but a path
is still built safely).
"""

from __future__ import annotations

import urllib.parse


def api_path(group_version: str, resource: str, namespace: str | None = None, name: str | None = None) -> str:
    """The REST path of a collection or an object, e.g.
    ``api_path("v1", "configmaps", "shop", "otel-collector-sidecar")``."""
    base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    scope = f"/namespaces/{urllib.parse.quote(namespace, safe='')}" if namespace else ""
    item = f"/{urllib.parse.quote(name, safe='')}" if name else ""
    return f"{base}{scope}/{resource}{item}"


def configmap_path(namespace: str, name: str | None = None) -> str:
    """Path of the ConfigMaps of ``namespace``, or of one of them."""
    return api_path("v1", "configmaps", namespace, name)


def secret_path(namespace: str, name: str | None = None) -> str:
    """Path of the Secrets of ``namespace``, or of one of them."""
    return api_path("v1", "secrets", namespace, name)


def lease_path(namespace: str, name: str | None = None) -> str:
    """Path of the coordination.k8s.io/v1 Leases of ``namespace``, or of one of them."""
    return api_path("coordination.k8s.io/v1", "leases", namespace, name)


def mutating_webhook_path(name: str) -> str:
    """Path of a MutatingWebhookConfiguration."""
    return api_path("admissionregistration.k8s.io/v1", "mutatingwebhookconfigurations", None, name)
