"""Driving ``wrk`` (Debian's wrk 4.1, with LuaJIT) with the scripts in ``bench/lua``.

* :func:`closed_loop`: ``closed.lua``, every connection sends its next review as soon as
  the last answer came: maximum throughput.
* :func:`open_loop`: ``paced.lua``, a fixed request rate on a per-connection timetable,
  latency measured from each request's due time (see the script for the details and for
  why this is honest without wrk2, which Debian does not ship).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

LUA_DIR = Path(__file__).resolve().parent / "lua"
CLOSED_CONNECTIONS = 16
OPEN_CONNECTIONS = 8


class WrkError(RuntimeError):
    """wrk is missing, failed, or printed no result."""


def wrk_binary() -> str:
    """The wrk on PATH; raises with the install hint when there is none."""
    path = shutil.which("wrk")
    if path is None:
        raise WrkError("wrk is not installed: apt-get install -y wrk (Debian's package)")
    return path


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _result_lines(text: str, tag: str) -> list[dict[str, Any]]:
    return [json.loads(line.split(" ", 1)[1]) for line in text.splitlines() if line.startswith(tag + " ")]


@dataclass
class ClosedResult:
    """One closed-loop run."""

    seconds: float
    requests: int
    rps: float
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    def as_dict(self) -> dict[str, Any]:
        """For results.json."""
        return asdict(self)


def closed_loop(url: str, body_file: Path, seconds: float, connections: int = CLOSED_CONNECTIONS) -> ClosedResult:
    """Maximum throughput: ``connections`` keep-alive connections on one wrk thread."""
    argv = [
        wrk_binary(),
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA_DIR / "closed.lua"),
        url,
    ]
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=False,
        timeout=seconds + 60,
        env={**os.environ, "BENCH_BODY": str(body_file)},
    )
    found = _result_lines(done.stdout, "BENCH_RESULT")
    if done.returncode != 0 or not found:
        raise WrkError(f"wrk failed ({done.returncode}): {done.stdout[-800:]} {done.stderr[-800:]}")
    r = found[-1]
    duration = r["duration_us"] / 1e6
    errors = r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["status_errors"] + r["timeouts"]
    return ClosedResult(
        seconds=round(duration, 3),
        requests=r["requests"],
        rps=round(r["requests"] / duration, 1),
        errors=errors,
        p50_ms=r["p50_us"] / 1000,
        p90_ms=r["p90_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
        max_ms=r["max_us"] / 1000,
    )


@dataclass
class OpenResult:
    """One fixed-rate run."""

    rate: float
    seconds: float
    samples: int
    achieved_rps: float
    errors: int
    max_late_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float

    @property
    def kept_up(self) -> bool:
        """Whether the server answered the offered rate (within 5 %)."""
        return self.achieved_rps >= 0.95 * self.rate and self.errors == 0

    def as_dict(self) -> dict[str, Any]:
        """For results.json."""
        return {**asdict(self), "kept_up": self.kept_up}


def open_loop(
    url: str, body_file: Path, rate: float, seconds: float, connections: int = OPEN_CONNECTIONS
) -> OpenResult:
    """``rate`` requests per second in all, spread over ``connections`` connections (one
    wrk thread each), for ``seconds``."""
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        latency_file = Path(tmp) / "latency.txt"
        argv = [
            wrk_binary(),
            f"-t{connections}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA_DIR / "paced.lua"),
            url,
            "--",
            str(rate),
            str(connections),
            str(body_file),
        ]
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            check=False,
            timeout=seconds + 60,
            env={**os.environ, "BENCH_LATENCY_FILE": str(latency_file)},
        )
        found = _result_lines(done.stdout, "BENCH_RESULT")
        if done.returncode != 0 or not found or not latency_file.exists():
            raise WrkError(f"wrk failed ({done.returncode}): {done.stdout[-800:]} {done.stderr[-800:]}")
        values = sorted(int(v) / 1000 for v in latency_file.read_text(encoding="utf-8").split())
    threads = _result_lines(done.stdout, "BENCH_THREAD")
    r = found[-1]
    window = r["window_us"] / 1e6 or r["duration_us"] / 1e6
    errors = r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
    errors += sum(t["bad"] for t in threads)
    return OpenResult(
        rate=rate,
        seconds=round(window, 3),
        samples=len(values),
        achieved_rps=round(len(values) / window, 1) if window > 0 else 0.0,
        errors=errors,
        max_late_ms=round(max((t["max_late_us"] for t in threads), default=0) / 1000, 3),
        p50_ms=round(percentile(values, 50), 3),
        p90_ms=round(percentile(values, 90), 3),
        p99_ms=round(percentile(values, 99), 3),
        p999_ms=round(percentile(values, 99.9), 3),
        max_ms=round(values[-1], 3) if values else math.nan,
    )
