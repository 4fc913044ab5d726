"""HTTP/1.1 with limits: what a client may send, and for how long, before we give up on it.

uvicorn's httptools protocol has no limit on the size or number of request headers, and
no deadline for a request that arrives slowly: one connection streaming a 100 MiB header
grew the worker by 150 MiB and stalled the event loop for 6 s (httptools joins the pieces
of a header value by copying), and a client that sends half a request keeps its
connection, and whatever it holds, forever. :class:`BoundedHTTPProtocol` adds:

=====================  ==========  =============================================================
limit                  value       why
=====================  ==========  =============================================================
request line+headers   16 KiB      the apiserver sends well under 1 KiB; Node.js and uvicorn's
                                   h11 protocol default to 16 KiB too. Over it: 431.
header count           100         the apiserver sends about 10; Apache's LimitRequestFields
                                   default. Over it: 431.
time for the headers   10 s        from a request's first byte; the apiserver writes a request
                                   at once, and its own default webhook timeout is 10 s.
                                   Over it: 408 and the connection is closed.
time for the body      20 s        from the end of the headers; headers and body together then
                                   stay within 30 s, the longest webhook timeout the apiserver
                                   accepts, after which nobody waits for the answer. Over it:
                                   408 (if no answer was started) and the connection is closed.
new connection         10 s        the header deadline runs from the connection's start: one that
                                   never sends a byte is closed (uvicorn arms no timer before the
                                   first response).
unread request body    none        once the answer is sent (a 404, a 413), what is left of the
                                   body is not read and drained: the connection is closed.
=====================  ==========  =============================================================

The body size cap itself (6 MiB) is the app's (:mod:`webhook.http.app`), which answers 413.
Refusals are counted in :data:`REFUSALS` by reason; the app's ``/metrics`` shows them as
``otel_injector_http_refused_total{reason}``. A refused request costs a few hundred bytes
of buffer and one log line at debug level: the event loop never copies more than the limits
above for it.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import weakref
from collections.abc import Set
from typing import Any

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("webhook.http.limits")

MAX_HEADER_BYTES = 16 * 1024
MAX_HEADERS = 100
HEADER_TIMEOUT_SECONDS = 10.0
BODY_TIMEOUT_SECONDS = 20.0

#: Requests refused by the protocol, by reason, in this process.
REFUSALS: collections.Counter[str] = collections.Counter()
#: How often deadlines are checked. One task per event loop sweeps the connections, instead
#: of a timer armed and cancelled twice per request (that cost 15 us an admission, measured).
SWEEP_SECONDS = 0.25
_sweepers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = weakref.WeakKeyDictionary()

_REASONS = {
    431: "Request Header Fields Too Large",
    408: "Request Timeout",
    400: "Bad Request",
}


def configure(*, max_header_bytes: int, max_headers: int, header_timeout: float, body_timeout: float) -> None:
    """Set this process's limits from the settings (the app factory calls it in each worker,
    where uvicorn creates the protocols)."""
    global MAX_HEADER_BYTES, MAX_HEADERS, HEADER_TIMEOUT_SECONDS, BODY_TIMEOUT_SECONDS
    MAX_HEADER_BYTES, MAX_HEADERS = max_header_bytes, max_headers
    HEADER_TIMEOUT_SECONDS, BODY_TIMEOUT_SECONDS = header_timeout, body_timeout


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request we refuse."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


class BoundedHTTPProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits above, and with the keep-alive timer
    cancelled however the connection ends.

    uvicorn cancels that timer in ``connection_lost`` only after a clean close. When the
    client drops the connection (a reset, a TLS close without close_notify) the timer keeps
    the protocol, its transport and buffers alive until it fires: 120 s here, about 64 KB a
    connection, so a client that reconnects often grew the worker by megabytes a minute."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading_head = True  # between requests, or inside a request's head
        self._head_bytes = 0
        # (when, reason, what, seconds): the deadline in force, checked by the sweeper.
        self._deadline: tuple[float, str, str, float] | None = None
        self._refused = False

    # --- connection ---
    def connection_made(self, transport: Any) -> None:
        """As uvicorn; and a new connection, too, has the header deadline to send its first
        request (uvicorn arms no timer before the first response)."""
        super().connection_made(transport)
        self._arm(HEADER_TIMEOUT_SECONDS, "header-timeout", "the request headers")

    def connection_lost(self, exc: Exception | None) -> None:
        """Let uvicorn clean up, then drop every timer it or we may have left armed."""
        super().connection_lost(exc)
        self._unset_keepalive_if_required()
        self._clear_deadline()

    def data_received(self, data: bytes) -> None:
        """Feed the parser, never more than the header limit allows while in a request's head."""
        if self._refused:
            return
        self._unset_keepalive_if_required()
        try:
            while data:
                if self._reading_head:
                    if self._deadline is None:
                        self._arm(HEADER_TIMEOUT_SECONDS, "header-timeout", "the request headers")
                    room = MAX_HEADER_BYTES - self._head_bytes
                    if room <= 0:
                        raise _Refused(431, "header-too-large", f"request headers over {MAX_HEADER_BYTES:,} bytes")
                    piece, data = data[:room], data[room:]
                    self._head_bytes += len(piece)
                    self.parser.feed_data(piece)
                else:
                    piece, data = data, b""
                    self.parser.feed_data(piece)
        except _Refused as refused:
            self._refuse(refused)
        except httptools.HttpParserCallbackError as err:
            if isinstance(err.__context__, _Refused):
                self._refuse(err.__context__)
            else:
                self._refuse(_Refused(400, "bad-http", "invalid HTTP request"))
        except httptools.HttpParserUpgrade:
            self._refuse(_Refused(400, "bad-http", "protocol upgrades are not supported"))
        except httptools.HttpParserError:
            self._refuse(_Refused(400, "bad-http", "invalid HTTP request"))

    # --- parser callbacks ---
    def on_headers_complete(self) -> None:
        """The head is in: count its headers (the byte limit bounds how many there can be),
        then from now on the body's deadline runs."""
        if len(self.headers) > MAX_HEADERS:
            raise _Refused(431, "too-many-headers", f"more than {MAX_HEADERS} request headers")
        self._reading_head = False
        self._head_bytes = 0
        self._clear_deadline()
        super().on_headers_complete()
        self._arm(BODY_TIMEOUT_SECONDS, "body-timeout", "the request body")

    def on_body(self, body: bytes) -> None:
        """Pass the body on; once the answer is complete, stop reading and close instead."""
        if self.cycle is not None and self.cycle.response_complete:
            self.transport.close()
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        """The request is in: no deadline until the next one starts."""
        self._clear_deadline()
        self._reading_head = True
        super().on_message_complete()

    # --- refusing ---
    def _arm(self, seconds: float, reason: str, what: str) -> None:
        self._deadline = (self.loop.time() + seconds, reason, what, seconds)
        _ensure_sweeper(self.loop, self.connections)

    def _clear_deadline(self) -> None:
        self._deadline = None

    def check_deadline(self, now: float) -> None:
        """Refuse the request if its deadline has passed (called by the sweeper)."""
        if self._deadline is not None and self._deadline[0] <= now:
            _, reason, what, seconds = self._deadline
            self._expired(reason, what, seconds)

    def _expired(self, reason: str, what: str, seconds: float) -> None:
        self._deadline = None
        if self._reading_head and self._head_bytes == 0:
            # Not a byte of a request yet: nothing to answer, only a connection to close.
            REFUSALS["idle-timeout"] += 1
            self._refused = True
            self.transport.close()
            return
        self._refuse(_Refused(408, reason, f"{what} did not arrive within {seconds:g} s"))

    def _refuse(self, refused: _Refused) -> None:
        """Answer ``refused`` (unless an answer was started) and close the connection."""
        self._refused = True
        self._clear_deadline()
        REFUSALS[refused.reason] += 1
        log.debug("request refused: %s", refused, extra={"reason": refused.reason, "status": refused.status})
        cycle = self.cycle
        if self._reading_head:  # no cycle of this request yet; ``cycle`` is the previous one
            can_answer = cycle is None or cycle.response_complete
        else:
            can_answer = cycle is not None and not cycle.response_started
        if cycle is not None and not cycle.response_complete:
            # The app may still be reading: it sees a disconnect, and what it sends is dropped.
            cycle.disconnected = True
            cycle.message_event.set()
        if can_answer and not self.transport.is_closing():
            body = orjson.dumps({"error": str(refused)})
            self.transport.write(
                b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                b"connection: close\r\n\r\n%s" % (refused.status, _REASONS[refused.status].encode(), len(body), body)
            )
        self.transport.close()


def _ensure_sweeper(loop: asyncio.AbstractEventLoop, connections: Set[object]) -> None:
    task = _sweepers.get(loop)
    if task is None or task.done():
        _sweepers[loop] = loop.create_task(_sweep(loop, connections))


async def _sweep(loop: asyncio.AbstractEventLoop, connections: Set[object]) -> None:
    """Check every connection's deadline each :data:`SWEEP_SECONDS`, while there are any:
    the task ends with the last connection, so none is left pending at shutdown."""
    try:
        while connections:
            await asyncio.sleep(SWEEP_SECONDS)
            now = loop.time()
            for connection in list(connections):
                if isinstance(connection, BoundedHTTPProtocol):
                    connection.check_deadline(now)
    finally:
        if _sweepers.get(loop) is asyncio.current_task():
            del _sweepers[loop]
