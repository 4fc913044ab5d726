"""The Jaeger trace → tree rendering used by the demo and the e2e tests."""

from __future__ import annotations

from typing import Any

from bench.localcluster.tracetree import ancestors, build_tree, find_span, render, trace_is_complete


def span(
    span_id: str, name: str, process: str, start: int, duration: int, *, parent: str | None = None, **tags: Any
) -> dict[str, Any]:
    return {
        "spanID": span_id,
        "operationName": name,
        "processID": process,
        "startTime": start,
        "duration": duration,
        "references": [{"refType": "CHILD_OF", "spanID": parent}] if parent else [],
        "tags": [{"key": k, "type": "string", "value": v} for k, v in tags.items()],
    }


SPANS = [
    span("s5", "decide", "p2", 1060, 10, parent="s4"),
    span("s1", "POST /api/v1/namespaces/{:namespace}/pods", "p1", 1000, 9000),
    span("s2", "Call mutating webhook", "p1", 1010, 4000, parent="s1", webhook="namespace.otel-injector.io"),
    span("s3", "HTTP POST", "p1", 1020, 3500, parent="s2"),
    span("s4", "POST /mutate", "p2", 1050, 2500, parent="s3", **{"otel_injector.decision": "injected"}),
    span("s6", "build patch", "p2", 1100, 300, parent="s4"),
    span("orphan", "lost", "p2", 5000, 1, parent="not-in-trace"),
]
PROCESSES = {"p1": {"serviceName": "apiserver"}, "p2": {"serviceName": "otel-injector"}}
TRACE: dict[str, Any] = {"traceID": "abc", "processes": PROCESSES, "spans": SPANS}


def test_tree_links_parents_and_orders_children_by_start() -> None:
    roots = build_tree(TRACE)
    assert [r.span_id for r in roots] == ["s1", "orphan"]
    server = find_span(roots, service="otel-injector", name="POST /mutate")
    assert server is not None
    assert [c.name for c in server.children] == ["decide", "build patch"]
    assert [a.span_id for a in ancestors(roots, server)] == ["s1", "s2", "s3"]


def test_render_is_an_indented_tree_with_durations_and_key_tags() -> None:
    text = render(build_tree(TRACE))
    assert text.splitlines() == [
        "apiserver  POST /api/v1/namespaces/{:namespace}/pods  9.00 ms",
        "└─ apiserver  Call mutating webhook  4.00 ms  [webhook=namespace.otel-injector.io]",
        "   └─ apiserver  HTTP POST  3.50 ms",
        "      └─ otel-injector  POST /mutate  2.50 ms  [otel_injector.decision=injected]",
        "         ├─ otel-injector  decide  0.01 ms",
        "         └─ otel-injector  build patch  0.30 ms",
        "otel-injector  lost  0.00 ms",
    ]


def event(name: str, at: int) -> dict[str, Any]:
    return {"timestamp": at, "fields": [{"key": "event", "type": "string", "value": name}]}


def test_events_are_a_timeline_under_their_span_among_its_children() -> None:
    server = span("s4", "POST /mutate", "p2", 1000, 500)
    server["logs"] = [event("decide", 1100), event("decode review", 1010)]
    child = span("s7", "inner", "p2", 1050, 20, parent="s4")
    note = span("s8", "note", "p2", 1300, 10, parent="s4")
    note["logs"] = [event("marker", 1305)]
    roots = build_tree({"processes": PROCESSES, "spans": [server, child, note]})
    assert [e.name for e in roots[0].events] == ["decode review", "decide"]
    # Each event lasts until the next one; the last one until its span ends.
    assert [e.until_next_us for e in roots[0].events] == [90, 400]
    assert render(roots).splitlines() == [
        "otel-injector  POST /mutate  0.50 ms",
        "├─ · decode review  0.09 ms  at +0.01 ms",
        "├─ otel-injector  inner  0.02 ms",
        "├─ · decide  0.40 ms  at +0.10 ms",
        "└─ otel-injector  note  0.01 ms",
        "   └─ · marker  0.01 ms  at +0.01 ms",
    ]


def test_other_services_events_are_left_out_unless_asked_for() -> None:
    call = span("s2", "Call mutating webhook", "p1", 1000, 100)
    call["logs"] = [event("Request completed", 1090)]
    roots = build_tree({"processes": PROCESSES, "spans": [call]})
    assert render(roots).splitlines() == ["apiserver  Call mutating webhook  0.10 ms"]
    assert render(roots, events_of=["apiserver"]).splitlines()[1] == "└─ · Request completed  0.01 ms  at +0.09 ms"


def test_trace_is_complete_needs_the_webhook_call_above_our_span() -> None:
    assert trace_is_complete(build_tree(TRACE))
    without_call = {**TRACE, "spans": [s for s in SPANS if s["spanID"] != "s2"]}
    assert not trace_is_complete(build_tree(without_call))
