"""``POST /mutate`` as a plain ASGI endpoint: the body in, the handler's answer out.

The route checks the Content-Type, reads the body under ``max_body_bytes`` (413 as soon as
it passes it, or at once when Content-Length says so) and hands the bytes to the
:class:`~webhook.admission.handler.AdmissionHandler`. Reviews over
:data:`INLINE_BODY_BYTES`, which may take up to about a second of CPU, are answered in a
worker thread, one at a time, so the event loop keeps answering probes and small reviews
meanwhile (a typical review stays inline: a thread hop would cost more than the review).
Every refusal is a 4xx with a one-line ``{"error": ...}`` body; a client that hangs up
mid-body costs one debug line.

Why an ASGI endpoint and not a Starlette ``Request``/``Response`` route (what this replaced):
the route needs the raw body and sends bytes it already has, so a ``Request`` (headers
parsed into a multidict, an async body stream), a ``Response`` (headers rebuilt) and the
exception wrapper Starlette puts around every request/response route are work per
admission that shows nothing. It still runs inside the app's middleware, so the official
FastAPI instrumentation traces it as before (``POST /mutate``, the caller's traceparent).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from webhook.admission.handler import AdmissionHandler
from webhook.admission.review import BadReview
from webhook.core.bounds import clip
from webhook.telemetry.metrics import Metrics

log = logging.getLogger("webhook.http.admitroute")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = "application/json"
# Reviews up to this size are answered inline, in well under a millisecond to a few ms;
# larger ones, rare and up to about a second of CPU, in a worker thread.
INLINE_BODY_BYTES = 256 * 1024
_JSON_HEADERS = (b"content-type", JSON.encode())


class _HungUp(Exception):
    """The client disconnected before its body was complete."""


class AdmissionRoute:
    """The ASGI app of ``POST /mutate`` (the router answers other methods with 405)."""

    def __init__(self, handler: AdmissionHandler, metrics: Metrics, max_body_bytes: int) -> None:
        self._handler = handler
        self._metrics = metrics
        self._limit = max_body_bytes
        # One large review at a time per worker: each may take up to the budget's ~64 MiB.
        self._large_reviews = asyncio.Semaphore(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one admission request."""
        status, body = await self._answer(scope, receive)
        headers = [_JSON_HEADERS, (b"content-length", b"%d" % len(body))] if body else [(b"content-length", b"0")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _answer(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        try:
            content_type, declared = _headers(scope)
            _check_content_type(content_type)
            body = await self._read_body(receive, declared)
            if len(body) <= INLINE_BODY_BYTES:
                return 200, self._handler.handle(body)
            # Up to a second of CPU for the largest bodies: in a thread, so the event
            # loop keeps answering probes and small reviews at every GIL switch.
            async with self._large_reviews:
                return 200, await asyncio.to_thread(self._handler.handle, body)
        except BadReview as err:
            if err.reason in ("content-type", "body-too-large"):  # the handler counts its own
                self._metrics.invalid_requests.labels(status=str(err.status)).inc()
                self._metrics.refused.labels(reason=err.reason).inc()
            return err.status, error_body(str(err))
        except _HungUp:
            # Cheap to provoke, so worth no more than a debug line.
            self._metrics.refused.labels(reason="client-disconnect").inc()
            log.debug("client hung up before its request body was complete")
            return 400, b""

    async def _read_body(self, receive: Receive, declared: bytes | None) -> bytes:
        limit = self._limit
        if declared and declared.isdigit() and (len(declared) > 18 or int(declared) > limit):
            shown = clip(declared.decode("latin-1"), 20)
            raise BadReview(f"body of {shown} bytes is over the {limit}-byte limit", status=413,
                            reason="body-too-large")  # fmt: skip
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _HungUp
        body: bytes = message.get("body", b"")
        if not message.get("more_body"):  # the apiserver's review comes in one piece
            if len(body) > limit:
                raise BadReview(f"body is over the {limit}-byte limit", status=413, reason="body-too-large")
            return body
        gathered = bytearray(body)
        while True:
            if len(gathered) > limit:
                raise BadReview(f"body is over the {limit}-byte limit", status=413, reason="body-too-large")
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _HungUp
            gathered += message.get("body", b"")
            if not message.get("more_body"):
                break
        if len(gathered) > limit:
            raise BadReview(f"body is over the {limit}-byte limit", status=413, reason="body-too-large")
        return bytes(gathered)


def _headers(scope: Scope) -> tuple[bytes | None, bytes | None]:
    """The request's Content-Type and Content-Length (the first of each), raw."""
    content_type = declared = None
    for name, value in scope["headers"]:
        if name == b"content-type" and content_type is None:
            content_type = value
        elif name == b"content-length" and declared is None:
            declared = value
    return content_type, declared


def _check_content_type(raw: bytes | None) -> None:
    value = raw.decode("latin-1") if raw is not None else None
    media_type = (value or "").split(";", 1)[0].strip().lower()
    if media_type != JSON:
        shown = repr(clip(value)) if value else "missing"
        raise BadReview(f"Content-Type must be {JSON}, not {shown}", status=415, reason="content-type")


def error_body(message: str) -> bytes:
    """The one-line JSON body of every 4xx: ``{"error": message}``."""
    return orjson.dumps({"error": message})
