"""``python -m bench.perf``: the whole benchmark suite, figures into ``bench/results``.

    python -m bench.perf                  # full run, about 20 minutes on 2 cores
    python -m bench.perf --quick          # smoke run, about 3 minutes
    python -m bench.perf --sections scaling,http

Sections: ``scaling`` (in-process), ``http`` (wrk over TLS, with the no-op ceiling),
``memory`` (RSS across 100,000 requests), ``apiserver`` (pod creation through a local
kube-apiserver), ``peers`` (otel-injector, istiod, Kyverno and the zero-work limit on one
apiserver: :mod:`bench.peers`; only when named). Each section's failure is recorded in
the results and the others still run. Needs ``wrk`` (``apt-get install -y wrk``) and the bench extra
(``pip install -e '.[bench]'``, for matplotlib); the trace backend and the control plane
come from ``bench.localcluster.binaries``, built on first use.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.perf.system import load_average, log, machine

SECTIONS = ("scaling", "http", "memory", "apiserver", "peers")
#: What runs without --sections: the peers build istiod and Kyverno (many minutes cold).
DEFAULT_SECTIONS = ("scaling", "http", "memory", "apiserver")
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "results"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.perf", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run (about 3 minutes)")
    parser.add_argument(
        "--sections", default=",".join(DEFAULT_SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}"
    )
    parser.add_argument("--out", type=Path, default=None, help="results directory (default bench/results)")
    parser.add_argument("--keep-workdir", action="store_true", help="keep the server logs and bodies")
    parser.add_argument(
        "--source", type=Path, default=None, help="measure the webhook of another checkout (HTTP and memory sections)"
    )
    args = parser.parse_args(argv)
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown sections {unknown}; known: {', '.join(SECTIONS)}")
    if args.out is None:
        args.out = DEFAULT_OUT / "quick" if args.quick else DEFAULT_OUT
    return args


@contextlib.contextmanager
def _workdir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="otel-injector-bench-"))
    try:
        yield path
    finally:
        if keep:
            log(f"work directory kept: {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def _section(results: dict[str, Any], name: str, run: Callable[[], dict[str, Any]]) -> None:
    log(f"== {name} (load average {', '.join(f'{x:.2f}' for x in load_average())})")
    started = time.monotonic()
    try:
        results[name] = run()
    except Exception as err:
        traceback.print_exc()
        results[name] = {"error": f"{type(err).__name__}: {err}".strip()[:2000]}
    log(f"== {name} done in {time.monotonic() - started:.0f} s")


def _keep_other_sections(results: dict[str, Any], out: Path, sections: list[str]) -> None:
    """A run of some sections keeps the others' figures from the last results.json, so
    that ``--sections peers`` adds to the published results instead of replacing them."""
    try:
        previous = json.loads((out / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    for key, value in previous.items():
        section = key.split("_", 1)[0]
        if key not in ("meta", "targets", "plots") and section not in sections:
            results[key] = value


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the selected sections and write the results."""
    args = _parse(argv)
    # A SIGTERM (kill, a CI timeout) unwinds like Ctrl-C, so every server, Jaeger and control
    # plane the sections started is stopped by its context manager, not left running.
    signal.signal(signal.SIGTERM, _interrupt)
    from bench.perf import report
    from bench.perf.http_load import HttpPlan, run_http, write_bodies
    from bench.perf.memory import run_memory
    from bench.perf.scaling import run_scaling
    from bench.perf.servers import TraceBackend, make_certs, measure_tree

    if args.source is not None:
        measure_tree(args.source)
    started = time.monotonic()
    results: dict[str, Any] = {
        "meta": {
            "quick": args.quick,
            "sections": args.sections,
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "machine": machine(),
            "command": "python -m bench.perf" + (" --quick" if args.quick else ""),
            "source": str(args.source.resolve()) if args.source else None,
        }
    }
    log(f"results go to {args.out}")
    _keep_other_sections(results, args.out, args.sections)

    def save() -> None:
        results["meta"]["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        results["meta"]["seconds"] = round(time.monotonic() - started, 1)
        results["meta"]["load_average_at_end"] = load_average()
        report.write_all(results, args.out)

    with _workdir(args.keep_workdir) as work:
        if "scaling" in args.sections:
            _section(results, "scaling", lambda: run_scaling(quick=args.quick))
            save()
        if "http" in args.sections or "memory" in args.sections:
            tls = make_certs(work / "tls")
            backend: TraceBackend | None = None
            try:
                backend = TraceBackend.start(work)
            except Exception as err:
                log(f"no trace backend, tracing-on runs are skipped: {err}")
            try:
                if "http" in args.sections:
                    plan = HttpPlan.quick() if args.quick else HttpPlan()
                    _section(results, "http", lambda: run_http(plan, tls_dir=tls, workdir=work, backend=backend))
                    save()
                if "memory" in args.sections:
                    body = write_bodies(work, ["typical"])["typical"]
                    _section(
                        results,
                        "memory",
                        lambda: run_memory(
                            tls_dir=tls,
                            workdir=work,
                            backend=backend,
                            body=body,
                            total_requests=5_000 if args.quick else 100_000,
                            chunk_seconds=2.0 if args.quick else 8.0,
                            budget_seconds=30.0 if args.quick else 240.0,
                        ),
                    )
                    save()
            finally:
                if backend is not None:
                    backend.stop()
        if "peers" in args.sections:
            from bench.peers.section import run_section

            run_section(results, args.out, quick=args.quick)
            save()
        if "apiserver" in args.sections:
            from bench.perf.apiserver import run_apiserver

            _section(results, "apiserver", lambda: run_apiserver(20 if args.quick else 200))
            save()
    save()
    log(f"done in {(time.monotonic() - started) / 60:.1f} min: {args.out / 'RESULTS.md'}")
    for target in results.get("targets") or []:
        mark = {True: "met   ", False: "MISSED", None: "n/a   "}[target["met"]]
        log(f"  {mark} {target['target']}: {target['measured']} (goal {target['goal']})")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; everything the bench started is stopped")
        sys.exit(130)
