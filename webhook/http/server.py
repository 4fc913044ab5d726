"""Running the app under uvicorn over TLS, with certificate reload and a clean shutdown.

* TLS only: a webhook is always called over HTTPS, so there is no plaintext mode.
* The serving cert is re-read when its files change (a renewed Secret, cert-manager, or
  the self-managed rotation), by reloading the same ``SSLContext`` in the event loop:
  new handshakes get the new cert, connections in flight keep theirs, nothing restarts.
* Keep-alive outlives the apiserver's idle timeout (90 s in Go's transport), so the
  client, not us, closes idle connections, and no request races a server-side close.
* On SIGTERM uvicorn stops accepting, closes idle keep-alive connections at once and lets
  in-flight requests finish, so the apiserver stops calling a terminating pod.
* A connection the client drops without a clean close is released at once
  (:class:`HTTPProtocol`), not when its keep-alive timer would have fired.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import ssl
from collections.abc import Callable
from pathlib import Path

import uvicorn

from webhook.config.settings import Settings, env_var
from webhook.config.timings import ServingTimings
from webhook.core.settings import SettingsError
from webhook.telemetry.tracing import EXPORT_BATCH_SIZE

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _UvicornHTTP
except ImportError:  # pragma: no cover - uvicorn[standard] brings httptools
    from uvicorn.protocols.http.h11_impl import H11Protocol as _UvicornHTTP  # type: ignore[assignment]

log = logging.getLogger("webhook.http.server")

KEEP_ALIVE_SECONDS = 120
GRACEFUL_SHUTDOWN_SECONDS = 20
# Strong references to the reload tasks, which asyncio itself only holds weakly.
_watchers: set[asyncio.Task[None]] = set()


class HTTPProtocol(_UvicornHTTP):
    """uvicorn's HTTP/1.1 protocol, with the keep-alive timer cancelled however the
    connection ends.

    uvicorn cancels that timer in ``connection_lost`` only after a clean close. When the
    client drops the connection (a reset, a TLS close without close_notify) the timer keeps
    the protocol, its transport and buffers alive until it fires: 120 s here, about 64 KB a
    connection, so a client that reconnects often grew the worker by megabytes a minute."""

    def connection_lost(self, exc: Exception | None) -> None:
        """Let uvicorn clean up, then drop the keep-alive timer it may have left armed."""
        super().connection_lost(exc)
        self._unset_keepalive_if_required()


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
    uvicorn.run(
        app_factory,
        factory=True,
        host=settings.bind_address,
        port=settings.port,
        workers=settings.workers,
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
        ssl_context_factory=functools.partial(reloading_ssl_context, poll_seconds=settings.serving.cert_poll_seconds),
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        http=HTTPProtocol,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        lifespan="on",
    )
