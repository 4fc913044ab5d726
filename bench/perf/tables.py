"""Markdown tables for RESULTS.md: the helpers, the headline and the per-section tables."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from bench.perf.targets import HEADLINE_RATE, ceiling_ratio, find_run, open_at


def table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def ms(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"


def met(value: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "not measured"}[value]


def headline_rows(results: dict[str, Any]) -> list[list[str]]:
    """One row per shape: 1 worker, tracing on, with the ceiling ratio and 200/s latency."""
    rows = []
    for shape in ("typical", "large", "injected"):
        run = find_run(results, kind="webhook", workers=1, tracing=True, shape=shape)
        if not run:
            continue
        at = open_at(run, HEADLINE_RATE)
        ratio = ceiling_ratio(results, run)
        rows.append(
            [
                shape,
                f"{run['body_bytes'] / 1024:.1f} KiB",
                f"{run['max_rps']:,.0f}",
                f"{ratio:.2f}" if ratio is not None else "-",
                ms(at["p50_ms"]) if at else "over capacity",
                ms(at["p90_ms"]) if at else "-",
                ms(at["p99_ms"]) if at else "-",
                ms(at["max_ms"]) if at else "-",
                ms(run["cpu_ms_per_request"]),
                f"{run['peak_rss_mib_per_worker']:.0f}",
            ]
        )
    return rows


HEADLINE_HEADER = (
    "pod",
    "review size",
    "max admissions/s",
    "share of no-op ceiling",
    "p50 ms @200/s",
    "p90 ms @200/s",
    "p99 ms @200/s",
    "max ms @200/s",
    "server CPU ms/admission",
    "peak RSS MiB",
)


def scaling_text(scaling: dict[str, Any]) -> str:
    """Tables and fit statements for section 3."""
    parts = []
    for key, label in (("env_vars", "env vars (one container)"), ("containers", "containers (20 env vars each)")):
        data = scaling[key]
        f = data["fit"]
        parts += [
            f"**{label}**: t = {f['fixed_ms']:.3f} ms + {f['ms_per_unit'] * 1000:.3g} µs·n^{f['exponent']} "
            f"(least squares, relative error); log-log slope over the top decade {f['loglog_slope_top_decade']}; "
            f"a quadratic fit puts {f['quadratic_share_at_max_n']:.1%} of the time at the largest n in the n² term. "
            f"**{'Linear' if f['linear'] else 'NOT linear'}.**",
            "",
            table(
                ("n", "pod JSON", "inject ms", "patch ms", "total ms", "µs per unit", "patch ops"),
                (
                    [
                        f"{p['n']:,}",
                        f"{p['pod_bytes'] / 1024:.0f} KiB",
                        f"{p['inject_ms']:.3f}",
                        f"{p['patch_ms']:.3f}",
                        f"{p['total_ms']:.3f}",
                        f"{u:.2f}",
                        p["patch_operations"],
                    ]
                    for p, u in zip(data["points"], f["us_per_unit"], strict=True)
                ),
            ),
            "",
        ]
    parts.append("![time against pod size](scaling.png)")
    return "\n".join(parts)


def apiserver_text(api: dict[str, Any]) -> str:
    """Tables for section 4."""
    hist = api["apiserver_webhook_admission_duration"]
    ours = api.get("webhook_own_admission_duration") or {}
    cases = [
        ("unlabelled: no webhook called", api["without_webhook"]),
        ("no-op webhook (bench.perf.ceiling, same stack)", api.get("noop_webhook")),
        ("static patch: otel-injector's patch, precomputed", api.get("static_patch_webhook")),
        ("tracing=enabled: otel-injector injects", api["with_webhook"]),
    ]
    rows = [
        [name, d["count"], ms(d["p50_ms"]), ms(d["p90_ms"]), ms(d["p99_ms"]), ms(d["mean_ms"]), ms(d["max_ms"])]
        for name, d in cases
        if d
    ]
    noop_hist = api.get("apiserver_noop_webhook_admission_duration") or {}
    text = [
        f"Kubernetes {api['kube_version']} (kube-apiserver, etcd, controller-manager on loopback), otel-injector "
        "installed with its own MutatingWebhookConfiguration, tracing to the plane's Jaeger. The same typical pod "
        f"({api['pod_bytes'] / 1024:.1f} KiB) created {api['pods_per_namespace']} times in each namespace, "
        "in turn, over one keep-alive connection; time from request to the apiserver's answer.",
        "",
        table(("namespace", "pods", "p50 ms", "p90 ms", "p99 ms", "mean ms", "max ms"), rows),
        "",
        f"**The webhook adds {api['added_median_ms']:.2f} ms to the median pod creation** "
        f"({api['added_p90_ms']:.2f} ms at p90, {api['added_mean_ms']:.2f} ms on the mean)"
        + (
            f". For scale: a no-op webhook on the same server stack adds {api['noop_added_median_ms']:.2f} ms "
            "(the call itself), and a webhook that answers otel-injector's patch, precomputed, doing no work at "
            f"all, adds {api['static_added_median_ms']:.2f} ms: the call plus what the apiserver spends on any "
            "injection of this sidecar (applying the patch, decoding and defaulting the result, validating and "
            "storing a bigger pod). **What otel-injector's own work adds beyond that is "
            f"{api['ours_beyond_static_median_ms']:.2f} ms.**"
            if "static_added_median_ms" in api
            else "."
        ),
        "",
        f"`apiserver_admission_webhook_admission_duration_seconds` (type=admit, operation=CREATE), from the "
        f"apiserver's /metrics over the timed creations: {hist['count']} calls, mean {ms(hist['mean_ms'])} ms, "
        f"median ≈ {ms(hist['median_ms_interpolated'])} ms, p99 ≈ {ms(hist['p99_ms_interpolated'])} ms "
        "(interpolated in the apiserver's coarse buckets: "
        + ", ".join(f"≤{b}: {v}" if b == "+Inf" else f"≤{b}s: {v}" for b, v in hist["cumulative_buckets"].items())
        + ").",
    ]
    if noop_hist.get("count"):
        text += [
            "",
            f"The same metric for the no-op webhook: {noop_hist['count']} calls, mean {ms(noop_hist['mean_ms'])} ms, "
            f"median ≈ {ms(noop_hist['median_ms_interpolated'])} ms.",
        ]
    static_hist = api.get("apiserver_static_webhook_admission_duration") or {}
    if static_hist.get("count"):
        text += [
            "",
            f"And for the precomputed patch: {static_hist['count']} calls, mean {ms(static_hist['mean_ms'])} ms, "
            f"median ≈ {ms(static_hist['median_ms_interpolated'])} ms.",
        ]
    if ours.get("count"):
        text += [
            "",
            f"The webhook's own `otel_injector_admission_duration_seconds` over the same calls: {ours['count']} "
            f"admissions, mean {ms(ours['mean_ms'])} ms, median ≈ {ms(ours['median_ms_interpolated'])} ms.",
        ]
    text += ["", "![pod-create latency through the apiserver](apiserver.png)"]
    return "\n".join(text)


def memory_text(memory: dict[str, Any]) -> str:
    """Section 5."""
    return "\n".join(
        [
            f"One worker, tracing {'on' if memory['tracing'] else 'off'}, typical pod, closed loop: "
            f"{memory['requests']:,} requests in {memory['seconds']:.0f} s.",
            "",
            table(
                ("RSS at start", "after the first chunk (warm-up)", "at the end", "peak", "slope after warm-up"),
                [
                    [
                        f"{memory['rss_at_start_mib']} MiB",
                        f"{memory['rss_after_warmup_mib']} MiB",
                        f"{memory['rss_at_end_mib']} MiB",
                        f"{memory['peak_rss_mib']} MiB",
                        f"{memory['slope_mib_per_100k_requests']:+.2f} MiB per 100k requests",
                    ]
                ],
            ),
            "",
            "![RSS against requests served](memory.png)",
        ]
    )
