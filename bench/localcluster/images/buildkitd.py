"""buildkitd for one image build: its own network and mount namespaces, torn down after.

    with running_buildkitd(binaries, state_dir, log) as daemon:
        subprocess.run([daemon.buildctl, "--addr", daemon.address, "build", ...])

**Worker: the OCI (runc) worker, not the containerd worker.** The node's containerd only
exists during a node run, inside that run's namespaces and under the machine-wide node
lock; tying an image build to it would make every build wait for (or start) a node. The
OCI worker runs Debian's runc directly with BuildKit's own overlayfs snapshotter and
content store, so a build needs nothing but buildkitd. The result is exported as a docker
archive and imported into the node's containerd like every other bench image.

**Isolation.** buildkitd is started through ``unshare --net --mount --propagation
private``: a fresh network namespace with only loopback (brought up, no other link, no
route) and a private mount namespace with a tmpfs over ``/run``. The worker's network
mode is ``host``, which for BuildKit means "the daemon's own namespace", so every RUN
step shares that loopback-only namespace: no build step can reach anything outside it.
RUN steps get a resolv.conf naming 127.0.0.1 only, so not even a DNS query leaves for the
machine's resolver. Every overlay mount the snapshotter makes lives in the private mount
namespace and disappears with it.

**Host state.** What cannot be namespaced is the cgroup tree: runc puts each RUN step
under ``defaultCgroupParent``, set to ``/otel-injector-buildkit-<pid>`` (the prefix the
node's host-state check already watches), removed depth first at teardown with
:func:`bench.localcluster.node.hoststate.remove_cgroup_tree`. buildkitd's state (its
content store and the build cache that makes warm builds fast) stays under
``state_dir``, a cache directory of the bench; the socket and config are in a per-run
directory removed at teardown.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.localcluster.images.cache import ImageBuildError
from bench.localcluster.node.hoststate import remove_cgroup_tree
from bench.localcluster.process import ControlPlaneError, ManagedProcess

#: How long buildkitd may take to answer ``buildctl debug workers``.
START_TIMEOUT_SECONDS = 60.0
#: buildkitd's garbage collector keeps its state (a shared cache dir) under MAX_USED_MB and
#: never collects below RESERVED_MB: room for the bases, the dependency layers and a few
#: rebuilds (one cold build uses about 1.2 GB).
MAX_USED_MB = 3000
RESERVED_MB = 1000
_NAMESPACE_SCRIPT = 'ip link set lo up && mount -t tmpfs -o mode=755 otel-injector-buildkit /run && exec "$@"'


@dataclass(frozen=True)
class Buildkitd:
    """A running buildkitd: the buildctl binary and the address to give it."""

    buildctl: Path
    address: str  # unix:///...
    cgroup_parent: str
    log_path: Path

    def buildctl_argv(self, *args: str) -> list[str]:
        """``buildctl --addr <address> <args...>``."""
        return [str(self.buildctl), "--addr", self.address, *args]


def config_toml(*, root: Path, socket: Path, runc: str, cgroup_parent: str) -> str:
    """buildkitd.toml: the OCI worker on runc, host (= namespace) network, no containerd
    worker, loopback-only DNS for RUN steps, bounded build cache."""
    return f"""\
root = "{root}"

[grpc]
  address = ["unix://{socket}"]

[dns]
  nameservers = ["127.0.0.1"]

[worker.oci]
  enabled = true
  binary = "{runc}"
  snapshotter = "overlayfs"
  networkMode = "host"
  defaultCgroupParent = "{cgroup_parent}"
  gc = true
  reservedSpace = "{RESERVED_MB}MB"
  maxUsedSpace = "{MAX_USED_MB}MB"

[worker.containerd]
  enabled = false
"""


def namespaced_argv(buildkitd: Path, config: Path) -> list[str]:
    """buildkitd's command line: inside new network and mount namespaces (see module doc).

    ``exec`` keeps one process from unshare to buildkitd, so the PID started is the
    daemon's own and SIGTERM reaches it directly."""
    return [
        "unshare",
        "--net",
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        _NAMESPACE_SCRIPT,
        "sh",
        str(buildkitd),
        "--config",
        str(config),
    ]


def missing_tools() -> list[str]:
    """Host commands a build needs that are not installed."""
    return [tool for tool in ("unshare", "ip", "mount", "runc") if shutil.which(tool) is None]


def _clean_env() -> dict[str, str]:
    # buildkitd exports its own traces when OTEL_* is set; a build must send nothing anywhere.
    return {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}


@contextlib.contextmanager
def running_buildkitd(
    buildkitd: Path, buildctl: Path, state_dir: Path, log: Callable[[str], None]
) -> Iterator[Buildkitd]:
    """Start buildkitd (state under ``state_dir``), yield it once it answers, stop it after.

    Raises ImageBuildError (with buildkitd's log tail) when it cannot start. On exit the
    daemon gets SIGTERM (then SIGKILL), its namespaces go with it and its cgroup parent is
    removed; a cgroup that cannot be removed raises ImageBuildError naming it."""
    if os.geteuid() != 0:
        raise ImageBuildError("buildkitd needs root (namespaces, overlayfs, runc)")
    missing = missing_tools()
    if missing:
        raise ImageBuildError(f"missing host tools for buildkitd: {', '.join(missing)} (make node-tools installs runc)")
    runc = shutil.which("runc") or "runc"
    state_dir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=state_dir))
    socket = run_dir / "buildkitd.sock"
    cgroup_parent = f"otel-injector-buildkit-{os.getpid()}"
    config = run_dir / "buildkitd.toml"
    config.write_text(
        config_toml(root=state_dir / "root", socket=socket, runc=runc, cgroup_parent=f"/{cgroup_parent}"),
        encoding="utf-8",
    )
    daemon = Buildkitd(
        buildctl=buildctl, address=f"unix://{socket}", cgroup_parent=cgroup_parent, log_path=run_dir / "buildkitd.log"
    )

    def ready() -> bool:
        if not socket.exists():
            return False
        probe = daemon.buildctl_argv("debug", "workers")
        return subprocess.run(probe, capture_output=True, timeout=10, check=False).returncode == 0

    process = ManagedProcess(
        "buildkitd",
        namespaced_argv(buildkitd, config),
        log_path=daemon.log_path,
        env=_clean_env(),
        ready=ready,
        timeout=START_TIMEOUT_SECONDS,
    )
    try:
        try:
            process.start()
        except ControlPlaneError as exc:
            raise ImageBuildError(str(exc)) from exc
        log(f"[images] buildkitd {buildkitd.parent.name} ready (OCI worker, runc, isolated network)")
        yield daemon
    finally:
        process.stop()
        left = remove_cgroup_tree(cgroup_parent)
        # A failed start already quoted the log's tail in its error.
        shutil.rmtree(run_dir, ignore_errors=True)
        if left:
            raise ImageBuildError(f"buildkitd left cgroups behind: {', '.join(left)}")
