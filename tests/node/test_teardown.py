"""Teardown leaves nothing behind: processes, mounts, namespaces, cgroups, host paths and
sysctls are as they were before the cluster started (checked against a snapshot)."""

from __future__ import annotations

import pytest

from bench.localcluster.injector import install
from bench.localcluster.node import hoststate
from bench.localcluster.node.cluster import NodeCluster
from tests.node.support import apply, job, unique, wait_job_complete

pytestmark = pytest.mark.e2e


def test_teardown_restores_the_machine() -> None:
    # The snapshot is taken once the node lock is held: taken before, another node run that
    # this one waits for would still be in it, and its teardown would look like ours failing.
    cluster = NodeCluster(capture_host_state=True)
    with cluster:
        before = cluster.host_state_before
        assert before is not None
        workdir = str(cluster.workdir)
        install(cluster)
        cluster.kubectl("create", "namespace", "teardown")
        cluster.kubectl("label", "namespace", "teardown", "tracing=enabled")
        name = unique("td")
        apply(cluster, job(name, "teardown", cluster.images.demo_app.name, "teardown"))
        wait_job_complete(cluster, "teardown", name)
        # A pod that is still running at teardown, with its shim, cgroups and mounts.
        cluster.kubectl(
            "run",
            "-n",
            "teardown",
            "sleeper",
            f"--image={cluster.images.demo_app.name}",
            "--image-pull-policy=Never",
            "--",
            "serve",
        )
        during = hoststate.capture(workdir)
    after = hoststate.capture(workdir)
    # Negative control: the snapshot does see a running node (its cgroups, processes and
    # the sysctls kubelet set), so an empty difference below means something.
    assert hoststate.differences(before, during)
    assert hoststate.differences(before, after) == []
