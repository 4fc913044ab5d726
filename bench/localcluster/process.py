"""Managed child processes of the bench: log file, readiness probe, bounded stop.

Shared by the control plane, the node and the benchmarks. Each process runs in its own
session, dies with the thread that started it (PR_SET_PDEATHSIG) and is stopped with
SIGTERM, then SIGKILL after a bound.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

#: How long a stopping process gets between SIGTERM and SIGKILL.
STOP_GRACE_SECONDS = 10.0
#: Lines of each component's log quoted in a ControlPlaneError.
LOG_TAIL_LINES = 40


class ControlPlaneError(RuntimeError):
    """A control-plane component failed to start or died; the message has the log tails."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports on 127.0.0.1 that were free a moment ago."""
    # All sockets stay bound until every port is picked, so the ports are distinct.
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 256 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    # A crashed or killed test run must not leave etcd/apiserver behind holding CPU and
    # ports. Linux delivers the signal when the *thread* that started the child exits,
    # so processes should be started from a long-lived thread (normally the main one).
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ManagedProcess:
    """A child process with a log file, a readiness probe and bounded stop/restart.

    The process runs in its own session (so its whole process group can be signalled),
    with stdout and stderr appended to ``log_path``. :meth:`start` returns once
    ``ready()`` is true and raises :class:`ControlPlaneError` if the process exits or the
    probe stays false for ``timeout`` seconds.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        ready: Callable[[], bool] | None = None,
        timeout: float = 60.0,
        cwd: Path | None = None,
        describe_failure: Callable[[str], str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.ready = ready if ready is not None else (lambda: True)
        self.timeout = timeout
        self.cwd = cwd
        self._describe_failure = describe_failure or (lambda msg: f"{msg}\n--- {name} log tail ---\n{self.log_tail()}")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The process id while it has been started and not yet stopped, else None."""
        return self._proc.pid if self._proc is not None else None

    def is_running(self) -> bool:
        """Return whether the process has been started and has not exited."""
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """Return the last ``lines`` lines of the process's log."""
        return tail(self.log_path, lines)

    def start(self) -> None:
        """Launch the process and wait (bounded by ``timeout``) until it is ready."""
        if self.is_running():
            raise ControlPlaneError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ) if self.env is None else {**os.environ, **self.env}
        with self.log_path.open("ab") as log:
            log.write(f"\n=== {time.strftime('%H:%M:%S')} starting: {' '.join(self.argv)}\n".encode())
            log.flush()
            try:
                self._proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=self.cwd,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,  # noqa: PLW1509 - only calls prctl
                )
            except OSError as exc:
                raise ControlPlaneError(self._describe_failure(f"{self.name}: cannot start: {exc}")) from exc
        self.wait_ready()

    def wait_ready(self, timeout: float | None = None) -> None:
        """Poll ``ready()`` until true; raise ControlPlaneError on exit or after ``timeout``."""
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        last_error = ""
        while True:
            if self._proc is None or self._proc.poll() is not None:
                code = None if self._proc is None else self._proc.returncode
                raise ControlPlaneError(self._describe_failure(f"{self.name} exited with code {code} before ready"))
            try:
                if self.ready():
                    return
            except Exception as exc:  # any probe failure means "not yet"
                last_error = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                self.stop()
                detail = f" (last probe error: {last_error})" if last_error else ""
                raise ControlPlaneError(self._describe_failure(f"{self.name} not ready within {limit:.0f}s{detail}"))
            time.sleep(0.25)

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> int | None:
        """Stop the process group: SIGTERM, then SIGKILL after ``grace`` seconds.

        Returns the exit code, or None if the process was not started. Idempotent.
        """
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            self._signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=grace)
        # Children that outlived the leader are killed with the rest of the group.
        self._signal_group(proc, signal.SIGKILL)
        self._proc = None
        return proc.returncode

    def restart(self) -> None:
        """Stop the process (if running) and start it again with the same argv."""
        self.stop()
        self.start()

    @staticmethod
    def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
