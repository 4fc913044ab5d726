"""The targets of the performance issue, judged against results.json, and the look-ups the
report shares. The targets are the issue's, never loosened here: a missed one is reported as
missed, with the measured figure."""

from __future__ import annotations

from typing import Any

MB_PER_MIB = 1.048576
HEADLINE_RATE = 200


def find_run(results: dict[str, Any], **want: Any) -> dict[str, Any] | None:
    """The HTTP run with these fields (kind, workers, tracing, shape)."""
    for run in (results.get("http") or {}).get("runs") or []:
        if all(run.get(k) == v for k, v in want.items()):
            return dict(run)
    return None


def open_at(run: dict[str, Any] | None, rate: int) -> dict[str, Any] | None:
    """The open-loop result at ``rate``, if that rate was run."""
    for entry in (run or {}).get("open") or []:
        if entry["rate"] == rate:
            return dict(entry)
    return None


def ceiling_ratio(results: dict[str, Any], run: dict[str, Any]) -> float | None:
    """Our maximum throughput over the no-op ceiling's, same workers and body."""
    ceiling = find_run(results, kind="ceiling", workers=run["workers"], shape=run["shape"])
    if not ceiling or not ceiling["max_rps"]:
        return None
    return round(float(run["max_rps"]) / float(ceiling["max_rps"]), 3)


def _target(name: str, goal: str, measured: str, met: bool | None, note: str = "") -> dict[str, Any]:
    return {"target": name, "goal": goal, "measured": measured, "met": met, "note": note}


def judge(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target with its measured value."""
    targets = []
    typical = find_run(results, kind="webhook", workers=1, tracing=True, shape="typical")
    if typical:
        targets.append(
            _target(
                "typical pod, 1 worker, tracing on: max throughput",
                ">= 1,000 admissions/s",
                f"{typical['max_rps']:,.0f}/s (median of {len(typical['closed_runs'])} runs)",
                typical["max_rps"] >= 1000,
            )
        )
        at = open_at(typical, HEADLINE_RATE)
        runs = typical.get("headline_p99_runs_ms") or []
        targets.append(
            _target(
                "typical pod, 1 worker, tracing on: p99 at 200/s",
                "<= 5 ms",
                f"{at['p99_ms']:.2f} ms (median of runs {', '.join(f'{r:.2f}' for r in runs)})"
                if at
                else "not run (200/s above 85% of capacity)",
                bool(at and at["p99_ms"] <= 5 and at["kept_up"]),
            )
        )
        ratio = ceiling_ratio(results, typical)
        targets.append(
            _target(
                "typical pod, 1 worker, tracing on: share of the no-op ceiling",
                ">= 0.5",
                f"{ratio:.2f}" if ratio is not None else "no ceiling run",
                ratio is not None and ratio >= 0.5,
            )
        )
    large = find_run(results, kind="webhook", workers=1, tracing=True, shape="large")
    if large:
        ran = [e for e in large.get("open") or [] if e["rate"] <= HEADLINE_RATE]
        at = max(ran, key=lambda e: e["rate"]) if ran else None
        targets.append(
            _target(
                "large pod (50 containers, 2,000 env), 1 worker, tracing on: p99",
                "<= 50 ms",
                f"{at['p99_ms']:.2f} ms at {at['rate']}/s" if at else "no rate <= 200/s was below capacity",
                bool(at and at["p99_ms"] <= 50 and at["kept_up"]),
                "at 200/s, or the highest rate below it that was under 85% of capacity",
            )
        )
    scaling = results.get("scaling") or {}
    if "env_vars" in scaling:
        env, ctr = scaling["env_vars"]["fit"], scaling["containers"]["fit"]
        targets.append(
            _target(
                "scaling in env vars and containers",
                "linear, no quadratic term",
                f"t = c0 + c1*n^b: b = {env['exponent']} (env vars), {ctr['exponent']} (containers); "
                f"quadratic share at max n {env['quadratic_share_at_max_n']:.1%} / "
                f"{ctr['quadratic_share_at_max_n']:.1%}",
                env["linear"] and ctr["linear"],
            )
        )
    api = results.get("apiserver") or {}
    if "added_median_ms" in api:
        targets.append(
            _target(
                "through the apiserver: added median pod-create latency",
                "<= 5 ms",
                f"{api['added_median_ms']:.2f} ms ({api['with_webhook']['p50_ms']:.2f} vs "
                f"{api['without_webhook']['p50_ms']:.2f} ms, {api['pods_per_namespace']} pods each)",
                api["added_median_ms"] <= 5,
            )
        )
    elif api.get("error"):
        targets.append(_target("through the apiserver", "<= 5 ms added", "not measured", None, api["error"]))
    runs = (results.get("http") or {}).get("runs") or []
    peaks = [r["peak_rss_mib_per_worker"] for r in runs if r["kind"] == "webhook"]
    memory = results.get("memory") or {}
    if memory.get("peak_rss_mib"):
        peaks.append(memory["peak_rss_mib"])
    if peaks:
        peak = max(peaks)
        targets.append(
            _target(
                "RSS per worker, peak under load",
                "<= 120 MB",
                f"{peak * MB_PER_MIB:.1f} MB ({peak:.1f} MiB)",
                peak * MB_PER_MIB <= 120,
            )
        )
    if "slope_mib_per_100k_requests" in memory:
        targets.append(
            _target(
                "RSS flat across 100,000 requests",
                "no growth",
                f"{memory['slope_mib_per_100k_requests']:+.2f} MiB per 100k requests over {memory['requests']:,} "
                f"requests ({memory['rss_after_warmup_mib']} -> {memory['rss_at_end_mib']} MiB after warm-up)",
                memory["flat"] and memory["requests"] >= 100_000,
                memory["flat_means"],
            )
        )
    return targets


# -- Markdown ---------------------------------------------------------------------------
