"""Finding the trace of a pod's admission in the bench's Jaeger."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

from bench.localcluster.controlplane import ControlPlane, ControlPlaneError
from bench.localcluster.tracetree import build_tree, trace_is_complete


def find_admission_trace(
    cp: ControlPlane,
    *,
    namespace: str,
    decision: str = "injected",
    uid: str | None = None,
    timeout: float = 45.0,
) -> dict[str, Any]:
    """The newest trace in which ``otel-injector`` admitted a pod of ``namespace`` with
    ``decision`` (and admission ``uid``, if given), and which also holds the apiserver's
    "Call mutating webhook" span above it. Polls, bounded by ``timeout``: the apiserver
    and the webhook export their spans in batches, on their own schedules."""
    tags: dict[str, str] = {"k8s.namespace.name": namespace, "otel_injector.decision": decision}
    if uid:
        tags["otel_injector.admission.uid"] = uid
    query = f"/api/traces?service=otel-injector&limit=20&lookback=1h&tags={quote(json.dumps(tags))}"
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        found = cp.jaeger_api(query).get("data") or []
        seen = len(found)
        for summary in sorted(found, key=_start, reverse=True):
            trace = cp.jaeger_api(f"/api/traces/{summary['traceID']}")["data"][0]
            if trace_is_complete(build_tree(trace)):
                return dict(trace)
        time.sleep(0.5)
    raise ControlPlaneError(
        f"no complete admission trace for namespace {namespace!r} in Jaeger after {timeout:.0f}s "
        f"({seen} otel-injector traces matched, none with the apiserver's webhook call above them)"
    )


def _start(trace: dict[str, Any]) -> int:
    return min((int(s.get("startTime", 0)) for s in trace.get("spans") or []), default=0)
