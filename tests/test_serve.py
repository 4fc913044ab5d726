"""``otel-injector serve`` as a user runs it: a separate process, real TLS, signals.

Covers what the in-process server cannot: the CLI's flags and environment reaching the
uvicorn workers, two workers behind one port, and a clean exit on SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.localcluster.controlplane import free_port
from bench.localcluster.injector import serve_argv
from tests.support import mutate_via_http
from webhook.config.settings import all_field_names

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {"containers": [{"name": "web", "image": "nginx"}]},
}


class ServeProcess:
    def __init__(self, tls_dir: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.log = tls_dir / f"serve-{self.port}.log"
        args = [*serve_argv(self.port, tls_dir / "tls.crt", tls_dir / "tls.key"), *extra]
        full_env = {**os.environ, "OTEL_SDK_DISABLED": "true", **(env or {})}
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=full_env)
        self.context = ssl.create_default_context(cafile=str(tls_dir / "ca.crt"))
        self.url = f"https://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if httpx.get(self.url + "/readyz", verify=self.context, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"serve did not become ready; log:\n{self.log.read_text()[-3000:]}")

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=self.context, timeout=10)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


@pytest.fixture
def serve_process(tls_dir: Path) -> Iterator[ServeProcess]:
    proc = ServeProcess(tls_dir)
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


def test_serve_answers_over_tls_and_exits_cleanly_on_sigterm(serve_process: ServeProcess) -> None:
    with serve_process.client() as client:
        patched, review = mutate_via_http(client, POD)
        assert review["response"]["allowed"] is True
        assert patched["spec"]["initContainers"][0]["name"] == "otel-collector"
        assert client.get("/healthz").status_code == 200
    # uvicorn re-raises SIGTERM after its graceful shutdown, so "killed by SIGTERM" is the
    # clean exit status; the log shows the shutdown ran to its end.
    assert serve_process.stop() in (0, -signal.SIGTERM)
    log = serve_process.log.read_text()
    assert '"message":"otel-injector 0.1.0 ready"' in log
    assert "Application shutdown complete." in log


def test_sigterm_drains_keep_alive_connections_with_connection_close(serve_process: ServeProcess) -> None:
    # A pooled keep-alive connection, as the apiserver holds one to a terminating pod.
    with serve_process.client() as client:
        before = client.get("/healthz")
        assert before.status_code == 200
        assert before.headers.get("connection", "").lower() != "close"  # negative control
        serve_process.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        # Still serving during the drain, on the same connection, and telling the client
        # to close it after this answer instead of closing it under the client's feet.
        during = client.get("/healthz")
        assert during.status_code == 200
        assert during.headers["connection"].lower() == "close"
        started = time.monotonic()
        assert serve_process.process.wait(timeout=30) in (0, -signal.SIGTERM)
    assert time.monotonic() - started < 10
    assert "draining: answering with Connection: close" in serve_process.log.read_text()


def test_the_ready_line_logs_every_setting_with_the_values_in_force(tls_dir: Path) -> None:
    knobs = {"OTEL_INJECTOR_CERT_POLL_SECONDS": "0.25", "OTEL_INJECTOR_GIL_SWITCH_INTERVAL_SECONDS": "0.001"}
    proc = ServeProcess(tls_dir, env=knobs)
    try:
        proc.wait_ready()
    finally:
        proc.stop()
    lines = [json.loads(line) for line in proc.log.read_text().splitlines() if line.startswith("{")]
    (ready,) = [line for line in lines if line.get("message", "").endswith(" ready")]
    assert set(ready["settings"]) == set(all_field_names())
    assert ready["settings"]["cert_poll_seconds"] == 0.25
    assert ready["settings"]["gil_switch_interval_seconds"] == 0.001
    assert ready["settings"]["lease_duration_seconds"] == 15.0


def test_serve_with_two_workers_and_settings_from_env(tls_dir: Path) -> None:
    proc = ServeProcess(tls_dir, "--workers", "2", env={"OTEL_INJECTOR_SIDECAR_MODE": "container"})
    try:
        proc.wait_ready()
        with proc.client() as client:
            for _ in range(6):
                patched, _ = mutate_via_http(client, POD)
                assert [c["name"] for c in patched["spec"]["containers"]] == ["web", "otel-collector"]
    finally:
        assert proc.stop() in (0, -signal.SIGTERM)


def test_serve_with_config_file(tls_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text("sidecar_image: registry.example/otelcol:9.9.9\nsidecar_memory_limit: 512Mi\n")
    proc = ServeProcess(tls_dir, "--config", str(config))
    try:
        proc.wait_ready()
        with proc.client() as client:
            patched, _ = mutate_via_http(client, POD)
        sidecar = patched["spec"]["initContainers"][0]
        assert sidecar["image"] == "registry.example/otelcol:9.9.9"
        assert {"name": "GOMEMLIMIT", "value": "409MiB"} in sidecar["env"]
    finally:
        proc.stop()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--tls-cert", "/nonexistent.crt", "--tls-key", "/nonexistent.key"],
            "--tls-cert /nonexistent.crt: no such file",
        ),
        ([], "--tls-cert and --tls-key are required"),
    ],
)
def test_serve_refuses_to_start_without_usable_tls(args: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "webhook", "serve", "--port", str(free_port()), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr


def test_bad_setting_in_env_is_a_clear_error(tls_dir: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "webhook",
            "serve",
            "--tls-cert",
            str(tls_dir / "tls.crt"),
            "--tls-key",
            str(tls_dir / "tls.key"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, "OTEL_INJECTOR_SIDECAR_MEMORY_LIMIT": "lots"},
    )
    assert done.returncode == 2
    assert "sidecar_memory_limit" in done.stderr
