"""containerd for one node: its config, its command line, and image import.

containerd v2 with the CRI plugin, runc (Debian's, see :data:`RUNC`) as the runtime and
the CNI plugins for pod networking. Every path containerd, its shims and runc write to is
under the node's directory, with the mount namespace's tmpfs catching the few fixed ones
(``/run/containerd/s`` for shim sockets).

Settings that are not defaults, and why:

* ``restrict_oom_score_adj``: root on this machine kind lacks CAP_SYS_RESOURCE, so the
  runtime may not lower ``oom_score_adj``; without it every sandbox fails with
  ``can't get final child's PID from pipe: EOF``.
* ``netns_mounts_under_state_dir``: pod network namespaces are pinned under containerd's
  state dir instead of ``/run/netns``.
* ``pinned_images.sandbox``: the locally built pause image, never pulled.
* ``stream_server_address = 127.0.0.1``: ``kubectl exec/logs`` streams stay on loopback.
* Tracing: containerd 2 reads the standard ``OTEL_*`` variables (see :func:`tracing_env`).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: Debian's runc (``apt-get install runc``); containerd runs whatever BinaryName says.
RUNC = "/usr/sbin/runc"


@dataclass(frozen=True)
class ContainerdPaths:
    """Where one node's containerd keeps everything."""

    base: Path

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def state(self) -> Path:
        return self.base / "state"

    @property
    def socket(self) -> Path:
        return self.base / "containerd.sock"

    @property
    def config(self) -> Path:
        return self.base / "config.toml"

    @property
    def runc_root(self) -> Path:
        return self.base / "runc"


def config_toml(paths: ContainerdPaths, *, cni_bin_dir: Path, cni_conf_dir: Path, pause_image: str) -> str:
    """containerd's config (schema version 4, containerd 2.4's own; older versions are migrated with a warning)."""
    return f"""\
version = 4
root = '{paths.root}'
state = '{paths.state}'
disabled_plugins = ['io.containerd.nri.v1.nri']
imports = []

[debug]
  level = 'info'

[plugins]
  [plugins.'io.containerd.server.v1.grpc']
    address = '{paths.socket}'
  [plugins.'io.containerd.server.v1.ttrpc']
    address = '{paths.socket}.ttrpc'
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = '{pause_image}'

  [plugins.'io.containerd.cri.v1.runtime']
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    enable_unprivileged_ports = true
    enable_unprivileged_icmp = true
    cdi_spec_dirs = []
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = '{RUNC}'
          Root = '{paths.runc_root}'
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['{cni_bin_dir}']
      conf_dir = '{cni_conf_dir}'
      max_conf_num = 1

  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = '127.0.0.1'
    stream_server_port = '0'

  [plugins.'io.containerd.image-verifier.v1.bindir']
    bin_dir = '{paths.base / "image-verifier"}'

  [plugins.'io.containerd.internal.v1.opt']
    path = '{paths.base / "opt"}'
"""


def tracing_env(otlp_grpc_endpoint: str, service_name: str = "containerd") -> dict[str, str]:
    """Environment that makes containerd 2 send its gRPC server spans over OTLP/gRPC to
    ``otlp_grpc_endpoint`` (``host:port``), every span sampled."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{otlp_grpc_endpoint}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_SERVICE_NAME": service_name,
        "OTEL_TRACES_SAMPLER": "traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "1.0",
    }


def argv(containerd: Path, paths: ContainerdPaths) -> list[str]:
    """containerd's command line."""
    return [str(containerd), "--config", str(paths.config)]


def import_image(ctr: Path, paths: ContainerdPaths, archive: Path, *, enter: list[str], timeout: float = 120.0) -> str:
    """Import a docker-archive tarball into the CRI's image namespace (``k8s.io``).

    ``enter`` is the prefix that runs a command inside the node's namespaces (ctr talks to
    the socket, which is a path, but the snapshotter mounts happen in containerd's mount
    namespace either way). Returns ctr's output; raises RuntimeError on failure.
    """
    command = [
        *enter,
        str(ctr),
        "--address",
        str(paths.socket),
        "--namespace",
        "k8s.io",
        "images",
        "import",
        str(archive),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ctr images import {archive} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def ready(ctr: Path, paths: ContainerdPaths, *, enter: list[str], env: Mapping[str, str] | None = None) -> bool:
    """True once containerd answers ``ctr version`` on its socket."""
    if not paths.socket.exists():
        return False
    done = subprocess.run(
        [*enter, str(ctr), "--address", str(paths.socket), "version"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
        env=None if env is None else dict(env),
    )
    return done.returncode == 0
