"""``python -m tests.adversarial.yaml_report``: the class-7 table (``otel-injector inject``)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tests.adversarial.yaml_attacks import cases, run_inject


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--only", default="")
    args = parser.parse_args(argv)
    only = {n for n in args.only.split(",") if n}
    work = Path(tempfile.mkdtemp(prefix="inject-"))
    print(
        "| attack | input B | exit | time s | output B | peak RSS MiB | stderr lines | traceback | last stderr line |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, text in cases(args.scale).items():
        if only and name not in only:
            continue
        o = run_inject(text, work)
        last = o.first_error.replace("|", "/")
        print(
            f"| {name} | {o.in_bytes:,} | {o.code} | {o.seconds:.2f} | {o.out_bytes:,} | {o.peak_rss_mib:.0f} "
            f"| {o.stderr_lines} | {'yes' if o.traceback else 'no'} | {last} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
