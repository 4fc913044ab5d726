"""The admission's traceparent on the pod: only for a sampled span continuing a caller's
trace, as one more patch operation whose body stays valid JSON."""

from __future__ import annotations

import json

import jsonpatch
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from webhook.admission.tracerecord import traceparent_of, with_admission_trace
from webhook.core import names
from webhook.core.patch import EMPTY, make_patch

POD = {"metadata": {"name": "p", "labels": {"app": "a"}}, "spec": {"containers": [{"name": "a"}]}}
INJECTED = {
    "metadata": {"name": "p", "labels": {"app": "a"}, "annotations": {names.STATUS_ANNOTATION: "{}"}},
    "spec": {"containers": [{"name": "a"}]},
}
REMOTE = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, True, TraceFlags(1))


def test_a_span_continuing_the_apiservers_trace_is_recorded() -> None:
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("admission", context=trace.set_span_in_context(NonRecordingSpan(REMOTE))) as span:
        patch = with_admission_trace(make_patch(POD, INJECTED), span)
        expected = f"00-{REMOTE.trace_id:032x}-{span.get_span_context().span_id:016x}-01"
        assert traceparent_of(span) == expected
    assert json.loads(patch.body) == patch.operations
    result = jsonpatch.apply_patch(POD, patch.operations)
    assert result["metadata"]["annotations"][names.ADMISSION_TRACE_ANNOTATION] == expected
    assert len(patch.operations) == len(make_patch(POD, INJECTED).operations) + 1


def test_nothing_is_recorded_without_a_callers_trace_or_sampling() -> None:
    patch = make_patch(POD, INJECTED)
    with TracerProvider().get_tracer("t").start_as_current_span("root") as root:
        assert with_admission_trace(patch, root) is patch  # no caller: the trace is this span alone
    unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("t")
    with unsampled.start_as_current_span("a", context=trace.set_span_in_context(NonRecordingSpan(REMOTE))) as span:
        assert with_admission_trace(patch, span) is patch
    assert with_admission_trace(patch, trace.INVALID_SPAN) is patch
    assert with_admission_trace(EMPTY, NonRecordingSpan(REMOTE)) is EMPTY


class BrokenSpan(NonRecordingSpan):
    def get_span_context(self) -> SpanContext:
        raise RuntimeError("telemetry is down")


def test_a_broken_span_leaves_the_patch_as_it_is() -> None:
    patch = make_patch(POD, INJECTED)
    assert with_admission_trace(patch, BrokenSpan(REMOTE)) is patch
