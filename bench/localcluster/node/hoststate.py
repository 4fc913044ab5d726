"""The machine state a node run may touch: snapshot before, restore and compare after.

Most of what kubelet and containerd write is kept inside the run's namespaces (see
:mod:`bench.localcluster.node.namespaces`). What cannot be kept there is global to the
machine:

* **sysctls** outside the network namespace: kubelet sets ``vm.overcommit_memory``,
  ``kernel.panic``, ``kernel.panic_on_oops``, ``vm.panic_on_oom`` and the root key quotas
  at start (refusing ``protectKernelDefaults`` would stop it instead). They are recorded
  before the node starts and written back at teardown.
* **cgroups**: the cgroup v1/v2 hierarchies are the machine's. kubelet is given a
  ``cgroupRoot`` of its own (``/otel-injector-<run>``) that is created here and removed
  depth first at teardown.

:func:`capture` takes a snapshot of those and of what must simply never change (mount
table, links and iptables rules of the machine's namespace, well-known node paths), and
:func:`differences` lists what differs between two snapshots; the teardown test asserts
that list is empty.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")

#: Sysctls kubelet's container manager sets on start (setupKernelTunables), and kube-proxy's
#: conntrack knobs in case a configuration leaves them on.
TOUCHED_SYSCTLS = (
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "net.netfilter.nf_conntrack_max",
)

#: Paths kubelet, containerd, runc and CNI use by default whatever their options say.
#: None of them may appear on the machine because of a run.
NODE_PATHS = (
    "/run/containerd",
    "/run/netns",
    "/run/runc",
    "/var/run/netns",
    "/var/lib/kubelet",
    "/var/lib/containerd",
    "/var/lib/cni",
    "/var/log/containers",
    "/var/log/pods",
    "/usr/libexec/kubernetes",
    "/etc/cni",
    "/opt/cni",
    "/etc/kubernetes",
)


def _sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


def read_sysctls(keys: Iterable[str] = TOUCHED_SYSCTLS) -> dict[str, str]:
    """Current values of ``keys`` that exist on this kernel."""
    values: dict[str, str] = {}
    for key in keys:
        with contextlib.suppress(OSError):
            values[key] = _sysctl_path(key).read_text(encoding="utf-8").strip()
    return values


def restore_sysctls(values: Mapping[str, str]) -> list[str]:
    """Write ``values`` back where they differ; return the keys that could not be restored."""
    failed: list[str] = []
    current = read_sysctls(values)
    for key, value in values.items():
        if current.get(key) == value:
            continue
        try:
            _sysctl_path(key).write_text(value + "\n", encoding="utf-8")
        except OSError:
            failed.append(key)
    return failed


def hierarchies() -> list[Path]:
    """Mounted cgroup hierarchies (one per v1 controller set, plus a v2 one if mounted)."""
    found: list[Path] = []
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            left, _, right = line.partition(" - ")
            fstype = right.split()[0] if right else ""
            if fstype in ("cgroup", "cgroup2"):
                found.append(Path(left.split()[4]))
    return found


def create_cgroup_root(name: str) -> list[Path]:
    """Create ``/<name>`` in every hierarchy and return the directories made.

    cgroup v1's cpuset needs ``cpus`` and ``mems`` before a child can hold a task, so they
    are copied from the parent, as systemd does for its slices."""
    made: list[Path] = []
    for hierarchy in hierarchies():
        path = hierarchy / name
        if path.is_dir():
            continue
        try:
            path.mkdir()
        except OSError:
            continue
        made.append(path)
        for knob in ("cpuset.cpus", "cpuset.mems"):
            with contextlib.suppress(OSError):
                (path / knob).write_text((hierarchy / knob).read_text(encoding="utf-8"), encoding="utf-8")
    return made


def remove_cgroup_tree(name: str, timeout: float = 10.0) -> list[str]:
    """Remove ``/<name>`` and everything under it from every hierarchy, depth first.

    A cgroup can only be removed once its tasks have gone, which happens a moment after
    they are killed, so each removal is retried until ``timeout``. Returns the paths left."""
    deadline = time.monotonic() + timeout
    left: list[str] = []
    for hierarchy in hierarchies():
        top = hierarchy / name
        if not top.is_dir():
            continue
        dirs = sorted((Path(root) for root, _, _ in os.walk(top)), key=lambda p: len(p.parts), reverse=True)
        for directory in dirs:
            while True:
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        left.append(str(directory))
                        break
                    _kill_tasks(directory)
                    time.sleep(0.1)
    return left


def _kill_tasks(cgroup: Path) -> None:
    with contextlib.suppress(OSError):
        for pid in (cgroup / "cgroup.procs").read_text(encoding="utf-8").split():
            with contextlib.suppress(OSError):
                os.kill(int(pid), 9)


def _command(*argv: str) -> str:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return f"<{argv[0]} unavailable>"


def _mount_points() -> frozenset[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        return frozenset(line.split()[4] for line in handle)


def _cgroup_dirs(prefixes: Iterable[str]) -> frozenset[str]:
    wanted = tuple(prefixes)
    found: set[str] = set()
    for hierarchy in hierarchies():
        with contextlib.suppress(OSError):
            for child in hierarchy.iterdir():
                if child.is_dir() and child.name.startswith(wanted):
                    found.add(str(child))
    return frozenset(found)


def _links() -> str:
    # Counters and operational states of other engineers' links are not ours to compare.
    return "\n".join(sorted(line.split()[0] for line in _command("ip", "-br", "link").splitlines() if line.strip()))


@dataclass(frozen=True)
class HostState:
    """What a run must leave exactly as it found it (see :func:`differences`)."""

    sysctls: Mapping[str, str]
    mounts: frozenset[str]
    paths: frozenset[str]
    cgroups: frozenset[str]
    links: str
    iptables: str
    processes: frozenset[int] = field(default=frozenset())


def capture(run_marker: str = "") -> HostState:
    """Snapshot the machine's state; ``run_marker`` (a run's work directory) selects the
    processes counted as the run's: those whose command line mentions it."""
    return HostState(
        sysctls=read_sysctls(),
        mounts=_mount_points(),
        paths=frozenset(p for p in NODE_PATHS if os.path.lexists(p)),
        cgroups=_cgroup_dirs(("kubepods", "k8s.io", "otel-injector-")),
        links=_links(),
        iptables=_command("iptables-save") if _has("iptables-save") else "",
        processes=frozenset(processes_mentioning(run_marker)) if run_marker else frozenset(),
    )


def _has(tool: str) -> bool:
    from shutil import which

    return which(tool) is not None


def processes_mentioning(text: str) -> list[int]:
    """PIDs of live processes whose command line contains ``text``."""
    found: list[int] = []
    needle = text.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


def differences(before: HostState, after: HostState) -> list[str]:
    """Human-readable differences between two snapshots; empty when nothing changed."""
    out: list[str] = []
    for key in sorted(set(before.sysctls) | set(after.sysctls)):
        if before.sysctls.get(key) != after.sysctls.get(key):
            out.append(f"sysctl {key}: {before.sysctls.get(key)} -> {after.sysctls.get(key)}")
    for label, old, new in (
        ("mount", before.mounts, after.mounts),
        ("path", before.paths, after.paths),
        ("cgroup", before.cgroups, after.cgroups),
    ):
        out += [f"{label} left behind: {item}" for item in sorted(new - old)]
        out += [f"{label} removed: {item}" for item in sorted(old - new)]
    if before.links != after.links:
        out.append(f"links changed: {before.links!r} -> {after.links!r}")
    if _strip_comments(before.iptables) != _strip_comments(after.iptables):
        out.append("iptables rules of the machine's namespace changed")
    out += [f"process left running: pid {pid}" for pid in sorted(after.processes)]
    return out


def _strip_comments(rules: str) -> str:
    # iptables-save prints generation timestamps in its comment lines.
    return "\n".join(line for line in rules.splitlines() if not line.startswith("#"))
