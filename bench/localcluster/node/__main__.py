"""``make cluster``: the whole cluster with the injector, kept running until Ctrl-C/SIGTERM.

    python -m bench.localcluster.node [--nodes 1|2] [--local-injector]

The injector is installed as users install it: its image, built from the Dockerfile
with BuildKit, on the nodes and ``helm install`` of the chart (two replicas behind the
webhook's Service). ``--local-injector`` runs ``otel-injector serve`` from this checkout
as a local process instead, registered by ``url`` (quicker to iterate on the code).

Prints three shell lines to reach it from any shell (the apiserver and the Jaeger query
API are relayed to loopback), then waits. Where the machine cannot run a node, it says so
in one line and runs the control plane with the injector alone.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence

from bench.localcluster.chartinstall import install_chart, webhook_image
from bench.localcluster.controlplane import ControlPlane, ControlPlaneError
from bench.localcluster.images import ImageBuildError
from bench.localcluster.injector import install
from bench.localcluster.node.cluster import MAX_NODES, NodeCluster, node_support_problem


def _say(text: str) -> None:
    print(text, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Start, print the export lines, wait for a signal, tear down; 0 on a clean stop."""
    parser = argparse.ArgumentParser(prog="python -m bench.localcluster.node", description=__doc__)
    parser.add_argument("--nodes", type=int, default=1, choices=range(1, MAX_NODES + 1), help="number of nodes")
    parser.add_argument(
        "--local-injector",
        action="store_true",
        help="run otel-injector serve as a local process instead of installing the chart with its image",
    )
    args = parser.parse_args(argv)
    # SIGTERM takes the same clean path as Ctrl-C; SIGINT is re-armed because a shell
    # starts background jobs with it ignored.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    problem = node_support_problem()
    started = time.monotonic()
    log = lambda m: _say(f"  {m}")  # noqa: E731
    try:
        chart = problem is None and not args.local_injector
        if problem is not None:
            _say(f"no node on this machine ({problem}); running the control plane and the injector only")
            cluster: ControlPlane = ControlPlane(log=log)
        elif chart:
            # Built before the cluster starts: a build holds the image lock, never the node's.
            image = webhook_image(log)
            cluster = NodeCluster(nodes=args.nodes, log=log)
        else:
            cluster = NodeCluster(nodes=args.nodes, log=log)
        with cluster:
            if chart and isinstance(cluster, NodeCluster):
                release = install_chart(cluster, image, log=log)
                where = f"helm release {release.release} in namespace {release.namespace} ({image.name})"
            else:
                where = f"{install(cluster, log=log).url} (local process)"
            _say(f"\ncluster is up in {time.monotonic() - started:.1f}s (Ctrl-C stops it); in any shell:\n")
            _say(f"export KUBECONFIG={cluster.kubeconfig}")
            _say(f"export JAEGER_URL={cluster.jaeger_query_url}")
            if isinstance(cluster, NodeCluster):
                _say(f"export DEMO_APP_IMAGE={cluster.images.demo_app.name}")
            _say(f"\n  kubectl: {cluster.binaries.kubectl}")
            _say(f"  webhook: {where}; logs: {cluster.workdir}/*.log")
            while True:
                for proc in cluster.processes.values():
                    if not proc.is_running():
                        raise ControlPlaneError(f"{proc.name} exited unexpectedly:\n{proc.log_tail()}")
                time.sleep(1)
    except KeyboardInterrupt:
        _say("stopped; everything is torn down")
        return 0
    except (ControlPlaneError, ImageBuildError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
