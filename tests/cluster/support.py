"""Helpers for the in-cluster tests: namespaces, TLS requests, the serve process."""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.localcluster.controlplane import ControlPlane, ManagedProcess, free_port
from bench.localcluster.injector import https_ready, serve_argv
from webhook.cluster.client import Kube
from webhook.cluster.paths import api_path, configmap_path


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def make_namespace(kube: Kube, name: str, labels: Mapping[str, str] | None = None) -> str:
    kube.create(api_path("v1", "namespaces"), {"metadata": {"name": name, "labels": dict(labels or {})}})
    return name


def label_namespace(kube: Kube, name: str, labels: Mapping[str, str | None]) -> None:
    kube.merge_patch(api_path("v1", "namespaces", None, name), {"metadata": {"labels": dict(labels)}})


def delete_namespaces(kube: Kube, *names: str) -> None:
    for name in names:
        kube.delete(api_path("v1", "namespaces", None, name))


def put_source(kube: Kube, namespace: str, name: str, config: str) -> None:
    """Create or replace the source collector ConfigMap."""
    body = {"metadata": {"name": name, "namespace": namespace}, "data": {"config.yaml": config}}
    existing = kube.get_or_none(configmap_path(namespace, name))
    if existing is None:
        kube.create(configmap_path(namespace), body)
    else:
        body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
        kube.replace(configmap_path(namespace, name), body)


@dataclass
class Tls:
    """Loopback TLS material from ``otel-injector certs``'s code path."""

    directory: Path
    ca_bundle: str

    @property
    def cert(self) -> str:
        return str(self.directory / "tls.crt")

    @property
    def key(self) -> str:
        return str(self.directory / "tls.key")

    @property
    def ca(self) -> str:
        return str(self.directory / "ca.crt")

    def context(self) -> ssl.SSLContext:
        """Trusts the CA that signed the serving cert."""
        return ssl.create_default_context(cafile=self.ca)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Keep-alive HTTPS to 127.0.0.1 that verifies the cert for ``server_hostname``."""

    def __init__(self, port: int, context: ssl.SSLContext, server_hostname: str, timeout: float = 5.0) -> None:
        super().__init__("127.0.0.1", port, context=context, timeout=timeout)
        self._context = context
        self._name = server_hostname

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self._name)


def serve(
    cluster: ControlPlane,
    name: str,
    *,
    tls_cert: str,
    tls_key: str,
    context: Callable[[], ssl.SSLContext | None],
    env: Mapping[str, str],
    server_hostname: str | None = None,
    timeout: float = 60.0,
) -> tuple[ManagedProcess, int]:
    """Start ``otel-injector serve`` against the cluster; returns (process, port) once
    /readyz answers over TLS verified with the SSL context ``context()`` returns (``None``:
    not yet known)."""
    port = free_port()
    full_env = {
        "KUBECONFIG": str(cluster.kubeconfig),
        "OTEL_SDK_DISABLED": "true",
        "OTEL_INJECTOR_LOG_LEVEL": "INFO",
        **env,
    }
    ready = https_ready(port, context, server_hostname=server_hostname)
    process = cluster.start_process(name, serve_argv(port, tls_cert, tls_key), full_env, ready=ready, timeout=timeout)
    return process, port


def webhook_configuration(name: str, url: str, *, ca_bundle: str | None, namespace_label: str) -> dict[str, Any]:
    """A MutatingWebhookConfiguration calling ``url`` for pods labelled ``tracing=enabled``
    in namespaces labelled ``<namespace_label>=true`` (only this test's namespaces), and a
    second webhook for pods of traced namespaces, as the chart has."""
    client: dict[str, Any] = {"url": url}
    if ca_bundle:
        client["caBundle"] = ca_bundle
    common = {
        "admissionReviewVersions": ["v1"],
        "sideEffects": "NoneOnDryRun",
        "failurePolicy": "Fail",
        "timeoutSeconds": 5,
        "reinvocationPolicy": "IfNeeded",
        "clientConfig": client,
        "rules": [
            {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "scope": "*"}
        ],
    }
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                **common,
                "name": "namespace.otel-injector.io",
                "namespaceSelector": {"matchLabels": {namespace_label: "true", "tracing": "enabled"}},
                "objectSelector": {
                    "matchExpressions": [{"key": "tracing", "operator": "NotIn", "values": ["disabled"]}]
                },
            },
            {
                **common,
                "name": "object.otel-injector.io",
                "namespaceSelector": {
                    "matchLabels": {namespace_label: "true"},
                    "matchExpressions": [{"key": "tracing", "operator": "NotIn", "values": ["enabled"]}],
                },
                "objectSelector": {"matchLabels": {"tracing": "enabled"}},
            },
        ],
    }


def mwc_path(name: str) -> str:
    return api_path("admissionregistration.k8s.io/v1", "mutatingwebhookconfigurations", None, name)


@dataclass
class ReconcilingWebhook:
    """A ``serve`` process that reconciles the source ConfigMap in ``namespace`` and is the
    admission webhook for pods in namespaces labelled ``<namespace_label>=true``."""

    namespace: str
    port: int
    namespace_label: str
    #: More namespaces to delete with ``namespace`` when the webhook is torn down.
    namespaces: list[str] = field(default_factory=list)


@contextlib.contextmanager
def reconciling_webhook(
    cluster: ControlPlane,
    kube: Kube,
    tls: Tls,
    prefix: str,
    *,
    source: str,
    config: str,
    env: Mapping[str, str] | None = None,
) -> Iterator[ReconcilingWebhook]:
    """Put ``config`` as ``source`` into a new namespace, serve with the reconciler on over
    ``tls`` (``env`` added) and register the webhook; on exit unregister it, stop the
    process and delete the namespaces."""
    namespace = make_namespace(kube, unique(f"inj-{prefix}"))
    put_source(kube, namespace, source, config)
    process, port = serve(
        cluster,
        f"serve-{prefix}",
        tls_cert=tls.cert,
        tls_key=tls.key,
        context=tls.context,
        env={
            "OTEL_INJECTOR_RECONCILE": "true",
            "OTEL_INJECTOR_NAMESPACE": namespace,
            "OTEL_INJECTOR_COLLECTOR_SOURCE": source,
            **(env or {}),
        },
    )
    webhook = ReconcilingWebhook(namespace, port, unique(f"e2e-{prefix}"))
    mwc = unique(f"otel-injector-{prefix}")
    kube.create(
        mwc_path(""),
        webhook_configuration(
            mwc, f"https://127.0.0.1:{port}/mutate", ca_bundle=tls.ca_bundle, namespace_label=webhook.namespace_label
        ),
    )
    try:
        yield webhook
    finally:
        kube.delete(mwc_path(mwc))
        process.stop()
        delete_namespaces(kube, namespace, *webhook.namespaces)
