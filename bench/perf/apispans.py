"""What a client span costs a controller's API call (issue 12 §9).

    python -m bench.perf.apispans [--calls 2000] [--rounds 6]

Two figures, both printed with the machine's load average:

* **in-process**: the time one :class:`~webhook.telemetry.controllerspans.ApiCall` adds on
  the calling thread (start the span, write the traceparent, record the status, end it into
  the SDK's batch queue), under a work span, with the SDK and the OTLP exporter the webhook
  uses (export runs in its own thread, to the bench's Jaeger). Median of ``--rounds``.
* **end to end**: GETs of one ConfigMap from a real kube-apiserver (the bench's control
  plane, admin credentials, so the apiserver also continues each trace), traced and
  untraced in alternating blocks so the shared machine's drift falls on both alike; the
  difference of the medians per call. It includes what the apiserver itself does with a
  sampled parent (its spans are sampled then), so it is an upper bound for our side.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import NoOpTracer, Tracer

from bench.localcluster.controlplane import ControlPlane
from webhook.cluster.client import Kube
from webhook.cluster.paths import configmap_path
from webhook.telemetry.controllerspans import ApiCall, work_span


class _Discard(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _provider(endpoint: str = "") -> TracerProvider:
    """The SDK as the webhook sets it up; without ``endpoint`` the batches are discarded."""
    provider = TracerProvider(resource=Resource.create({"service.name": "apispans-bench"}))
    exporter = OTLPSpanExporter(f"{endpoint}/v1/traces") if endpoint else _Discard()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def in_process(tracer: Tracer, calls: int, provider: TracerProvider | None = None) -> float:
    """CPU microseconds of this process per ApiCall (enter, status, exit) under a work
    span; with ``provider``, including its export thread's work for those spans (flushed)."""
    with work_span(tracer, "bench", {}):
        started = time.process_time()
        for _ in range(calls):
            with ApiCall(tracer, "GET", "/api/v1/namespaces/bench/configmaps/probe", "127.0.0.1", 6443) as call:
                call.status(200)
        if provider is not None:
            provider.force_flush()
        elapsed = time.process_time() - started
    return elapsed / calls * 1e6


def round_trips(kube: Kube, calls: int) -> float:
    """Microseconds per GET, each under its own work span (as a reconcile's would be)."""
    path = configmap_path("bench", "probe")
    started = time.perf_counter()
    for _ in range(calls):
        with work_span(kube.tracer, "bench", {}):
            kube.get(path)
    return (time.perf_counter() - started) / calls * 1e6


def main() -> int:
    """Run both measurements and print them."""
    parser = argparse.ArgumentParser(prog="python -m bench.perf.apispans", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    with ControlPlane() as cp:
        provider = _provider(cp.jaeger_otlp_http_endpoint)
        tracer = provider.get_tracer("bench")
        discard = _provider()
        batch = 256  # below the batch queue's 2048, so no span is dropped and all are counted
        spans = [in_process(tracer, batch, provider) for _ in range(args.rounds * 4)]
        unexported = [in_process(discard.get_tracer("bench"), batch, discard) for _ in range(args.rounds * 4)]
        baseline = [in_process(NoOpTracer(), args.calls) for _ in range(args.rounds)]
        discard.shutdown()
        cp.kubectl("create", "namespace", "bench")
        cp.kubectl("create", "configmap", "probe", "-n", "bench", "--from-literal=a=b")
        traced, plain = Kube.connect(str(cp.kubeconfig), tracer=tracer), Kube.connect(str(cp.kubeconfig))
        block = max(50, args.calls // 10)
        with_spans: list[float] = []
        without: list[float] = []
        round_trips(traced, block)  # warm the connection pools
        round_trips(plain, block)
        for index in range(args.rounds * 2):
            first, second = (traced, plain) if index % 2 == 0 else (plain, traced)
            for kube in (first, second):
                (with_spans if kube is traced else without).append(round_trips(kube, block))
        provider.shutdown()
        load = os.getloadavg()
    print(f"load average (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    print(
        f"in-process CPU per ApiCall: {statistics.median(spans):.1f} us exported over OTLP to Jaeger, "
        f"{statistics.median(unexported):.1f} us with the batches discarded, "
        f"{statistics.median(baseline):.2f} us with tracing off; medians of {args.rounds * 4} x {batch}"
    )
    a, b = statistics.median(with_spans), statistics.median(without)
    print(
        f"end to end: GET from the real apiserver {a:.0f} us traced vs {b:.0f} us untraced "
        f"(+{a - b:.0f} us, {a / b:.2f}x); medians of {len(with_spans)} blocks of {block}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
