"""A Jaeger trace as an indented tree of service, span name and duration.

The events (Jaeger's "logs") of otel-injector's spans are shown under them among their
children, marked ``·``, read as a timeline: each with its offset from the span's start and the
time until the next event (or the span's end). The webhook's phases are such a timeline
(webhook.admission.handler). Other services' events (the apiserver logs a dozen per request)
are left out unless asked for.

Pure: it takes the JSON of Jaeger's ``/api/traces/<id>`` (or one element of
``/api/traces``'s ``data``) and returns text, so the demo and the tests share it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Attributes worth a glance next to a span; the rest stay in Jaeger.
_SHOWN = ("webhook", "otel_injector.decision", "otel_injector.reason", "otel_injector.patch.operations")


@dataclass
class SpanEvent:
    """One event of a span: its name, when it happened, its attributes, and how long until
    the span's next event or its end."""

    name: str
    time_us: int
    fields: dict[str, Any]
    until_next_us: int = 0


@dataclass
class SpanNode:
    """One span and its children, ordered by start time."""

    span_id: str
    service: str
    name: str
    start_us: int
    duration_us: int
    tags: dict[str, Any]
    parent_id: str | None
    children: list[SpanNode] = field(default_factory=list)
    events: list[SpanEvent] = field(default_factory=list)

    def walk(self) -> Iterable[SpanNode]:
        """Yield the span and all its descendants, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()


def build_tree(trace: Mapping[str, Any]) -> list[SpanNode]:
    """The root spans of ``trace`` with their children linked. A span whose parent is not
    in the trace (not exported, or still in flight) becomes a root of its own."""
    processes = trace.get("processes") or {}
    nodes: dict[str, SpanNode] = {}
    for span in trace.get("spans") or []:
        parent = next(
            (ref.get("spanID") for ref in span.get("references") or [] if ref.get("refType") == "CHILD_OF"), None
        )
        process = processes.get(span.get("processID"), {})
        nodes[span["spanID"]] = SpanNode(
            span_id=span["spanID"],
            service=str(process.get("serviceName", "?")),
            name=str(span.get("operationName", "?")),
            start_us=int(span.get("startTime", 0)),
            duration_us=int(span.get("duration", 0)),
            tags={t["key"]: t.get("value") for t in span.get("tags") or [] if "key" in t},
            parent_id=parent,
            events=sorted((_event(log) for log in span.get("logs") or []), key=lambda e: e.time_us),
        )
    roots: list[SpanNode] = []
    for node in nodes.values():
        parent_node = nodes.get(node.parent_id) if node.parent_id else None
        (parent_node.children if parent_node else roots).append(node)
    for node in nodes.values():
        node.children.sort(key=lambda n: n.start_us)
        ends = [e.time_us for e in node.events[1:]] + [node.start_us + node.duration_us]
        for event, end in zip(node.events, ends, strict=False):  # no events: ends has one
            event.until_next_us = max(0, end - event.time_us)
    return sorted(roots, key=lambda n: n.start_us)


def _event(log: Mapping[str, Any]) -> SpanEvent:
    fields = {f["key"]: f.get("value") for f in log.get("fields") or [] if "key" in f}
    name = fields.pop("event", None) or fields.pop("message", None) or "event"
    return SpanEvent(name=str(name), time_us=int(log.get("timestamp", 0)), fields=fields)


def render(roots: Sequence[SpanNode], events_of: Iterable[str] = ("otel-injector",)) -> str:
    """Indented text: ``service  span name  duration  [key=value ...]`` per span, and
    ``· event  time to the next event  at +offset`` per event, children and events in time
    order; events only for the services in ``events_of``."""
    lines: list[str] = []
    shown_events = frozenset(events_of)

    def visit(node: SpanNode, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└─ " if last else "├─ ")
        shown = " ".join(f"{k}={node.tags[k]}" for k in _SHOWN if k in node.tags)
        extra = f"  [{shown}]" if shown else ""
        lines.append(f"{prefix}{branch}{node.service}  {node.name}  {node.duration_us / 1000:.2f} ms{extra}")
        child_prefix = prefix if top else prefix + ("   " if last else "│  ")
        events = node.events if node.service in shown_events else []
        items: list[tuple[int, SpanNode | SpanEvent]] = [(e.time_us, e) for e in events]
        items += [(c.start_us, c) for c in node.children]
        items.sort(key=lambda item: item[0])
        for index, (_, item) in enumerate(items):
            is_last = index == len(items) - 1
            if isinstance(item, SpanNode):
                visit(item, child_prefix, is_last, False)
                continue
            offset = (item.time_us - node.start_us) / 1000
            lines.append(
                f"{child_prefix}{'└─ ' if is_last else '├─ '}· {item.name}  {item.until_next_us / 1000:.2f} ms"
                f"  at +{offset:.2f} ms"
            )

    for root in roots:
        visit(root, "", True, True)
    return "\n".join(lines)


def find_span(roots: Sequence[SpanNode], *, service: str, name: str | None = None) -> SpanNode | None:
    """The first span of ``service`` (and ``name``, if given) in the tree."""
    for root in roots:
        for node in root.walk():
            if node.service == service and (name is None or node.name == name):
                return node
    return None


def ancestors(roots: Sequence[SpanNode], target: SpanNode) -> list[SpanNode]:
    """The spans from a root down to ``target``'s parent, in order; [] when not found."""

    def path(node: SpanNode, trail: list[SpanNode]) -> list[SpanNode] | None:
        if node is target:
            return trail
        for child in node.children:
            found = path(child, [*trail, node])
            if found is not None:
                return found
        return None

    for root in roots:
        found = path(root, [])
        if found is not None:
            return found
    return []


def trace_is_complete(roots: Sequence[SpanNode]) -> bool:
    """Whether the apiserver's webhook call and our server span under it are both in."""
    call = find_span(roots, service="apiserver", name="Call mutating webhook")
    server = find_span(roots, service="otel-injector", name="POST /mutate")
    return call is not None and server is not None and call in ancestors(roots, server)
