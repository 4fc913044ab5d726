"""The informer against a real HTTP server on loopback: list, then watch from the list's
version; ``410 Gone`` re-lists; errors back off; stop is prompt even in a quiet watch."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.unit.cluster.stubapi import Reply, Request, StubApi, Watch, status, stub_api
from webhook.cluster.backoff import Backoff
from webhook.cluster.informer import Informer
from webhook.cluster.objects import JSONDict
from webhook.cluster.paths import configmap_path

CMS = configmap_path("shop")
Change = tuple[str | None, str | None]


class Events(list[tuple[JSONDict | None, JSONDict | None]]):
    """The (old, new) pairs an informer reported."""


def cm(name: str, version: str, **extra: Any) -> JSONDict:
    return {"metadata": {"name": name, "namespace": "shop", "resourceVersion": version}, **extra}


def listing(version: str, *items: JSONDict) -> Reply:
    return Reply(200, {"metadata": {"resourceVersion": version}, "items": list(items)})


class Scripted:
    """The collection's answers, in order: list replies and watch streams."""

    def __init__(self, stub: StubApi) -> None:
        self.lists: queue.Queue[Reply] = queue.Queue()
        self.watches: queue.Queue[Watch | Reply] = queue.Queue()
        stub.on("GET", CMS, self._answer)

    def _answer(self, request: Request) -> Reply | Watch:
        source: queue.Queue[Any] = self.watches if request.query.get("watch") == "true" else self.lists
        try:
            answer: Reply | Watch = source.get(timeout=5)
        except queue.Empty:
            return status(500, "InternalError", "the test scripted no more answers")
        return answer


class RecordingBackoff(Backoff):
    """A real backoff with short delays that records what it was asked."""

    def __init__(self) -> None:
        super().__init__(initial=0.05, maximum=0.2)
        self.delays: list[float] = []
        self.resets = 0

    def next(self) -> float:
        delay = super().next()
        self.delays.append(delay)
        return delay

    def reset(self) -> None:
        self.resets += 1
        super().reset()


@pytest.fixture
def stub() -> Iterator[StubApi]:
    with stub_api() as running:
        yield running


def changes_of(events: list[tuple[JSONDict | None, JSONDict | None]]) -> list[Change]:
    def label(obj: JSONDict | None) -> str | None:
        return None if obj is None else f"{obj['metadata']['name']}@{obj['metadata']['resourceVersion']}"

    return [(label(old), label(new)) for old, new in events]


def wait_until(what: str, condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def make(stub: StubApi, events: list[tuple[JSONDict | None, JSONDict | None]], **kwargs: Any) -> Informer:
    return Informer(stub.kube(), CMS, name="test", on_change=lambda old, new: events.append((old, new)), **kwargs)


def test_lists_then_watches_from_the_lists_version(stub: StubApi) -> None:
    script, events = Scripted(stub), Events()
    script.lists.put(listing("10", cm("a", "1"), cm("b", "2")))
    watch = Watch()
    script.watches.put(watch)
    informer = make(stub, events, label_selector="app=x")
    informer.start()
    try:
        assert informer.synced.wait(5)
        assert watch.opened.wait(5)
        watch.send("MODIFIED", cm("a", "11"))
        watch.send("BOOKMARK", {"metadata": {"resourceVersion": "12"}})
        watch.send("DELETED", cm("b", "13"))
        wait_until("three changes", lambda: len(events) == 4)
        assert changes_of(events) == [(None, "a@1"), (None, "b@2"), ("a@1", "a@11"), ("b@2", None)]
        assert [i["metadata"]["name"] for i in informer.items()] == ["a"]
        assert informer.get("shop", "a") == cm("a", "11")
    finally:
        informer.stop()
    listed, watched = stub.calls("GET", CMS)
    assert listed.query == {"limit": "500", "labelSelector": "app=x"}
    assert watched.query["resourceVersion"] == "10"
    assert watched.query["labelSelector"] == "app=x"


def test_410_gone_relists_and_reports_only_the_differences(stub: StubApi) -> None:
    script, events = Scripted(stub), Events()
    script.lists.put(listing("10", cm("a", "1"), cm("b", "2")))
    expired, resumed = Watch(), Watch()
    script.watches.put(expired)
    # The second list: a unchanged, b deleted while the watch was down, c new.
    script.lists.put(listing("20", cm("a", "1"), cm("c", "3")))
    script.watches.put(resumed)
    backoff = RecordingBackoff()
    informer = make(stub, events, backoff=backoff)
    informer.start()
    try:
        assert expired.opened.wait(5)
        expired.send("ERROR", {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"})
        assert resumed.opened.wait(5)
        wait_until("the re-list's changes", lambda: len(events) == 4)
    finally:
        informer.stop()
    assert changes_of(events) == [(None, "a@1"), (None, "b@2"), (None, "c@3"), ("b@2", None)]
    assert backoff.delays == []  # 410 is not a failure: it re-lists at once
    assert stub.calls("GET", CMS)[-1].query["resourceVersion"] == "20"


def test_a_watch_the_server_ends_is_resumed_without_a_list(stub: StubApi) -> None:
    script, events = Scripted(stub), Events()
    script.lists.put(listing("10", cm("a", "1")))
    first, second = Watch(), Watch()
    script.watches.put(first)
    script.watches.put(second)
    informer = make(stub, events)
    informer.start()
    try:
        assert first.opened.wait(5)
        first.send("MODIFIED", cm("a", "15"))
        first.end()  # timeoutSeconds is up
        assert second.opened.wait(5)
    finally:
        informer.stop()
    lists = [r for r in stub.calls("GET", CMS) if "watch" not in r.query]
    watches = [r for r in stub.calls("GET", CMS) if "watch" in r.query]
    assert len(lists) == 1
    assert [w.query["resourceVersion"] for w in watches] == ["10", "15"]


def test_failures_back_off_and_a_success_resets_it(stub: StubApi) -> None:
    script, events = Scripted(stub), Events()
    script.lists.put(status(500, "InternalError"))
    script.lists.put(status(503, "ServiceUnavailable"))
    script.lists.put(listing("10", cm("a", "1")))
    watch = Watch()
    script.watches.put(watch)
    backoff = RecordingBackoff()
    informer = make(stub, events, backoff=backoff)
    informer.start()
    try:
        assert informer.synced.wait(5)
        assert watch.opened.wait(5)
    finally:
        informer.stop()
    assert len(backoff.delays) == 2
    assert backoff.delays[1] > backoff.delays[0]  # doubling (jitter is +-20 %)
    assert backoff.resets == 1


def test_a_refused_list_sets_forbidden_until_it_succeeds(stub: StubApi) -> None:
    script, events = Scripted(stub), Events()
    script.lists.put(status(403, "Forbidden"))
    informer = make(stub, events, backoff=RecordingBackoff())
    informer.start()
    try:
        assert informer.forbidden.wait(5)
        assert not informer.synced.is_set()
        script.watches.put(Watch())
        script.lists.put(listing("10"))
        assert informer.synced.wait(5)
        assert not informer.forbidden.is_set()
    finally:
        informer.stop()


def test_stop_ends_a_quiet_watch_at_once(stub: StubApi) -> None:
    script, events = Scripted(stub), Events()
    script.lists.put(listing("10"))
    quiet = Watch()  # open, and nothing ever happens
    script.watches.put(quiet)
    informer = make(stub, events)
    informer.start()
    assert quiet.opened.wait(5)
    time.sleep(0.1)  # the informer is now blocked reading the stream
    started = time.monotonic()
    informer.stop(timeout=5)
    elapsed = time.monotonic() - started
    assert informer._thread is not None
    assert not informer._thread.is_alive()
    assert elapsed < 2  # generous: a shared machine; without the socket shutdown it waits for the server


def test_transform_trims_and_a_failing_handler_does_not_stop_it(stub: StubApi) -> None:
    script = Scripted(stub)
    script.lists.put(listing("10", cm("a", "1", data={"big": "x" * 1000})))
    watch = Watch()
    script.watches.put(watch)
    seen: list[JSONDict | None] = []
    calls = threading.Event()

    def handler(old: JSONDict | None, new: JSONDict | None) -> None:
        seen.append(new)
        calls.set()
        if new is not None and new["metadata"]["name"] == "a":
            raise RuntimeError("a bug in a consumer")

    informer = Informer(
        stub.kube(), CMS, name="test", on_change=handler, transform=lambda o: {"metadata": o["metadata"]}
    )
    informer.start()
    try:
        assert watch.opened.wait(5)
        watch.send("ADDED", cm("b", "11", data={"big": "y"}))
        wait_until("both objects", lambda: len(seen) == 2)
    finally:
        informer.stop()
    assert seen == [{"metadata": cm("a", "1")["metadata"]}, {"metadata": cm("b", "11")["metadata"]}]
    assert "data" not in (informer.get("shop", "a") or {})


def test_keep_refuses_objects_and_relist_lists_again_without_backoff(stub: StubApi) -> None:
    script, events = Scripted(stub), Events()
    wanted = {"a"}
    script.lists.put(listing("10", cm("a", "1"), cm("b", "2")))
    first = Watch()
    script.watches.put(first)
    informer = make(stub, events, keep=lambda obj: obj["metadata"]["name"] in wanted)
    informer.start()
    try:
        assert informer.synced.wait(5)
        assert first.opened.wait(5)
        assert [i["metadata"]["name"] for i in informer.items()] == ["a"]
        first.send("MODIFIED", cm("b", "11"))  # still refused: not cached, not reported
        first.send("MODIFIED", cm("c", "12"))
        wanted.discard("a")
        first.send("MODIFIED", cm("a", "13"))  # refused now: reported as gone
        wait_until("a dropped", lambda: informer.get("shop", "a") is None)
        assert changes_of(events) == [(None, "a@1"), ("a@1", None)]
        wanted.add("b")
        script.lists.put(listing("20", cm("a", "13"), cm("b", "11")))
        script.watches.put(Watch())
        informer.relist()
        wait_until("the second list", lambda: informer.lists == 2)
        assert [i["metadata"]["name"] for i in informer.items()] == ["b"]
    finally:
        informer.stop()
