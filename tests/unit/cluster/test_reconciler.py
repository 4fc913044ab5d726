"""The reconciler against a loopback stub API server: it reads the source, reports its hash,
creates the copy a labelled namespace wants, refuses a user's ConfigMap with an Event, and
a follower writes nothing. (Its rules are tested purely in test_copies.py, and the whole
controller against a real kube-apiserver in tests/cluster/test_reconciler.py.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.unit.cluster.stubapi import Reply, StubApi, serve_collection, stub_api, wait_until
from webhook.cluster.copies import HASH_ANNOTATION, MANAGED_BY, MANAGED_BY_LABEL
from webhook.cluster.paths import api_path, configmap_path
from webhook.cluster.reconciler import Reconciler
from webhook.config.settings import Settings
from webhook.core import names
from webhook.core.settings import InjectionSettings, config_hash

OWN = "otel-injector"
CONFIG = "receivers: {}\n"
TRACED = {names.TRACING_LABEL: names.TRACING_ENABLED}


def namespace(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}, "resourceVersion": "1"}}


@pytest.fixture
def stub() -> Iterator[StubApi]:
    with stub_api() as running:
        serve_collection(
            running, api_path("v1", "namespaces"), [namespace(OWN), namespace("shop", TRACED), namespace("plain")]
        )
        source = {
            "metadata": {"name": "source", "namespace": OWN, "resourceVersion": "1"},
            "data": {names.CONFIG_KEY: CONFIG},
        }
        serve_collection(running, configmap_path(OWN), [source])
        serve_collection(running, api_path("v1", "configmaps"), [])
        serve_collection(running, api_path("v1", "pods"), [])
        running.on("POST", configmap_path("shop"), lambda r: Reply(201, r.json()))
        running.on("POST", api_path("v1", "events", "shop"), lambda r: Reply(201, r.json()))
        yield running


def reconciler(stub: StubApi, hashes: list[str], *, leading: bool = True) -> Reconciler:
    settings = Settings(reconcile=True, collector_source="source", injection=InjectionSettings(namespace=OWN))
    return Reconciler(stub.kube(), settings, is_leader=lambda: leading, on_source_hash=hashes.append, instance="me")


def test_creates_the_copy_a_labelled_namespace_wants(stub: StubApi) -> None:
    hashes: list[str] = []
    controller = reconciler(stub, hashes)
    controller.start()
    try:
        wait_until("the copy in shop", lambda: bool(stub.calls("POST", configmap_path("shop"))))
    finally:
        controller.stop(timeout=5)
    assert hashes == [config_hash(CONFIG.encode())]
    (created,) = stub.calls("POST", configmap_path("shop"))
    body = created.json()
    assert body["metadata"]["name"] == names.CONFIGMAP_NAME
    assert body["metadata"]["labels"][MANAGED_BY_LABEL] == MANAGED_BY
    assert body["metadata"]["annotations"][HASH_ANNOTATION] == hashes[0]
    assert body["data"] == {names.CONFIG_KEY: CONFIG}
    assert created.query == {"fieldManager": "otel-injector"}
    assert not [r for r in stub.requests if r.method == "POST" and "plain" in r.path]


def test_a_users_configmap_is_refused_with_an_event(stub: StubApi) -> None:
    user_copy = {
        "metadata": {"name": names.CONFIGMAP_NAME, "namespace": "shop", "uid": "u", "resourceVersion": "3"},
        "data": {names.CONFIG_KEY: "mine"},
    }
    stub.on("GET", configmap_path("shop", names.CONFIGMAP_NAME), lambda r: Reply(200, user_copy))
    controller = reconciler(stub, [])
    controller.start()
    try:
        wait_until("the Event", lambda: bool(stub.calls("POST", api_path("v1", "events", "shop"))))
    finally:
        controller.stop(timeout=5)
    assert not stub.calls("POST", configmap_path("shop"))
    assert not [r for r in stub.requests if r.method == "PUT"]
    (event,) = stub.calls("POST", api_path("v1", "events", "shop"))
    assert event.json()["reason"] == "ConfigMapNotManaged"
    assert event.json()["involvedObject"]["uid"] == "u"


def test_a_follower_reads_but_never_writes(stub: StubApi) -> None:
    hashes: list[str] = []
    controller = reconciler(stub, hashes, leading=False)
    controller.start()
    try:
        assert controller.wait_synced(10)
        wait_until("the source hash", lambda: bool(hashes))
        time.sleep(0.5)  # give a wrong write time to happen
    finally:
        controller.stop(timeout=5)
    assert not [r for r in stub.requests if r.method != "GET"]


def test_stop_is_prompt_with_every_watch_open(stub: StubApi) -> None:
    controller = reconciler(stub, [])
    controller.start()
    assert controller.wait_synced(10)
    started = time.monotonic()
    controller.stop(timeout=5)
    assert time.monotonic() - started < 3  # generous: four informers, two threads, a shared machine
    assert not any(t.is_alive() for t in controller._threads)
