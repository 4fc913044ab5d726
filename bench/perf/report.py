"""results.json in, RESULTS.md and the PNG plots out; and the targets, judged.

The pieces: :mod:`bench.perf.targets` (the targets and look-ups), :mod:`bench.perf.tables`
(the tables), :mod:`bench.perf.notes` (the prose), :mod:`bench.perf.plots` (the PNGs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.perf.notes import HOT_SPOTS, METHOD, analysis
from bench.perf.plots import plots
from bench.perf.tables import (
    HEADLINE_HEADER,
    apiserver_text,
    headline_rows,
    memory_text,
    met,
    ms,
    scaling_text,
    table,
)
from bench.perf.targets import ceiling_ratio, judge

__all__ = ["judge", "markdown", "write_all"]


def markdown(results: dict[str, Any]) -> str:
    """RESULTS.md."""
    meta = results["meta"]
    m = meta["machine"]
    pk = m["packages"]
    out = [
        "# otel-injector: benchmark results",
        "",
        f"Written by `python -m bench.perf{' --quick' if meta['quick'] else ''}` on {meta['finished']} "
        f"({meta['seconds'] / 60:.1f} min). Figures: `results.json`; plots: the PNGs beside this file.",
        "",
        f"**Machine**: {m['cpu_model']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}; "
        f"load average at start {', '.join(f'{x:.2f}' for x in m['load_average_at_start'])} "
        "(the machine is shared: other work ran during the bench, so absolute figures are noisy; "
        "ratios to the ceiling and medians of repeats are the robust ones).",
        "",
        f"**Versions**: Python {m['python']}, otel-injector {pk['otel-injector']}, uvicorn {pk['uvicorn']} "
        f"(uvloop {pk['uvloop']}, httptools {pk['httptools']}), FastAPI {pk['fastapi']}, "
        f"Starlette {pk['starlette']}, orjson {pk['orjson']}, OpenTelemetry SDK {pk['opentelemetry-sdk']}, "
        f"{m['wrk']}, Kubernetes {(results.get('apiserver') or {}).get('kube_version', '(not run)')}, "
        f"trace backend {_backend(results)}.",
        "",
    ]
    if meta["quick"]:
        out += ["> **Quick smoke run**: short runs, one worker, typical pod only. Not for quoting.", ""]
    targets = results.get("targets") or []
    if targets:
        out += [
            "## Targets",
            "",
            table(
                ("target", "goal", "measured", "met", "note"),
                ([t["target"], t["goal"], t["measured"], met(t["met"]), t["note"]] for t in targets),
            ),
            "",
        ]
    http = results.get("http") or {}
    if http.get("runs"):
        out += [
            "## Headline: one uvicorn worker, tracing on (exported to a real OTLP receiver on loopback)",
            "",
            table(HEADLINE_HEADER, headline_rows(results)),
            "",
            "![latency against offered load](latency_vs_load.png)",
            "",
            "## Maximum throughput (closed loop)",
            "",
            f"wrk, one thread, {http['plan']['closed_connections']} keep-alive TLS connections, "
            f"{http['plan']['closed_seconds']:.0f} s per run, median of {http['plan']['closed_repeats']} runs. "
            "CPU ms/admission is the server's own CPU time (all workers) per answered request, from /proc.",
            "",
            table(
                (
                    "workers",
                    "server",
                    "tracing",
                    "pod",
                    "max/s (median)",
                    "runs",
                    "share of ceiling",
                    "CPU ms/req",
                    "peak RSS MiB/worker",
                ),
                (
                    [
                        r["workers"],
                        r["kind"],
                        ("on" if r["tracing"] else "off") if r["kind"] == "webhook" else "-",
                        r["shape"],
                        f"{r['max_rps']:,.0f}",
                        ", ".join(f"{c['rps']:,.0f}" for c in r["closed_runs"]),
                        (
                            f"{ceiling_ratio(results, r):.2f}"
                            if r["kind"] == "webhook" and ceiling_ratio(results, r)
                            else "-"
                        ),
                        ms(r["cpu_ms_per_request"]),
                        f"{r['peak_rss_mib_per_worker']:.0f}",
                    ]
                    for r in http["runs"]
                ),
            ),
            "",
            "## Latency at fixed offered rates (open loop)",
            "",
            f"{http['plan']['open_connections']} keep-alive TLS connections, each on a fixed timetable; latency "
            "from each request's due time to its answer (corrected for coordinated omission). Rates above "
            f"{http['plan']['capacity_fraction']:.0%} of the measured maximum are not run. "
            "`kept up`: the answers came at the offered rate (within 5 %) with no errors.",
            "",
            table(
                (
                    "workers",
                    "server",
                    "tracing",
                    "pod",
                    "offered/s",
                    "answered/s",
                    "p50 ms",
                    "p90 ms",
                    "p99 ms",
                    "p99.9 ms",
                    "max ms",
                    "kept up",
                ),
                (
                    [
                        r["workers"],
                        r["kind"],
                        ("on" if r["tracing"] else "off") if r["kind"] == "webhook" else "-",
                        r["shape"],
                        o["rate"],
                        f"{o['achieved_rps']:.0f}",
                        ms(o["p50_ms"]),
                        ms(o["p90_ms"]),
                        ms(o["p99_ms"]),
                        ms(o["p999_ms"]),
                        ms(o["max_ms"]),
                        "yes" if o["kept_up"] else "**no**",
                    ]
                    for r in http["runs"]
                    for o in r["open"]
                ),
            ),
            "",
        ]
        for note in http.get("notes") or []:
            out += [f"* {note}"]
        if http.get("notes"):
            out += [""]
        drops = http.get("span_queue_overflowed") or {}
        if drops:
            overflowed = [k for k, v in drops.items() if v]
            out += [
                "Span export: "
                + (
                    "the batch span processor's queue overflowed (spans dropped, admissions unaffected) in "
                    + ", ".join(overflowed)
                    if overflowed
                    else "no span was dropped by the batch span processor in any tracing-on run"
                )
                + ".",
                "",
            ]
    scaling = results.get("scaling") or {}
    if "env_vars" in scaling:
        out += ["## Size scaling (in-process: `inject_pod` + `make_patch`)", "", scaling_text(scaling), ""]
    api = results.get("apiserver") or {}
    if "with_webhook" in api:
        out += ["## Through the real apiserver", "", apiserver_text(api), ""]
    elif api.get("error"):
        out += ["## Through the real apiserver", "", f"Not measured: {api['error']}", ""]
    memory = results.get("memory") or {}
    if "checkpoints" in memory:
        out += ["## Memory", "", memory_text(memory), ""]
    notes = analysis(results)
    if notes:
        out += ["## Where the time goes", "", *notes, ""]
    out += ["## Hot spots found and fixed", "", HOT_SPOTS, "", "## Method", "", METHOD, ""]
    for section in ("http", "scaling", "memory", "apiserver"):
        error = (results.get(section) or {}).get("error")
        if error and section != "apiserver":
            out += [f"**{section} section failed**: {error}", ""]
    return "\n".join(out)


def _backend(results: dict[str, Any]) -> str:
    backend = (results.get("http") or {}).get("trace_backend")
    return f"{backend['kind']} {backend['version']}" if backend else "none"


def write_all(results: dict[str, Any], out: Path) -> None:
    """results.json, RESULTS.md and the plots into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    results["targets"] = judge(results)
    results["plots"] = plots(results, out)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")
    (out / "RESULTS.md").write_text(markdown(results) + "\n", encoding="utf-8")
