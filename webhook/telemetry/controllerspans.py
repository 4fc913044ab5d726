"""Spans of the in-cluster controllers: one per unit of work, one client span per API call
under it, and a link to the admission that caused the work.

* :func:`work_span`: a reconcile of a namespace, a certificate renewal, a caBundle patch
  (:mod:`webhook.cluster.reconcilespans`, :mod:`webhook.cluster.certkeeper`). Each is the
  root of its own trace (the controllers' threads carry no context), kind INTERNAL, with
  the attributes ``otel_injector.object``, ``otel_injector.decision`` and
  ``otel_injector.reason``.
* :class:`ApiCall`: one Kubernetes API request (:meth:`webhook.cluster.client.Kube.request`),
  kind CLIENT, named ``{method} {url.template}`` per the HTTP semantic conventions, whose
  W3C ``traceparent`` goes to the apiserver in the request's headers. Only under a work
  span: the informers' lists and watches and the Lease renewals every 2 s make no spans,
  so Jaeger shows work, not polling.
* :func:`admission_link`: the admission recorded in a pod's
  ``otel-injector.io/admission-trace`` annotation (:mod:`webhook.admission.tracerecord`)
  as a span link.

Telemetry never fails the work: starting or ending a span that raises is logged at debug
level and the work goes on (without the span).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Link, Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags, Tracer

from webhook import __version__

log = logging.getLogger("webhook.telemetry.controllerspans")

TRACER_NAME = "otel_injector.controllers"
#: At most this many admission links on one span (a namespace may have many such pods).
MAX_LINKS = 8

Attributes = Mapping[str, str | bool | int | float]


def controller_tracer(provider: trace.TracerProvider | None) -> Tracer:
    """The controllers' tracer from ``provider``; a no-op tracer when tracing is off."""
    if provider is None:
        return trace.NoOpTracer()
    return provider.get_tracer(TRACER_NAME, __version__)


@contextmanager
def work_span(tracer: Tracer, name: str, attributes: Attributes, links: Sequence[Link] = ()) -> Iterator[Span]:
    """A span around one unit of the controllers' work, current while the block runs. An
    exception of the block is recorded on the span and re-raised; a failure of the
    tracing itself is not raised."""
    try:
        manager = tracer.start_as_current_span(name, kind=SpanKind.INTERNAL, attributes=attributes, links=links)
        span = manager.__enter__()
    except Exception:
        log.debug("could not start span %s", name, exc_info=True)
        yield INVALID_SPAN
        return
    try:
        yield span
    except BaseException as err:
        _exit(manager, type(err), err)
        raise
    _exit(manager, None, None)


def _exit(manager: Any, kind: type[BaseException] | None, err: BaseException | None) -> None:
    try:
        manager.__exit__(kind, err, None if err is None else err.__traceback__)
    except Exception:
        log.debug("could not end a span", exc_info=True)


def decide(span: Span, decision: str, reason: str) -> None:
    """Record what the work decided and why."""
    try:
        span.set_attributes({"otel_injector.decision": decision, "otel_injector.reason": reason[:500]})
    except Exception:
        log.debug("could not set the decision on a span", exc_info=True)


def add_links(span: Span, links: Sequence[Link]) -> None:
    """Link ``span`` to ``links`` (at most :data:`MAX_LINKS`) after it started."""
    for link in links[:MAX_LINKS]:
        try:
            span.add_link(link.context, link.attributes)
        except Exception:
            log.debug("could not add a link", exc_info=True)


def url_template(path: str) -> str:
    """The low-cardinality form of an API path: namespace and object names replaced, e.g.
    ``/api/v1/namespaces/{namespace}/configmaps/{name}``."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    head = 2 if parts[:1] == ["api"] else 3 if parts[:1] == ["apis"] else len(parts)
    out, rest = parts[:head], parts[head:]
    if rest[:1] == ["namespaces"] and len(rest) >= 2:
        out += ["namespaces", "{namespace}" if len(rest) > 2 else "{name}"]
        rest = rest[2:]
    if rest:
        out.append(rest[0])  # the resource
        if len(rest) >= 2:
            out.append("{name}")
        out += rest[2:]  # a subresource
    return "/" + "/".join(out)


class ApiCall:
    """One API request's client span (a context manager). ``headers`` holds the
    ``traceparent`` to send; :meth:`status` records the answer's HTTP status."""

    __slots__ = ("_manager", "headers", "span")

    def __init__(self, tracer: Tracer, method: str, path: str, host: str = "", port: int | None = None) -> None:
        self.headers: dict[str, str] = {}
        self.span: Span = INVALID_SPAN
        self._manager: Any = None
        if not trace.get_current_span().get_span_context().is_valid:
            return  # not under a work span: no client span (see the module docstring)
        template = url_template(path)
        attributes: dict[str, str | int] = {"http.request.method": method, "url.template": template, "url.path": path}
        if host:
            attributes["server.address"] = host
        if port:
            attributes["server.port"] = port
        try:
            self._manager = tracer.start_as_current_span(
                f"{method} {template}", kind=SpanKind.CLIENT, attributes=attributes
            )
            self.span = self._manager.__enter__()
            self.headers["traceparent"] = level1_traceparent(self.span.get_span_context())
        except Exception:
            log.debug("could not start the client span of %s %s", method, path, exc_info=True)
            self._manager = None

    def status(self, code: int) -> None:
        """The HTTP status of the answer (0: the server was not reached)."""
        if self._manager is None:
            return
        try:
            if code:
                self.span.set_attribute("http.response.status_code", code)
            if not 200 <= code < 400:
                self.span.set_attribute("error.type", str(code) if code else "unreachable")
                self.span.set_status(Status(StatusCode.ERROR))
        except Exception:
            log.debug("could not record the status on a client span", exc_info=True)

    def __enter__(self) -> ApiCall:
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: Any) -> None:
        if self._manager is not None:
            _exit(self._manager, kind, err)


def level1_traceparent(context: SpanContext) -> str:
    """The W3C ``traceparent`` of ``context`` with only the *sampled* flag.

    Why not ``opentelemetry.propagate.inject``: this SDK sets the W3C Trace Context Level 2
    *random* flag too (``...-03``), and kube-apiserver 1.36's OpenTelemetry Go (v1.41,
    ``propagation/trace_context.go``) rejects a version-00 header whose flags are above 02:
    measured on the bench's apiserver, a ``-03`` header was dropped as if absent (no parent,
    no link). Level 1 readers only know the sampled bit, so nothing is lost."""
    flags = int(context.trace_flags) & TraceFlags.SAMPLED
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags:02x}"


def admission_link(traceparent: str | None, **attributes: str) -> Link | None:
    """A link to the admission span a ``traceparent`` value names; ``None`` when the value
    is missing or malformed."""
    if not isinstance(traceparent, str):
        return None
    parts = traceparent.strip().split("-")
    if len(parts) != 4 or parts[0] != "00" or len(parts[1]) != 32 or len(parts[2]) != 16 or len(parts[3]) != 2:
        return None
    try:
        trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3], 16)
    except ValueError:
        return None
    if not trace_id or not span_id:
        return None
    context = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags))
    return Link(context, {"otel_injector.link": "admission", **attributes})
