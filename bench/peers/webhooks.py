"""The webhooks under comparison, as the measuring code sees them, and their registration.

Every webhook runs on 127.0.0.1 and is registered with the apiserver by ``url`` with that
IP, never by a hostname (a hostname would send the apiserver to the machine's resolver).
Each one selects only the namespaces labelled ``PEER_LABEL=<its key>``, so a pod created in
one webhook's namespace is never seen by another, and all of them can be registered at
once and measured interleaved, creation by creation, against the same no-webhook baseline.

This module starts the two webhooks that are Python (otel-injector itself, through
:func:`bench.localcluster.injector.install`, and the zero-work limit, the no-op app of
:mod:`bench.perf.ceiling` answering otel-injector's precomputed patch); the Go peers are
in :mod:`bench.peers.istio` and :mod:`bench.peers.kyverno`.
"""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.perf import pods

#: Namespace label every bench webhook selects on, with the webhook's key as value.
PEER_LABEL = "bench.otel-injector.io/peer"
#: The webhooks of the comparison, in the order of the table.
WEBHOOKS = ("otel-injector", "istio", "kyverno", "limit")
#: The shapes of :mod:`bench.perf.pods`.
SHAPES = ("typical", "large", "injected")
#: Namespace of the no-webhook baseline: no configuration selects it.
BASELINE_NAMESPACE = "peer-none"

#: What each webhook adds to a pod, for the fairness notes next to the table.
INJECTS: Mapping[str, str] = {
    "otel-injector": (
        "one native-sidecar collector (init container with restartPolicy Always), one ConfigMap "
        "volume, 8 OTEL_* env vars per app container, a status annotation"
    ),
    "istio": (
        "istio-init (iptables) and istio-proxy as a native sidecar, about 6 volumes, annotations, "
        "labels and probe rewrites: more work per pod than otel-injector by design"
    ),
    "kyverno": (
        "the same collector sidecar, volume and env as otel-injector, written as a ClusterPolicy "
        "(foreach + patchesJson6902, published as kyverno-policy.yaml)"
    ),
    "limit": (
        "otel-injector's own patch for the pod, precomputed and returned by a no-op app on "
        "otel-injector's server stack: the physical limit of an injector in Python"
    ),
}


@dataclass
class Peer:
    """A running webhook: where its pods go, where wrk posts, which processes serve it."""

    name: str
    version: str
    #: Namespace per pod shape (the limit needs one per shape: one precomputed patch each).
    namespaces: dict[str, str]
    #: Admission endpoint per pod shape, ``https://127.0.0.1:port/path``.
    endpoints: dict[str, str]
    #: Process ids whose CPU and RSS are the webhook's (children included).
    pids: Callable[[], list[int]]
    #: Verifies the webhook's serving certificate, for posting reviews to it directly.
    context: ssl.SSLContext
    #: Bytes that appear in a pod this webhook injected (checked after every creation).
    marker: bytes
    #: Webhook names as the apiserver labels its admission metrics; filled once registered.
    hook_names: list[str] = field(default_factory=list)
    stop: Callable[[], None] = lambda: None


def bench_configuration(name: str, url: str, ca_bundle: str, label_value: str) -> dict[str, Any]:
    """A MutatingWebhookConfiguration with one hook for pod CREATE at ``url`` (an IP URL),
    selecting the namespaces labelled ``PEER_LABEL=label_value``. Fail, not Ignore: a
    call that fails must show up as an error in the bench, not as a cheap admission."""
    if not url.startswith("https://127."):
        raise ValueError(f"bench webhooks are registered by loopback IP URL only, not {url!r}")
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": f"bench-peer-{label_value}"},
        "webhooks": [
            {
                "name": f"{label_value}.peers.bench.otel-injector.io",
                "clientConfig": {"url": url, "caBundle": ca_bundle},
                "rules": [
                    {
                        "operations": ["CREATE"],
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["pods"],
                        "scope": "Namespaced",
                    }
                ],
                "namespaceSelector": {"matchLabels": {PEER_LABEL: label_value}},
                "failurePolicy": "Fail",
                "timeoutSeconds": 10,
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "reinvocationPolicy": "Never",
            }
        ],
    }


def create_namespace(cp: Any, namespace: str, labels: Mapping[str, str]) -> None:
    """Create ``namespace`` with ``labels`` on the control plane."""
    manifest = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": dict(labels)}}
    cp.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))


def hooks_at(cp: Any, base_url: str) -> list[str]:
    """Names of the registered mutating hooks whose url starts with ``base_url``."""
    listing = json.loads(cp.kubectl("get", "mutatingwebhookconfigurations", "-o", "json").stdout)
    return sorted(
        hook["name"]
        for item in listing.get("items") or []
        for hook in item.get("webhooks") or []
        if str((hook.get("clientConfig") or {}).get("url", "")).startswith(base_url)
    )


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants (uvicorn workers), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="utf-8")
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, ppid in parents.items() if ppid in frontier]
        tree += frontier
    return tree


def start_otel_injector(cp: Any, log: Callable[[str], None]) -> Peer:
    """otel-injector as a cluster gets it (tracing to the plane's Jaeger, the project's own
    MutatingWebhookConfiguration), its namespace opted in with ``tracing=enabled``."""
    from bench.localcluster.injector import install
    from webhook import __version__

    injector = install(cp, log=log)
    namespace = "peer-otel-injector"
    create_namespace(cp, namespace, {"tracing": "enabled", PEER_LABEL: "otel-injector"})
    url = injector.url.rstrip("/") + "/mutate"
    process = injector.process
    return Peer(
        name="otel-injector",
        version=__version__,
        namespaces=dict.fromkeys(SHAPES, namespace),
        endpoints=dict.fromkeys(SHAPES, url),
        pids=lambda: process_tree(process.pid) if process.pid else [],
        context=injector.ssl_context(),
        marker=b'"otel-collector"',
        hook_names=hooks_at(cp, injector.url),
    )


def precomputed_patch(pod: Mapping[str, Any], namespace: str) -> bytes:
    """Base64 of the JSON patch otel-injector computes for ``pod`` in ``namespace``."""
    from webhook.config.settings import load_settings
    from webhook.core.injection import inject_pod
    from webhook.core.patch import make_patch

    result = inject_pod(dict(pod), load_settings().injection, namespace=namespace)
    return base64.b64encode(make_patch(dict(pod), result.pod).body)


def start_limit(cp: Any, tls_dir: Path, ca_bundle: str, bodies: Mapping[str, Mapping[str, Any]]) -> Peer:
    """The zero-work webhook: one no-op server per injecting shape, each answering
    otel-injector's patch for that shape, precomputed (``/patched``); the already-injected
    pod gets the plain allowed answer (``/mutate``), as otel-injector answers it."""
    from bench.perf.servers import start_server

    servers = {}
    namespaces, endpoints = {}, {}
    for shape in ("typical", "large"):
        namespace = f"peer-limit-{shape}"
        patch_file = cp.workdir / f"limit-{shape}.b64"
        patch_file.write_bytes(precomputed_patch(bodies[shape], namespace))
        servers[shape] = start_server(
            "ceiling",
            workers=1,
            tracing=False,
            tls_dir=tls_dir,
            workdir=cp.workdir,
            backend=None,
            label=f"limit-{shape}",
            extra_env={"BENCH_FIXED_PATCH": str(patch_file)},
        )
        namespaces[shape], endpoints[shape] = namespace, servers[shape].url.rsplit("/", 1)[0] + "/patched"
    namespaces["injected"] = "peer-limit-injected"
    endpoints["injected"] = servers["typical"].url
    for shape, namespace in namespaces.items():
        value = f"limit-{shape}"
        cp.kubectl(
            "apply", "-f", "-", input=yaml.safe_dump(bench_configuration(value, endpoints[shape], ca_bundle, value))
        )
        create_namespace(cp, namespace, {PEER_LABEL: value})

    def stop() -> None:
        for server in servers.values():
            server.stop()

    def pids() -> list[int]:
        return [pid for server in servers.values() for pid in process_tree(server.child.pid)]

    return Peer(
        name="limit",
        version="bench.perf.ceiling",
        namespaces=namespaces,
        endpoints=endpoints,
        pids=pids,
        context=servers["typical"].context,
        marker=b'"otel-collector"',
        hook_names=[f"limit-{shape}.peers.bench.otel-injector.io" for shape in SHAPES],
        stop=stop,
    )


def review_for(pod: Mapping[str, Any], namespace: str) -> bytes:
    """The AdmissionReview the apiserver would send for a CREATE of ``pod`` in ``namespace``."""
    obj = json.loads(json.dumps(pod))
    obj.setdefault("metadata", {})["namespace"] = namespace
    review = pods.review(obj)
    review["request"]["namespace"] = namespace
    return json.dumps(review).encode()
