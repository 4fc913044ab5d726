"""The servers under test and the trace backend they export to, all on 127.0.0.1.

* :func:`make_certs`: TLS material from ``otel-injector certs`` (the documented path).
* :class:`TraceBackend`: Jaeger v2 (or, failing that, the bench's otelcol) receiving OTLP
  on loopback, from the project's own binary cache.
* :func:`start_server`: ``otel-injector serve`` (or the no-op ceiling on the same stack)
  with tracing on or off, waited on until ``/readyz`` answers.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import subprocess
import sys
import textwrap
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.localcluster.controlplane import jaeger_config
from bench.perf.system import Child, free_port, log, rss_kib, server_processes

REPO_ROOT = Path(__file__).resolve().parents[2]
# The tree whose webhook the suite measures (``python -m bench.perf --source``).
_measured = {"source": REPO_ROOT}


def measure_tree(source: Path) -> None:
    """Measure the webhook in ``source`` (a checkout holding ``webhook/``), not this one's."""
    _measured["source"] = source.resolve()


class BenchError(RuntimeError):
    """A server or tool the bench needs did not start or answered wrongly."""


def make_certs(out: Path) -> Path:
    """ca.crt, tls.crt and tls.key for 127.0.0.1 in ``out``."""
    done = subprocess.run(
        [sys.executable, "-m", "webhook", "certs", "--out", str(out), "--dns-name", "localhost", "--ip", "127.0.0.1"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=REPO_ROOT,
    )
    if done.returncode != 0:
        raise BenchError(f"otel-injector certs failed: {done.stderr.strip()}")
    return out


def _otelcol_config(otlp_grpc: int, otlp_http: int, health: int) -> str:
    return textwrap.dedent(
        f"""\
        receivers:
          otlp:
            protocols:
              grpc:
                endpoint: 127.0.0.1:{otlp_grpc}
              http:
                endpoint: 127.0.0.1:{otlp_http}
        processors:
          batch: {{}}
        exporters:
          debug:
            verbosity: basic
        extensions:
          health_check:
            endpoint: 127.0.0.1:{health}
        service:
          extensions: [health_check]
          telemetry:
            metrics:
              level: none
          pipelines:
            traces:
              receivers: [otlp]
              processors: [batch]
              exporters: [debug]
        """
    )


@dataclass
class TraceBackend:
    """A running OTLP receiver on loopback."""

    kind: str
    version: str
    child: Child
    otlp_http_endpoint: str
    query_url: str | None

    @classmethod
    def start(cls, workdir: Path) -> TraceBackend:
        """Jaeger if it can be had, else otelcol; raises BenchError if neither."""
        from bench.localcluster import binaries

        errors = []
        for kind in ("jaeger", "otelcol"):
            try:
                paths = binaries.ensure_binaries([kind], log=lambda m: log(f"[binaries] {m}"))
            except Exception as err:
                errors.append(f"{kind}: {err}")
                continue
            binary = Path(getattr(paths, kind))
            grpc, http_port, extra1, extra2 = (free_port() for _ in range(4))
            config = workdir / f"{kind}.yaml"
            if kind == "jaeger":
                config.write_text(
                    jaeger_config(
                        otlp_grpc=grpc, otlp_http=http_port, query_http=extra1, query_grpc=extra2, max_traces=50_000
                    ),
                    encoding="utf-8",
                )
                probe = f"http://127.0.0.1:{extra1}/api/services"
                version = binaries.JAEGER_RELEASE
                query: str | None = f"http://127.0.0.1:{extra1}"
            else:
                config.write_text(_otelcol_config(grpc, http_port, extra1), encoding="utf-8")
                probe = f"http://127.0.0.1:{extra1}/"
                version = binaries.OTELCOL_VERSION
                query = None
            child = Child(kind, [str(binary), "--config", str(config)], log_path=workdir / f"{kind}.log")
            if _wait_http(probe, child, 60):
                log(f"trace backend: {kind} {version}, OTLP/HTTP on 127.0.0.1:{http_port}")
                return cls(kind, version, child, f"http://127.0.0.1:{http_port}", query)
            child.stop()
            errors.append(f"{kind}: did not become ready:\n{child.log_tail()}")
        raise BenchError("no OTLP receiver could be started: " + "; ".join(errors))

    def stop(self) -> None:
        """Stop the backend."""
        self.child.stop()

    def span_count(self, service: str = "otel-injector") -> int | None:
        """Spans Jaeger holds for ``service`` (up to its query limit), or None."""
        if self.query_url is None:
            return None
        try:
            with urllib.request.urlopen(  # noqa: S310 - a loopback URL we built
                f"{self.query_url}/api/traces?service={service}&limit=100000&lookback=1h", timeout=60
            ) as reply:
                data = json.loads(reply.read())
        except (OSError, ValueError):
            return None
        return sum(len(t.get("spans") or []) for t in data.get("data") or [])


def _wait_http(url: str, child: Child, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310 - loopback only
                if reply.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


@dataclass
class Server:
    """A running webhook (or ceiling) under test."""

    kind: str  # "webhook" or "ceiling"
    workers: int
    tracing: bool
    port: int
    child: Child
    context: ssl.SSLContext

    @property
    def url(self) -> str:
        """Where to POST reviews."""
        return f"https://127.0.0.1:{self.port}/mutate"

    def post(self, body: bytes) -> dict[str, Any]:
        """One review over a fresh connection; returns the decoded AdmissionReview."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=30)
        try:
            conn.request("POST", "/mutate", body=body, headers={"Content-Type": "application/json"})
            reply = conn.getresponse()
            data = reply.read()
            if reply.status != 200:
                raise BenchError(f"{self.kind}: /mutate answered {reply.status}: {data[:300]!r}")
            answer: dict[str, Any] = json.loads(data)
            return answer
        finally:
            conn.close()

    def log_mentions(self, text: str) -> bool:
        """Whether the server's log contains ``text`` (e.g. a dropped-spans warning)."""
        try:
            return text in self.child.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server and its workers."""
        self.child.stop()


def start_server(
    kind: str,
    *,
    workers: int,
    tracing: bool,
    tls_dir: Path,
    workdir: Path,
    backend: TraceBackend | None,
    label: str,
    extra_env: dict[str, str] | None = None,
    source: Path | None = None,
) -> Server:
    """``otel-injector serve`` (kind ``webhook``) or the no-op app (kind ``ceiling``) on
    127.0.0.1, with tracing to ``backend`` or ``OTEL_SDK_DISABLED=true``.

    ``source`` is the source tree the server's code is imported from (another checkout,
    for an A/B comparison; see :mod:`bench.perf.compare`); by default the measured tree."""
    source = source or _measured["source"]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "KUBECONFIG"))}
    env["PYTHONPATH"] = str(source) + os.pathsep + env.get("PYTHONPATH", "")
    if tracing:
        if backend is None:
            raise BenchError("tracing on needs a trace backend")
        env.update(
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_EXPORTER_OTLP_ENDPOINT=backend.otlp_http_endpoint,
            OTEL_SERVICE_NAME="otel-injector",
        )
    else:
        env["OTEL_SDK_DISABLED"] = "true"
    env.update(extra_env or {})
    module = "webhook" if kind == "webhook" else "bench.perf.ceiling"
    argv = [
        sys.executable,
        "-m",
        module,
        "serve",
        "--port",
        str(port),
        "--bind-address",
        "127.0.0.1",
        "--tls-cert",
        str(tls_dir / "tls.crt"),
        "--tls-key",
        str(tls_dir / "tls.key"),
        "--workers",
        str(workers),
    ]
    child = Child(kind, argv, log_path=workdir / f"{label}.log", env=env, cwd=source)
    context = ssl.create_default_context(cafile=str(tls_dir / "ca.crt"))
    server = Server(kind, workers, tracing, port, child, context)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not child.alive():
            raise BenchError(f"{label} exited at start:\n{child.log_tail()}")
        if (workers == 1 or _workers_up(child.pid, workers)) and _ready(port, context):
            return server
        time.sleep(0.2)
    child.stop()
    raise BenchError(f"{label} did not become ready in 60 s:\n{child.log_tail()}")


def _ready(port: int, context: ssl.SSLContext) -> bool:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=2)
    try:
        conn.request("GET", "/readyz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def _workers_up(pid: int, workers: int, settle: float = 1.0) -> bool:
    """Whether uvicorn's ``workers`` children exist and have finished importing: each
    one's RSS past 30 MiB and unchanged (within 1 MiB) over ``settle`` seconds. (Their
    log lines are no help: the spawned workers do not inherit the CLI's logging set-up.)"""
    first = [rss_kib(p) or 0 for p in server_processes(pid)]
    if len(first) < workers or any(kib < 30 * 1024 for kib in first):
        return False
    time.sleep(settle)
    second = [rss_kib(p) or 0 for p in server_processes(pid)]
    return len(second) == len(first) and all(abs(a - b) < 1024 for a, b in zip(first, second, strict=True))


def check_answer(server: Server, body: bytes, shape: str) -> None:
    """One request before the load: the answer must be what the shape calls for."""
    review = server.post(body)
    response = review.get("response") or {}
    if response.get("allowed") is not True:
        raise BenchError(f"{server.kind}: {shape} was not allowed: {response}")
    if server.kind != "webhook":
        return
    has_patch = "patch" in response
    if shape == "injected" and has_patch:
        raise BenchError("the already-injected pod got a patch")
    if shape != "injected":
        if not has_patch:
            raise BenchError(f"the {shape} pod got no patch: {response}")
        ops = json.loads(base64.b64decode(response["patch"]))
        if not any(op.get("path", "").startswith("/spec/initContainers") for op in ops):
            raise BenchError(f"the {shape} pod's patch adds no sidecar")
