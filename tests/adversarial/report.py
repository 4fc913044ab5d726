"""``python -m tests.adversarial.report``: run the catalogue against a fresh
``otel-injector serve`` and print a Markdown table of what each attack cost.

This is the measuring tool behind the before/after figures of issue 9; the test suite
(``tests/adversarial/test_catalogue.py``) runs the same attacks with generous bounds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tests.adversarial import attacks
from tests.adversarial.probe import OtlpSink, Server, make_certs, measure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--classes", default="1,2,3,4,5,6")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--only", default="", help="comma-separated attack names")
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server")
    parser.add_argument("--otlp-sink", action="store_true", help="trace to a counting OTLP receiver")
    args = parser.parse_args(argv)
    sink = OtlpSink() if args.otlp_sink else None
    work = Path(tempfile.mkdtemp(prefix="adversarial-"))
    tls = make_certs(work / "tls")
    env = dict(item.split("=", 1) for item in args.env)
    if sink is not None:
        env.update(sink.env())
    only = {n for n in args.only.split(",") if n}
    print(
        "| class | attack | input | status | time s | answer bytes | server CPU s | peak RSS +MiB "
        "| /healthz worst ms | log bytes | note |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for klass in (int(k) for k in args.classes.split(",")):
        builder = attacks.ALL[klass]
        cases = builder(args.scale) if klass in (1, 2, 3) else builder()
        for attack in cases:
            if only and attack.name not in only:
                continue
            server = Server(tls, work / f"serve-{attack.name}.log", env=env)
            try:
                exported = len(sink.sizes) if sink is not None else 0
                answer = measure(server, attack.send, timeout=args.timeout)
                note = answer.error
                if sink is not None:
                    server.stop()  # flushes the span processor
                    batches = sink.sizes[exported:]
                    note += f" OTLP export: {len(batches)} requests, largest {max(batches, default=0):,} B"
                if not server.alive():
                    note += " SERVER DIED"
                if answer.status == 200:
                    patch = attacks.decode_patch_size(answer.head)
                    note += f" patch {patch} B" if patch >= 0 else ""
                elif answer.status:
                    note += " " + answer.body[:120].decode(errors="replace").replace("|", "/")
                errors = [line for line in answer.log_lines if '"level":"ERROR"' in line]
                if errors:
                    note += f" ERROR log lines: {len(errors)}"
                if any("Traceback" in line or '"exception"' in line for line in answer.log_lines):
                    note += " (traceback)"
                print(
                    f"| {klass} | {attack.name} | {attack.what} ({attack.input_bytes:,} B) | {answer.status} "
                    f"| {answer.seconds:.2f} | {answer.size:,} | {answer.cpu_seconds:.2f} | {answer.rss_peak_mib:.0f} "
                    f"| {answer.healthz_worst_ms:.0f} | {answer.log_bytes:,} | {note.strip()} |",
                    flush=True,
                )
            finally:
                server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
