"""The Kubernetes client wrapper against a real HTTP server on loopback: what goes on the
wire (method, path, query, content type, exact body), what comes back, and every failure
as one :class:`ApiError` with the status."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.cluster.stubapi import Reply, Request, StubApi, Watch, status, stub_api
from webhook.cluster.client import FIELD_MANAGER, ApiError, Kube, load_api_client
from webhook.cluster.paths import configmap_path

CM = configmap_path("shop", "cfg")
CMS = configmap_path("shop")


@pytest.fixture
def stub() -> Iterator[StubApi]:
    with stub_api() as running:
        yield running


def test_get_returns_the_json_the_server_sent(stub: StubApi) -> None:
    stub.on("GET", CM, lambda r: Reply(200, {"metadata": {"name": "cfg"}, "data": {"k": "v"}}))
    assert stub.kube().get(CM) == {"metadata": {"name": "cfg"}, "data": {"k": "v"}}
    (request,) = stub.calls("GET", CM)
    assert request.headers["accept"] == "application/json"


def test_errors_carry_the_status_reason_and_message(stub: StubApi) -> None:
    stub.on("GET", CM, lambda r: status(403, "Forbidden", 'configmaps "cfg" is forbidden'))
    with pytest.raises(ApiError) as info:
        stub.kube().get(CM)
    assert (info.value.status, info.value.reason) == (403, "Forbidden")
    assert str(info.value) == f'HTTP 403: GET {CM}: configmaps "cfg" is forbidden'


def test_a_body_that_is_not_json_is_reported_as_text(stub: StubApi) -> None:
    stub.on("GET", CM, lambda r: Reply(502, raw=b"<html>bad gateway</html>"))
    with pytest.raises(ApiError) as info:
        stub.kube().get(CM)
    assert info.value.status == 502
    assert "<html>bad gateway</html>" in str(info.value)


def test_get_or_none_is_none_only_for_404(stub: StubApi) -> None:
    assert stub.kube().get_or_none(CM) is None  # unrouted paths answer 404
    stub.on("GET", CM, lambda r: status(500, "InternalError"))
    with pytest.raises(ApiError):
        stub.kube().get_or_none(CM)


def test_writes_name_the_field_manager_and_send_the_body(stub: StubApi) -> None:
    stub.on("POST", CMS, lambda r: Reply(201, r.json()))
    stub.on("PUT", CM, lambda r: status(409, "Conflict"))
    kube = stub.kube()
    body = {"metadata": {"name": "cfg"}, "data": {"config.yaml": "x: 1\n"}}
    assert kube.create(CMS, body) == body
    (created,) = stub.calls("POST", CMS)
    assert created.query == {"fieldManager": FIELD_MANAGER}
    assert created.headers["content-type"] == "application/json"
    assert created.json() == body
    with pytest.raises(ApiError) as info:
        kube.replace(CM, {**body, "metadata": {"name": "cfg", "resourceVersion": "1"}})
    assert info.value.conflict


def test_patches_send_their_content_types_and_exact_bodies(stub: StubApi) -> None:
    stub.on("PATCH", CM, lambda r: Reply(200, {}))
    kube = stub.kube(field_manager="tester")
    operations = [{"op": "test", "path": "/metadata/resourceVersion", "value": "7"}]
    kube.json_patch(CM, operations)
    kube.merge_patch(CM, {"metadata": {"annotations": {"a": "b"}}})
    json_patch, merge = stub.calls("PATCH", CM)
    assert json_patch.headers["content-type"] == "application/json-patch+json"
    assert json_patch.json() == operations
    assert merge.headers["content-type"] == "application/merge-patch+json"
    assert merge.json() == {"metadata": {"annotations": {"a": "b"}}}
    assert merge.query == {"fieldManager": "tester"}


def test_delete_sends_preconditions_and_tolerates_gone(stub: StubApi) -> None:
    answers = iter([Reply(200, {}), status(404, "NotFound")])
    stub.on("DELETE", CM, lambda r: next(answers))
    kube = stub.kube()
    assert kube.delete(CM, uid="u1", resource_version="9") is True
    assert kube.delete(CM) is False
    first, second = stub.calls("DELETE", CM)
    assert first.json() == {
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "preconditions": {"uid": "u1", "resourceVersion": "9"},
    }
    assert second.body == b""


def test_list_follows_continue_tokens_and_returns_the_last_version(stub: StubApi) -> None:
    def page(request: Request) -> Reply:
        if request.query.get("continue") == "t2":
            return Reply(200, {"metadata": {"resourceVersion": "42"}, "items": [{"metadata": {"name": "b"}}]})
        return Reply(
            200, {"metadata": {"continue": "t2", "resourceVersion": "41"}, "items": [{"metadata": {"name": "a"}}]}
        )

    stub.on("GET", CMS, page)
    items, version = stub.kube().list(CMS, label_selector="app=x", field_selector="metadata.name=a", page=1)
    assert [i["metadata"]["name"] for i in items] == ["a", "b"]
    assert version == "42"
    first, second = stub.calls("GET", CMS)
    assert first.query == {"limit": "1", "labelSelector": "app=x", "fieldSelector": "metadata.name=a"}
    assert second.query["continue"] == "t2"


def test_an_unreachable_server_is_status_zero() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    from kubernetes import client

    kube = Kube(client.ApiClient(client.Configuration(host=f"http://127.0.0.1:{port}")))
    with pytest.raises(ApiError) as info:
        kube.get(CM)
    assert info.value.status == 0


def test_a_server_that_never_answers_is_bounded_by_the_timeout(stub: StubApi) -> None:
    release = threading.Event()

    def hang(request: Request) -> Reply:
        release.wait(10)
        return Reply(200, {})

    stub.on("GET", CM, hang)
    started = time.monotonic()
    with pytest.raises(ApiError) as info:
        stub.kube(timeout=0.3).get(CM)
    release.set()
    assert info.value.status == 0
    assert time.monotonic() - started < 5  # generous: a shared machine


def test_watch_streams_events_from_the_version_given(stub: StubApi) -> None:
    watch = Watch()
    stub.on("GET", CMS, lambda r: watch)
    watch.send("ADDED", {"metadata": {"name": "a", "resourceVersion": "5"}})
    watch.send("BOOKMARK", {"metadata": {"resourceVersion": "6"}})
    watch.send("DELETED", {"metadata": {"name": "a", "resourceVersion": "7"}})
    watch.end()
    events = list(stub.kube().watch(CMS, resource_version="4", label_selector="app=x", timeout_seconds=30))
    assert [(kind, obj["metadata"]["resourceVersion"]) for kind, obj in events] == [
        ("ADDED", "5"),
        ("BOOKMARK", "6"),
        ("DELETED", "7"),
    ]
    (request,) = stub.calls("GET", CMS)
    assert request.query == {
        "watch": "true",
        "allowWatchBookmarks": "true",
        "resourceVersion": "4",
        "timeoutSeconds": "30",
        "labelSelector": "app=x",
    }


def test_an_error_event_raises_with_its_code(stub: StubApi) -> None:
    watch = Watch()
    stub.on("GET", CMS, lambda r: watch)
    watch.send("ERROR", {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old resource version"})
    with pytest.raises(ApiError) as info:
        list(stub.kube().watch(CMS, resource_version="1"))
    assert info.value.gone
    assert info.value.reason == "Expired"


def test_a_refused_watch_raises_with_the_status(stub: StubApi) -> None:
    stub.on("GET", CMS, lambda r: status(403, "Forbidden"))
    with pytest.raises(ApiError) as info:
        list(stub.kube().watch(CMS, resource_version="1"))
    assert info.value.status == 403


def test_a_watch_closed_from_another_thread_ends_at_once(stub: StubApi) -> None:
    watch = Watch()  # never sends anything: a quiet collection
    stub.on("GET", CMS, lambda r: watch)
    closers: list[object] = []
    outcome: list[str] = []

    def consume() -> None:
        try:
            for _ in stub.kube().watch(CMS, resource_version="1", on_open=closers.append):
                pass
            outcome.append("ended")
        except ApiError as err:
            outcome.append(f"error {err.status}")

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    assert watch.opened.wait(5)
    deadline = time.monotonic() + 5
    while not closers and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    close = closers[0]
    assert callable(close)
    close()
    thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 2  # generous: without the close it would block until the server ends it
    assert outcome in (["ended"], ["error 0"])


def test_credentials_come_from_the_kubeconfig_given(tmp_path: Path, stub: StubApi) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: k, cluster: {{server: '{stub.url}'}}}}]\n"
        "users: [{name: u, user: {token: secret-token}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
    )
    stub.on("GET", CM, lambda r: Reply(200, {"ok": True}))
    kube = Kube(load_api_client(str(kubeconfig)))
    assert kube.get(CM) == {"ok": True}
    (request,) = stub.calls("GET", CM)
    assert request.headers["authorization"] == "Bearer secret-token"
    kube.close()


def test_missing_credentials_are_one_error(tmp_path: Path) -> None:
    with pytest.raises(ApiError) as info:
        load_api_client(str(tmp_path / "absent"))
    assert info.value.status == 0
    assert str(info.value).startswith(f"no Kubernetes credentials from {tmp_path / 'absent'}")
