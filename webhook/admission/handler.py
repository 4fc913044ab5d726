"""From an AdmissionReview body to an AdmissionReview response, with spans and metrics.

No HTTP here: the FastAPI layer hands over bytes and gets bytes back, or a
:class:`~webhook.admission.review.BadReview` to turn into a 4xx. Each phase runs in its own child
span of the current (server) span: decode, decide, mutate, build patch. The request's
attributes (namespace, pod, uid, operation, dry run) and the outcome go on the server
span once; the phase spans carry only what is their own, since every attribute costs
time when it is set and again when it is exported. The phase spans are children of the
server span but never current themselves (nothing runs inside them that traces or logs),
which spares a context switch in and out for each.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode, Tracer

from webhook.admission.review import AdmissionRequest, BadReview, allowed, parse_review, patched, render
from webhook.core.decision import decide
from webhook.core.injection import InjectionResult, mutate
from webhook.core.patch import EMPTY, Patch, make_patch
from webhook.core.settings import InjectionSettings
from webhook.core.workload import pod_display_name
from webhook.telemetry.metrics import Metrics

log = logging.getLogger("webhook.admission.handler")

INTERNAL_ERROR_WARNING = "otel-injector: internal error; the pod was admitted without the sidecar"


class AdmissionHandler:
    """Answers admission reviews. Thread-safe: it keeps no per-request state.

    ``settings`` is a callable so a reconciler can swap in a new frozen
    :class:`InjectionSettings` (say, a new config hash) without a restart."""

    def __init__(
        self,
        settings: Callable[[], InjectionSettings],
        metrics: Metrics,
        tracer: Tracer | None = None,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._tracer = tracer or trace.get_tracer("webhook.admission.handler")

    def handle(self, body: bytes) -> bytes:
        """Answer one review. Raises :class:`BadReview` for a malformed body; any other
        failure is answered ``allowed: true`` with a warning and logged with the trace id."""
        started = time.perf_counter()
        server_span = trace.get_current_span()
        with self._tracer.start_span("decode review") as span:
            try:
                request = parse_review(body)
            except BadReview as err:
                span.set_status(Status(StatusCode.ERROR, str(err)))
                self._metrics.invalid_requests.labels(status=str(err.status)).inc()
                raise
        server_span.set_attributes(_request_attributes(request))
        try:
            response, result, patch = self._admit(request)
            outcome = "injected" if result.injected else "skipped"
            reason = result.reason.value
        except Exception as err:
            server_span.record_exception(err)
            server_span.set_status(Status(StatusCode.ERROR, "internal error"))
            log.exception("admission failed; pod admitted unchanged", extra={"uid": request.uid})
            response, outcome, reason, patch = allowed(request, [INTERNAL_ERROR_WARNING]), "error", "error", EMPTY
            result = None
        elapsed = time.perf_counter() - started
        self._metrics.admissions.labels(result=outcome, reason=reason).inc()
        self._metrics.latency.labels(result=outcome).observe(elapsed)
        outcome_attributes: dict[str, Any] = {
            "otel_injector.decision": outcome,
            "otel_injector.reason": reason,
            "otel_injector.patch.operations": len(patch.operations),
            "otel_injector.patch.bytes": len(patch.body) if patch.operations else 0,
        }
        if result is not None:
            if result.mode:
                outcome_attributes["otel_injector.sidecar_mode"] = result.mode
            if result.warnings:
                outcome_attributes["otel_injector.warnings"] = list(result.warnings)
            for notice in result.notices:
                self._metrics.fallbacks.labels(reason=notice.reason).inc()
            if patch.operations:
                self._metrics.patch_operations.observe(len(patch.operations))
        server_span.set_attributes(outcome_attributes)
        log.info(
            "admission %s: %s",
            outcome,
            reason,
            extra={
                "uid": request.uid,
                "namespace": request.namespace,
                "pod": pod_display_name(request.object),
                "dry_run": request.dry_run,
                "patch_operations": len(patch.operations),
                "duration_ms": round(elapsed * 1000, 3),
            },
        )
        return render(response)

    def _admit(self, request: AdmissionRequest) -> tuple[dict[str, Any], InjectionResult, Patch]:
        settings = self._settings()
        pod = request.object
        with self._tracer.start_span("decide") as span:
            decision = decide(pod, namespace=request.namespace, operation=request.operation, settings=settings)
            _set_decision(span, decision.inject, decision.reason.value)
        if not decision.inject:
            result = InjectionResult(pod=pod, decision=decision)
            return allowed(request, result.warnings), result, EMPTY
        with self._tracer.start_span("mutate") as span:
            result = mutate(pod, settings, namespace=request.namespace, decision=decision)
            span.set_attribute("otel_injector.sidecar_mode", result.mode or "")
            span.set_attribute("otel_injector.fallbacks", len(result.notices))
        with self._tracer.start_span("build patch") as span:
            patch = make_patch(pod, result.pod)
            span.set_attribute("otel_injector.patch.operations", len(patch.operations))
            span.set_attribute("otel_injector.patch.bytes", len(patch.body))
        return patched(request, patch, result.warnings), result, patch


def _request_attributes(request: AdmissionRequest) -> dict[str, Any]:
    return {
        "k8s.namespace.name": request.namespace,
        "k8s.pod.name": pod_display_name(request.object),
        "otel_injector.admission.uid": request.uid,
        "otel_injector.operation": request.operation,
        "otel_injector.dry_run": request.dry_run,
    }


def _set_decision(span: Span, inject: bool, reason: str) -> None:
    span.set_attribute("otel_injector.decision", "injected" if inject else "skipped")
    span.set_attribute("otel_injector.reason", reason)
