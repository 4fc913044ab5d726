"""The cluster context caches against a loopback stub API server: what a pod's context holds
once synced, what it says before, ConfigMaps of untraced namespaces are not cached, and a
namespace that becomes traced brings its ConfigMaps with a new list."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.unit.cluster.stubapi import StubApi, Watch, serve_collection, stub_api, wait_until
from webhook.cluster.contextcache import SYNCING, ContextCache, slim_config_map, slim_namespace
from webhook.cluster.paths import api_path, configmap_path
from webhook.config.settings import Settings
from webhook.config.timings import ClusterTimings
from webhook.core.context import COLLECTOR_CONFIG_LABEL
from webhook.core.settings import InjectionSettings, config_hash

OWN = "otel-injector"
TRACED = {"tracing": "enabled"}
SETTINGS = Settings(
    cluster_context=True, injection=InjectionSettings(namespace=OWN), cluster=ClusterTimings(context_sync_seconds=5)
)


def namespace(name: str, labels: dict[str, str] | None = None, version: str = "1", **annotations: str) -> Any:
    return {"metadata": {"name": name, "labels": labels or {}, "annotations": annotations, "resourceVersion": version}}


def configmap(ns: str, name: str, data: dict[str, str], labels: dict[str, str] | None = None) -> Any:
    return {"metadata": {"namespace": ns, "name": name, "labels": labels or {}, "resourceVersion": "1"}, "data": data}


def pod(*refs: str, **annotations: str) -> Any:
    return {
        "metadata": {"annotations": annotations},
        "spec": {"containers": [{"name": "app", "envFrom": [{"configMapRef": {"name": r}} for r in refs]}]},
    }


@pytest.fixture
def stub() -> Iterator[tuple[StubApi, list[Watch]]]:
    with stub_api() as running:
        namespace_watches = serve_collection(
            running,
            api_path("v1", "namespaces"),
            [namespace("shop", TRACED, **{"otel-injector.io/image": "x:1"}), namespace("plain")],
        )
        source = configmap(OWN, "team-a-src", {"config.yaml": "a\n"}, {COLLECTOR_CONFIG_LABEL: "team-a"})
        serve_collection(running, configmap_path(OWN), [source])
        serve_collection(
            running,
            api_path("v1", "configmaps"),
            [
                configmap("shop", "app", {"OTEL_SERVICE_NAME": "s", "BIG": "x" * 10_000}),
                configmap("plain", "app", {"OTEL_SERVICE_NAME": "p"}),
            ],
        )
        yield running, namespace_watches


def test_a_synced_cache_gives_every_fact(stub: tuple[StubApi, list[Watch]]) -> None:
    api, _ = stub
    cache = ContextCache(api.kube(), SETTINGS)
    cache.start()
    try:
        assert cache.synced()
        context = cache.context_for(pod("app", "missing"), "shop")
        assert dict(context.namespace_annotations) == {"otel-injector.io/image": "x:1"}
        assert dict(context.collector_configs) == {"team-a": config_hash(b"a\n")}
        assert context.config_maps == {"app": {"OTEL_SERVICE_NAME": "s"}}
        assert context.notices == ()
        source = cache.source("team-a")
        assert source is not None
        assert source.data == {"config.yaml": "a\n"}
        # Untraced namespaces' ConfigMaps are not cached: the pod hears why.
        assert cache.env_from is not None
        assert cache.env_from.get("plain", "app") is None
        untraced = cache.context_for(pod("app"), "plain")
        assert untraced.config_maps is None
        assert [n.reason for n in untraced.notices] == ["env-from-unknown"]
    finally:
        cache.stop()


def test_before_sync_the_pod_is_injected_with_a_warning(stub: tuple[StubApi, list[Watch]]) -> None:
    api, _ = stub
    cache = ContextCache(api.kube(), SETTINGS)  # never started
    context = cache.context_for(pod("app"), "shop")
    assert context.notices == (SYNCING,)
    assert context.config_maps is None
    assert dict(context.namespace_annotations) == {}


def test_a_namespace_that_becomes_traced_is_listed_again(stub: tuple[StubApi, list[Watch]]) -> None:
    api, namespace_watches = stub
    cache = ContextCache(api.kube(), SETTINGS)
    cache.start()
    try:
        assert cache.env_from is not None
        lists = cache.env_from.lists
        wait_until("the namespace watch", lambda: bool(namespace_watches))
        namespace_watches[0].send("MODIFIED", namespace("plain", TRACED, version="2"))
        wait_until("a new list", lambda: cache.env_from is not None and cache.env_from.lists > lists)
        wait_until(
            "plain's ConfigMap", lambda: cache.env_from is not None and cache.env_from.get("plain", "app") is not None
        )
        assert cache.context_for(pod("app"), "plain").config_maps == {"app": {"OTEL_SERVICE_NAME": "p"}}
    finally:
        cache.stop()


def test_the_slim_objects_keep_only_what_the_context_reads() -> None:
    full = namespace("shop", {"tracing": "enabled", "team": "a"}, **{"otel-injector.io/image": "x:1", "other": "y"})
    slim = slim_namespace(full)
    assert slim["metadata"]["labels"] == {"tracing": "enabled"}
    assert dict(slim["metadata"]["annotations"]) == {"otel-injector.io/image": "x:1"}
    cm = slim_config_map(configmap("shop", "a", {"OTEL_X": "1", "other": "2"}))
    assert dict(cm["data"]) == {"OTEL_X": "1"}
    assert set(cm["metadata"]) == {"namespace", "name", "resourceVersion"}
