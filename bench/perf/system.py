"""The machine, the versions, child processes and their memory.

Every process the bench starts is a :class:`Child`: its own session (so a stop reaches the
workers uvicorn forks), output to a log file, and a bounded stop (SIGTERM, then SIGKILL)
aimed only at that process group.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

PAGE_VERSIONS = (
    "otel-injector",
    "uvicorn",
    "uvloop",
    "httptools",
    "fastapi",
    "starlette",
    "orjson",
    "opentelemetry-sdk",
    "jsonpatch",
)


def log(message: str, stream: TextIO | None = None) -> None:
    """Progress for a person watching; figures go to the results files."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=stream or sys.stderr, flush=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def load_average() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages."""
    return os.getloadavg()


def tool_version(argv: Sequence[str]) -> str:
    """The first line a tool prints about its version, or "unavailable"."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else "unavailable"


def package_versions(names: Sequence[str] = PAGE_VERSIONS) -> dict[str, str]:
    """Installed versions of the Python packages the figures depend on."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    total_kib = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                total_kib = int(line.split()[1])
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(total_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "wrk": tool_version(["wrk", "--version"]).split(" [")[0],
        "packages": package_versions(),
        "load_average_at_start": load_average(),
    }


class Child:
    """A process the bench started, in its own session, logging to ``log_path``."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        """The process id of the process started (a uvicorn supervisor, with workers)."""
        return self.proc.pid

    def alive(self) -> bool:
        """Whether the process has not exited."""
        return self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The end of the process's log."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM to this child's process group, then SIGKILL after ``grace`` seconds."""
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def _children_of(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text(encoding="utf-8")
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces; the ppid follows it.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def rss_kib(pid: int) -> int | None:
    """VmRSS of ``pid`` in KiB, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.search(r"^VmRSS:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` so far, in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_processes(pid: int) -> list[int]:
    """The processes that answer requests: ``pid`` itself when it has no worker children,
    else its uvicorn workers (multiprocessing children; not a resource tracker)."""
    kids = [k for k in _children_of(pid) if "resource_tracker" not in _cmdline(k)]
    return kids or [pid]


@dataclass
class RssSampler:
    """Samples the RSS of the server's worker processes every ``interval`` seconds in a
    thread, from /proc/<pid>/status."""

    root_pid: int
    interval: float = 0.25
    samples: list[tuple[float, dict[int, int]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> RssSampler:
        """Begin sampling."""
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> dict[int, int]:
        """One sample now; also returned."""
        now = time.monotonic()
        values = {}
        for pid in server_processes(self.root_pid):
            rss = rss_kib(pid)
            if rss is not None:
                values[pid] = rss
        self.samples.append((now, values))
        return values

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def peak_mib_per_worker(self, since: float = 0.0) -> float:
        """The highest RSS any one worker had, in MiB."""
        peaks = [kib for t, values in self.samples if t >= since for kib in values.values()]
        return round(max(peaks, default=0) / 1024, 1)

    def latest_mib(self) -> dict[int, float]:
        """The last sample, per worker pid, in MiB."""
        for _, values in reversed(self.samples):
            if values:
                return {pid: round(kib / 1024, 1) for pid, kib in values.items()}
        return {}
