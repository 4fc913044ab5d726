"""Running the app under uvicorn over TLS, with certificate reload and a clean shutdown.

* TLS only: a webhook is always called over HTTPS, so there is no plaintext mode.
* The serving cert is re-read when its files change (a renewed Secret, cert-manager, or
  the self-managed rotation), by reloading the same ``SSLContext`` in the event loop:
  new handshakes get the new cert, connections in flight keep theirs, nothing restarts.
* Keep-alive outlives the apiserver's idle timeout (90 s in Go's transport), so the
  client, not us, closes idle connections, and no request races a server-side close.
* On SIGTERM the server first drains for ``DRAIN_SECONDS``: it keeps serving, and answers
  every request with ``Connection: close``, so the apiserver drops each pooled connection
  after a completed answer. Only then does uvicorn stop accepting, close the idle
  keep-alive connections and let in-flight requests finish. Measured on the real node
  (tests/helm, a rollout restart under 10 pod creations/s): without the drain, 1 of 373
  webhook calls failed open with ``EOF``: uvicorn closed an idle connection just as the
  apiserver wrote a POST on it, and Go's transport does not retry a POST it has written
  (kubernetes #127335). With several workers (uvicorn's process supervisor) there is no
  drain, only uvicorn's own shutdown.
* A connection the client drops without a clean close is released at once, not when its
  keep-alive timer would have fired; request headers are limited in size and count, and a
  client has bounded time to send its headers and body (:mod:`webhook.http.limits`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from webhook.config.settings import Settings, env_var
from webhook.config.timings import ServingTimings
from webhook.core.settings import SettingsError
from webhook.http.limits import BoundedHTTPProtocol
from webhook.telemetry.tracing import EXPORT_BATCH_SIZE

log = logging.getLogger("webhook.http.server")

KEEP_ALIVE_SECONDS = 120
GRACEFUL_SHUTDOWN_SECONDS = 20
#: How long a SIGTERM-ed server keeps serving with ``Connection: close`` before uvicorn's
#: shutdown; within the chart's terminationGracePeriodSeconds with the preStop sleep.
DRAIN_SECONDS = 2.0
#: Set once SIGTERM started the drain (one server per process).
DRAINING = threading.Event()
# Strong references to the reload tasks, which asyncio itself only holds weakly.
_watchers: set[asyncio.Task[None]] = set()


#: uvicorn's httptools protocol with the request limits and deadlines of webhook.http.limits.
HTTPProtocol = BoundedHTTPProtocol


def check_tls_files(cert: str, key: str) -> None:
    """Fail fast, with the path in the message, when the cert or key cannot be loaded."""
    if not cert or not key:
        raise SettingsError("--tls-cert and --tls-key are required: the webhook only serves HTTPS")
    for label, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not Path(path).is_file():
            raise SettingsError(f"{label} {path}: no such file")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as err:
        raise SettingsError(f"cannot load the TLS cert {cert} with key {key}: {err}") from None


def _file_state(*paths: str) -> tuple[tuple[float, int, int], ...]:
    states = []
    for path in paths:
        stat = os.stat(path)  # follows the symlinks a Secret volume uses
        states.append((stat.st_mtime, stat.st_size, stat.st_ino))
    return tuple(states)


async def _watch_certificate(context: ssl.SSLContext, cert: str, key: str, interval: float) -> None:
    last = _file_state(cert, key)
    while True:
        await asyncio.sleep(interval)
        try:
            current = _file_state(cert, key)
            if current == last:
                continue
            # Check the pair in a scratch context first: a rotation caught between the two
            # file writes must not leave the live context with a cert and no matching key.
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
            context.load_cert_chain(cert, key)
            last = current
            log.info("serving certificate reloaded", extra={"cert": cert})
        except (OSError, ssl.SSLError) as err:
            # A half-written pair is normal during a rotation; the next poll will see both.
            log.warning("serving certificate not reloaded yet: %s", err, extra={"cert": cert})


def reloading_ssl_context(
    config: uvicorn.Config,
    default: Callable[[], ssl.SSLContext],
    *,
    poll_seconds: float = ServingTimings().cert_poll_seconds,
) -> ssl.SSLContext:
    """Uvicorn's ``ssl_context_factory``: the default context, TLS 1.2 at least, plus a task
    in this worker's event loop that looks at the cert files every ``poll_seconds`` (the
    ``cert_poll_seconds`` setting) and reloads them when they change.

    A module-level function (bound by ``functools.partial``) so uvicorn can hand it to
    worker processes."""
    context = default()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    cert, key = str(config.ssl_certfile), str(config.ssl_keyfile)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        log.warning("no event loop while loading TLS; certificate reload is off")
        return context
    task = loop.create_task(_watch_certificate(context, cert, key, poll_seconds))
    _watchers.add(task)
    task.add_done_callback(_watchers.discard)
    return context


class CloseWhileDraining:
    """ASGI wrapper: while :data:`DRAINING`, every HTTP answer carries ``Connection: close``
    (uvicorn then closes the connection after it). Otherwise the request passes through
    untouched, with no extra work per request."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Serve one ASGI connection scope."""
        if scope.get("type") != "http" or not DRAINING.is_set():
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Any) -> None:
            if message.get("type") == "http.response.start":
                headers = [h for h in message.get("headers") or [] if h[0].lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_closing)


class _DrainingConfig(uvicorn.Config):
    def load(self) -> None:
        # Wrapped here, inside the server's event loop: loading also builds the TLS context,
        # whose certificate watcher needs that loop.
        super().load()
        self.loaded_app = CloseWhileDraining(self.loaded_app)


class DrainingServer(uvicorn.Server):
    """uvicorn's server with a drain between SIGTERM (or SIGINT) and its shutdown; a
    second signal during the drain shuts down at once."""

    def __init__(self, config: uvicorn.Config, drain_seconds: float = DRAIN_SECONDS) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self.drain_deadline: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """The first signal starts the drain; the next one (or its end) shuts down."""
        if self.drain_deadline is None and not self.should_exit and self.drain_seconds > 0:
            # Recorded as uvicorn does, so the signal is re-raised after the shutdown.
            self._captured_signals.append(sig)
            self.drain_deadline = time.monotonic() + self.drain_seconds
            DRAINING.set()
            log.info("draining: answering with Connection: close for %.1fs", self.drain_seconds)
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        """Uvicorn's tick (every 0.1 s): ends the drain when its time is up."""
        if self.drain_deadline is not None and time.monotonic() >= self.drain_deadline:
            self.should_exit = True
        return bool(await super().on_tick(counter))


def serve(settings: Settings, app_factory: str) -> None:
    """Run the webhook until SIGTERM or SIGINT.

    The app is built in each worker by ``app_factory`` (``module:function``, the
    composition root's) from the environment, so the caller must have exported the
    settings (the CLI does); the settings given here are the parent's copy, used for the
    listener and TLS."""
    check_tls_files(settings.tls_cert, settings.tls_key)
    os.environ[env_var("tls_cert")] = settings.tls_cert
    os.environ[env_var("tls_key")] = settings.tls_key
    # Short export batches keep the export thread's GIL holds short (see webhook.telemetry.tracing);
    # set in the environment so every worker's SDK reads it, and an explicit value wins.
    os.environ.setdefault("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", str(EXPORT_BATCH_SIZE))
    options: dict[str, Any] = {
        "factory": True,
        "host": settings.bind_address,
        "port": settings.port,
        "workers": settings.workers,
        "ssl_certfile": settings.tls_cert,
        "ssl_keyfile": settings.tls_key,
        "ssl_context_factory": functools.partial(
            reloading_ssl_context, poll_seconds=settings.serving.cert_poll_seconds
        ),
        "log_config": None,
        "access_log": False,
        "proxy_headers": False,
        "server_header": False,
        "http": HTTPProtocol,
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
        "lifespan": "on",
    }
    if settings.workers > 1:
        uvicorn.run(app_factory, **options)
        return
    server = DrainingServer(_DrainingConfig(app_factory, **options))
    server.run()
    if not server.started:
        raise SystemExit(3)  # what uvicorn.run does when the server could not start
