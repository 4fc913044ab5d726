"""What the peers section measures, webhook by webhook and shape by shape.

* :func:`creations`: pods created through the apiserver, one keep-alive HTTPS connection,
  timed from request to response. Per shape, every webhook's namespace and the
  no-webhook baseline form *lanes*, created round-robin (the starting lane rotates), so
  every webhook sees the same machine load. The already-injected shape is each webhook's
  own output for the typical pod (what it would see again on a re-creation), so its
  baseline is that same body without a webhook: one baseline lane per webhook. The
  apiserver's ``apiserver_admission_webhook_admission_duration_seconds`` is read before
  and after each shape. Pods are deleted between shapes (unscheduled pods go at once).
* :func:`http_level`: wrk's closed loop posting the same AdmissionReview straight to
  each webhook's endpoint; CPU per admission from /proc over the run, peak RSS.
"""

from __future__ import annotations

import base64
import http.client
import json
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.peers.webhooks import BASELINE_NAMESPACE, Peer, review_for
from bench.perf.apiserver import METRIC, histogram_delta, parse_histogram
from bench.perf.system import RssSampler, cpu_seconds

WARMUP = 10
#: A lane's warm-up stops early once it took this long (a slow peer's large pod).
WARMUP_BUDGET_S = 10.0
#: A lane past its time budget still gets this many timed creations.
MIN_CREATIONS = 20
#: A lane that failed this often is closed (the failures are reported).
MAX_ERRORS = 5
#: Metadata the apiserver sets on a created pod, dropped to send it again.
SERVER_SET = ("uid", "resourceVersion", "creationTimestamp", "name", "managedFields", "generation")


@dataclass
class Lane:
    """One series of creations: ``body`` POSTed into ``namespace``."""

    key: str  # a webhook name, or "none:<webhook>" for a baseline
    namespace: str
    body: bytes
    marker: bytes = b""  # must be in the created pod ("" = not checked)
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    spent_s: float = 0.0

    def open(self, budget_s: float) -> bool:
        """Whether the lane takes more creations: at most ``MAX_ERRORS`` failures, and once
        ``budget_s`` is spent only until it has ``MIN_CREATIONS``."""
        if len(self.errors) >= MAX_ERRORS:
            return False
        return self.spent_s < budget_s or len(self.latencies_ms) < MIN_CREATIONS


def creatable(pod: Mapping[str, Any]) -> dict[str, Any]:
    """``pod`` as a client would POST it: no server-set metadata, no namespace (the URL
    names it), no owner (the garbage collector would delete the pod), no status."""
    obj: dict[str, Any] = json.loads(json.dumps(pod))
    meta = obj.setdefault("metadata", {})
    for key in (*SERVER_SET, "namespace", "ownerReferences"):
        meta.pop(key, None)
    obj.pop("status", None)
    return obj


class Creator:
    """Creates pods over one keep-alive HTTPS connection to the apiserver."""

    def __init__(self, cp: Any) -> None:
        port = int(cp.server_url.rsplit(":", 1)[1])
        self.context = cp.ssl_context()
        self.conn = http.client.HTTPSConnection("127.0.0.1", port, context=self.context, timeout=60)

    def create(self, namespace: str, body: bytes) -> tuple[float, bytes]:
        """POST one pod; returns (milliseconds, created object); raises on a non-201."""
        start = time.perf_counter()
        self.conn.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/pods",
            body=body,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        reply = self.conn.getresponse()
        data = reply.read()
        elapsed = (time.perf_counter() - start) * 1000
        if reply.status != 201:
            raise RuntimeError(f"creating a pod in {namespace} answered {reply.status}: {data[:400]!r}")
        return elapsed, data

    def delete_pods(self, namespace: str) -> None:
        """Delete every pod of ``namespace`` in one DELETE of the collection (kubectl's
        ``delete --all`` lists them and deletes one by one: minutes for 1,000 large pods)."""
        conn = http.client.HTTPSConnection(self.conn.host, self.conn.port, context=self.context, timeout=900)
        try:
            conn.request("DELETE", f"/api/v1/namespaces/{namespace}/pods", headers={"Accept": "application/json"})
            reply = conn.getresponse()
            data = reply.read()
        finally:
            conn.close()
        if reply.status != 200:
            raise RuntimeError(f"deleting the pods of {namespace} answered {reply.status}: {data[:300]!r}")

    def reconnect(self) -> None:
        """A fresh connection, after a failed request."""
        self.conn.close()
        self.conn = http.client.HTTPSConnection(self.conn.host, self.conn.port, context=self.context, timeout=60)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def injected_body(creator: Creator, peer: Peer, typical: bytes) -> bytes:
    """``peer``'s own injected typical pod, as created through the apiserver."""
    _, data = creator.create(peer.namespaces["typical"], typical)
    if peer.marker not in data:
        raise RuntimeError(f"{peer.name} did not inject the typical pod: {data[:300]!r}")
    return json.dumps(creatable(json.loads(data))).encode()


def lanes_for(
    shape: str, peers: Sequence[Peer], bodies: Mapping[str, bytes], injected: Mapping[str, bytes]
) -> list[Lane]:
    """The lanes of one shape (see the module docstring)."""
    if shape != "injected":
        lanes = [Lane(p.name, p.namespaces[shape], bodies[shape], p.marker) for p in peers]
        return [*lanes, Lane("none", BASELINE_NAMESPACE, bodies[shape])]
    lanes = []
    for p in peers:
        lanes.append(Lane(p.name, p.namespaces[shape], injected[p.name]))
        lanes.append(Lane(f"none:{p.name}", BASELINE_NAMESPACE, injected[p.name]))
    return lanes


def _attempt(creator: Creator, lane: Lane) -> tuple[float, bytes] | None:
    """One creation; a failure is recorded on the lane. A dropped connection to the
    apiserver (it closes idle keep-alive connections) is renewed and the creation tried
    once more before it counts."""
    start = time.monotonic()
    try:
        for retry in (True, False):
            try:
                return creator.create(lane.namespace, lane.body)
            except (OSError, http.client.HTTPException) as err:
                creator.reconnect()
                if not retry:
                    lane.errors.append(f"connection: {err}"[:500])
            except RuntimeError as err:
                lane.errors.append(str(err)[:500])
                return None
        return None
    finally:
        lane.spent_s += time.monotonic() - start


def run_lanes(creator: Creator, lanes: Sequence[Lane], count: int, budget_s: float) -> None:
    """A short warm-up, then up to ``count`` creations per lane, round-robin with a
    rotating start. A lane whose creations took ``budget_s`` in all stops at
    ``MIN_CREATIONS`` (the record says how many it had); the others go on."""
    for lane in lanes:
        for _ in range(WARMUP):
            if _attempt(creator, lane) is None or lane.spent_s > WARMUP_BUDGET_S:
                break
        lane.spent_s = 0.0
    for i in range(count):
        shift = i % len(lanes)
        for lane in [*lanes[shift:], *lanes[:shift]]:
            if not lane.open(budget_s):
                continue
            done = _attempt(creator, lane)
            if done is None:
                continue
            elapsed, data = done
            if lane.marker and lane.marker not in data:
                lane.errors.append(f"a created pod in {lane.namespace} was not injected")
                continue
            lane.latencies_ms.append(elapsed)


def admission_durations(before: str, after: str, peers: Sequence[Peer]) -> dict[str, dict[str, Any]]:
    """The apiserver's admission-duration histogram delta per webhook (its hooks summed)."""
    out = {}
    for peer in peers:
        deltas = [
            histogram_delta(
                parse_histogram(before, METRIC, {"name": name, "type": "admit", "operation": "CREATE"}),
                parse_histogram(after, METRIC, {"name": name, "type": "admit", "operation": "CREATE"}),
            )
            for name in peer.hook_names
        ]
        called = [d for d in deltas if d["count"]]
        out[peer.name] = called[0] if len(called) == 1 else {"count": sum(d["count"] for d in called), "hooks": called}
    return out


def creations(
    cp: Any,
    *,
    peers: Sequence[Peer],
    bodies: Mapping[str, bytes],
    injected: Mapping[str, bytes],
    count: int,
    budget_s: float,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Every shape's lanes; returns latencies and apiserver histograms per shape."""
    creator = Creator(cp)
    try:
        out: dict[str, Any] = {"injected_pod_bytes": {k: len(v) for k, v in injected.items()}}
        for shape in ("typical", "large", "injected"):
            lanes = lanes_for(shape, peers, bodies, injected)
            log(f"  {shape}: {len(lanes)} lanes x {count} creations")
            before = cp.api_get("/metrics", timeout=60)[1].decode()
            run_lanes(creator, lanes, count, budget_s)
            after = cp.api_get("/metrics", timeout=60)[1].decode()
            out[shape] = {
                "lanes": {lane.key: lane.latencies_ms for lane in lanes},
                "errors": {lane.key: lane.errors for lane in lanes if lane.errors},
                "apiserver": admission_durations(before, after, peers),
            }
            for namespace in sorted({lane.namespace for lane in lanes}):
                creator.delete_pods(namespace)
        return out
    finally:
        creator.close()


def patch_bytes(peer: Peer, review: bytes, endpoint: str) -> tuple[int, bool, float]:
    """Posts ``review`` once; returns (decoded patch size, allowed, seconds taken)."""
    start = time.monotonic()
    rest = endpoint.removeprefix("https://")
    host_port, _, path = rest.partition("/")
    host, port = host_port.rsplit(":", 1)
    conn = http.client.HTTPSConnection(host, int(port), context=peer.context, timeout=60)
    try:
        conn.request("POST", "/" + path, body=review, headers={"Content-Type": "application/json"})
        reply = conn.getresponse()
        data = reply.read()
    finally:
        conn.close()
    if reply.status != 200:
        raise RuntimeError(f"{peer.name} answered {reply.status}: {data[:300]!r}")
    response = json.loads(data).get("response") or {}
    patch = response.get("patch")
    return (len(base64.b64decode(patch)) if patch else 0), bool(response.get("allowed")), time.monotonic() - start


def http_level(peer: Peer, shape: str, pod: Mapping[str, Any], seconds: float) -> dict[str, Any]:
    """wrk's closed loop against the peer's endpoint with the shape's review."""
    from bench.perf.wrk import CLOSED_CONNECTIONS, closed_loop

    endpoint = peer.endpoints[shape]
    review = review_for(pod, peer.namespaces[shape])
    size, allowed, took = patch_bytes(peer, review, endpoint)
    if not allowed:
        raise RuntimeError(f"{peer.name} did not allow the {shape} pod")
    # wrk gives up on a request after 10 s: a webhook that needs seconds per review is
    # loaded with fewer connections, for longer, so that its answers are counted at all.
    connections = CLOSED_CONNECTIONS if took < 0.25 else (2 if took < 2.0 else 1)
    seconds = seconds if took < 0.25 else min(60.0, max(seconds, 5 * took))
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        body_file = Path(tmp) / "review.json"
        body_file.write_bytes(review)
        pids = peer.pids()
        samplers = [RssSampler(pid).start() for pid in pids]
        cpu_before = sum(cpu_seconds(pid) for pid in pids)
        result = closed_loop(endpoint, body_file, seconds, connections)
        cpu_after = sum(cpu_seconds(pid) for pid in pids)
        for sampler in samplers:
            sampler.stop()
    answered = max(1, result.requests - result.errors)
    return {
        "review_bytes": len(review),
        "connections": connections,
        "single_review_ms": round(took * 1000, 1),
        "patch_bytes": size,
        "max_rps": result.rps if not result.errors else round(answered / result.seconds, 1),
        "wrk": result.as_dict(),
        "cpu_ms": round((cpu_after - cpu_before) * 1000 / answered, 3),
        "rss_mib": max((s.peak_mib_per_worker() for s in samplers), default=None),
    }
