"""The webhook over real HTTPS: bad input, trace continuation, metrics, the error channel.

The server is real uvicorn with TLS from ``otel-injector certs`` (see conftest), called with
a real HTTPS client; spans are captured in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer
from tests.support import decode_patch, mutate_via_http, review_for
from webhook.admission import handler as handler_module
from webhook.admission.handler import INTERNAL_ERROR_WARNING, PHASES
from webhook.core.injection import inject_pod

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
}
JSON = {"content-type": "application/json"}


def post(client: httpx.Client, body: bytes | str, headers: dict[str, str] | None = None) -> httpx.Response:
    return client.post("/mutate", content=body, headers=JSON if headers is None else headers)


def assert_one_line_error(reply: httpx.Response, status: int, *words: str) -> None:
    assert reply.status_code == status, reply.text
    message = reply.json()["error"]
    assert "\n" not in message
    for word in words:
        assert word in message, message


@pytest.fixture(autouse=True)
def server_still_up(client: httpx.Client) -> Iterator[None]:
    """Whatever a test sent, the server must still answer afterwards."""
    yield
    assert client.get("/healthz").status_code == 200


def test_injects_and_patch_equals_inject_cli(client: httpx.Client, https_server: RunningServer) -> None:
    patched, review = mutate_via_http(client, POD)
    assert review["response"]["allowed"] is True
    assert review["response"]["patchType"] == "JSONPatch"
    expected = inject_pod(POD, https_server.state.injection, namespace="shop").pod
    assert patched == expected
    assert [c["name"] for c in patched["spec"]["initContainers"]] == ["otel-collector"]


def test_response_carries_the_request_uid(client: httpx.Client) -> None:
    reply = client.post("/mutate", json=review_for(POD, uid="abc-123"))
    assert reply.json()["response"]["uid"] == "abc-123"
    assert reply.json()["apiVersion"] == "admission.k8s.io/v1"
    assert reply.json()["kind"] == "AdmissionReview"


def test_dry_run_gets_the_same_answer(client: httpx.Client) -> None:
    wet = client.post("/mutate", json=review_for(POD, uid="u")).json()
    dry = client.post("/mutate", json=review_for(POD, uid="u", dry_run=True)).json()
    assert decode_patch(dry) == decode_patch(wet)


def test_skip_is_allowed_with_a_warning(client: httpx.Client) -> None:
    pod = json.loads(json.dumps(POD))
    pod["metadata"]["labels"]["tracing"] = "disabled"
    review = client.post("/mutate", json=review_for(pod)).json()["response"]
    assert review["allowed"] is True
    assert "patch" not in review
    assert review["warnings"] == ["otel-injector: sidecar not injected: pod has the label tracing=disabled"]


def test_second_review_of_injected_pod_yields_no_patch(client: httpx.Client) -> None:
    patched, _ = mutate_via_http(client, POD)
    again = client.post("/mutate", json=review_for(patched)).json()["response"]
    assert "patch" not in again
    assert again["allowed"] is True


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"", ["empty body"]),
        (b"   \n", ["empty body"]),
        (b"{not json", ["invalid JSON"]),
        (b"[1, 2]", ["AdmissionReview object", "list"]),
        (b'{"kind": "Pod", "apiVersion": "v1"}', ["kind is 'Pod'"]),
        (b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1beta1"}', ["apiVersion"]),
        (b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1"}', ["no request"]),
    ],
    ids=["empty", "blank", "invalid-json", "array", "not-a-review", "v1beta1", "no-request"],
)
def test_malformed_bodies_get_400(client: httpx.Client, body: bytes, words: list[str]) -> None:
    assert_one_line_error(post(client, body), 400, *words)


def test_missing_uid_gets_400(client: httpx.Client) -> None:
    review = review_for(POD)
    del review["request"]["uid"]
    assert_one_line_error(client.post("/mutate", json=review), 400, "uid")


def test_missing_object_gets_400(client: httpx.Client) -> None:
    review = review_for(POD)
    review["request"]["object"] = None
    assert_one_line_error(client.post("/mutate", json=review), 400, "object")


def test_non_pod_gets_400(client: httpx.Client) -> None:
    review = review_for({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {}})
    review["request"]["kind"] = {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert_one_line_error(client.post("/mutate", json=review), 400, "apps/Deployment", "only handles Pods")


@pytest.mark.parametrize("content_type", ["text/plain", "application/yaml", "application/x-www-form-urlencoded", ""])
def test_wrong_content_type_gets_415(client: httpx.Client, content_type: str) -> None:
    headers = {"content-type": content_type} if content_type else {}
    reply = client.post("/mutate", content=json.dumps(review_for(POD)).encode(), headers=headers)
    assert_one_line_error(reply, 415, "Content-Type must be application/json")


def test_json_with_charset_is_accepted(client: httpx.Client) -> None:
    reply = post(client, json.dumps(review_for(POD)), {"content-type": "application/json; charset=utf-8"})
    assert reply.status_code == 200


def test_body_over_the_limit_gets_413(client: httpx.Client) -> None:
    body = b" " * (6 * 1024 * 1024 + 1)
    assert_one_line_error(post(client, body), 413, "limit")


def test_chunked_body_over_the_limit_gets_413(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(7):
            yield b" " * (1024 * 1024)

    reply = client.post("/mutate", content=chunks(), headers=JSON)
    assert_one_line_error(reply, 413, "limit")


def test_get_on_mutate_is_405(client: httpx.Client) -> None:
    assert_one_line_error(client.get("/mutate"), 405, "Method Not Allowed")


def test_unknown_path_is_404_with_an_error_body(client: httpx.Client) -> None:
    assert_one_line_error(client.get("/nope"), 404, "Not Found")


def test_null_fields_are_absent(client: httpx.Client) -> None:
    review = review_for({**POD, "metadata": None})
    review["request"]["kind"]["group"] = None
    reply = client.post("/mutate", json=review)
    assert reply.status_code == 200
    assert decode_patch(reply.json())


@pytest.mark.parametrize(
    ("pod", "field"),
    [
        ({**POD, "metadata": []}, "request.object.metadata must be an object, not a list"),
        ({**POD, "spec": "x"}, "request.object.spec must be an object, not a string"),
        ({**POD, "metadata": {"labels": ["a"]}}, "request.object.metadata.labels must be an object, not a list"),
    ],
)
def test_type_confusion_in_the_pod_is_a_400_naming_the_field(client: httpx.Client, pod: Any, field: str) -> None:
    assert_one_line_error(client.post("/mutate", json=review_for(pod)), 400, field)


def test_deep_nesting_is_a_400(client: httpx.Client) -> None:
    body = json.dumps(review_for(POD)).replace('"CREATE"', "[" * 1000 + '"CREATE"' + "]" * 1000)
    assert_one_line_error(client.post("/mutate", content=body, headers=JSON), 400, "nested deeper than 100")


def test_numeric_uid_is_named(client: httpx.Client) -> None:
    reply = client.post("/mutate", json=review_for(POD) | {"request": {**review_for(POD)["request"], "uid": 7}})
    assert_one_line_error(reply, 400, "request.uid must be a string, not a number")


def test_internal_error_still_allows_with_uid(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(handler_module, "mutate", broken)
    reply = client.post("/mutate", json=review_for(POD, uid="err-1"))
    assert reply.status_code == 200
    response = reply.json()["response"]
    assert response == {"uid": "err-1", "allowed": True, "warnings": [INTERNAL_ERROR_WARNING]}
    record = next(r for r in caplog.records if r.name == "webhook.admission.handler" and r.levelname == "ERROR")
    assert record.exc_info is not None
    assert record.__dict__["uid"] == "err-1"


def test_traceparent_is_continued(client: httpx.Client, https_server: RunningServer) -> None:
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    https_server.spans.clear()
    reply = client.post(
        "/mutate", json=review_for(POD, uid="traced-1"), headers={"traceparent": f"00-{trace_id}-{parent_id}-01"}
    )
    assert reply.status_code == 200
    spans = https_server.spans.get_finished_spans()
    server = next(s for s in spans if s.kind.name == "SERVER")
    assert format(server.context.trace_id, "032x") == trace_id
    assert server.parent is not None
    assert format(server.parent.span_id, "016x") == parent_id
    attributes = dict(server.attributes or {})
    assert attributes["k8s.namespace.name"] == "shop"
    assert attributes["otel_injector.admission.uid"] == "traced-1"
    assert attributes["otel_injector.decision"] == "injected"
    assert attributes["otel_injector.reason"] == "injected"
    assert attributes["otel_injector.sidecar_mode"] == "native"
    assert isinstance(attributes["otel_injector.patch.operations"], int)
    assert attributes["otel_injector.patch.operations"] > 0
    # One span per admission: the phases are its events, a timeline inside the span.
    assert [s for s in spans if s is not server] == []
    assert tuple(e.name for e in server.events) == PHASES
    starts = [e.timestamp for e in server.events]
    assert server.start_time is not None
    assert server.end_time is not None
    assert server.start_time <= starts[0] <= starts[-1] <= server.end_time
    assert starts == sorted(starts)
    patch_bytes = attributes["otel_injector.patch.bytes"]
    assert isinstance(patch_bytes, int)
    assert patch_bytes > 0
    # The per-message ASGI receive/send spans are left out on purpose.
    assert not [s for s in spans if "http send" in s.name or "http receive" in s.name]


def test_a_traced_admission_records_its_traceparent(client: httpx.Client, https_server: RunningServer) -> None:
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    https_server.spans.clear()
    headers = {"traceparent": f"00-{trace_id}-{parent_id}-01"}
    reply = client.post("/mutate", json=review_for(POD, uid="traced-2"), headers=headers)
    server = next(s for s in https_server.spans.get_finished_spans() if s.kind.name == "SERVER")
    (operation,) = [op for op in decode_patch(reply.json()) if op["path"].endswith("admission-trace")]
    assert operation == {
        "op": "add",
        "path": "/metadata/annotations/otel-injector.io~1admission-trace",
        "value": f"00-{trace_id}-{server.context.span_id:016x}-01",
    }
    # Without a caller's trace there is nothing to link to: no annotation.
    untraced = client.post("/mutate", json=review_for(POD, uid="untraced"))
    assert not [op for op in decode_patch(untraced.json()) if op["path"].endswith("admission-trace")]


def test_probes_are_not_traced(client: httpx.Client, https_server: RunningServer) -> None:
    https_server.spans.clear()
    assert client.get("/healthz").text == "ok\n"
    assert client.get("/readyz").text == "ok\n"
    assert client.get("/metrics").status_code == 200
    assert https_server.spans.get_finished_spans() == ()


def metric(text: str, line_prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_prefix + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_results_reasons_and_latency(client: httpx.Client) -> None:
    def scrape() -> str:
        return client.get("/metrics").text

    injected = 'otel_injector_admissions_total{reason="injected",result="injected"}'
    skipped = 'otel_injector_admissions_total{reason="opted-out",result="skipped"}'
    invalid = 'otel_injector_invalid_requests_total{status="415"}'
    latency = 'otel_injector_admission_duration_seconds_count{result="injected"}'
    fallback = 'otel_injector_fallbacks_total{reason="invalid-cpu-limit"}'
    before = scrape()
    mutate_via_http(client, POD)
    opted_out = json.loads(json.dumps(POD))
    opted_out["metadata"]["labels"]["tracing"] = "disabled"
    client.post("/mutate", json=review_for(opted_out))
    post(client, b"{}", {"content-type": "text/plain"})
    bad_override = json.loads(json.dumps(POD))
    bad_override["metadata"]["annotations"] = {"otel-injector.io/cpu-limit": "lots"}
    client.post("/mutate", json=review_for(bad_override))
    after = scrape()
    assert metric(after, injected) == metric(before, injected) + 2
    assert metric(after, skipped) == metric(before, skipped) + 1
    assert metric(after, invalid) == metric(before, invalid) + 1
    assert metric(after, latency) == metric(before, latency) + 2
    assert metric(after, fallback) == metric(before, fallback) + 1
    assert "otel_injector_build_info" in after


def test_readyz_reports_not_ready_until_started(https_server: RunningServer, client: httpx.Client) -> None:
    https_server.state.ready = False
    try:
        assert client.get("/readyz").status_code == 503
    finally:
        https_server.state.ready = True
    assert client.get("/readyz").status_code == 200


def test_metrics_count_what_the_limits_refuse(client: httpx.Client) -> None:
    client.post("/mutate", content=b"{}", headers={"Content-Type": "text/plain"})
    client.post("/mutate", content=b"[" * 200 + b"]" * 200, headers=JSON)
    text = client.get("/metrics").text
    assert 'otel_injector_refused_requests_total{reason="content-type"}' in text
    assert 'otel_injector_refused_requests_total{reason="too-deep"}' in text
    assert "# TYPE otel_injector_http_refused_total counter" in text
