"""A CONNECT proxy that stands in for kube-proxy and cluster DNS on the loopback bench.

The chart registers its webhook through ``clientConfig.service`` and the self-managed
certificate names only ``<service>.<ns>.svc`` (and its shorter forms), never an IP. With
no kubelet, kube-proxy or DNS here, the apiserver cannot reach a Service. It does honour
``HTTPS_PROXY`` for webhook calls (``k8s.io/client-go`` transports use
``http.ProxyFromEnvironment``; loopback targets such as etcd, Jaeger and the apiserver itself
are never proxied), so the test control plane is started with ``HTTPS_PROXY`` pointing here
and this proxy turns ``CONNECT <service>.<ns>.svc:443`` into a TCP connection to the local
``otel-injector serve``. TLS stays end to end between the apiserver and the webhook: the
apiserver still checks the serving certificate against the ``caBundle`` for the Service's
DNS name, exactly as in a cluster, and the proxy sees only ciphertext.

Any other target is refused (``403``) and recorded in :attr:`ServiceProxy.refused`.
"""

from __future__ import annotations

import contextlib
import select
import socket
import socketserver
import threading
from collections.abc import Iterator

_BUFFER = 64 * 1024
_HEADER_LIMIT = 16 * 1024


class ServiceProxy:
    """A threaded CONNECT proxy on 127.0.0.1 with a routing table ``host:port -> local port``."""

    def __init__(self) -> None:
        self._routes: dict[str, int] = {}
        self._lock = threading.Lock()
        #: ``host:port`` targets that were tunnelled, in order.
        self.connected: list[str] = []
        #: ``host:port`` targets that had no route.
        self.refused: list[str] = []
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._handle(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="service-proxy", daemon=True)

    @property
    def url(self) -> str:
        """The value for ``HTTPS_PROXY``."""
        return f"http://127.0.0.1:{self.port}"

    def route(self, target: str, local_port: int) -> None:
        """Tunnel ``CONNECT target`` (``host:port``) to ``127.0.0.1:local_port``."""
        with self._lock:
            self._routes[target.lower()] = local_port

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting connections (open tunnels end with their peers)."""
        self._server.shutdown()
        self._server.server_close()

    def _handle(self, client: socket.socket) -> None:
        header = b""
        while b"\r\n\r\n" not in header:
            chunk = client.recv(4096)
            if not chunk or len(header) > _HEADER_LIMIT:
                return
            header += chunk
        head, _, rest = header.partition(b"\r\n\r\n")
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split()
        if len(parts) != 3 or parts[0].upper() != "CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        target = parts[1].lower()
        with self._lock:
            local_port = self._routes.get(target)
            (self.connected if local_port is not None else self.refused).append(target)
        if local_port is None:
            client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", local_port), timeout=5)
        except OSError:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        with upstream:
            upstream.settimeout(None)
            client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            if rest:
                upstream.sendall(rest)
            _pipe(client, upstream)


def _pipe(a: socket.socket, b: socket.socket) -> None:
    peers = {a: b, b: a}
    open_ends = {a, b}
    while open_ends:
        readable, _, _ = select.select(list(open_ends), [], [], 60)
        if not readable:
            return  # idle for a minute: the apiserver's webhook timeout is far shorter
        for sock in readable:
            try:
                data = sock.recv(_BUFFER)
            except OSError:
                data = b""
            if data:
                try:
                    peers[sock].sendall(data)
                except OSError:
                    return
                continue
            open_ends.discard(sock)
            with contextlib.suppress(OSError):
                peers[sock].shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def running_proxy() -> Iterator[ServiceProxy]:
    """A started :class:`ServiceProxy`, stopped on exit."""
    proxy = ServiceProxy()
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
