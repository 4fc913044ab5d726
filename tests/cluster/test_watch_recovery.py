"""The reconciler's watches survive what real clusters do to them: an apiserver restart
(every watch breaks, requests fail for a while) after which the old resourceVersions are
too old for the new watch cache (410 Gone)."""

from __future__ import annotations

import time

import pytest

from bench.localcluster.controlplane import ControlPlane
from tests.cluster.support import delete_namespaces, make_namespace, put_source, unique
from tests.support import wait_for
from webhook.cluster.client import ApiError, Kube
from webhook.cluster.paths import api_path, configmap_path
from webhook.cluster.reconciler import Reconciler
from webhook.config.settings import Settings
from webhook.core import names
from webhook.core.settings import InjectionSettings

pytestmark = pytest.mark.e2e


def test_reconciler_recovers_from_an_apiserver_restart(cluster: ControlPlane, kube: Kube) -> None:
    namespace = make_namespace(kube, unique("inj-recover"))
    put_source(kube, namespace, "source", "version: 1\n")
    settings = Settings(collector_source="source", injection=InjectionSettings(namespace=namespace))
    client = Kube.connect(str(cluster.kubeconfig))
    reconciler = Reconciler(client, settings)
    made = [namespace]
    try:
        reconciler.start()
        assert reconciler.wait_synced(10)
        before = make_namespace(kube, unique("before"), {"tracing": "enabled"})
        made.append(before)
        wait_for("a copy before the restart", lambda: kube.get_or_none(configmap_path(before, names.CONFIGMAP_NAME)))

        started = time.monotonic()
        cluster.processes["kube-apiserver"].restart()
        print(f"apiserver back after {time.monotonic() - started:.1f}s")
        # The new watch cache starts at the current revision: older resourceVersions are
        # 410 Gone, which the informers answer with a fresh list.
        with pytest.raises(ApiError) as caught:
            for _ in kube.watch(api_path("v1", "namespaces"), resource_version="1", timeout_seconds=5):
                pass
        assert caught.value.gone, caught.value

        after = make_namespace(kube, unique("after"), {"tracing": "enabled"})
        made.append(after)
        back = time.monotonic()
        wait_for(
            "a copy after the restart",
            lambda: kube.get_or_none(configmap_path(after, names.CONFIGMAP_NAME)),
            timeout=40,  # the backoff is bounded at 30 s
        )
        print(f"watches recovered; copy made {time.monotonic() - back:.1f}s after the apiserver was back")
        # The source watch recovered too: a change made now reaches the copies.
        put_source(kube, namespace, "source", "version: 2\n")
        wait_for(
            "the copy to follow the source",
            lambda: (
                (cm := kube.get_or_none(configmap_path(before, names.CONFIGMAP_NAME)))
                and cm["data"]["config.yaml"] == "version: 2\n"
            ),
            timeout=10,
        )
    finally:
        reconciler.stop()
        client.close()
        delete_namespaces(kube, *made)
