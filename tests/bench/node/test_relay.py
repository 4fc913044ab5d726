"""The loopback relay: 127.0.0.1:PORT of the machine reaches 127.0.0.1:PORT in the run."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bench.localcluster.controlplane import free_port
from bench.localcluster.node.namespaces import RunNamespaces

pytestmark = pytest.mark.e2e


def _get(port: int) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
        return bytes(answer.read())


def test_relay_reaches_a_server_inside_the_namespace(tmp_path: Path) -> None:
    ns = RunNamespaces(tmp_path)
    ns.create()
    port = free_port()
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("inside")
    server = subprocess.Popen(
        ns.argv([sys.executable, "-m", "http.server", "-b", "127.0.0.1", "-d", str(tmp_path / "www"), str(port)]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    relay = None
    try:
        # Negative control: without the relay nothing answers on the machine's loopback.
        time.sleep(0.5)
        with pytest.raises(OSError, match=r"[Rr]efused"):
            _get(port)
        relay = subprocess.Popen(
            [sys.executable, "-m", "bench.localcluster.node.relay", f"--netns={ns.net}", str(port)]
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                assert _get(port) == b"inside"
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        for proc in (relay, server):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=10)
        ns.destroy()
