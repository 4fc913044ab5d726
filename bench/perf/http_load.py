"""Sections 1 and 2: HTTP load over TLS against ``otel-injector serve`` and the no-op ceiling.

For each worker count, one server per tracing setting runs every pod shape in turn:

1. a short warm-up (closed loop);
2. closed-loop maximum throughput, repeated, median kept, with the server's CPU time per
   request (from /proc, robust to a busy machine);
3. the open-loop rate ladder, skipping rates above 85 % of the measured maximum (their
   latency only measures queueing). The headline point (typical pod, one worker, tracing
   on, 200/s) is repeated and its median kept.

The ceiling runs the same closed loop for every shape's body and the rate ladder for the
typical one. RSS of the workers is sampled throughout and reported per shape.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.perf import pods
from bench.perf.servers import BenchError, Server, TraceBackend, check_answer, start_server
from bench.perf.system import RssSampler, cpu_seconds, load_average, log, server_processes
from bench.perf.wrk import closed_loop, open_loop

HEADLINE = {"workers": 1, "tracing": True, "shape": "typical", "rate": 200}
CAPACITY_FRACTION = 0.85
DROPPED_SPANS_WARNING = "Queue is full, likely spans will be dropped"


@dataclass(frozen=True)
class HttpPlan:
    """How much load to apply; :meth:`quick` is the smoke-run version."""

    workers: tuple[int, ...] = (1, 2)
    shapes: tuple[str, ...] = pods.SHAPES
    tracing: tuple[bool, ...] = (True, False)
    rates: tuple[int, ...] = (50, 100, 200, 400, 800)
    warmup_seconds: float = 2.0
    closed_seconds: float = 4.0
    closed_repeats: int = 3
    headline_repeats: int = 3
    min_samples: int = 600
    open_seconds: tuple[float, float] = (5.0, 10.0)  # at least, at most
    ceiling_shapes: tuple[str, ...] = pods.SHAPES

    @classmethod
    def quick(cls) -> HttpPlan:
        """A smoke run: one worker, the typical pod, two rates, one repeat."""
        return cls(
            workers=(1,),
            shapes=("typical",),
            rates=(50, 200),
            warmup_seconds=1.0,
            closed_seconds=2.0,
            closed_repeats=1,
            headline_repeats=1,
            min_samples=100,
            open_seconds=(2.0, 2.0),
            ceiling_shapes=("typical",),
        )

    def seconds_for(self, rate: float) -> float:
        """Long enough for ``min_samples`` answers, within ``open_seconds``."""
        low, high = self.open_seconds
        return min(high, max(low, self.min_samples / rate))


@dataclass
class ShapeRun:
    """The figures for one server, worker count, tracing setting and pod shape."""

    kind: str
    workers: int
    tracing: bool
    shape: str
    body_bytes: int
    closed: list[dict[str, Any]] = field(default_factory=list)
    open: list[dict[str, Any]] = field(default_factory=list)
    headline_p99_runs_ms: list[float] = field(default_factory=list)
    skipped_rates: list[int] = field(default_factory=list)
    cpu_ms_per_request: float | None = None
    peak_rss_mib: float = 0.0
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def max_rps(self) -> float:
        """Median of the closed-loop runs."""
        return statistics.median(r["rps"] for r in self.closed) if self.closed else 0.0

    def as_dict(self) -> dict[str, Any]:
        """For results.json."""
        return {
            "kind": self.kind,
            "workers": self.workers,
            "tracing": self.tracing,
            "shape": self.shape,
            "body_bytes": self.body_bytes,
            "max_rps": self.max_rps,
            "closed_runs": self.closed,
            "cpu_ms_per_request": self.cpu_ms_per_request,
            "open": self.open,
            "headline_p99_runs_ms": self.headline_p99_runs_ms,
            "skipped_rates_above_capacity": self.skipped_rates,
            "peak_rss_mib_per_worker": self.peak_rss_mib,
            "load_average_before": self.load_average,
        }


def write_bodies(workdir: Path, shapes: Sequence[str]) -> dict[str, Path]:
    """One AdmissionReview file per shape, for wrk."""
    files = {}
    for shape in shapes:
        path = workdir / f"review-{shape}.json"
        path.write_bytes(pods.review_body(shape))
        files[shape] = path
    return files


def _server_cpu(server: Server) -> float:
    return sum(cpu_seconds(pid) for pid in server_processes(server.child.pid))


def _run_shape(server: Server, shape: str, body: Path, plan: HttpPlan, rates: Sequence[int]) -> ShapeRun:
    run = ShapeRun(server.kind, server.workers, server.tracing, shape, body.stat().st_size)
    run.load_average = load_average()
    check_answer(server, body.read_bytes(), shape)
    sampler = RssSampler(server.child.pid).start()
    try:
        closed_loop(server.url, body, plan.warmup_seconds)
        cpu_total, requests = 0.0, 0
        for _ in range(plan.closed_repeats):
            before = _server_cpu(server)
            result = closed_loop(server.url, body, plan.closed_seconds)
            cpu_total += _server_cpu(server) - before
            requests += result.requests
            run.closed.append(result.as_dict())
        run.cpu_ms_per_request = round(cpu_total / requests * 1000, 3) if requests else None
        log(
            f"  {server.kind} w={server.workers} tracing={'on' if server.tracing else 'off'} {shape}: "
            f"max {run.max_rps:.0f}/s (runs {', '.join(str(round(r['rps'])) for r in run.closed)}), "
            f"{run.cpu_ms_per_request} ms CPU/request"
        )
        for rate in rates:
            if rate > CAPACITY_FRACTION * run.max_rps:
                run.skipped_rates.append(rate)
                continue
            headline = (
                server.kind == "webhook"
                and server.workers == HEADLINE["workers"]
                and server.tracing == HEADLINE["tracing"]
                and shape == HEADLINE["shape"]
                and rate == HEADLINE["rate"]
            )
            repeats = plan.headline_repeats if headline else 1
            results = [open_loop(server.url, body, rate, plan.seconds_for(rate)) for _ in range(repeats)]
            results.sort(key=lambda r: r.p99_ms)
            chosen = results[len(results) // 2]
            if headline:
                run.headline_p99_runs_ms = [r.p99_ms for r in results]
            run.open.append(chosen.as_dict())
            log(
                f"    {rate}/s: p50 {chosen.p50_ms:.2f} p90 {chosen.p90_ms:.2f} p99 {chosen.p99_ms:.2f} "
                f"max {chosen.max_ms:.2f} ms ({chosen.samples} answers, {chosen.achieved_rps:.0f}/s)"
                + (f" [p99 runs {', '.join(f'{r.p99_ms:.2f}' for r in results)}]" if repeats > 1 else "")
            )
    finally:
        sampler.stop()
    run.peak_rss_mib = sampler.peak_mib_per_worker()
    return run


def run_http(plan: HttpPlan, *, tls_dir: Path, workdir: Path, backend: TraceBackend | None) -> dict[str, Any]:
    """Every server, worker count, tracing setting and shape in ``plan``."""
    bodies = write_bodies(workdir, sorted(set(plan.shapes) | set(plan.ceiling_shapes)))
    runs: list[ShapeRun] = []
    notes: list[str] = []
    span_drops: dict[str, bool] = {}
    started = time.monotonic()
    for workers in plan.workers:
        setups: list[tuple[str, bool]] = [("ceiling", False)]
        setups += [("webhook", t) for t in plan.tracing if backend is not None or not t]
        if backend is None and True in plan.tracing:
            notes.append("tracing-on runs skipped: no OTLP receiver could be started")
        for kind, tracing in setups:
            label = f"{kind}-w{workers}-tracing-{'on' if tracing else 'off'}"
            try:
                server = start_server(
                    kind,
                    workers=workers,
                    tracing=tracing,
                    tls_dir=tls_dir,
                    workdir=workdir,
                    backend=backend,
                    label=label,
                )
            except BenchError as err:
                log(f"  {label}: {err}")
                notes.append(f"{label} not measured: {str(err).splitlines()[0]}")
                continue
            try:
                shapes = plan.ceiling_shapes if kind == "ceiling" else plan.shapes
                for shape in shapes:
                    rates = plan.rates if (kind == "webhook" or shape == "typical") else ()
                    try:
                        runs.append(_run_shape(server, shape, bodies[shape], plan, rates))
                    except Exception as err:  # one failed run must not lose the others
                        log(f"  {label} {shape}: {err}")
                        notes.append(f"{label} {shape} not measured: {str(err).splitlines()[0]}")
            finally:
                if tracing:
                    time.sleep(1.0)  # let the batch processor say whether it dropped spans
                    span_drops[label] = server.log_mentions(DROPPED_SPANS_WARNING)
                server.stop()
    if not runs:
        raise BenchError("no HTTP runs were made")
    return {
        "runs": [r.as_dict() for r in runs],
        "span_queue_overflowed": span_drops,
        "trace_backend": None if backend is None else {"kind": backend.kind, "version": backend.version},
        "plan": {
            "rates": list(plan.rates),
            "closed_connections": 16,
            "open_connections": 8,
            "closed_seconds": plan.closed_seconds,
            "closed_repeats": plan.closed_repeats,
            "headline_repeats": plan.headline_repeats,
            "capacity_fraction": CAPACITY_FRACTION,
        },
        "notes": notes,
        "seconds": round(time.monotonic() - started, 1),
    }
