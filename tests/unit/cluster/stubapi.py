"""A tiny HTTP server on loopback that answers like a kube-apiserver, for the unit tests of
the cluster layer's client, informer and leader election.

The code under test is the real one: a real ``kubernetes`` ``ApiClient`` and urllib3 pool
send real HTTP requests to this server. Only the server side is scripted:

* :meth:`StubApi.on` answers one method and path with a function of the request, returning
  a :class:`Reply` (a JSON body and a status) or a :class:`Watch` (a stream of watch events
  the test feeds, one JSON line each, held open until the test ends it);
* :class:`Store` is an in-memory object store with the apiserver's create / get /
  compare-and-swap replace semantics (404, 409 on a stale resourceVersion), enough for a
  Lease.

Every request is recorded in :attr:`StubApi.requests`.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kubernetes import client

from webhook.cluster.client import Kube


@dataclass
class Request:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body, parsed."""
        return json.loads(self.body) if self.body else None


@dataclass
class Reply:
    """A complete answer: ``body`` is sent as JSON (``raw`` as given, when set)."""

    status: int = 200
    body: Any = None
    raw: bytes | None = None


@dataclass
class Watch:
    """A watch response held open: each :meth:`send` writes one event line at once, and
    :meth:`end` closes the stream as the apiserver does when ``timeoutSeconds`` is up."""

    _lines: queue.Queue[bytes | None] = field(default_factory=queue.Queue)
    #: Set once the server has started streaming this response.
    opened: threading.Event = field(default_factory=threading.Event)
    #: Set once the stream is over (ended, or the client went away).
    closed: threading.Event = field(default_factory=threading.Event)

    def send(self, kind: str, obj: dict[str, Any]) -> None:
        """Stream one event."""
        self._lines.put(json.dumps({"type": kind, "object": obj}).encode() + b"\n")

    def end(self) -> None:
        """Close the stream cleanly."""
        self._lines.put(None)


Handler = Callable[[Request], Reply | Watch]


class StubApi:
    """The server; use as a context manager, or call :meth:`close`."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._routes: dict[tuple[str, str], Handler] = {}
        self._watches: list[Watch] = []
        self._closing = threading.Event()
        stub = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                del format, args  # quiet: tests read stub.requests instead

            def _serve(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    method=self.command,
                    path=url.path,
                    query=dict(urllib.parse.parse_qsl(url.query)),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                stub.requests.append(request)
                handler = stub._routes.get((request.method, request.path))
                answer = (
                    handler(request) if handler else Reply(404, {"kind": "Status", "code": 404, "reason": "NotFound"})
                )
                if isinstance(answer, Watch):
                    self._stream(answer)
                else:
                    self._reply(answer)

            def _reply(self, reply: Reply) -> None:
                data = reply.raw if reply.raw is not None else json.dumps(reply.body or {}).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, watch: Watch) -> None:
                stub._watches.append(watch)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.flush()
                watch.opened.set()
                try:
                    while not stub._closing.is_set():
                        try:
                            line = watch._lines.get(timeout=0.05)
                        except queue.Empty:
                            continue
                        if line is None:
                            break
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except OSError:
                    pass  # the client closed the stream: what a stop does
                finally:
                    watch.closed.set()
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="stub-apiserver", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def on(self, method: str, path: str, handler: Handler) -> None:
        """Answer ``method path`` (query ignored) with ``handler``."""
        self._routes[(method, path)] = handler

    def kube(self, **kwargs: Any) -> Kube:
        """A real :class:`Kube` over a real ``ApiClient`` pointed at this server."""
        configuration = client.Configuration(host=self.url)
        return Kube(client.ApiClient(configuration), **kwargs)

    def calls(self, method: str, path: str) -> list[Request]:
        """The recorded requests for ``method path``."""
        return [r for r in self.requests if r.method == method and r.path == path]

    def close(self) -> None:
        """End every open watch and stop the server."""
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> StubApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def stub_api() -> Iterator[StubApi]:
    """A running :class:`StubApi`, closed afterwards."""
    stub = StubApi()
    try:
        yield stub
    finally:
        stub.close()


def status(code: int, reason: str, message: str = "") -> Reply:
    """An apiserver ``Status`` error answer."""
    return Reply(code, {"kind": "Status", "status": "Failure", "code": code, "reason": reason, "message": message})


class Store:
    """Objects by path with the apiserver's write rules: POST to the collection creates (409
    if it exists), PUT replaces only when ``metadata.resourceVersion`` matches (409
    otherwise), and every write bumps the resourceVersion."""

    def __init__(self, stub: StubApi, collection: str) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.version = 0
        #: When set, every request to this store fails with this reply (an outage).
        self.failing: Reply | None = None
        self._lock = threading.Lock()
        self.collection = collection
        stub.on("POST", collection, self._create)
        self._stub = stub

    def serve(self, name: str) -> None:
        """Answer GET and PUT for ``collection/name``."""
        path = f"{self.collection}/{name}"
        self._stub.on("GET", path, lambda r: self._get(path))
        self._stub.on("PUT", path, lambda r: self._replace(path, r))

    def _bump(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.version)
        return obj

    def _create(self, request: Request) -> Reply:
        if self.failing is not None:
            return self.failing
        obj = request.json()
        path = f"{self.collection}/{obj['metadata']['name']}"
        with self._lock:
            if path in self.objects:
                return status(409, "AlreadyExists")
            self.objects[path] = self._bump(obj)
            return Reply(201, self.objects[path])

    def _get(self, path: str) -> Reply:
        if self.failing is not None:
            return self.failing
        with self._lock:
            obj = self.objects.get(path)
        return Reply(200, obj) if obj is not None else status(404, "NotFound")

    def _replace(self, path: str, request: Request) -> Reply:
        if self.failing is not None:
            return self.failing
        obj = request.json()
        with self._lock:
            current = self.objects.get(path)
            if current is None:
                return status(404, "NotFound")
            if obj["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                return status(409, "Conflict", "the object has been modified")
            self.objects[path] = self._bump(obj)
            return Reply(200, self.objects[path])


def serve_collection(stub: StubApi, path: str, items: list[dict[str, Any]], version: str = "1") -> list[Watch]:
    """Answer a list of ``path`` with ``items`` and every watch with a quiet stream (kept
    open until the test ends). Returns the watches opened so far, for the test to feed."""
    watches: list[Watch] = []

    def answer(request: Request) -> Reply | Watch:
        if request.query.get("watch", "").lower() == "true":  # the kubernetes client sends True
            watch = Watch()
            watches.append(watch)
            return watch
        return Reply(200, {"metadata": {"resourceVersion": version}, "items": items})

    stub.on("GET", path, answer)
    return watches


def wait_until(what: str, condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` every 20 ms until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
