"""Section 3: how the pure mutation and patch grow with the pod, in-process.

Two sweeps of :func:`webhook.core.injection.inject_pod` + :func:`webhook.core.patch.make_patch`:

* env vars: one container holding 10 ... 10,000 env vars (plus 3 and 30 for the fit);
* containers: 1 ... 100 containers of 20 env vars each.

Each point is the median of several batches (a batch is enough calls for ~40 ms), taken
in round robin over the sizes so that a busy spell on the machine spreads over all of them.

The growth is fitted as ``t = c0 + c1 * n**b`` (least squares on relative error, ``b`` on a
grid of 0.001): ``c0`` is the fixed cost per pod, ``b`` the growth beyond it. As a second
view, ``t = c0 + c1*n + c2*n**2`` is fitted the same way and its quadratic share
``c2*n**2 / t`` at the largest n is reported, with the plain log-log slope over the top
decade. Linear means ``0.9 <= b <= 1.1`` and a quadratic share under 10 %.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.perf import pods
from webhook.core.injection import inject_pod
from webhook.core.patch import make_patch
from webhook.core.settings import InjectionSettings

ENV_SIZES = (10, 30, 100, 300, 1_000, 3_000, 10_000)
CONTAINER_COUNTS = (1, 2, 5, 10, 20, 50, 100)
ENV_PER_CONTAINER = 20
QUICK_ENV_SIZES = (10, 100, 1_000, 10_000)
QUICK_CONTAINER_COUNTS = (1, 10, 100)
TOP_DECADE = 10
LINEAR_EXPONENT = (0.9, 1.1)
MAX_QUADRATIC_SHARE = 0.1


@dataclass(frozen=True)
class Point:
    """One pod size and its times."""

    n: int
    pod_bytes: int
    inject_ms: float
    patch_ms: float
    patch_operations: int

    @property
    def total_ms(self) -> float:
        """Mutation plus patch."""
        return self.inject_ms + self.patch_ms


def _calls_per_batch(call: Callable[[], Any], budget: float) -> int:
    call()
    t = time.perf_counter()
    call()
    return max(1, int(budget / max(time.perf_counter() - t, 1e-7)))


def _batch(call: Callable[[], Any], count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        call()
    return (time.perf_counter() - start) / count


def measure_all(
    cases: Sequence[tuple[int, dict[str, Any]]], settings: InjectionSettings, budget: float, rounds: int
) -> list[Point]:
    """Time the mutation and the patch for each ``(n, pod)``. The sizes are measured in
    round robin, one batch per size per round, so a busy spell on the machine spreads over
    all sizes instead of bending the curve; each size keeps its median batch."""
    import orjson

    calls = []
    for _, pod in cases:
        result = inject_pod(pod, settings, namespace=pods.NAMESPACE)
        assert result.injected
        mutated = result.pod

        def inject(pod: dict[str, Any] = pod) -> Any:
            return inject_pod(pod, settings, namespace=pods.NAMESPACE)

        def patch(pod: dict[str, Any] = pod, mutated: Any = mutated) -> Any:
            return make_patch(pod, mutated)

        calls.append((inject, _calls_per_batch(inject, budget), patch, _calls_per_batch(patch, budget)))
    inject_times: list[list[float]] = [[] for _ in cases]
    patch_times: list[list[float]] = [[] for _ in cases]
    gc.collect()
    for _ in range(rounds):
        for i, (inject, n_inject, patch, n_patch) in enumerate(calls):
            inject_times[i].append(_batch(inject, n_inject))
            patch_times[i].append(_batch(patch, n_patch))
    points = []
    for i, (n, pod) in enumerate(cases):
        result = inject_pod(pod, settings, namespace=pods.NAMESPACE)
        points.append(
            Point(
                n=n,
                pod_bytes=len(orjson.dumps(pod)),
                inject_ms=statistics.median(inject_times[i]) * 1000,
                patch_ms=statistics.median(patch_times[i]) * 1000,
                patch_operations=len(make_patch(pod, result.pod).operations),
            )
        )
    return points


def _fixed_plus_power(xs: Any, ys: Any) -> tuple[float, float, float]:
    """Least squares (relative error) of ``t = c0 + c1 * n**b``: for each b on a fine grid,
    c0 and c1 are a linear fit; the b with the smallest residual wins."""
    import numpy as np

    best: tuple[float, float, float, float] | None = None
    for b in np.arange(0.5, 2.5001, 0.001):
        design = np.vstack([np.ones_like(xs), xs**b]).T / ys[:, None]
        (c0, c1), *_ = np.linalg.lstsq(design, np.ones_like(ys), rcond=None)
        residual = float(((design @ np.array([c0, c1]) - 1) ** 2).sum())
        if best is None or residual < best[0]:
            best = (residual, float(b), float(c0), float(c1))
    assert best is not None
    return best[1], best[2], best[3]


def fit(points: Sequence[Point]) -> dict[str, Any]:
    """The growth exponents and the quadratic share (see the module docstring)."""
    import numpy as np

    xs = np.array([p.n for p in points], dtype=float)
    ys = np.array([p.total_ms for p in points], dtype=float)
    top = xs >= xs.max() / TOP_DECADE
    if top.sum() < 2:
        top = np.ones_like(xs, dtype=bool)
    slope, log_a = np.polyfit(np.log(xs[top]), np.log(ys[top]), 1)
    exponent, fixed_ms, per_unit_ms = _fixed_plus_power(xs, ys)
    design = np.vstack([np.ones_like(xs), xs, xs**2]).T / ys[:, None]
    (c0, c1, c2), *_ = np.linalg.lstsq(design, np.ones_like(ys), rcond=None)
    n_max = float(xs.max())
    t_max = float(c0 + c1 * n_max + c2 * n_max**2)
    share = float(c2 * n_max**2 / t_max) if t_max > 0 else 0.0
    return {
        "exponent": round(exponent, 3),
        "fixed_ms": round(fixed_ms, 4),
        "ms_per_unit": per_unit_ms,
        "loglog_slope_top_decade": round(float(slope), 3),
        "loglog_a_ms": float(math.exp(log_a)),
        "quadratic": {"c0_ms": float(c0), "c1_ms_per_unit": float(c1), "c2_ms_per_unit2": float(c2)},
        "quadratic_share_at_max_n": round(share, 4),
        "us_per_unit": [round(float(y / x * 1000), 4) for x, y in zip(xs, ys, strict=True)],
        "linear": bool(LINEAR_EXPONENT[0] <= exponent <= LINEAR_EXPONENT[1] and share < MAX_QUADRATIC_SHARE),
    }


def run_scaling(quick: bool = False) -> dict[str, Any]:
    """Both sweeps and their fits."""
    settings = InjectionSettings()
    budget, rounds = (0.02, 3) if quick else (0.04, 9)
    env_sizes = QUICK_ENV_SIZES if quick else ENV_SIZES
    counts = QUICK_CONTAINER_COUNTS if quick else CONTAINER_COUNTS
    started = time.monotonic()
    env_points = measure_all([(n, pods.sized_pod(1, n)) for n in env_sizes], settings, budget, rounds)
    for point in env_points:
        log_point("env vars", point)
    container_points = measure_all(
        [(n, pods.sized_pod(n, n * ENV_PER_CONTAINER)) for n in counts], settings, budget, rounds
    )
    for point in container_points:
        log_point("containers", point)
    return {
        "env_vars": {"points": [_point_dict(p) for p in env_points], "fit": fit(env_points), "containers": 1},
        "containers": {
            "points": [_point_dict(p) for p in container_points],
            "fit": fit(container_points),
            "env_per_container": ENV_PER_CONTAINER,
        },
        "seconds": round(time.monotonic() - started, 1),
    }


def log_point(label: str, point: Point) -> None:
    """One progress line."""
    from bench.perf.system import log

    log(
        f"  {label} n={point.n}: inject {point.inject_ms:.3f} ms + patch {point.patch_ms:.3f} ms "
        f"({point.pod_bytes} B pod, {point.patch_operations} ops)"
    )


def _point_dict(point: Point) -> dict[str, Any]:
    return {
        "n": point.n,
        "pod_bytes": point.pod_bytes,
        "inject_ms": round(point.inject_ms, 4),
        "patch_ms": round(point.patch_ms, 4),
        "total_ms": round(point.total_ms, 4),
        "patch_operations": point.patch_operations,
    }
