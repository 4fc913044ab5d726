"""The server span from opentelemetry-instrumentation-fastapi, set up by its standard variables.

The app is the real one (``create_app``), called in-process through Starlette's test client;
spans land in memory. Trace continuation over real HTTPS is in tests/test_http.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support import review_for
from webhook.config.settings import Settings
from webhook.http.app import create_app
from webhook.http.instrumentation import DEFAULT_EXCLUDED_URLS, excluded_urls

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
}
VARIABLES = (
    "OTEL_PYTHON_FASTAPI_EXCLUDED_URLS",
    "OTEL_PYTHON_EXCLUDED_URLS",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE",
    "OTEL_SDK_DISABLED",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def traced_app() -> tuple[TestClient, InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    app = create_app(Settings(), span_processor=SimpleSpanProcessor(spans))
    return TestClient(app), spans


@pytest.fixture
def traced() -> Iterator[tuple[TestClient, InMemorySpanExporter]]:
    client, spans = traced_app()
    with client:
        yield client, spans


def test_default_excludes_probes_and_scrape_only() -> None:
    assert excluded_urls({}) == DEFAULT_EXCLUDED_URLS


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"OTEL_PYTHON_EXCLUDED_URLS": "ping"}, "ping"),
        ({"OTEL_PYTHON_FASTAPI_EXCLUDED_URLS": "a,b", "OTEL_PYTHON_EXCLUDED_URLS": "ping"}, "a,b"),
        ({"OTEL_PYTHON_FASTAPI_EXCLUDED_URLS": ""}, ""),
    ],
)
def test_user_setting_replaces_the_default(environ: dict[str, str], expected: str) -> None:
    assert excluded_urls(environ) == expected


def test_one_server_span_named_by_route_with_the_phases_as_events(
    traced: tuple[TestClient, InMemorySpanExporter],
) -> None:
    client, spans = traced
    assert client.post("/mutate", json=review_for(POD)).status_code == 200
    finished = spans.get_finished_spans()
    servers = [s for s in finished if s.kind.name == "SERVER"]
    assert [s.name for s in servers] == ["POST /mutate"]
    assert servers[0].instrumentation_scope is not None
    assert servers[0].instrumentation_scope.name == "opentelemetry.instrumentation.fastapi"
    assert len(finished) == 1
    assert [e.name for e in servers[0].events] == ["decode review", "decide", "mutate", "build patch", "answer"]
    attributes = dict(servers[0].attributes or {})
    # The stable HTTP semantic conventions, the default when OTEL_SEMCONV_STABILITY_OPT_IN is unset.
    assert attributes["http.route"] == "/mutate"
    assert attributes["http.request.method"] == "POST"
    assert attributes["url.path"] == "/mutate"
    assert attributes["http.response.status_code"] == 200
    assert "http.status_code" not in attributes
    assert attributes["otel_injector.decision"] == "injected"


def test_probes_and_scrape_are_not_traced_by_default(traced: tuple[TestClient, InMemorySpanExporter]) -> None:
    client, spans = traced
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(path).status_code == 200
    assert spans.get_finished_spans() == ()


def test_empty_excluded_urls_traces_the_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", "")
    client, spans = traced_app()
    with client:
        assert client.get("/healthz").status_code == 200
    assert [s.name for s in spans.get_finished_spans()] == ["GET /healthz"]


def test_generic_excluded_urls_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PYTHON_EXCLUDED_URLS", "/mutate$")
    client, spans = traced_app()
    with client:
        assert client.post("/mutate", json=review_for(POD)).status_code == 200
        assert client.get("/healthz").status_code == 200
    # /mutate is excluded by the user; /healthz is traced, since the default no longer applies.
    assert [s.name for s in spans.get_finished_spans() if s.kind.name == "SERVER"] == ["GET /healthz"]


def test_captured_request_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST", "X-Request-Id")
    client, spans = traced_app()
    with client:
        reply = client.post("/mutate", json=review_for(POD), headers={"X-Request-Id": "req-42"})
    assert reply.status_code == 200
    server = next(s for s in spans.get_finished_spans() if s.kind.name == "SERVER")
    assert dict(server.attributes or {})["http.request.header.x_request_id"] == ("req-42",)


def test_no_receive_or_send_spans(traced: tuple[TestClient, InMemorySpanExporter]) -> None:
    client, spans = traced
    assert client.post("/mutate", json=review_for(POD)).status_code == 200
    assert not [s for s in spans.get_finished_spans() if s.name.endswith(("http send", "http receive"))]


def test_nothing_is_instrumented_when_tracing_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    app = create_app(Settings())
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)
