"""What a node run must undo, written down before it touches anything.

A run that is killed (CI's time limit, a SIGKILL, a crash of pytest) never reaches its
teardown; its managed processes die with it (PR_SET_PDEATHSIG), but containerd shims,
pod processes, cgroups, the namespace pins and kubelet's sysctls stay. So every run writes
a record, next to the run lock, of its work directory, its cgroup roots and the sysctls it
found; a clean teardown deletes the record. The next run, once it holds the lock, finds a
left-over record and undoes it with :func:`reap` before it starts.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.localcluster.node import hoststate
from bench.localcluster.node.namespaces import RunNamespaces


@dataclass
class RunRecord:
    """The undo list of one run."""

    workdir: str
    sysctls: dict[str, str] = field(default_factory=dict)
    cgroup_roots: list[str] = field(default_factory=list)

    def save(self, path: Path) -> None:
        """Write the record atomically."""
        staged = path.with_suffix(f".{os.getpid()}.tmp")
        staged.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        os.replace(staged, path)


def load(path: Path) -> RunRecord | None:
    """The record at ``path``, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return RunRecord(
            workdir=str(data["workdir"]),
            sysctls={str(k): str(v) for k, v in data.get("sysctls", {}).items()},
            cgroup_roots=[str(c) for c in data.get("cgroup_roots", [])],
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def undo(record: RunRecord) -> list[str]:
    """Undo what ``record`` lists: kill the run's processes (anything whose command line
    names its work directory, and what is left in its cgroups), remove the cgroups, unpin
    the namespaces, restore the sysctls. Returns what could not be undone."""
    problems: list[str] = []
    if record.workdir:
        for pid in hoststate.processes_mentioning(record.workdir):
            with contextlib.suppress(OSError):
                os.kill(pid, 9)
    for root in record.cgroup_roots:
        problems += [f"cgroup {p}" for p in hoststate.remove_cgroup_tree(root)]
    if record.workdir:
        RunNamespaces(Path(record.workdir)).destroy()
    problems += [f"sysctl {k}" for k in hoststate.restore_sysctls(record.sysctls)]
    return problems


def reap(path: Path) -> RunRecord | None:
    """Undo and delete a record a crashed run left at ``path``; return it (None if none)."""
    record = load(path)
    if record is None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return None
    undo(record)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return record
