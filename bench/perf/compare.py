"""A/B: the same load against two (or more) source trees of the webhook, in alternation.

    git worktree add --detach /tmp/ab-before HEAD~1
    python -m bench.perf.compare before=/tmp/ab-before after=. --rounds 6
    python -m bench.perf.compare b64=. b256=. --env-for b256:OTEL_BSP_MAX_EXPORT_BATCH_SIZE=256

Every tree's ``otel-injector serve`` runs at once (one uvicorn worker each, same venv,
tracing exported to the bench's Jaeger unless ``--tracing off``); then each round runs
one closed-loop wrk burst against each server in turn, reversing the order every round,
so drift in the machine's load (it is shared) falls on all of them alike. An idle server
costs next to nothing, so the others do not disturb the one under load.

Two figures per burst: admissions/s, and the server's CPU time (user + system, from
/proc) per admission. The second is the robust one on a busy machine: other work slows
the server down but hardly changes what each admission costs it. The summary gives the
medians and each tree's ratio to the first.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench.perf import pods
from bench.perf.servers import Server, TraceBackend, check_answer, make_certs, start_server
from bench.perf.system import cpu_seconds, load_average, log, server_processes
from bench.perf.wrk import closed_loop


@dataclass
class Variant:
    """One source tree under test and its bursts."""

    name: str
    source: Path
    rps: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)
    errors: int = 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.perf.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="+", metavar="NAME=TREE", help="a name and a source tree holding webhook/")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of one burst")
    parser.add_argument("--shape", default="typical", choices=pods.SHAPES)
    parser.add_argument("--tracing", default="on", choices=("on", "off"))
    parser.add_argument("--env", action="append", default=[], metavar="K=V", help="extra server environment")
    parser.add_argument(
        "--env-for", action="append", default=[], metavar="NAME:K=V", help="extra environment of one tree's server"
    )
    return parser.parse_args(argv)


def _cpu(server: Server) -> float:
    return sum(cpu_seconds(pid) for pid in server_processes(server.child.pid))


def _burst(server: Server, body: Path, seconds: float, variant: Variant) -> None:
    before = _cpu(server)
    result = closed_loop(server.url, body, seconds)
    used = _cpu(server) - before
    variant.rps.append(result.rps)
    variant.cpu_us.append(used / result.requests * 1e6 if result.requests else float("nan"))
    variant.errors += result.errors
    log(f"  {variant.name}: {result.rps:.0f}/s, {variant.cpu_us[-1]:.0f} us CPU/admission")


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print the medians."""
    args = _parse(argv)
    variants = []
    for spec in args.trees:
        name, _, tree = spec.partition("=")
        source = Path(tree or name).resolve()
        if not (source / "webhook" / "__init__.py").is_file():
            raise SystemExit(f"{source}: no webhook/ package here")
        variants.append(Variant(name if tree else source.name, source))
    extra_env = dict(item.split("=", 1) for item in args.env)
    own_env: dict[str, dict[str, str]] = {}
    for item in args.env_for:
        name, _, pair = item.partition(":")
        key, _, value = pair.partition("=")
        own_env.setdefault(name, {})[key] = value
    tracing = args.tracing == "on"
    with tempfile.TemporaryDirectory(prefix="otel-injector-compare-") as tmp:
        work = Path(tmp)
        tls = make_certs(work / "tls")
        backend = TraceBackend.start(work) if tracing else None
        servers: list[Server] = []
        try:
            body = work / "review.json"
            body.write_bytes(pods.review_body(args.shape))
            for variant in variants:
                server = start_server(
                    "webhook",
                    workers=1,
                    tracing=tracing,
                    tls_dir=tls,
                    workdir=work,
                    backend=backend,
                    label=variant.name,
                    extra_env={**extra_env, **own_env.get(variant.name, {})},
                    source=variant.source,
                )
                servers.append(server)
                check_answer(server, body.read_bytes(), args.shape)
                closed_loop(server.url, body, 2.0)  # warm-up
            for round_ in range(args.rounds):
                log(f"round {round_ + 1}/{args.rounds} (load average {load_average()[0]:.2f})")
                pairs = list(zip(variants, servers, strict=True))
                for variant, server in pairs if round_ % 2 == 0 else reversed(pairs):
                    _burst(server, body, args.seconds, variant)
        finally:
            for server in servers:
                server.stop()
            if backend is not None:
                backend.stop()
    base = variants[0]
    print(f"\n{args.shape} pod, 1 worker, tracing {args.tracing}, {args.rounds} x {args.seconds:.0f} s bursts:")
    for variant in variants:
        rps, cpu = statistics.median(variant.rps), statistics.median(variant.cpu_us)
        ratio = f"  ({rps / statistics.median(base.rps):.3f}x /s, {cpu / statistics.median(base.cpu_us):.3f}x CPU)"
        print(
            f"  {variant.name:>12}: {rps:7.0f} admissions/s  {cpu:6.0f} us CPU/admission"
            f"  errors {variant.errors}{'' if variant is base else ratio}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
