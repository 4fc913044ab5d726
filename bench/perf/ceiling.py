"""The ceiling: a no-op ASGI app on exactly the webhook's server stack.

``python -m bench.perf.ceiling serve --port P --tls-cert F --tls-key F [--workers N]`` runs
``otel-injector serve`` itself (the same CLI, logging setup, uvicorn options, TLS context
factory and worker model) with one change: uvicorn is handed this module's app instead of
the webhook's. The app reads the body and answers a fixed "allowed" AdmissionReview, so
the gap between it and the webhook is what the webhook does per request. The only thing
it takes from the body is the request's uid (a byte search, no JSON parsing), because the
apiserver rejects an answer for another uid: so the same app also serves as the no-op
webhook registered with the real apiserver.

``POST /patched`` answers the same, plus a fixed JSON patch read at start from the file
named by ``BENCH_FIXED_PATCH`` (base64 of the patch): an "injector" that does no work at
all, to tell what the apiserver spends applying an injection from what otel-injector
spends computing it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import orjson
import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

ANSWER_HEAD, ANSWER_TAIL = orjson.dumps(
    {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "UID", "allowed": True},
    }
).split(b"UID")
UID_KEY = b'"uid":"'
OK = b"ok\n"
_PATCH_FILE = os.environ.get("BENCH_FIXED_PATCH")
PATCH_FIELDS = (
    b',"patchType":"JSONPatch","patch":"' + Path(_PATCH_FILE).read_bytes().strip() + b'"' if _PATCH_FILE else b""
)


def _uid(body: bytes) -> bytes:
    """The first ``"uid":"..."`` in the review: the request's own (it comes before the
    object in what the apiserver and the bench send)."""
    start = body.find(UID_KEY)
    if start < 0:
        return b""
    start += len(UID_KEY)
    end = body.find(b'"', start)
    return body[start:end] if end > start else b""


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    chunks = []
    more = scope["method"] == "POST"
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = bool(message.get("more_body"))
    if scope["path"] == "/mutate":
        body, media = ANSWER_HEAD + _uid(b"".join(chunks)) + ANSWER_TAIL, b"application/json"
    elif scope["path"] == "/patched":
        body = ANSWER_HEAD + _uid(b"".join(chunks)) + ANSWER_TAIL[:-2] + PATCH_FIELDS + ANSWER_TAIL[-2:]
        media = b"application/json"
    else:
        body, media = OK, b"text/plain"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", media), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_app() -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The factory uvicorn calls in each worker, as it calls the webhook's."""
    return _app


def main(argv: list[str] | None = None) -> int:
    """``otel-injector`` with uvicorn pointed at :func:`create_app`."""
    real_run = uvicorn.run

    def run(app: Any, **kwargs: Any) -> None:
        del app
        real_run("bench.perf.ceiling:create_app", **kwargs)

    uvicorn.run = run
    from webhook.cli.main import main as cli_main

    return cli_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
