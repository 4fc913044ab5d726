"""Loopback relay: the user's shell reaches a port inside the run's network namespace.

Everything of a node-enabled cluster listens inside a network namespace the run created,
so ``127.0.0.1:PORT`` of the machine's own namespace leads nowhere. This process bridges
exactly that: it binds ``127.0.0.1:PORT`` in the namespace it was started in (the
machine's), then moves itself into the run's namespace, and for every accepted connection
opens ``127.0.0.1:PORT`` there and copies bytes both ways. The same port number on both
sides keeps one kubeconfig, one Jaeger URL valid inside and outside.

Both ends are loopback addresses, so no packet of a relayed connection ever uses another
interface. Sockets keep the namespace they were created in, which is why one process can
hold the listener in one namespace and its outgoing connections in another.

    python -m bench.localcluster.node.relay --netns /path/to/ns/net PORT [PORT ...]

Python 3.11 has no ``os.setns``; ``setns(2)`` is called through ctypes (the project's
floor is 3.11). The process must still be single-threaded when it switches, because
``setns`` moves only the calling thread: it switches before the event loop starts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import sys
from collections.abc import Sequence

#: clone(2) flag for a network namespace, as setns(2) takes it.
CLONE_NEWNET = 0x40000000
#: Bytes per read when copying; the relay serves kubectl and the Jaeger API, not bulk data.
CHUNK = 64 * 1024
LOOPBACK = "127.0.0.1"


def enter_netns(path: str) -> None:
    """Move the calling thread (the whole process while it is single-threaded) into the
    network namespace pinned at ``path``; raise OSError when the kernel refuses."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def bind_listeners(ports: Sequence[int]) -> list[socket.socket]:
    """Listening sockets on 127.0.0.1 for each port, in the current namespace."""
    listeners: list[socket.socket] = []
    for port in ports:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK, port))
        sock.listen(128)
        sock.setblocking(False)
        listeners.append(sock)
    return listeners


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        # Half-close, so a request/response protocol sees the end of the request.
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()


async def _serve_one(port: int, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
    try:
        # An IP literal, so no resolver (and no executor thread) is involved.
        upstream_r, upstream_w = await asyncio.open_connection(LOOPBACK, port)
    except OSError:
        # Nothing listens inside yet: the caller sees a closed connection, as it would
        # see a refused one, and retries.
        client_w.close()
        return
    try:
        await asyncio.gather(_pipe(client_r, upstream_w), _pipe(upstream_r, client_w))
    finally:
        for w in (client_w, upstream_w):
            w.close()
            with contextlib.suppress(OSError, ConnectionError):
                await w.wait_closed()


async def serve(listeners: Sequence[socket.socket]) -> None:
    """Relay every listener to the same port on the current namespace's loopback until
    cancelled (SIGTERM/SIGINT end the process)."""
    servers = []
    for sock in listeners:
        port = sock.getsockname()[1]

        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter, port: int = port) -> None:
            await _serve_one(port, r, w)

        servers.append(await asyncio.start_server(handle, sock=sock))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m bench.localcluster.node.relay", description=__doc__)
    parser.add_argument("--netns", required=True, help="path of the pinned network namespace to relay into")
    parser.add_argument("ports", nargs="+", type=int, metavar="PORT")
    args = parser.parse_args(argv)
    try:
        listeners = bind_listeners(args.ports)
        enter_netns(args.netns)
    except OSError as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return 1
    print(f"relay: 127.0.0.1:{{{','.join(map(str, args.ports))}}} -> {args.netns}", flush=True)
    asyncio.run(serve(listeners))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
