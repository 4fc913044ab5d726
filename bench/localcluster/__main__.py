"""``python -m bench.localcluster``: a control plane on loopback until Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import sys
import textwrap
import time
from collections.abc import Sequence

from bench.localcluster.controlplane import ControlPlane, ControlPlaneError


def main(argv: Sequence[str] | None = None) -> int:
    """Start a control plane and keep it running until Ctrl-C or SIGTERM."""
    del argv
    # SIGTERM takes the same clean path as Ctrl-C; SIGINT is re-armed because a shell
    # starts background jobs with it ignored.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with ControlPlane() as cp:
            print(
                textwrap.dedent(
                    f"""\
                    control plane is up (Ctrl-C stops it)
                      export KUBECONFIG={cp.kubeconfig}
                      apiserver:        {cp.server_url}
                      jaeger query API: {cp.jaeger_query_url}/api/services
                      jaeger OTLP gRPC: {cp.jaeger_otlp_grpc_endpoint}
                      jaeger OTLP HTTP: {cp.jaeger_otlp_http_endpoint}
                      logs:             {cp.workdir}/*.log"""
                ),
                flush=True,
            )
            while True:
                for proc in cp.processes.values():
                    if not proc.is_running():
                        raise ControlPlaneError(cp.failure_report(f"{proc.name} exited unexpectedly"))
                time.sleep(1)
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 0
    except ControlPlaneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
