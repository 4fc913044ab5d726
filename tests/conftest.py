"""Fixtures shared by the test suite: TLS material from ``otel-injector certs`` and an
in-process HTTPS server (real uvicorn, real TLS) whose spans land in memory."""

from __future__ import annotations

import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bench.localcluster.controlplane import free_port
from webhook.config.settings import Settings
from webhook.http.app import AppState, create_app
from webhook.http.server import reloading_ssl_context


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="rewrite tests/golden/output from the current code instead of comparing",
    )


@pytest.fixture(scope="session")
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))


@pytest.fixture(scope="session")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca.crt, tls.crt, tls.key for localhost/127.0.0.1, made by the real CLI."""
    out = tmp_path_factory.mktemp("tls")
    done = subprocess.run(
        [sys.executable, "-m", "webhook", "certs", "--out", str(out), "--dns-name", "localhost", "--ip", "127.0.0.1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return out


@dataclass
class RunningServer:
    """A webhook served over TLS in this process, with its spans captured."""

    base_url: str
    ca_cert: Path
    spans: InMemorySpanExporter
    app: FastAPI
    server: uvicorn.Server

    @property
    def state(self) -> AppState:
        state: AppState = self.app.state.injector
        return state

    def client(self, **kwargs: object) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(self.ca_cert))
        return httpx.Client(base_url=self.base_url, verify=context, timeout=10, **kwargs)  # type: ignore[arg-type]


def start_server(settings: Settings) -> tuple[uvicorn.Server, threading.Thread, FastAPI, InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    app = create_app(settings, span_processor=SimpleSpanProcessor(spans))
    config = uvicorn.Config(
        app,
        host=settings.bind_address,
        port=settings.port,
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
        ssl_context_factory=reloading_ssl_context,
        log_config=None,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the in-process HTTPS server did not start within 15 s")
        time.sleep(0.02)
    return server, thread, app, spans


@pytest.fixture(scope="session")
def https_server(tls_dir: Path) -> Iterator[RunningServer]:
    settings = Settings(
        port=free_port(),
        bind_address="127.0.0.1",
        tls_cert=str(tls_dir / "tls.crt"),
        tls_key=str(tls_dir / "tls.key"),
    )
    server, thread, app, spans = start_server(settings)
    try:
        yield RunningServer(f"https://127.0.0.1:{settings.port}", tls_dir / "ca.crt", spans, app, server)
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture
def client(https_server: RunningServer) -> Iterator[httpx.Client]:
    with https_server.client() as http:
        yield http
