"""The prose of RESULTS.md: what the figures say, the hot spots found and fixed, the method."""

from __future__ import annotations

from typing import Any

from bench.perf.tables import table
from bench.perf.targets import find_run


def analysis(results: dict[str, Any]) -> list[str]:
    """Bullet points computed from the figures: the ceiling, the cost of tracing."""
    lines = []
    for workers in (1, 2):
        ceiling = find_run(results, kind="ceiling", workers=workers, shape="typical")
        on = find_run(results, kind="webhook", workers=workers, tracing=True, shape="typical")
        off = find_run(results, kind="webhook", workers=workers, tracing=False, shape="typical")
        if not (ceiling and on and off) or not all(r["cpu_ms_per_request"] for r in (ceiling, on, off)):
            continue
        c, t_on, t_off = ceiling["cpu_ms_per_request"], on["cpu_ms_per_request"], off["cpu_ms_per_request"]
        lines.append(
            f"* {workers} worker{'s' if workers > 1 else ''}, typical pod: the no-op ceiling spends {c:.3f} ms of "
            f"server CPU per request (uvicorn, TLS, reading 10 KiB); otel-injector {t_off:.3f} ms with tracing off "
            f"and {t_on:.3f} ms with tracing on. Tracing (one server span from the FastAPI instrumentation, "
            f"the phases as its events, exported over OTLP/HTTP) is {t_on - t_off:.3f} ms of that, "
            f"{(t_on - t_off) / t_on:.0%}. The share of the ceiling "
            f"can be no better than the CPU ratio, {c / t_on:.2f}: a handler that decodes, mutates, diffs, encodes, "
            "logs and traces a 10 KiB pod in Python costs tens of times what the bare server does to read it."
        )
    return lines


HOT_SPOT_ROWS = (
    (
        "the patch diff (`jsonpatch.from_diff`: 67% of server CPU)",
        "a linear diff: equal subtrees skipped by `==` or identity, lists aligned by prefix, suffix and `name`",
        "make_patch 2.39 -> 0.091 ms (typical), 68.8 -> 1.15 ms (large); 215 -> 805 admissions/s (tracing off)",
    ),
    (
        "per-request object creation: `copy.deepcopy` of the pod",
        "copy on write: only the dicts and lists on the way to a change are copied",
        "inject_pod 0.449 -> 0.116 ms (typical), 8.95 -> 1.36 ms (large)",
    ),
    (
        "span overhead: the FastAPI instrumentation",
        "(first session) a lean server-span middleware; since reverted: the official instrumentation is back, "
        "its cost found elsewhere (the rows below)",
        "840 -> 695 us per admission in-process; back to the instrumentation: 1.14x the CPU per admission",
    ),
    (
        "span overhead: four phase spans under the server span",
        "the phases as bare events of the server span, a timeline",
        "CPU per admission 0.78x (HTTPS A/B); four events with an attribute each +87 us, bare +25 us",
    ),
    (
        "the JSON log line of each admission",
        "the Logging HOWTO's switches for fields no line shows; the time formatted once a second",
        "one line 24-29 -> 15 us (timeit)",
    ),
    (
        "the instrumentation's old HTTP semantic conventions (13 attributes, each set twice and encoded)",
        "the stable conventions (11 attributes) unless OTEL_SEMCONV_STABILITY_OPT_IN is set",
        "with the log line: CPU per admission 0.92x (HTTPS A/B)",
    ),
    (
        "span overhead: the request's attributes on all five spans",
        "set once, on the server span",
        "~75 us per admission (creation and OTLP encoding)",
    ),
    (
        "export thread against the event loop: 512-span batches, 5 ms GIL switch interval",
        "batches of 64 spans; 0.5 ms switch interval while an exporter runs",
        "p99 at 200/s, tracing on: 15.97 -> 6.12 ms (median of 3 runs)",
    ),
    (
        "full garbage collections walking the start-up heap (15-97 ms pauses)",
        "`gc.freeze()` once the app has started",
        "gen-2 GC time per 15 s at 200/s: 130 -> 35 ms; 2-3 ms per collection",
    ),
    (
        "FastAPI request handling for a raw-body route",
        "`/mutate` as a plain Starlette route",
        "~478 -> ~423 us per admission in-process",
    ),
    (
        "the diff building paths for subtrees shared with the input",
        "a path only for subtrees that differ",
        "make_patch 57 -> 45 us (typical)",
    ),
    (
        "phase spans made current (context attach and detach)",
        "children of the server span, never current",
        "~590 -> ~556 us per admission in-process",
    ),
    (
        "memory: a connection the client drops stays alive until its 120 s keep-alive timer fires (uvicorn)",
        "uvicorn's protocol with the keep-alive timer cancelled however the connection ends",
        "RSS over 100k requests with reconnects: +18 MiB -> flat; 160 dropped connections: +10 MiB -> 0",
    ),
    (
        "`Resource.__hash__` (JSON of every attribute, once per exported span)",
        "hash the tracer's Resource once",
        "OTLP encoding 29.4 -> 24.5 us per span; ~3% more admissions/s",
    ),
)
HOT_SPOTS = (
    "Found with py-spy on the server under wrk load, and cProfile in-process; each fix is its own commit with "
    "its before/after in the message.\n\n" + table(("hot spot", "fix", "before -> after"), HOT_SPOT_ROWS)
)


METHOD = """\
* **Load generator**: Debian's `wrk` 4.1 (not our code) with the Lua scripts in `bench/lua/`, over TLS with
  keep-alive, to `otel-injector serve --bind-address 127.0.0.1` started exactly as documented.
* **Open loop without wrk2**: Debian ships no `wrk2`. `paced.lua` gives each connection (one per wrk thread) a
  fixed timetable, so the offered rate does not drop when the server slows down; wrk's `delay()` holds each
  request until it is due (1 ms timer resolution: a request may leave up to 1 ms early), and latency is measured
  in Lua with CLOCK_MONOTONIC from the *earlier of the due time and the actual send* to the answer. A request
  that waits for its connection because the previous answer is late is charged that wait: the
  coordinated-omission correction wrk2 makes. Requests still in flight when the run ends are not counted;
  `answered/s` below the offered rate flags a run the server did not keep up with.
* **Ceiling**: `python -m bench.perf.ceiling serve ...` is `otel-injector serve` itself (same CLI, logging, uvicorn
  options, TLS context factory, workers) with uvicorn handed a bare ASGI app that reads the body and returns a
  fixed allowed review. Same wrk settings, same request bodies.
* **Tracing on**: the standard `OTEL_*` environment, OTLP/HTTP to a Jaeger v2 (or otelcol) on loopback built by
  `bench.localcluster.binaries`; batch span processor defaults. **Tracing off**: `OTEL_SDK_DISABLED=true`.
* Every server logs one JSON line per admission (the default INFO level) to a file.
* **Repeats**: closed-loop figures are medians of repeated runs; the headline 200/s point is the median of
  repeated runs by p99. The machine is shared, so CPU time per admission (from /proc) is given too.
* **Memory**: RSS from /proc/<pid>/status of each worker (not the supervisor), sampled every 0.25 to 0.5 s. The
  100,000 requests come as closed-loop chunks of 8 s, each on 16 new connections, so connection churn is in it.
* **Two workers do not log**: `otel-injector serve` sets up its JSON logging in the parent process only; uvicorn's
  spawned workers start without it, so with `--workers 2` no per-admission line is written at all (a bug, reported;
  the bench measures the server as it is). The one-worker runs write one JSON line per admission to a file.
* **Export batch size**: 64 spans (the server's default, for the tail). With five spans per admission that was about
  13 admissions per export, and 256 gained ~8% throughput; with one span per admission, 64 spans are 64 admissions
  per export already. `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` overrides it.
* **A/B of two source trees**: `python -m bench.perf.compare before=TREE after=TREE` runs both servers at once and
  alternates closed-loop bursts between them: the fair way to compare a change on a shared machine.
"""
