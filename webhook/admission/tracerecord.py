"""The admission's trace context, recorded on the pod it injected, so that the controllers'
work for that pod can link to it (:mod:`webhook.cluster.reconcilespans`).

When the webhook injects a pod while continuing a caller's trace (the apiserver sent a
``traceparent``, so the admission is part of the pod's creation trace) and the admission
span is sampled, one more patch operation sets the annotation
``otel-injector.io/admission-trace`` to the W3C ``traceparent`` of that span (55
characters). Nothing is added when tracing is off, the span is not sampled, the request
came without a trace context (the trace would hold this span alone), or the pod was not
injected, so the pure injection, its status record and the goldens stay as they are.

Why an annotation of its own rather than a field of ``otel-injector.io/status``: the status
record is written by the pure core, which knows nothing of traces and must give the same
bytes for the same pod; this is the HTTP adapter's knowledge.
"""

from __future__ import annotations

import logging

import orjson
from opentelemetry.trace import Span

from webhook.core import names
from webhook.core.patch import Patch

log = logging.getLogger("webhook.admission.tracerecord")
_PATH = "/metadata/annotations/" + names.ADMISSION_TRACE_ANNOTATION.replace("~", "~0").replace("/", "~1")


def traceparent_of(span: Span) -> str | None:
    """The ``traceparent`` to record for ``span``, or ``None`` (see the module docstring)."""
    context = span.get_span_context()
    if not context.is_valid or not context.trace_flags.sampled or not span.is_recording():
        return None
    parent = getattr(span, "parent", None)  # the SDK's span; the API's has none
    if parent is None or not parent.is_remote:
        return None
    # Only the sampled flag, as the controllers' client spans send it (controllerspans).
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags) & 1:02x}"


def with_admission_trace(patch: Patch, span: Span) -> Patch:
    """``patch`` plus the annotation operation, when there is a trace context to record.
    ``patch`` must be an injection's (it adds the status annotation, so the annotations
    object exists once it is applied). Never raises: a broken span leaves ``patch`` as it is."""
    if not patch.operations:
        return patch
    try:
        traceparent = traceparent_of(span)
    except Exception:  # telemetry never costs a pod its sidecar
        log.debug("could not read the admission's span context", exc_info=True)
        return patch
    if traceparent is None:
        return patch
    operation = {"op": "add", "path": _PATH, "value": traceparent}
    # The body is spliced rather than re-encoded: the patch can be megabytes.
    return Patch(
        operations=[*patch.operations, operation], body=patch.body[:-1] + b"," + orjson.dumps(operation) + b"]"
    )
