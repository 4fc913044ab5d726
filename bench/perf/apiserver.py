"""Section 4: pod creation through a real kube-apiserver, with and without the webhook.

A local control plane (:class:`bench.localcluster.controlplane.ControlPlane`) with
otel-injector installed the way a cluster gets it (:func:`bench.localcluster.injector.install`:
``otel-injector serve`` with tracing to the plane's Jaeger, the project's own
MutatingWebhookConfiguration). Three namespaces:

* ``bench-traced``, labelled ``tracing=enabled``: otel-injector is called and injects;
* ``bench-plain``, unlabelled: its namespaceSelector skips the call (no webhook);
* ``bench-noop``, labelled for a second configuration that calls the no-op app of
  :mod:`bench.perf.ceiling` on the same server stack: what calling *any* webhook costs;
* ``bench-static``, labelled for a third that calls the same app's ``/patched``, which
  answers with otel-injector's patch for this pod, precomputed: what the apiserver spends
  applying an injection (patch, decoding, a bigger pod to validate and store), so the
  rest is what otel-injector itself adds.

The same typical pod is created N times in each, in turn, over one keep-alive HTTPS
connection to the apiserver, timed from request to response. The apiserver's own view
comes from its ``/metrics``: ``apiserver_admission_webhook_admission_duration_seconds``,
before and after, per webhook.
"""

from __future__ import annotations

import base64
import copy
import http.client
import json
import re
import statistics
import time
from collections.abc import Iterable
from typing import Any

import yaml

from bench.perf import pods
from bench.perf.servers import Server, start_server
from bench.perf.system import log
from bench.perf.wrk import percentile

TRACED, PLAIN, NOOP, STATIC = "bench-traced", "bench-plain", "bench-noop", "bench-static"
NAMESPACES = (TRACED, PLAIN, NOOP, STATIC)
BENCH_LABEL = "bench.otel-injector.io/webhook"
NOOP_WEBHOOK = "noop.bench.otel-injector.io"
STATIC_WEBHOOK = "static.bench.otel-injector.io"
METRIC = "apiserver_admission_webhook_admission_duration_seconds"
OURS = "otel_injector_admission_duration_seconds"
WARMUP = 10


def _pod_for(namespace: str) -> bytes:
    pod = copy.deepcopy(pods.typical_pod())
    meta = pod["metadata"]
    for key in ("uid", "creationTimestamp", "managedFields", "ownerReferences"):
        meta.pop(key, None)
    meta["namespace"] = namespace
    return json.dumps(pod).encode()


def parse_histogram(text: str, name: str, match: dict[str, str]) -> dict[str, Any]:
    """Sum of the series of histogram ``name`` whose labels include ``match``:
    cumulative buckets by upper bound, sum and count."""
    buckets: dict[float, float] = {}
    total = count = 0.0
    pattern = re.compile(rf"^{name}_(bucket|sum|count)\{{(.*)\}} (\S+)$")
    for line in text.splitlines():
        found = pattern.match(line)
        if not found:
            continue
        kind, label_text, value = found.groups()
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', label_text))
        if any(labels.get(k) != v for k, v in match.items()):
            continue
        if kind == "bucket":
            bound = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + float(value)
        elif kind == "sum":
            total += float(value)
        else:
            count += float(value)
    return {"buckets": buckets, "sum": total, "count": count}


def histogram_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """``after - before``, with the mean and a bucket-interpolated median (as PromQL's
    histogram_quantile does)."""
    buckets = {b: after["buckets"][b] - before["buckets"].get(b, 0.0) for b in sorted(after["buckets"])}
    count = after["count"] - before["count"]
    total = after["sum"] - before["sum"]
    return {
        "count": int(count),
        "mean_ms": round(total / count * 1000, 3) if count else None,
        "median_ms_interpolated": _quantile(0.5, buckets, count),
        "p99_ms_interpolated": _quantile(0.99, buckets, count),
        "cumulative_buckets": {("+Inf" if b == float("inf") else str(b)): int(v) for b, v in buckets.items()},
    }


def _quantile(q: float, buckets: dict[float, float], count: float) -> float | None:
    if not count:
        return None
    rank = q * count
    lower_bound, lower_count = 0.0, 0.0
    for bound, cumulative in sorted(buckets.items()):
        if cumulative >= rank:
            if bound == float("inf"):
                return round(lower_bound * 1000, 3)
            share = (rank - lower_count) / (cumulative - lower_count) if cumulative > lower_count else 0.0
            return round((lower_bound + (bound - lower_bound) * share) * 1000, 3)
        lower_bound, lower_count = bound, cumulative
    return None


def _summary(values: Iterable[float]) -> dict[str, Any]:
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "p50_ms": round(percentile(ordered, 50), 3),
        "p90_ms": round(percentile(ordered, 90), 3),
        "p99_ms": round(percentile(ordered, 99), 3),
        "max_ms": round(ordered[-1], 3) if ordered else None,
        "mean_ms": round(statistics.fmean(ordered), 3) if ordered else None,
    }


def run_apiserver(pods_per_namespace: int) -> dict[str, Any]:
    """Create ``pods_per_namespace`` pods in each namespace and compare."""
    from bench.localcluster.controlplane import ControlPlane
    from bench.localcluster.injector import install

    started = time.monotonic()
    with ControlPlane(log=lambda m: log(f"  {m}")) as cp:
        injector = install(cp, log=lambda m: log(f"  {m}"))
        patch_file = cp.workdir / "static-patch.b64"
        patch_file.write_bytes(_static_patch(STATIC))
        noop = start_server(
            "ceiling",
            workers=1,
            tracing=False,
            tls_dir=injector.tls_dir,
            workdir=cp.workdir,
            backend=None,
            label="noop-webhook",
            extra_env={"BENCH_FIXED_PATCH": str(patch_file)},
        )
        try:
            return _measure(cp, injector, noop, pods_per_namespace, started)
        finally:
            noop.stop()


def _static_patch(namespace: str) -> bytes:
    """Base64 of the patch otel-injector computes for the bench pod in ``namespace``."""
    from webhook.config.settings import load_settings
    from webhook.core.injection import inject_pod
    from webhook.core.patch import make_patch

    pod = json.loads(_pod_for(namespace))
    result = inject_pod(pod, load_settings().injection, namespace=namespace)
    return base64.b64encode(make_patch(pod, result.pod).body)


def _bench_configuration(url: str, ca_bundle: str, hook_name: str, label_value: str) -> dict[str, Any]:
    """The project's webhook configuration, one hook, pointed at ``url`` and selecting
    the namespaces labelled ``BENCH_LABEL=label_value``."""
    from bench.localcluster.injector import webhook_configuration

    manifest = webhook_configuration(url, ca_bundle, name=f"bench-{label_value}")
    hook = manifest["webhooks"][0]
    hook["name"] = hook_name
    hook["namespaceSelector"] = {"matchLabels": {BENCH_LABEL: label_value}}
    hook.pop("objectSelector", None)
    hook["clientConfig"]["url"] = url
    manifest["webhooks"] = [hook]
    return manifest


def _measure(cp: Any, injector: Any, noop: Server, pods_per_namespace: int, started: float) -> dict[str, Any]:
    base = noop.url.rsplit("/", 1)[0]
    for url, hook, value in ((f"{base}/mutate", NOOP_WEBHOOK, "noop"), (f"{base}/patched", STATIC_WEBHOOK, "static")):
        cp.kubectl("apply", "-f", "-", input=yaml.safe_dump(_bench_configuration(url, injector.ca_bundle, hook, value)))
    for namespace in NAMESPACES:
        cp.kubectl("create", "namespace", namespace)
    cp.kubectl("label", "namespace", TRACED, "tracing=enabled")
    cp.kubectl("label", "namespace", NOOP, f"{BENCH_LABEL}=noop")
    cp.kubectl("label", "namespace", STATIC, f"{BENCH_LABEL}=static")
    kube_version = cp.kubectl("version", "-o", "json", check=False).stdout
    port = int(cp.server_url.rsplit(":", 1)[1])
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=cp.ssl_context(), timeout=30)
    bodies = {ns: _pod_for(ns) for ns in NAMESPACES}

    def create(namespace: str) -> tuple[float, dict[str, Any]]:
        start = time.perf_counter()
        conn.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/pods",
            body=bodies[namespace],
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        reply = conn.getresponse()
        data = reply.read()
        elapsed = (time.perf_counter() - start) * 1000
        if reply.status != 201:
            raise RuntimeError(f"creating a pod in {namespace} answered {reply.status}: {data[:400]!r}")
        created: dict[str, Any] = json.loads(data)
        return elapsed, created

    for _ in range(WARMUP):
        for namespace in NAMESPACES:
            create(namespace)
    for namespace in NAMESPACES:
        created = create(namespace)[1]
        sidecar = "otel-collector" in [c["name"] for c in created["spec"].get("initContainers") or []]
        if sidecar != (namespace in (TRACED, STATIC)):
            raise RuntimeError(f"unexpected injection in {namespace}: sidecar {'present' if sidecar else 'absent'}")

    before = cp.api_get("/metrics")[1].decode()
    ours_before = _webhook_metrics(injector)
    latencies: dict[str, list[float]] = {ns: [] for ns in NAMESPACES}
    for i in range(pods_per_namespace):
        shift = i % len(NAMESPACES)
        for namespace in NAMESPACES[shift:] + NAMESPACES[:shift]:
            latencies[namespace].append(create(namespace)[0])
    after = cp.api_get("/metrics")[1].decode()
    ours_after = _webhook_metrics(injector)
    conn.close()

    match = {"type": "admit", "operation": "CREATE"}
    traced, plain, no_op, static = (_summary(latencies[ns]) for ns in (TRACED, PLAIN, NOOP, STATIC))
    ours_match = {**match, "name": "namespace.otel-injector.io"}
    return {
        "pods_per_namespace": pods_per_namespace,
        "pod_bytes": len(bodies[TRACED]),
        "kube_version": _kube_version(kube_version),
        "with_webhook": traced,
        "without_webhook": plain,
        "noop_webhook": no_op,
        "added_median_ms": round(traced["p50_ms"] - plain["p50_ms"], 3),
        "added_p90_ms": round(traced["p90_ms"] - plain["p90_ms"], 3),
        "added_mean_ms": round(traced["mean_ms"] - plain["mean_ms"], 3),
        "static_patch_webhook": static,
        "noop_added_median_ms": round(no_op["p50_ms"] - plain["p50_ms"], 3),
        "static_added_median_ms": round(static["p50_ms"] - plain["p50_ms"], 3),
        "ours_beyond_static_median_ms": round(traced["p50_ms"] - static["p50_ms"], 3),
        "apiserver_webhook_admission_duration": histogram_delta(
            parse_histogram(before, METRIC, ours_match), parse_histogram(after, METRIC, ours_match)
        ),
        "apiserver_noop_webhook_admission_duration": histogram_delta(
            parse_histogram(before, METRIC, {**match, "name": NOOP_WEBHOOK}),
            parse_histogram(after, METRIC, {**match, "name": NOOP_WEBHOOK}),
        ),
        "apiserver_static_webhook_admission_duration": histogram_delta(
            parse_histogram(before, METRIC, {**match, "name": STATIC_WEBHOOK}),
            parse_histogram(after, METRIC, {**match, "name": STATIC_WEBHOOK}),
        ),
        "webhook_own_admission_duration": histogram_delta(
            parse_histogram(ours_before, OURS, {}), parse_histogram(ours_after, OURS, {})
        )
        if ours_before and ours_after
        else None,
        "latencies_ms": {
            "with_webhook": latencies[TRACED],
            "without_webhook": latencies[PLAIN],
            "noop_webhook": latencies[NOOP],
            "static_patch_webhook": latencies[STATIC],
        },
        "seconds": round(time.monotonic() - started, 1),
    }


def _webhook_metrics(injector: Any) -> str:
    host_port = injector.url.removeprefix("https://").rstrip("/")
    host, port = host_port.rsplit(":", 1)
    conn = http.client.HTTPSConnection(host, int(port), context=injector.ssl_context(), timeout=10)
    try:
        conn.request("GET", "/metrics")
        reply = conn.getresponse()
        return reply.read().decode() if reply.status == 200 else ""
    except OSError:
        return ""
    finally:
        conn.close()


def _kube_version(text: str) -> str:
    try:
        data = json.loads(text)
    except ValueError:
        return "unknown"
    server = data.get("serverVersion") or {}
    return str(server.get("gitVersion") or "unknown")
