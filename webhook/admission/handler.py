"""From an AdmissionReview body to an AdmissionReview response, with its trace and metrics.

No HTTP here: the FastAPI layer hands over bytes and gets bytes back, or a
:class:`~webhook.admission.review.BadReview` to turn into a 4xx.

Tracing: everything goes on the current span, the server span that the HTTP
instrumentation opened for this request. The request's attributes (namespace, pod, uid,
operation, dry run) and the outcome are its attributes. The phases are its *events*, a
timeline: each is stamped when its phase starts and lasts until the next one: decode review,
decide, mutate, build patch (the last two only when the pod is injected), then ``answer``
(metrics, log line and the response, until the span ends). So a trace still shows where the
time went; bench.localcluster.tracetree prints the events under the span with those times.

Why events and not child spans: with the bench's A/B (``bench.perf.compare``, typical pod,
every admission exported to Jaeger), four phase spans cost a fifth of the server's CPU per
admission (creating, ending, queueing, encoding and exporting five spans instead of one),
which alone put the 1,000 admissions/s target out of reach. Why events without attributes:
an attribute on each event (its duration) tripled what the events cost (timeit, creating
and encoding a server span: +87 us for four events with one attribute each, +25 us without),
and the timeline gives the durations anyway. When no span is recording (tracing off, or the
URL excluded), nothing is timed or recorded.

Bounded cost: the body's size weighs the pod for the injected-pod budget (no second
serialization), and everything the handler echoes (span attributes, the log line, warnings
on the span) is clipped as in the response (:mod:`webhook.core.bounds`).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from webhook.admission.review import (
    AdmissionRequest,
    BadReview,
    allowed,
    clip_warnings,
    parse_review,
    patched,
    render,
)
from webhook.admission.tracerecord import with_admission_trace
from webhook.core.bounds import clip
from webhook.core.decision import Reason, decide
from webhook.core.injection import InjectionResult, mutate
from webhook.core.patch import EMPTY, Patch, make_patch
from webhook.core.settings import InjectionSettings
from webhook.core.workload import pod_display_name
from webhook.telemetry.metrics import Metrics

log = logging.getLogger("webhook.admission.handler")

INTERNAL_ERROR_WARNING = "otel-injector: internal error; the pod was admitted without the sidecar"
#: The phases of an injection, in order, as events of the server span; each lasts until the next.
PHASES = ("decode review", "decide", "mutate", "build patch", "answer")


class AdmissionHandler:
    """Answers admission reviews. Thread-safe: it keeps no per-request state.

    ``settings`` is a callable so a reconciler can swap in a new frozen
    :class:`InjectionSettings` (say, a new config hash) without a restart."""

    def __init__(self, settings: Callable[[], InjectionSettings], metrics: Metrics) -> None:
        self._settings = settings
        self._metrics = metrics

    def handle(self, body: bytes) -> bytes:
        """Answer one review. Raises :class:`BadReview` for a malformed body; any other
        failure is answered ``allowed: true`` with a warning and logged with the trace id."""
        started = time.perf_counter()
        span = trace.get_current_span()
        phases = _Phases() if span.is_recording() else None
        try:
            request = parse_review(body)
        except BadReview as err:
            if phases is not None:
                phases.done("decode review")
                phases.record(span)
                span.set_status(Status(StatusCode.ERROR, str(err)))
            self._metrics.invalid_requests.labels(status=str(err.status)).inc()
            self._metrics.refused.labels(reason=err.reason).inc()
            raise
        if phases is not None:
            phases.done("decode review")
            span.set_attributes(_request_attributes(request))
        try:
            response, result, patch = self._admit(request, phases, len(body))
            outcome = "injected" if result.injected else "skipped"
            reason = result.reason.value
        except Exception as err:
            span.record_exception(err)
            span.set_status(Status(StatusCode.ERROR, "internal error"))
            log.exception("admission failed; pod admitted unchanged", extra={"uid": request.uid})
            response, outcome, reason, patch = allowed(request, [INTERNAL_ERROR_WARNING]), "error", "error", EMPTY
            result = None
        elapsed = time.perf_counter() - started
        self._metrics.admissions.labels(result=outcome, reason=reason).inc()
        self._metrics.latency.labels(result=outcome).observe(elapsed)
        if result is not None:
            for notice in result.notices:
                self._metrics.fallbacks.labels(reason=notice.reason).inc()
            if patch.operations:
                self._metrics.patch_operations.observe(len(patch.operations))
            if result.reason is Reason.TOO_LARGE:
                self._metrics.refused.labels(reason=Reason.TOO_LARGE.value).inc()
        if phases is not None:
            phases.record(span)
            span.set_attributes(_outcome_attributes(outcome, reason, result, patch))
        log.info(
            "admission %s: %s",
            outcome,
            reason,
            extra={
                "uid": request.uid,
                "namespace": clip(request.namespace),
                "pod": clip(pod_display_name(request.object)),
                "dry_run": request.dry_run,
                "patch_operations": len(patch.operations),
                "duration_ms": round(elapsed * 1000, 3),
            },
        )
        return render(response)

    def _admit(
        self, request: AdmissionRequest, phases: _Phases | None, body_bytes: int
    ) -> tuple[dict[str, Any], InjectionResult, Patch]:
        settings = self._settings()
        pod = request.object
        decision = decide(pod, namespace=request.namespace, operation=request.operation, settings=settings)
        if phases is not None:
            phases.done("decide")
        if not decision.inject:
            result = InjectionResult(pod=pod, decision=decision)
            return allowed(request, result.warnings), result, EMPTY
        # The body's size bounds the pod's: no need to serialize the pod again to weigh it.
        result = mutate(pod, settings, namespace=request.namespace, decision=decision, pod_bytes=body_bytes)
        if phases is not None:
            phases.done("mutate")
        patch = make_patch(pod, result.pod)
        if result.injected:
            patch = with_admission_trace(patch, trace.get_current_span())
        if phases is not None:
            phases.done("build patch")
        return patched(request, patch, result.warnings), result, patch


class _Phases:
    """When each phase ended, in nanoseconds since the epoch (the clock spans use), kept
    until they become the span's events in one go."""

    __slots__ = ("_marks",)

    def __init__(self) -> None:
        self._marks: list[tuple[str, int]] = [("", time.time_ns())]

    def done(self, phase: str) -> None:
        """``phase`` ended now; the next one starts now."""
        self._marks.append((phase, time.time_ns()))

    def record(self, span: Span) -> None:
        """One event per phase on ``span``, at the phase's start, then ``answer``."""
        marks = self._marks
        for (_, start), (phase, _) in itertools.pairwise(marks):
            span.add_event(phase, timestamp=start)
        span.add_event("answer", timestamp=marks[-1][1])


def _request_attributes(request: AdmissionRequest) -> dict[str, Any]:
    return {
        "k8s.namespace.name": clip(request.namespace),
        "k8s.pod.name": clip(pod_display_name(request.object)),
        "otel_injector.admission.uid": request.uid,  # at most 128 characters (parse_review)
        "otel_injector.operation": clip(request.operation),
        "otel_injector.dry_run": request.dry_run,
    }


def _outcome_attributes(outcome: str, reason: str, result: InjectionResult | None, patch: Patch) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "otel_injector.decision": outcome,
        "otel_injector.reason": reason,
        "otel_injector.patch.operations": len(patch.operations),
        "otel_injector.patch.bytes": len(patch.body) if patch.operations else 0,
    }
    if result is not None:
        if result.mode:
            attributes["otel_injector.sidecar_mode"] = result.mode
        if result.notices:
            attributes["otel_injector.fallbacks"] = len(result.notices)
        if result.warnings:
            # The same ten clipped lines the response carries: a span attribute of every
            # warning in full made one request a 114 MB export batch (issue 9).
            attributes["otel_injector.warnings"] = clip_warnings(result.warnings)
    return attributes
