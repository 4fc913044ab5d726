"""Named collector config copies against a loopback stub API server: a traced namespace that
chooses a named config gets its copy; a managed named copy nothing uses is deleted; a follower
writes nothing; and which namespaces want which copy, purely from the caches."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.unit.cluster.stubapi import Reply, StubApi, serve_collection, stub_api, wait_until
from webhook.cluster.contextcache import ContextCache
from webhook.cluster.copies import HASH_ANNOTATION, MANAGED_BY, MANAGED_BY_LABEL
from webhook.cluster.namedcopies import SPAN_NAME, slim_named_pod
from webhook.cluster.paths import api_path, configmap_path
from webhook.cluster.reconciler import Reconciler
from webhook.config.settings import Settings
from webhook.core.context import COLLECTOR_CONFIG_ANNOTATION, COLLECTOR_CONFIG_LABEL
from webhook.core.settings import InjectionSettings, config_hash

OWN = "otel-injector"
TRACED = {"tracing": "enabled"}
COPY = "otel-collector-sidecar-team-a"
SETTINGS = Settings(
    reconcile=True, cluster_context=True, collector_source="source", injection=InjectionSettings(namespace=OWN)
)


def namespace(name: str, labels: dict[str, str] | None = None, **annotations: str) -> Any:
    return {"metadata": {"name": name, "labels": labels or {}, "annotations": annotations, "resourceVersion": "1"}}


@pytest.fixture
def stub() -> Iterator[StubApi]:
    with stub_api() as running:
        serve_collection(
            running,
            api_path("v1", "namespaces"),
            [
                namespace(OWN),
                namespace("shop", TRACED, **{COLLECTOR_CONFIG_ANNOTATION: "team-a"}),
                namespace("plain"),
            ],
        )
        sources: list[dict[str, Any]] = [
            {"metadata": {"name": "source", "namespace": OWN, "resourceVersion": "1"}, "data": {"config.yaml": "d\n"}},
            {
                "metadata": {
                    "name": "team-a-src",
                    "namespace": OWN,
                    "labels": {COLLECTOR_CONFIG_LABEL: "team-a"},
                    "resourceVersion": "1",
                },
                "data": {"config.yaml": "a\n"},
            },
        ]
        serve_collection(running, configmap_path(OWN), sources)
        leftover: dict[str, Any] = {
            "metadata": {
                "name": COPY,
                "namespace": "plain",
                "uid": "u1",
                "resourceVersion": "7",
                "labels": {MANAGED_BY_LABEL: MANAGED_BY},
                "annotations": {COLLECTOR_CONFIG_ANNOTATION: "team-a"},
            },
            "data": {"config.yaml": "a\n"},
        }
        serve_collection(running, api_path("v1", "configmaps"), [leftover])
        serve_collection(running, api_path("v1", "pods"), [])
        running.on("GET", configmap_path("plain", COPY), lambda r: Reply(200, leftover))
        running.on("DELETE", configmap_path("plain", COPY), lambda r: Reply(200, {}))
        running.on("POST", configmap_path("shop"), lambda r: Reply(201, r.json()))
        yield running


class Running:
    """A reconciler and its context cache, started; :meth:`stop` stops both."""

    def __init__(self, stub: StubApi, *, leading: bool) -> None:
        self.spans = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.spans))
        kube = stub.kube(tracer=provider.get_tracer("test"))
        self.context = ContextCache(kube, SETTINGS)
        self.reconciler = Reconciler(kube, SETTINGS, is_leader=lambda: leading, instance="me", context=self.context)
        self.named = self.reconciler.named
        self.context.start()
        self.reconciler.start()

    def stop(self, timeout: float = 5) -> None:
        self.reconciler.stop(timeout)
        self.context.stop(timeout)


def run(stub: StubApi, *, leading: bool) -> Running:
    return Running(stub, leading=leading)


def test_the_leader_copies_and_deletes_named_configs(stub: StubApi) -> None:
    controller = run(stub, leading=True)
    spans = controller.spans
    try:
        wait_until(
            "the named copy in shop",
            lambda: any(r.json()["metadata"]["name"] == COPY for r in stub.calls("POST", configmap_path("shop"))),
        )
        wait_until("the unused copy deleted", lambda: bool(stub.calls("DELETE", configmap_path("plain", COPY))))
    finally:
        controller.stop(timeout=5)
    (created,) = [r.json() for r in stub.calls("POST", configmap_path("shop")) if r.json()["metadata"]["name"] == COPY]
    assert created["data"] == {"config.yaml": "a\n"}
    assert created["metadata"]["annotations"][HASH_ANNOTATION] == config_hash(b"a\n")
    assert created["metadata"]["annotations"][COLLECTOR_CONFIG_ANNOTATION] == "team-a"
    assert COLLECTOR_CONFIG_LABEL not in created["metadata"]["labels"]
    (deleted,) = stub.calls("DELETE", configmap_path("plain", COPY))
    assert deleted.json()["preconditions"] == {"uid": "u1", "resourceVersion": "7"}
    # Each named copy reconciled is a span with its decision; its API calls are under it.
    work = [s for s in spans.get_finished_spans() if s.name == SPAN_NAME]
    decisions = {(s.attributes or {}).get("otel_injector.decision") for s in work}
    assert {"create", "delete"} <= decisions
    created_span = next(s for s in work if (s.attributes or {}).get("otel_injector.decision") == "create")
    children = [
        s
        for s in spans.get_finished_spans()
        if s.parent is not None and s.parent.span_id == created_span.context.span_id
    ]
    assert children, "the API calls of a reconcile are client spans under it"


def test_a_follower_writes_no_named_copy(stub: StubApi) -> None:
    controller = run(stub, leading=False)
    try:
        assert controller.named is not None
        wait_until("the caches", controller.named.pods.synced.is_set)
        time.sleep(0.3)
    finally:
        controller.stop(timeout=5)
    assert not [r for r in stub.requests if r.method in ("POST", "PUT", "DELETE")]


def test_pods_keep_a_copy_wanted_and_a_grace_after_the_last(stub: StubApi) -> None:
    kube = stub.kube()
    context = ContextCache(kube, SETTINGS)
    controller = Reconciler(kube, SETTINGS, context=context, pod_grace_seconds=60)
    named = controller.named
    assert named is not None
    controller.namespaces._cache[("", "plain")] = namespace("plain")
    pod = {"metadata": {"name": "p", "namespace": "plain", "labels": {COLLECTOR_CONFIG_LABEL: "team-b"}}}
    named._on_pod(None, slim_named_pod(pod))
    assert named.wanted("plain") == {"team-b": "1 pod(s) use it"}
    named._on_pod(slim_named_pod(pod), None)
    assert named.wanted("plain") == {"team-b": "pods used it moments ago"}
    assert named.wanted(OWN) is None
    assert named.wanted("nowhere") is None
