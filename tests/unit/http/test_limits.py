"""BoundedHTTPProtocol on a real uvicorn (plain TCP on loopback, a trivial app): header size
and count answered with 431, deadlines for headers and body answered with 408, an idle new
connection closed, an unread body not drained, and each refusal counted by reason."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from webhook.http import limits


async def echo_length(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    size = 0
    if scope["path"] == "/read":
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
    body = str(size).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    saved = (limits.MAX_HEADER_BYTES, limits.MAX_HEADERS, limits.HEADER_TIMEOUT_SECONDS, limits.BODY_TIMEOUT_SECONDS)
    limits.configure(max_header_bytes=2048, max_headers=10, header_timeout=0.5, body_timeout=0.8)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    config = uvicorn.Config(echo_length, host="127.0.0.1", port=free, http=limits.BoundedHTTPProtocol, log_config=None,
                            lifespan="off")  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield free
    server.should_exit = True
    thread.join(5)
    limits.configure(max_header_bytes=saved[0], max_headers=saved[1], header_timeout=saved[2], body_timeout=saved[3])


def exchange(port: int, data: bytes, pause: float = 0.0, timeout: float = 5.0) -> tuple[bytes, float]:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(data)
        if pause:
            time.sleep(pause)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and answer.split(b"\r\n\r\n", 1)[1]:
                    break
        except OSError:
            pass
    return answer, time.monotonic() - started


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def test_a_normal_request_passes(port: int) -> None:
    answer, _ = exchange(port, b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    assert status(answer) == 200
    assert answer.endswith(b"5")


def test_headers_over_the_size_limit_get_431(port: int) -> None:
    before = limits.REFUSALS["header-too-large"]
    answer, _ = exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
    assert status(answer) == 431
    assert b'{"error":"request headers over 2,048 bytes"}' in answer
    assert limits.REFUSALS["header-too-large"] == before + 1


def test_a_long_request_line_gets_431(port: int) -> None:
    answer, _ = exchange(port, b"GET /" + b"q" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status(answer) == 431


def test_one_header_too_many_gets_431(port: int) -> None:
    headers = b"".join(b"X-%d: v\r\n" % i for i in range(10))
    answer, _ = exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert status(answer) == 431
    assert b"more than 10 request headers" in answer
    ok, _ = exchange(port, b"GET / HTTP/1.1\r\n" + headers[: -len(b"X-9: v\r\n")] + b"\r\n")
    assert status(ok) == 200


def test_a_body_that_fits_in_the_same_chunk_as_the_headers_is_not_counted_as_header(port: int) -> None:
    body = b"b" * 50_000
    answer, _ = exchange(port, b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\n" + body)
    assert status(answer) == 200
    assert answer.endswith(b"50000")


def test_headers_that_never_end_get_408_at_the_deadline(port: int) -> None:
    before = limits.REFUSALS["header-timeout"]
    answer, seconds = exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n", pause=2.0)
    assert status(answer) == 408
    assert seconds < 4.0
    assert limits.REFUSALS["header-timeout"] == before + 1


def test_a_body_that_never_ends_gets_408_at_the_deadline(port: int) -> None:
    answer, seconds = exchange(port, b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc", pause=2.0)
    assert status(answer) == 408
    assert b"the request body did not arrive within 0.8 s" in answer
    assert seconds < 4.0


def test_a_silent_connection_is_closed(port: int) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        assert sock.recv(100) == b""
    assert time.monotonic() - started < 3.0


def test_an_unread_body_is_not_drained(port: int) -> None:
    # / answers without reading; the rest of a 100 MB body must not keep the connection busy.
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n" + b"x" * 1000)
        answer = sock.recv(1000)
        assert status(answer) == 200
        sent = 0
        try:
            while sent < 100_000_000:
                sock.sendall(b"x" * 65536)
                sent += 65536
        except OSError:
            pass
    assert sent < 50_000_000
    assert time.monotonic() - started < 5.0


def test_garbage_is_a_400(port: int) -> None:
    answer, _ = exchange(port, b"\x00\x01 not http\r\n\r\n")
    assert status(answer) == 400
