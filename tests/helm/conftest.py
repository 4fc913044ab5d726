"""The chart installed with helm on real nodes, and what operators live with: rollouts,
killed replicas, certificate renewals, upgrades, apiserver restarts, drains, uninstall.

Each module shares one cluster (module scope: the two-node module needs a cluster of its
own, and the node lock allows one at a time). The image is built from the Dockerfile with
BuildKit before the cluster starts. Every scenario drives pod creations at a steady rate
(``tests.helm.support.RATE``) and adds a row to the operations table, printed at the end
of the session and written to ``operations.md`` in pytest's base temporary directory.

This directory sorts before tests/node on purpose: the node suites keep their cluster
(and the node lock) until the end of the session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from bench.localcluster.chartinstall import ChartRelease, WebhookImage, install_chart, webhook_image
from bench.localcluster.node.cluster import NodeCluster
from bench.localcluster.podload import TABLE_HEADER
from tests.helm.support import ROWS

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def image() -> WebhookImage:
    return webhook_image(lambda m: print(m, flush=True))


def start(image: WebhookImage, nodes: int, values: Mapping[str, Any] | None = None) -> Iterator[ChartRelease]:
    with NodeCluster(nodes=nodes) as cluster:
        yield install_chart(cluster, image, values=values)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if not ROWS:
        return
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    text = "\n".join(
        [
            f"operations of the chart on real nodes (load average at the end: {load}; {os.cpu_count()} cores, shared)",
            "",
            TABLE_HEADER,
            *(row.row() for row in ROWS),
            "",
        ]
    )
    terminalreporter.section("operations table (tests/helm)")
    for line in text.splitlines():
        terminalreporter.write_line(line)
    base = Path(str(config._tmp_path_factory.getbasetemp()))  # type: ignore[attr-defined]
    (base / "operations.md").write_text(text, encoding="utf-8")
    terminalreporter.write_line(f"written to {base / 'operations.md'}")
