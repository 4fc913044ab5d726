"""Measure a real ``otel-injector serve`` process (TLS on 127.0.0.1) under one request.

For each request it reports what the issue's budget is stated in: wall time to the answer,
the answer's status and size, the server's CPU seconds, its peak RSS above the level before
the request (``VmHWM`` after ``clear_refs``), the longest a concurrent ``/healthz`` waited,
and the server's log output. Linux only (``/proc``), which is what CI and the bench run.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

HEAD_CAP = 4 * 1024 * 1024  # keep this much of an answer; count the rest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def make_certs(out: Path) -> Path:
    """ca.crt, tls.crt, tls.key for 127.0.0.1 from the real ``otel-injector certs``."""
    if not (out / "tls.key").exists():
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "webhook",
                "certs",
                "--out",
                str(out),
                "--ip",
                "127.0.0.1",
                "--dns-name",
                "localhost",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"otel-injector certs failed: {done.stderr}")
    return out


@dataclass
class Answer:
    """What came back for one request, and what it cost the server."""

    status: int  # 0: no HTTP answer (closed, reset or timed out)
    size: int  # bytes of the whole HTTP answer, headers included
    head: bytes  # status line, headers and the body, up to 4 MiB in all
    seconds: float
    cpu_seconds: float
    rss_peak_mib: float  # peak RSS during the request, above the RSS before it
    healthz_worst_ms: float
    log_bytes: int
    log_lines: list[str] = field(default_factory=list)  # each cut to 300 characters
    error: str = ""
    longest_log_line: int = 0

    @property
    def body(self) -> bytes:
        return self.head.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in self.head else b""


class Server:
    """``otel-injector serve`` in its own process, one worker, TLS on 127.0.0.1."""

    def __init__(self, tls_dir: Path, log_path: Path, env: dict[str, str] | None = None, as_limit_gib: int = 8) -> None:
        self.tls_dir = tls_dir
        self.port = free_port()
        self.log_path = log_path
        argv = [
            sys.executable, "-m", "webhook", "serve", "--port", str(self.port), "--bind-address", "127.0.0.1",
            "--tls-cert", str(tls_dir / "tls.crt"), "--tls-key", str(tls_dir / "tls.key"),
        ]  # fmt: skip
        full_env = {"OTEL_SDK_DISABLED": "true", **os.environ, "OTEL_INJECTOR_LOG_LEVEL": "DEBUG", **(env or {})}
        limit = as_limit_gib * 1024**3

        # A defect of class 2 must not take the shared machine down with it: the server runs
        # under an address-space limit, set by a tiny launcher that then execs it.
        launcher = "import os, resource, sys; n = int(sys.argv[1]); "
        launcher += "resource.setrlimit(resource.RLIMIT_AS, (n, n)); os.execv(sys.argv[2], sys.argv[2:])"
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-c", launcher, str(limit), *argv],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=full_env,
        )
        self.context = ssl.create_default_context(cafile=str(tls_dir / "ca.crt"))
        self.wait_ready()

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                break
            try:
                if get(self, "/readyz", timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"serve did not become ready; log:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    # --- /proc figures ---
    def _status(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])  # kB
        return 0

    def rss_kib(self) -> int:
        return self._status("VmRSS")

    def reset_peak(self) -> None:
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")

    def peak_kib(self) -> int:
        return self._status("VmHWM")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def connect(server: Server, timeout: float = 30) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    return server.context.wrap_socket(raw, server_hostname="127.0.0.1")


def read_answer(sock: ssl.SSLSocket, deadline: float) -> tuple[int, int, bytes, str]:
    """(status, total bytes, first bytes, error) of one HTTP/1.1 answer on ``sock``."""
    head = b""
    total = 0
    expected: int | None = None
    error = ""
    while True:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(1 << 20)
        except TimeoutError:
            error = "timed out"
            break
        except (ConnectionError, ssl.SSLError) as err:
            error = type(err).__name__
            break
        if not chunk:
            break
        total += len(chunk)
        if len(head) < HEAD_CAP:
            head += chunk[: HEAD_CAP - len(head)]
        if expected is None and b"\r\n\r\n" in head:
            header_block = head.split(b"\r\n\r\n", 1)[0]
            length = 0
            for line in header_block.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            expected = len(header_block) + 4 + length
        if expected is not None and total >= expected:
            break
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") and len(head.split(b" ")) > 1 else 0
    return status, total, head, error


def get(server: Server, path: str, timeout: float = 5) -> tuple[int, bytes]:
    with connect(server, timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        status, _, head, _ = read_answer(sock, time.monotonic() + timeout)
    return status, head


def http_post(body: bytes, path: str = "/mutate", content_type: str = "application/json", extra: bytes = b"") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


class HealthWatch:
    """GET /healthz every 20 ms on its own keep-alive connection; the worst wait counts."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.worst = 0.0
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        sock: ssl.SSLSocket | None = None
        request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                if sock is None:
                    sock = connect(self.server, timeout=60)
                sock.sendall(request)
                status, _, _, _ = read_answer(sock, started + 60)
                if status != 200:
                    self.failures += 1
                    sock.close()
                    sock = None
            except OSError:
                self.failures += 1
                sock = None
            self.worst = max(self.worst, time.monotonic() - started)
            self._stop.wait(0.02)
        if sock is not None:
            sock.close()

    def __enter__(self) -> HealthWatch:
        self._thread.start()
        time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=90)


Sender = Callable[[ssl.SSLSocket], None]


def send_all(data: bytes) -> Sender:
    def send(sock: ssl.SSLSocket) -> None:
        view = memoryview(data)
        for start in range(0, len(data), 1 << 20):
            sock.sendall(view[start : start + (1 << 20)])

    return send


@contextmanager
def _log_window(server: Server) -> Iterator[Callable[[], tuple[int, list[str], int]]]:
    start = server.log_path.stat().st_size

    def read() -> tuple[int, list[str], int]:
        time.sleep(0.2)  # let the last line reach the file
        with server.log_path.open("rb") as f:
            f.seek(start)
            data = f.read()
        lines = data.splitlines()
        longest = max((len(line) for line in lines), default=0)
        return len(data), [line[:300].decode(errors="replace") for line in lines], longest

    yield read


def measure(server: Server, send: Sender, *, timeout: float = 120, watch_health: bool = True) -> Answer:
    """Send one request with ``send`` and measure its answer and its cost to ``server``."""
    base_rss = server.rss_kib()
    server.reset_peak()
    cpu0 = server.cpu_seconds()
    error = ""
    status = size = 0
    head = b""
    with _log_window(server) as log, HealthWatch(server) if watch_health else _null() as health:
        started = time.monotonic()
        try:
            with connect(server, timeout) as sock:
                try:
                    send(sock)
                except (ConnectionError, ssl.SSLError, TimeoutError) as err:
                    error = f"send: {type(err).__name__}"
                status, size, head, read_error = read_answer(sock, started + timeout)
                error = error or read_error
        except OSError as err:
            error = f"connect: {err}"
        seconds = time.monotonic() - started
    cpu = server.cpu_seconds() - cpu0 if server.alive() else float("nan")
    peak = (server.peak_kib() - base_rss) / 1024 if server.alive() else float("nan")
    log_bytes, lines, longest = log()
    worst = health.worst * 1000 if health is not None else 0.0
    return Answer(status, size, head, seconds, cpu, peak, worst, log_bytes, lines, error, longest)


@contextmanager
def _null() -> Iterator[None]:
    yield None


class OtlpSink:
    """An OTLP/HTTP receiver on loopback that only counts: the size of each export request
    the server's span processor sends to ``/v1/traces``."""

    def __init__(self) -> None:
        import http.server

        sizes: list[int] = []
        self.sizes = sizes

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                remaining = length
                while remaining:
                    remaining -= len(self.rfile.read(min(remaining, 1 << 20)) or b"x" * remaining)
                sizes.append(length)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def env(self) -> dict[str, str]:
        return {
            "OTEL_SDK_DISABLED": "false",
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }

    def close(self) -> None:
        self.httpd.shutdown()
