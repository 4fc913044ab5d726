"""The PNG plots of RESULTS.md (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any


def plots(results: dict[str, Any], out: Path) -> list[str]:
    """Write the PNGs; returns their names."""
    import matplotlib

    matplotlib.use("Agg")
    written = []
    if (results.get("http") or {}).get("runs"):
        written.append(_plot_latency(results, out / "latency_vs_load.png"))
    if "env_vars" in (results.get("scaling") or {}):
        written.append(_plot_scaling(results["scaling"], out / "scaling.png"))
    if "checkpoints" in (results.get("memory") or {}):
        written.append(_plot_memory(results["memory"], out / "memory.png"))
    if "latencies_ms" in (results.get("apiserver") or {}):
        written.append(_plot_apiserver(results["apiserver"], out / "apiserver.png"))
    return written


COLORS = {"on": "#1f77b4", "off": "#ff7f0e", "ceiling": "#555555"}


def _plot_latency(results: dict[str, Any], path: Path) -> str:
    import matplotlib.pyplot as plt

    runs = results["http"]["runs"]
    workers = sorted({r["workers"] for r in runs})
    shapes = [s for s in ("typical", "large", "injected") if any(r["shape"] == s and r["open"] for r in runs)]
    fig, axes = plt.subplots(len(workers), len(shapes), figsize=(5.2 * len(shapes), 4.2 * len(workers)), squeeze=False)
    limits = {"typical": 5.0, "large": 50.0}
    for i, w in enumerate(workers):
        for j, shape in enumerate(shapes):
            ax = axes[i][j]
            for r in runs:
                if r["workers"] != w or r["shape"] != shape or not r["open"]:
                    continue
                key = "ceiling" if r["kind"] == "ceiling" else ("on" if r["tracing"] else "off")
                label = "no-op ceiling" if key == "ceiling" else f"otel-injector, tracing {key}"
                rates = [o["rate"] for o in r["open"]]
                ax.plot(rates, [o["p99_ms"] for o in r["open"]], "o-", color=COLORS[key], label=f"{label}: p99")
                ax.plot(
                    rates, [o["p50_ms"] for o in r["open"]], "s--", color=COLORS[key], alpha=0.7, label=f"{label}: p50"
                )
                if r["kind"] == "webhook" and r["max_rps"]:
                    ax.axvline(r["max_rps"], color=COLORS[key], linestyle=":", alpha=0.6)
            if shape in limits:
                ax.axhline(limits[shape], color="red", linewidth=1, alpha=0.6)
            _log_axes(ax, xticks=(50, 100, 200, 400, 800), yticks=(0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50))
            ax.set_xlim(40, 1000)
            ax.set_title(f"{shape} pod, {w} worker{'s' if w > 1 else ''}", fontsize=11)
            ax.set_xlabel("offered admissions/s (open loop)")
            ax.set_ylabel("latency, ms")
            ax.grid(True, which="major", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=9, frameon=False)
    fig.suptitle(
        "Latency against offered load, wrk over TLS (dotted: measured max throughput; red: the p99 target)",
        fontsize=12,
    )
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def _log_axes(ax: Any, *, xticks: Iterable[float], yticks: Iterable[float] | None = None) -> None:
    """Log-log axes labelled with plain numbers at the given ticks, no minor labels."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    plain = FuncFormatter(lambda v, _: f"{v:,.{0 if v >= 1 else 1}f}" if v >= 0.1 else f"{v:g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(FixedLocator(list(xticks)))
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(NullFormatter())
    if yticks is not None:
        ax.yaxis.set_major_locator(FixedLocator(list(yticks)))
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(NullFormatter())


def _plot_scaling(scaling: dict[str, Any], path: Path) -> str:
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    for ax, key, label in (
        (axes[0], "env_vars", "env vars in the pod (one container)"),
        (axes[1], "containers", "containers in the pod (20 env vars each)"),
    ):
        data = scaling[key]
        f = data["fit"]
        n = np.array([p["n"] for p in data["points"]], dtype=float)
        ax.plot(n, [p["total_ms"] for p in data["points"]], "o", color="#1f77b4", label="inject + patch")
        ax.plot(n, [p["inject_ms"] for p in data["points"]], "^", color="#2ca02c", alpha=0.7, label="inject_pod")
        ax.plot(n, [p["patch_ms"] for p in data["points"]], "v", color="#d62728", alpha=0.7, label="make_patch")
        grid = np.geomspace(n.min(), n.max(), 100)
        ax.plot(
            grid,
            f["fixed_ms"] + f["ms_per_unit"] * grid ** f["exponent"],
            "-",
            color="#1f77b4",
            alpha=0.6,
            label=f"fit: {f['fixed_ms']:.2f} ms + c·n^{f['exponent']:.2f}",
        )
        ax.plot(
            grid,
            f["fixed_ms"] + f["ms_per_unit"] * grid * (n.max() ** (f["exponent"] - 1)),
            ":",
            color="gray",
            alpha=0.8,
            label="linear reference",
        )
        ticks = (10, 100, 1000, 10000) if key == "env_vars" else (1, 2, 5, 10, 20, 50, 100)
        _log_axes(ax, xticks=ticks, yticks=(0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10))
        ax.set_xlabel(label)
        ax.set_ylabel("time per pod, ms")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Mutation + patch time against pod size (in-process, median of batches)", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def _plot_memory(memory: dict[str, Any], path: Path) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    points = memory["checkpoints"]
    ax.plot([p["requests"] for p in points], [p["rss_mib"] for p in points], "o-", color="#1f77b4")
    ax.axhline(120 / 1.048576, color="red", linewidth=1, alpha=0.6)
    ax.text(0, 120 / 1.048576 * 0.97, "target: 120 MB", color="red", fontsize=8, va="top")
    ax.set_ylim(0, max(130, max(p["rss_mib"] for p in points) * 1.15))
    ax.set_xlabel("requests served")
    ax.set_ylabel("worker RSS, MiB")
    ax.set_title(
        f"Worker RSS across {memory['requests']:,} admissions "
        f"(slope {memory['slope_mib_per_100k_requests']:+.2f} MiB / 100k after warm-up)",
        fontsize=11,
    )
    ax.grid(True, alpha=0.25)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def _plot_apiserver(api: dict[str, Any], path: Path) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    for key, label, color in (
        ("without_webhook", "no webhook called", "#ff7f0e"),
        ("noop_webhook", "no-op webhook (same server stack)", "#777777"),
        ("static_patch_webhook", "precomputed patch, no work", "#2ca02c"),
        ("with_webhook", "otel-injector (injects, tracing on)", "#1f77b4"),
    ):
        if key not in api["latencies_ms"]:
            continue
        values = sorted(api["latencies_ms"][key])
        ax.plot(values, [(i + 1) / len(values) for i in range(len(values))], color=color, label=label)
    ax.set_xscale("log")
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.xaxis.set_major_locator(FixedLocator([2, 3, 5, 7, 10, 15, 20, 30, 50]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("pod create latency through kube-apiserver, ms")
    ax.set_ylabel("fraction of creations")
    ax.set_title(
        f"Pod creation, {api['pods_per_namespace']} pods each "
        f"(otel-injector +{api['added_median_ms']:.2f} ms at the median)",
        fontsize=11,
    )
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=9, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name
