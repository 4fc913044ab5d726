"""Pod creations at a steady rate while something happens to the injector, and what came of them.

:class:`PodLoad` is an open-loop driver: every ``1/rate`` seconds it POSTs one Pod to the
apiserver (as the admin, on a small pool of keep-alive connections), whatever the
previous creations are doing, so an outage shows up as failures or pods without the
sidecar instead of a slower load. Each creation records its HTTP status, its latency as
the client timed it, whether the created Pod (the apiserver's answer: the object as
admission left it) carries the ``otel-collector`` sidecar, and its config hash.

The pods carry a ``schedulingGates`` entry, so they are admitted and stored exactly as
any pod, but never scheduled: a 2-core node cannot start 10 pods a second, and what
these figures are about is admission. :func:`delete_pods` removes them in one call.

:func:`webhook_histogram` reads the apiserver's own
``apiserver_admission_webhook_admission_duration_seconds`` for the injector's webhooks
(and ``apiserver_admission_webhook_fail_open_count``); the difference of two readings
gives the p99 of the webhook calls in between, interpolated within the histogram's
buckets (0.005, 0.025, 0.1, 0.5, 1, 2.5, 10, 25 s), so it is coarse; the client-timed
p99 of the whole creation is exact.
"""

from __future__ import annotations

import http.client
import json
import math
import queue
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.localcluster.access import ClusterAccess

SIDECAR = "otel-collector"
STATUS_ANNOTATION = "otel-injector.io/status"
GATE = "otel-injector.io/load-test"
LOAD_LABEL = "otel-injector.io/load"
WEBHOOK_NAMES = ("namespace.otel-injector.io", "object.otel-injector.io")
DURATION_METRIC = "apiserver_admission_webhook_admission_duration_seconds"
FAIL_OPEN_METRIC = "apiserver_admission_webhook_fail_open_count"


@dataclass(frozen=True)
class Creation:
    """One pod creation: when it was due and sent (monotonic s), its outcome."""

    index: int
    due: float
    sent: float
    seconds: float
    status: int  # 0: no HTTP answer (connection refused, reset, timeout)
    sidecar: bool
    config_hash: str = ""
    error: str = ""
    name: str = ""

    @property
    def created(self) -> bool:
        return self.status == 201


def pod_manifest(name: str, image: str) -> dict[str, Any]:
    """A gated (never scheduled) pod of ``image``."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {LOAD_LABEL: "true"}},
        "spec": {
            "schedulingGates": [{"name": GATE}],
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "app", "image": image, "imagePullPolicy": "Never", "args": ["serve"]}],
        },
    }


def has_sidecar(pod: Mapping[str, Any]) -> bool:
    spec = pod.get("spec") or {}
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    return any(c.get("name") == SIDECAR for c in containers)


def config_hash(pod: Mapping[str, Any]) -> str:
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(STATUS_ANNOTATION)
    if not raw:
        return ""
    try:
        return str(json.loads(raw).get("configHash", ""))
    except (ValueError, AttributeError):
        return ""


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by the nearest-rank method; nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


class PodLoad:
    """``with PodLoad(cluster, namespace, image, rate=10) as load: ...`` creates pods until
    the block ends; ``load.creations`` then holds every outcome."""

    def __init__(
        self,
        cluster: ClusterAccess,
        namespace: str,
        image: str,
        *,
        rate: float = 10.0,
        prefix: str = "load",
        workers: int = 6,
        timeout: float = 15.0,
    ) -> None:
        self._cluster = cluster
        self._namespace = namespace
        self._image = image
        self._interval = 1.0 / rate
        self._prefix = prefix
        self._workers = workers
        self._timeout = timeout
        self._jobs: queue.Queue[tuple[int, float] | None] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.creations: list[Creation] = []
        self.started = 0.0
        self.stopped = 0.0

    def __enter__(self) -> PodLoad:
        self.started = time.monotonic()
        for _ in range(self._workers):
            worker = threading.Thread(target=self._work, daemon=True)
            worker.start()
            self._threads.append(worker)
        pacer = threading.Thread(target=self._pace, daemon=True)
        pacer.start()
        self._pacer = pacer
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._pacer.join()
        for _ in self._threads:
            self._jobs.put(None)
        for worker in self._threads:
            worker.join(self._timeout + 5)
        self.stopped = time.monotonic()
        self.creations.sort(key=lambda c: c.index)

    def _pace(self) -> None:
        index = 0
        while not self._stop.is_set():
            due = self.started + index * self._interval
            delay = due - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            self._jobs.put((index, due))
            index += 1

    def _connection(self) -> http.client.HTTPSConnection:
        port = int(self._cluster.server_url.rsplit(":", 1)[1])
        return http.client.HTTPSConnection(
            "127.0.0.1", port, context=self._cluster.ssl_context(), timeout=self._timeout
        )

    def _work(self) -> None:
        conn = self._connection()
        path = f"/api/v1/namespaces/{self._namespace}/pods"
        while (job := self._jobs.get()) is not None:
            index, due = job
            name = f"{self._prefix}-{index:05d}"
            body = json.dumps(pod_manifest(name, self._image)).encode()
            sent = time.monotonic()
            status, pod, error = 0, {}, ""
            try:
                conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                data = response.read()
                status = response.status
                if status == 201:
                    pod = json.loads(data)
                else:
                    error = data[:300].decode(errors="replace")
            except (OSError, http.client.HTTPException) as exc:
                error = f"{type(exc).__name__}: {exc}"
                conn.close()
                conn = self._connection()
            creation = Creation(
                index=index,
                due=due,
                sent=sent,
                seconds=time.monotonic() - sent,
                status=status,
                sidecar=has_sidecar(pod),
                config_hash=config_hash(pod),
                error=error,
                name=name,
            )
            with self._lock:
                self.creations.append(creation)
        conn.close()


def delete_pods(cluster: ClusterAccess, namespace: str) -> None:
    """Delete every load pod of ``namespace`` in one collection DELETE (none is running)."""
    cluster.kubectl(
        "delete", "pods", "-n", namespace, "-l", LOAD_LABEL, "--wait=false", "--grace-period=0", "--force", check=False
    )


# -- the apiserver's own histogram ---------------------------------------------------------


@dataclass(frozen=True)
class WebhookReading:
    """Cumulative bucket counts (by upper bound) and fail-open count for our webhooks."""

    buckets: dict[float, float] = field(default_factory=dict)
    count: float = 0.0
    fail_open: float = 0.0

    def minus(self, earlier: WebhookReading) -> WebhookReading:
        """What happened between ``earlier`` and this reading. A restarted apiserver
        starts its counters again: then this reading alone is the difference."""
        if self.count < earlier.count:
            return self
        buckets = {le: n - earlier.buckets.get(le, 0.0) for le, n in self.buckets.items()}
        return WebhookReading(buckets, self.count - earlier.count, self.fail_open - earlier.fail_open)

    def quantile(self, q: float) -> float:
        """The ``q`` quantile in seconds, linearly interpolated in its bucket; nan if empty."""
        if self.count <= 0:
            return math.nan
        target = q * self.count
        lower, below = 0.0, 0.0
        for le in sorted(self.buckets):
            cumulative = self.buckets[le]
            if cumulative >= target:
                if math.isinf(le):
                    return lower
                share = (target - below) / (cumulative - below) if cumulative > below else 1.0
                return lower + (le - lower) * share
            lower, below = le, cumulative
        return lower


def _labels(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split(","):
        if "=" in part:
            key, _, value = part.partition("=")
            out[key.strip()] = value.strip().strip('"')
    return out


def parse_webhook_metrics(text: str, names: Iterable[str] = WEBHOOK_NAMES) -> WebhookReading:
    """Sum the duration histogram and fail-open counter over ``names`` (type admit)."""
    wanted = set(names)
    buckets: dict[float, float] = {}
    count = fail_open = 0.0
    for line in text.splitlines():
        if not line.startswith("apiserver_admission_webhook_") or "{" not in line:
            continue
        metric, _, rest = line.partition("{")
        labels_text, _, value_text = rest.rpartition("}")
        labels = _labels(labels_text)
        if labels.get("name") not in wanted:
            continue
        value = float(value_text.strip().split()[0])
        if metric == f"{DURATION_METRIC}_bucket":
            le = float(labels["le"])
            buckets[le] = buckets.get(le, 0.0) + value
        elif metric == f"{DURATION_METRIC}_count":
            count += value
        elif metric == FAIL_OPEN_METRIC:
            fail_open += value
    return WebhookReading(buckets, count, fail_open)


def webhook_histogram(cluster: ClusterAccess) -> WebhookReading:
    """The apiserver's current reading (empty when /metrics does not answer)."""
    try:
        status, body = cluster.api_get("/metrics", timeout=10)
    except OSError:
        return WebhookReading()
    if status != 200:
        return WebhookReading()
    return parse_webhook_metrics(body.decode(errors="replace"))


# -- one scenario's figures ---------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """One row of the operations table."""

    scenario: str
    created: int
    failed: int
    without_sidecar: int
    p99_webhook_ms: float
    p99_create_ms: float
    fail_open: int
    apiserver_down: int = 0
    seconds: float = 0.0
    notes: str = ""

    def row(self) -> str:
        return (
            f"| {self.scenario} | {self.created} | {self.failed} | {self.without_sidecar} | "
            f"{_ms(self.p99_webhook_ms)} | {_ms(self.p99_create_ms)} | {self.fail_open} | {self.notes} |"
        )


TABLE_HEADER = (
    "| scenario | pods created | failed | without sidecar | p99 webhook call (apiserver histogram) | "
    "p99 pod create (client-timed) | webhook fail-open (apiserver) | notes |\n"
    "|---|---|---|---|---|---|---|---|"
)


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0f} ms"


def figures(
    scenario: str,
    creations: Sequence[Creation],
    reading: WebhookReading,
    *,
    seconds: float = 0.0,
    notes: str = "",
    down: Sequence[Creation] = (),
) -> Figures:
    """The row for ``creations``; ``down`` are the ones sent while the apiserver was
    knowingly stopped, counted apart from ``failed``."""
    down_indexes = {c.index for c in down}
    counted = [c for c in creations if c.index not in down_indexes]
    created = [c for c in counted if c.created]
    return Figures(
        scenario=scenario,
        created=len(created),
        failed=len(counted) - len(created),
        without_sidecar=sum(1 for c in created if not c.sidecar),
        p99_webhook_ms=reading.quantile(0.99) * 1000,
        p99_create_ms=percentile([c.seconds for c in created], 0.99) * 1000,
        fail_open=int(reading.fail_open),
        apiserver_down=len(down_indexes),
        seconds=seconds,
        notes=notes,
    )
