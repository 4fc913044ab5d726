"""The peers section's records, Markdown table, targets and plot.

Pure functions of the raw run (see :func:`bench.peers.section.run_peers`); no I/O except
:func:`write`. A webhook that could not be built or run still gets its records, with
``None`` figures and the reason in ``error``: it is never silently dropped.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.peers.webhooks import INJECTS, SHAPES, WEBHOOKS
from bench.perf.wrk import percentile

#: Keys every record has (the issue's contract for results.json ``peers``).
RECORD_KEYS = ("webhook", "pod", "added_p50_ms", "added_p99_ms", "max_rps", "cpu_ms", "patch_bytes")
#: otel-injector's added latency may be at most this multiple of the zero-work limit's.
LIMIT_RATIO_GOAL = 1.2


def _pct(values: Sequence[float], pct: float) -> float | None:
    return round(percentile(sorted(values), pct), 3) if values else None


def _minus(a: float | None, b: float | None) -> float | None:
    return round(a - b, 3) if a is not None and b is not None else None


def baseline_key(webhook: str, shape: str) -> str:
    """The lane that is ``webhook``'s no-webhook baseline for ``shape``."""
    return f"none:{webhook}" if shape == "injected" else "none"


def record(run: Mapping[str, Any], webhook: str, shape: str) -> dict[str, Any]:
    """One record: the contract's keys, then the supporting figures."""
    error = (run.get("unavailable") or {}).get(webhook)
    phase = (run.get("creations") or {}).get(shape) or {}
    lanes = phase.get("lanes") or {}
    mine, base = lanes.get(webhook) or [], lanes.get(baseline_key(webhook, shape)) or []
    http = ((run.get("http") or {}).get(webhook) or {}).get(shape) or {}
    apiserver = (phase.get("apiserver") or {}).get(webhook) or {}
    failures = (phase.get("errors") or {}).get(webhook) or []
    if not error and not mine:
        error = (run.get("errors") or {}).get("creations") or (
            failures[0] if failures else "no creations were measured"
        )
    if not error and http.get("error"):
        error = f"http: {http['error']}"
    p50, p99 = _pct(mine, 50), _pct(mine, 99)
    base50, base99 = _pct(base, 50), _pct(base, 99)
    return {
        "webhook": webhook,
        "pod": shape,
        "added_p50_ms": _minus(p50, base50),
        "added_p99_ms": _minus(p99, base99),
        "max_rps": http.get("max_rps"),
        "cpu_ms": http.get("cpu_ms"),
        "patch_bytes": http.get("patch_bytes"),
        "rss_mib": http.get("rss_mib"),
        "creations": len(mine),
        "creation_errors": len(failures),
        "p50_ms": p50,
        "p99_ms": p99,
        "baseline_p50_ms": base50,
        "baseline_p99_ms": base99,
        "apiserver_admission_p50_ms": apiserver.get("median_ms_interpolated"),
        "apiserver_admission_p99_ms": apiserver.get("p99_ms_interpolated"),
        "apiserver_admission_mean_ms": apiserver.get("mean_ms"),
        "error": error or None,
    }


def records(run: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every webhook x shape, in table order."""
    return [record(run, webhook, shape) for webhook in WEBHOOKS for shape in SHAPES]


def _find(recs: Sequence[Mapping[str, Any]], webhook: str, shape: str) -> Mapping[str, Any]:
    return next((r for r in recs if r["webhook"] == webhook and r["pod"] == shape), {})


def targets(recs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """otel-injector against each peer (less added p50 on every shape) and against the
    limit (at most ``LIMIT_RATIO_GOAL`` times its added p50). ``met`` is None when a
    figure is missing; the reason is in ``measured``."""
    out = []
    for shape in SHAPES:
        ours = _find(recs, "otel-injector", shape)
        mine = ours.get("added_p50_ms")
        for peer in ("istio", "kyverno"):
            theirs = _find(recs, peer, shape)
            other = theirs.get("added_p50_ms")
            if mine is None or other is None:
                reason = theirs.get("error") or ours.get("error") or "not measured"
                out.append(
                    {
                        "target": f"{shape}: otel-injector adds less than {peer}",
                        "goal": "<",
                        "measured": f"n/a ({reason})",
                        "met": None,
                    }
                )
                continue
            out.append(
                {
                    "target": f"{shape}: otel-injector adds less than {peer}",
                    "goal": "<",
                    "measured": f"{mine:.2f} vs {other:.2f} ms",
                    "met": mine < other,
                }
            )
        limit = _find(recs, "limit", shape).get("added_p50_ms")
        ratio = mine / limit if mine is not None and limit is not None and limit > 0 else None
        out.append(
            {
                "target": f"{shape}: otel-injector within {LIMIT_RATIO_GOAL}x the zero-work limit",
                "goal": f"<= {LIMIT_RATIO_GOAL}",
                "measured": f"{ratio:.2f}x ({mine:.2f} vs {limit:.2f} ms)" if ratio is not None else "n/a",
                "met": ratio <= LIMIT_RATIO_GOAL if ratio is not None else None,
            }
        )
    return out


def _cell(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _rate(value: float | None) -> str:
    return _cell(value, 0 if value is None or value >= 10 else 1)


def _creations(r: Mapping[str, Any]) -> str:
    failed = r.get("creation_errors") or 0
    return f"{r['creations']:,}" + (f" ({failed} failed)" if failed else "")


def markdown(run: Mapping[str, Any], recs: Sequence[Mapping[str, Any]]) -> str:
    """PEERS.md: the table, the fairness notes, the targets, what could not run."""
    meta = run.get("meta") or {}
    lines = [
        "# otel-injector and its peers, on one apiserver, in one run",
        "",
        f"Written by `python -m bench --sections peers` on {meta.get('started', '?')}. "
        f"Machine: {meta.get('machine', '?')}. Kubernetes {meta.get('kube_version', '?')}. "
        f"{meta.get('count', '?')} creations per webhook and shape, interleaved round-robin with the "
        "no-webhook baseline; the machine is shared, so compare within this run only.",
        "",
        "| webhook | version | pod | creations | added p50 ms | added p99 ms | apiserver-timed admission p50 ms | "
        "max admissions/s (wrk) | CPU ms/admission | RSS MiB | patch bytes |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    versions = meta.get("versions") or {}
    for r in recs:
        if r.get("error"):
            reason = str(r["error"]).splitlines()[0][:160]
            head = f"| {r['webhook']} | {versions.get(r['webhook'], '-')} | {r['pod']}"
            lines.append(f"{head} | - | not run: {reason} |{' |' * 6}")
            continue
        lines.append(
            f"| {r['webhook']} | {versions.get(r['webhook'], '-')} | {r['pod']} | {_creations(r)} | "
            f"{_cell(r['added_p50_ms'])} | "
            f"{_cell(r['added_p99_ms'])} | {_cell(r['apiserver_admission_p50_ms'])} | {_rate(r['max_rps'])} | "
            f"{_cell(r['cpu_ms'])} | {_cell(r['rss_mib'], 0)} | {_cell(r['patch_bytes'])} |"
        )
    lines += [
        "",
        "Added = the webhook's pod-create latency percentile minus the no-webhook baseline's, both "
        "timed by the client from request to response over one keep-alive connection. The "
        "already-injected pod is each webhook's own output for the typical pod, sent again, with its "
        "own baseline. Max admissions/s, CPU and RSS: wrk (1 thread, 16 connections) posting the "
        "same AdmissionReview straight to the webhook (a webhook needing over 0.25 s per review gets 2 "
        "connections, over 2 s one, and a longer run); CPU is the webhook's processes' time from /proc. A "
        f"lane whose creations took {meta.get('lane_budget_s', '?')} s in all stops once it has 20 "
        "(the creations column says how many were timed).",
        "",
        "## Fairness: what each one injects",
        "",
    ]
    lines += [f"* **{name}**: {INJECTS[name]}." for name in WEBHOOKS]
    lines += [
        "* The patch-size column says how much each one adds; Kyverno's figure depends on how the "
        "policy is written: [kyverno-policy.yaml](kyverno-policy.yaml) is the one measured.",
        "",
        "## Targets",
        "",
        "| target | goal | measured | met |",
        "|---|---|---|---|",
    ]
    for t in targets(recs):
        mark = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
        lines.append(f"| {t['target']} | {t['goal']} | {t['measured']} | {mark} |")
    failures = [
        (shape, lane, errors)
        for shape in SHAPES
        for lane, errors in (((run.get("creations") or {}).get(shape) or {}).get("errors") or {}).items()
    ]
    if failures:
        lines += ["", "## Failed creations", ""]
        lines += [f"* {shape}, {lane}: {len(errors)}, first: {errors[0][:200]}" for shape, lane, errors in failures]
    unavailable = run.get("unavailable") or {}
    if unavailable:
        lines += ["", "## Not run", ""]
        lines += [f"* **{name}**: {reason}" for name, reason in unavailable.items()]
    builds = meta.get("builds") or {}
    if builds:
        lines += ["", "## Builds", ""]
        lines += [
            f"* {name} {b.get('version')}: built from its Go module in {_cell(b.get('build_seconds'), 0)} s "
            f"(cold, on this shared machine); {_cell(b.get('seconds'), 1)} s in this run (cached)"
            for name, b in builds.items()
        ]
    lines += ["", "![added pod-create latency by webhook and pod shape](peers.png)", ""]
    return "\n".join(lines)


def plot(recs: Sequence[Mapping[str, Any]], path: Path) -> Path | None:
    """Grouped bars of added p50 (whiskers to p99) per shape and webhook; None without
    matplotlib or figures."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    if not any(r.get("added_p50_ms") is not None for r in recs):
        return None
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / len(WEBHOOKS)
    for i, webhook in enumerate(WEBHOOKS):
        xs, p50s, errs = [], [], []
        for j, shape in enumerate(SHAPES):
            r = _find(recs, webhook, shape)
            if r.get("added_p50_ms") is None:
                continue
            xs.append(j + (i - (len(WEBHOOKS) - 1) / 2) * width)
            p50s.append(max(r["added_p50_ms"], 0.01))
            errs.append(max((r.get("added_p99_ms") or r["added_p50_ms"]) - r["added_p50_ms"], 0.0))
        if xs:
            ax.bar(xs, p50s, width, yerr=[[0] * len(errs), errs], capsize=3, label=webhook)
    ax.set_xticks(range(len(SHAPES)), list(SHAPES))
    ax.set_yscale("log")
    ax.set_ylabel("added pod-create latency, ms (bar p50, whisker p99)")
    ax.set_title("Added latency through the apiserver, by webhook and pod shape")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(run: Mapping[str, Any], recs: Sequence[Mapping[str, Any]], out: Path, policy: Path) -> None:
    """PEERS.md, peers.png and the measured Kyverno policy into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(policy, out / "kyverno-policy.yaml")
    plot(recs, out / "peers.png")
    (out / "PEERS.md").write_text(markdown(run, recs) + "\n", encoding="utf-8")
