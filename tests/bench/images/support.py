"""Helpers for the image tests: read a docker archive, run its rootfs, receive OTLP.

An image's rootfs is run the way a container runtime would at its simplest: unpacked,
bind-mounted read-only onto itself in a private mount namespace (``unshare --mount``),
with /proc and /dev mounted, then ``chroot`` as the image's user; unshare, bash and
chroot each exec the next, so a signal sent to the process reaches the image's program.
No network namespace: the processes listen and send on 127.0.0.1 only. This needs root,
as the bench does; without it the tests fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.localcluster import binaries


@dataclass(frozen=True)
class ArchiveView:
    """What a docker archive holds: its member names, manifest, config and layer tars."""

    members: dict[str, tarfile.TarInfo]
    manifest: list[dict[str, Any]]
    config: dict[str, Any]
    config_name: str
    layers: list[bytes]


def read_archive(path: Path) -> ArchiveView:
    """Load ``path`` (a docker archive) into memory."""
    with tarfile.open(path) as tar:
        members = {m.name: m for m in tar.getmembers()}

        def read(name: str) -> bytes:
            handle = tar.extractfile(members[name])
            assert handle is not None, name
            return handle.read()

        manifest = json.loads(read("manifest.json"))
        config_name = manifest[0]["Config"]
        config = json.loads(read(config_name))
        layers = [read(name) for name in manifest[0]["Layers"]]
    return ArchiveView(members=members, manifest=manifest, config=config, config_name=config_name, layers=layers)


def layer_members(layer: bytes) -> dict[str, tarfile.TarInfo]:
    """The entries of one layer tar, by name."""
    import io

    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        return {m.name: m for m in tar.getmembers()}


def layer_file(layer: bytes, name: str) -> bytes:
    """The content of file ``name`` in a layer tar."""
    import io

    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        handle = tar.extractfile(name)
        assert handle is not None, name
        return handle.read()


def extract_rootfs(archive: Path, dest: Path) -> Path:
    """Unpack the single layer of ``archive`` into ``dest`` (owners kept: needs root)."""
    view = read_archive(archive)
    assert len(view.layers) == 1
    dest.mkdir(parents=True, exist_ok=True)
    layer = dest.parent / f"{dest.name}.layer.tar"
    layer.write_bytes(view.layers[0])
    subprocess.run(["tar", "-x", "-f", str(layer), "-C", str(dest), "--numeric-owner"], check=True, timeout=300)
    layer.unlink()
    return dest


def image_env(archive: Path) -> dict[str, str]:
    """The Env of an image's config as a mapping."""
    env = read_archive(archive).config["config"].get("Env", [])
    return dict(item.split("=", 1) for item in env)


def run_in_rootfs(
    root: Path,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    user: str,
    stdout: Any = subprocess.PIPE,
    private_network: bool = False,
) -> subprocess.Popen[str]:
    """Start ``argv`` chrooted into a read-only ``root`` as ``user`` (``uid:gid``).

    With ``private_network`` it gets a network namespace of its own with only loopback up,
    as a pod has, so it may listen on 0.0.0.0 without touching the machine's ports;
    :func:`in_network_of` reaches it there.
    """
    assert os.geteuid() == 0, "running an image's rootfs needs root (unshare, mount, chroot)"
    # A runtime gives every container /proc and /dev, creating their mount points if the
    # image has none (the collector's FROM-scratch image has neither).
    for mountpoint in ("proc", "dev"):
        (root / mountpoint).mkdir(exist_ok=True)
    # The kubelet mounts an /etc/hosts into every pod's containers; neither image has one
    # (the sidecar config's "localhost" endpoints are looked up there).
    hosts = root / "etc/hosts"
    if not hosts.exists():
        hosts.parent.mkdir(exist_ok=True)
        hosts.write_text("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n", encoding="utf-8")
    # The tools are named by absolute path: ``env`` is the image's, its PATH is not ours.
    tools = {name: shutil.which(name) for name in ("unshare", "bash", "mount", "chroot", "ip")}
    assert all(tools.values()), tools
    script = (
        'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && mount -t proc proc "$0/proc"'
        ' && mount --rbind /dev "$0/dev" && exec "$2" --userspec="$1" "$0" "${@:3}"'
    ).replace("mount ", f"{tools['mount']} ")
    if private_network:
        script = f"{tools['ip']} link set lo up && {script}"
    return subprocess.Popen(
        [
            str(tools["unshare"]),
            "--mount",
            "--propagation",
            "private",
            *(["--net"] if private_network else []),
            str(tools["bash"]),
            "-c",
            script,
            str(root),
            user,
            str(tools["chroot"]),
            *argv,
        ],
        env=dict(env),
        stdout=stdout,
        stderr=subprocess.STDOUT,
        text=True,
    )


def in_network_of(proc: subprocess.Popen[str], code: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run Python ``code`` with this interpreter inside the network namespace of ``proc``."""
    return subprocess.run(
        ["nsenter", f"--net=/proc/{proc.pid}/ns/net", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    """Wait until something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@dataclass(frozen=True)
class Receiver:
    """An otelcol listening for OTLP/HTTP on ``endpoint`` and writing what it gets to ``output``."""

    endpoint: str
    output: Path

    def spans(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Every span received so far, with the resource attributes of its batch."""
        found: list[tuple[dict[str, Any], dict[str, Any]]] = []
        if not self.output.exists():
            return found
        for line in self.output.read_text(encoding="utf-8").splitlines():
            for resource_spans in json.loads(line).get("resourceSpans", []):
                attributes = {
                    a["key"]: next(iter(a["value"].values()), None)
                    for a in resource_spans.get("resource", {}).get("attributes", [])
                }
                for scope in resource_spans.get("scopeSpans", []):
                    found.extend((span, attributes) for span in scope.get("spans", []))
        return found

    def wait_for_spans(self, count: int, timeout: float = 30.0) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Wait until at least ``count`` spans have arrived; return them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            spans = self.spans()
            if len(spans) >= count:
                return spans
            time.sleep(0.2)
        raise AssertionError(f"expected {count} spans within {timeout}s, got {self.spans()}")


@contextlib.contextmanager
def otlp_receiver(workdir: Path) -> Iterator[Receiver]:
    """Run the bench's otelcol with an OTLP/HTTP receiver on loopback and a file exporter."""
    otelcol = binaries.ensure_binaries(["otelcol"]).otelcol
    port, health = free_port(), free_port()
    output = workdir / "received.jsonl"
    config = workdir / "receiver.yaml"
    config.write_text(
        f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{port}
exporters:
  file:
    path: {output}
    flush_interval: 100ms
extensions:
  health_check:
    endpoint: 127.0.0.1:{health}
service:
  extensions: [health_check]
  telemetry:
    metrics:
      level: none
  pipelines:
    traces: {{receivers: [otlp], exporters: [file]}}
    metrics: {{receivers: [otlp], exporters: [file]}}
    logs: {{receivers: [otlp], exporters: [file]}}
""",
        encoding="utf-8",
    )
    log = (workdir / "otelcol.log").open("w")
    proc = subprocess.Popen([str(otelcol), f"--config={config}"], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(health)
        yield Receiver(endpoint=f"http://127.0.0.1:{port}", output=output)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
