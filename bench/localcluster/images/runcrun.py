"""Run a built image in a real container with Debian's runc, the way the chart runs it.

    with running_container(image.archive, workdir, mounts=[...]) as box:
        box.in_netns([sys.executable, "-c", "..."])   # talk to it over its own loopback

The image is unpacked (unpack.py) and started from a runc spec that matches the chart's
securityContext: a read-only root filesystem, the image's own ``USER``, no capabilities,
``no_new_privileges``, a tmpfs on /tmp (the chart's emptyDir) and whatever else the
caller mounts. runc gives the container fresh pid, network, ipc, uts and mount
namespaces: its network is a loopback of its own, brought up from outside, so nothing
it does reaches the machine's network. runc's state goes under the work directory (not
``/run/runc``) and its cgroup under ``/otel-injector-runc-<pid>``, removed afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.localcluster.images.cache import ImageBuildError
from bench.localcluster.images.unpack import unpack_docker_archive
from bench.localcluster.node.hoststate import remove_cgroup_tree

_STOP_SECONDS = 15.0


@dataclass(frozen=True)
class Mount:
    """A bind mount of a host path into the container (read-only unless told)."""

    source: Path
    destination: str
    read_only: bool = True


@dataclass(frozen=True)
class Completed:
    """A container that ran to its end: exit code and combined output."""

    returncode: int
    output: str


def image_argv(
    config: dict[str, Any], args: Sequence[str] | None, entrypoint: Sequence[str] | None = None
) -> list[str]:
    """ENTRYPOINT (or ``entrypoint``) followed by ``args`` (or by the image's CMD when
    ``args`` is None), as ``docker run --entrypoint`` composes them."""
    first = list(config.get("Entrypoint") or []) if entrypoint is None else list(entrypoint)
    return [*first, *(list(config.get("Cmd") or []) if args is None else list(args))]


def _user(config: dict[str, Any]) -> dict[str, int]:
    user = str(config.get("User") or "0")
    uid, _, gid = user.partition(":")
    if not uid.isdigit() or (gid and not gid.isdigit()):
        raise ImageBuildError(f"image USER {user!r} is not numeric; the chart needs numeric ids")
    return {"uid": int(uid), "gid": int(gid or uid)}


def runc_spec(
    base: dict[str, Any], config: dict[str, Any], argv: Sequence[str], mounts: Sequence[Mount], cgroup: str
) -> dict[str, Any]:
    """``base`` (what ``runc spec`` writes) turned into the chart's securityContext for ``argv``."""
    spec: dict[str, Any] = json.loads(json.dumps(base))
    spec["root"] = {"path": "rootfs", "readonly": True}
    process = spec["process"]
    process.update(
        terminal=False,
        user=_user(config),
        args=list(argv),
        env=list(config.get("Env") or []),
        cwd=str(config.get("WorkingDir") or "/"),
        noNewPrivileges=True,
    )
    process["capabilities"] = {key: [] for key in ("bounding", "effective", "permitted", "ambient")}
    # The container's /tmp, not the machine's: the chart's emptyDir.
    tmp = "/tmp"  # noqa: S108
    tmpfs_options = ["nosuid", "nodev", "mode=1777", "size=64m"]
    spec["mounts"].append({"destination": tmp, "type": "tmpfs", "source": "tmpfs", "options": tmpfs_options})
    for mount in mounts:
        options = ["rbind", "ro" if mount.read_only else "rw"]
        spec["mounts"].append(
            {"destination": mount.destination, "type": "bind", "source": str(mount.source), "options": options}
        )
    spec["linux"]["cgroupsPath"] = cgroup
    return spec


class RunningContainer:
    """A detached container: its id, host PID and a way into its network namespace."""

    def __init__(self, runc: list[str], container_id: str, log_path: Path) -> None:
        self.runc = runc
        self.id = container_id
        self.log_path = log_path

    def state(self) -> dict[str, Any]:
        """``runc state``: status, pid, ..."""
        done = subprocess.run([*self.runc, "state", self.id], capture_output=True, text=True, timeout=30, check=False)
        if done.returncode != 0:
            return {"status": "gone", "pid": 0}
        value: dict[str, Any] = json.loads(done.stdout)
        return value

    @property
    def pid(self) -> int:
        """The container's init process as the machine sees it."""
        return int(self.state().get("pid") or 0)

    def in_netns(self, argv: Sequence[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run a host command inside the container's network namespace."""
        return subprocess.run(
            ["nsenter", f"--net=/proc/{self.pid}/ns/net", "--", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def output(self) -> str:
        """What the container printed so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def _bundle(
    archive: Path,
    workdir: Path,
    *,
    args: Sequence[str] | None,
    mounts: Sequence[Mount],
    cgroup: str,
    entrypoint: Sequence[str] | None = None,
) -> Path:
    bundle = workdir / "bundle"
    unpacked = unpack_docker_archive(archive, bundle / "rootfs")
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], capture_output=True, timeout=30, check=True)
    base = json.loads((bundle / "config.json").read_text(encoding="utf-8"))
    spec = runc_spec(base, unpacked.config, image_argv(unpacked.config, args, entrypoint), mounts, cgroup)
    (bundle / "config.json").write_text(json.dumps(spec, indent=2), encoding="utf-8")
    return bundle


@contextlib.contextmanager
def running_container(
    archive: Path, workdir: Path, *, args: Sequence[str] | None = None, mounts: Sequence[Mount] = ()
) -> Iterator[RunningContainer]:
    """Start the image detached (its CMD unless ``args``), loopback up; stop and delete it after."""
    cgroup_top = f"otel-injector-runc-{os.getpid()}"
    container_id = f"otel-injector-check-{os.getpid()}-{time.monotonic_ns()}"
    bundle = _bundle(archive, workdir, args=args, mounts=mounts, cgroup=f"/{cgroup_top}/{container_id}")
    runc = ["runc", "--root", str(workdir / "runc-state")]
    log_path = workdir / "container.log"
    box = RunningContainer(runc, container_id, log_path)
    try:
        with log_path.open("wb") as log:
            done = subprocess.run(
                [*runc, "run", "--detach", "--bundle", str(bundle), container_id],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                timeout=60,
                check=False,
            )
        if done.returncode != 0:
            raise ImageBuildError(f"runc run failed ({done.returncode}): {box.output()[-2000:]}")
        up = box.in_netns(["ip", "link", "set", "lo", "up"])
        if up.returncode != 0:
            raise ImageBuildError(f"cannot bring up the container's loopback: {up.stderr.strip()}")
        yield box
    finally:
        subprocess.run([*runc, "kill", container_id, "TERM"], capture_output=True, timeout=30, check=False)
        deadline = time.monotonic() + _STOP_SECONDS
        while box.state().get("status") == "running" and time.monotonic() < deadline:
            time.sleep(0.1)
        subprocess.run([*runc, "delete", "--force", container_id], capture_output=True, timeout=30, check=False)
        left = remove_cgroup_tree(cgroup_top)
        if left:
            raise ImageBuildError(f"container cgroups left behind: {', '.join(left)}")


def run_to_completion(
    archive: Path,
    workdir: Path,
    args: Sequence[str],
    *,
    entrypoint: Sequence[str] | None = None,
    timeout: float = 120.0,
) -> Completed:
    """Run the image with ``args`` (after its ENTRYPOINT, or ``entrypoint``) in the foreground;
    return its exit code and output."""
    cgroup_top = f"otel-injector-runc-{os.getpid()}"
    container_id = f"otel-injector-check-{os.getpid()}-{time.monotonic_ns()}"
    bundle = _bundle(
        archive, workdir, args=args, mounts=(), cgroup=f"/{cgroup_top}/{container_id}", entrypoint=entrypoint
    )
    runc = ["runc", "--root", str(workdir / "runc-state")]
    try:
        done = subprocess.run(
            [*runc, "run", "--bundle", str(bundle), container_id],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Completed(returncode=done.returncode, output=done.stdout + done.stderr)
    finally:
        subprocess.run([*runc, "delete", "--force", container_id], capture_output=True, timeout=30, check=False)
        left = remove_cgroup_tree(cgroup_top)
        if left:
            raise ImageBuildError(f"container cgroups left behind ({shlex.join(left)})")
