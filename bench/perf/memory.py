"""Section 5: the server's memory across 100,000 admissions.

One worker, tracing on (exporting to the trace backend), the typical pod, closed loop in
chunks. After each chunk the worker's RSS is read from /proc/<pid>/status, so RSS is known
against the number of requests served; a sampler also records it every half second for
the peak. The first chunk is the warm-up (imports, caches, allocator arenas filling); the
slope is fitted over the chunks after it and given in MiB per 100,000 requests.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.perf.servers import TraceBackend, check_answer, start_server
from bench.perf.system import RssSampler, log, rss_kib, server_processes
from bench.perf.wrk import closed_loop

FLAT_MIB_PER_100K = 2.0


def run_memory(
    *,
    tls_dir: Path,
    workdir: Path,
    backend: TraceBackend | None,
    body: Path,
    total_requests: int,
    chunk_seconds: float,
    budget_seconds: float,
) -> dict[str, Any]:
    """Serve ``total_requests`` (or as many as ``budget_seconds`` allows) and track RSS."""
    import numpy as np

    tracing = backend is not None
    server = start_server(
        "webhook", workers=1, tracing=tracing, tls_dir=tls_dir, workdir=workdir, backend=backend, label="memory"
    )
    started = time.monotonic()
    try:
        check_answer(server, body.read_bytes(), "typical")
        (worker,) = server_processes(server.child.pid)
        start_kib = rss_kib(worker) or 0
        sampler = RssSampler(server.child.pid, interval=0.5).start()
        checkpoints: list[tuple[int, float]] = [(0, start_kib / 1024)]
        served = 0
        try:
            while served < total_requests and time.monotonic() - started < budget_seconds:
                result = closed_loop(server.url, body, chunk_seconds)
                served += result.requests
                checkpoints.append((served, (rss_kib(worker) or 0) / 1024))
                log(f"  {served:,} requests: RSS {checkpoints[-1][1]:.1f} MiB ({result.rps:.0f}/s)")
        finally:
            sampler.stop()
    finally:
        server.stop()
    after_warmup = checkpoints[1:]
    if len(after_warmup) >= 2:
        xs = np.array([c[0] for c in after_warmup], dtype=float)
        ys = np.array([c[1] for c in after_warmup], dtype=float)
        slope_per_request = float(np.polyfit(xs, ys, 1)[0])
    else:
        slope_per_request = float("nan")
    slope = slope_per_request * 100_000
    growth = after_warmup[-1][1] - after_warmup[0][1] if after_warmup else float("nan")
    return {
        "tracing": tracing,
        "shape": "typical",
        "workers": 1,
        "requests": served,
        "seconds": round(time.monotonic() - started, 1),
        "rss_at_start_mib": round(start_kib / 1024, 1),
        "rss_after_warmup_mib": round(after_warmup[0][1], 1) if after_warmup else None,
        "rss_at_end_mib": round(checkpoints[-1][1], 1),
        "peak_rss_mib": sampler.peak_mib_per_worker(),
        "growth_after_warmup_mib": round(growth, 2),
        "slope_mib_per_100k_requests": round(slope, 3),
        "flat": bool(abs(slope) <= FLAT_MIB_PER_100K),
        "flat_means": f"|slope| <= {FLAT_MIB_PER_100K} MiB per 100,000 requests after the first chunk",
        "checkpoints": [{"requests": n, "rss_mib": round(m, 2)} for n, m in checkpoints],
        "timeline": [
            {"t": round(t - sampler.samples[0][0], 2), "rss_mib": round(max(v.values()) / 1024, 2)}
            for t, v in sampler.samples
            if v
        ],
    }
