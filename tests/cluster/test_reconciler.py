"""The ConfigMap reconciler, run by a real ``otel-injector serve`` process against a real
apiserver, which also calls that process as its admission webhook."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from bench.localcluster.controlplane import ControlPlane
from tests.cluster.support import Tls, label_namespace, make_namespace, put_source, reconciling_webhook, unique
from tests.support import wait_for
from webhook.cluster.client import Kube
from webhook.cluster.copies import HASH_ANNOTATION, MANAGED_BY, MANAGED_BY_LABEL
from webhook.cluster.paths import api_path, configmap_path
from webhook.core import names
from webhook.core.settings import config_hash

pytestmark = pytest.mark.e2e

CM = names.CONFIGMAP_NAME
SOURCE = "collector-source"
TRACED = {"tracing": "enabled"}
#: A copy must appear within this many seconds of the event that calls for it.
PROMPT = 5.0


def config(version: int) -> str:
    return f"# version {version}\nreceivers:\n  otlp:\n    protocols:\n      grpc: {{}}\n"


@dataclass
class Injector:
    kube: Kube
    namespace: str
    port: int
    test_label: str
    namespaces: list[str]
    version: int = 1

    def new_namespace(self, prefix: str, traced: bool = False) -> str:
        labels = {self.test_label: "true", **(TRACED if traced else {})}
        name = make_namespace(self.kube, unique(prefix), labels)
        self.namespaces.append(name)
        return name

    def set_source(self, version: int) -> str:
        self.version = version
        put_source(self.kube, self.namespace, SOURCE, config(version))
        return config_hash(config(version).encode())

    def copy(self, namespace: str) -> dict[str, Any] | None:
        return self.kube.get_or_none(configmap_path(namespace, CM))


@pytest.fixture(scope="module")
def injector(cluster: ControlPlane, kube: Kube, loopback_tls: Tls) -> Iterator[Injector]:
    env = {"OTEL_INJECTOR_POD_GRACE_SECONDS": "2", "OTEL_INJECTOR_RESYNC_SECONDS": "60"}
    with reconciling_webhook(
        cluster, kube, loopback_tls, "reconciler", source=SOURCE, config=config(1), env=env
    ) as web:
        yield Injector(kube, web.namespace, web.port, web.namespace_label, web.namespaces)


def is_managed_copy(cm: dict[str, Any] | None, expected_hash: str) -> bool:
    if cm is None:
        return False
    metadata = cm["metadata"]
    return bool(
        metadata.get("labels", {}).get(MANAGED_BY_LABEL) == MANAGED_BY
        and metadata.get("annotations", {}).get(HASH_ANNOTATION) == expected_hash
    )


def test_labelled_namespace_gets_a_copy_and_a_deleted_copy_comes_back(injector: Injector) -> None:
    expected = config_hash(config(injector.version).encode())
    started = time.monotonic()
    ns = injector.new_namespace("traced", traced=True)
    first = wait_for("the copy in a labelled namespace", lambda: injector.copy(ns), timeout=PROMPT)
    print(f"copy created {time.monotonic() - started:.2f}s after labelling")
    assert is_managed_copy(first, expected)
    assert first["data"] == {"config.yaml": config(injector.version)}

    injector.kube.delete(configmap_path(ns, CM))
    started = time.monotonic()
    again = wait_for(
        "the deleted copy to come back",
        lambda: (c := injector.copy(ns)) and c["metadata"]["uid"] != first["metadata"]["uid"] and c,
        timeout=PROMPT,
    )
    print(f"copy re-created {time.monotonic() - started:.2f}s after deletion")
    assert is_managed_copy(again, expected)

    # Someone edits the managed copy: it is repaired.
    again["data"]["config.yaml"] = "tampered: true\n"
    injector.kube.replace(configmap_path(ns, CM), again)
    wait_for(
        "the tampered copy to be repaired",
        lambda: (c := injector.copy(ns)) and c["data"]["config.yaml"] == config(injector.version),
        timeout=PROMPT,
    )


def copy_with(injector: Injector, namespace: str, expected_hash: str) -> Callable[[], bool]:
    return lambda: is_managed_copy(injector.copy(namespace), expected_hash)


def injected_pod(injector: Injector, namespace: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """Create a pod (through the webhook) and return it as stored."""
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "app-", "namespace": namespace, "labels": labels or {}},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
    }
    return injector.kube.create(api_path("v1", "pods", namespace), body)


def status_of(pod: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(pod["metadata"]["annotations"][names.STATUS_ANNOTATION])
    return record


def test_source_change_updates_copies_and_new_injections(injector: Injector) -> None:
    ns_a = injector.new_namespace("traced-a", traced=True)
    ns_b = injector.new_namespace("traced-b", traced=True)
    old = config_hash(config(injector.version).encode())
    for ns in (ns_a, ns_b):
        wait_for(f"the copy in {ns}", copy_with(injector, ns, old), timeout=PROMPT)
    assert status_of(injected_pod(injector, ns_a))["configHash"] == old

    started = time.monotonic()
    new = injector.set_source(injector.version + 1)
    for ns in (ns_a, ns_b):
        wait_for(f"the copy in {ns} to update", copy_with(injector, ns, new), timeout=PROMPT)
    print(f"copies updated {time.monotonic() - started:.2f}s after the source changed")
    copy = injector.copy(ns_a)
    assert copy is not None
    assert copy["data"]["config.yaml"] == config(injector.version)
    # The serving process swapped the hash too: a pod created now records it.
    assert status_of(injected_pod(injector, ns_b))["configHash"] == new


def test_user_configmap_and_opted_out_copy_are_never_overwritten(injector: Injector, kube: Kube) -> None:
    ns_user = injector.new_namespace("user-cm")
    user_cm = {"metadata": {"name": CM, "namespace": ns_user}, "data": {"config.yaml": "mine: true\n"}}
    kube.create(configmap_path(ns_user), user_cm)
    label_namespace(kube, ns_user, TRACED)

    ns_opt = injector.new_namespace("opted-out", traced=True)
    current = config_hash(config(injector.version).encode())
    copy = wait_for("the copy to opt out of", lambda: injector.copy(ns_opt), timeout=PROMPT)
    assert is_managed_copy(copy, current)
    copy["metadata"]["annotations"][names.MANAGED_ANNOTATION] = "false"
    copy["data"]["config.yaml"] = "hand-tuned: true\n"
    kube.replace(configmap_path(ns_opt, CM), copy)

    # The refusal is recorded as a Warning Event on the user's ConfigMap.
    def refusal() -> dict[str, Any] | None:
        events, _ = kube.list(api_path("v1", "events", ns_user))
        return next((e for e in events if e.get("reason") == "ConfigMapNotManaged"), None)

    event = wait_for("a ConfigMapNotManaged event", refusal, timeout=PROMPT)
    assert event["involvedObject"]["name"] == CM
    assert "user made it" in event["message"]

    # A source change reaches a managed copy elsewhere, but neither of these.
    ns_control = injector.new_namespace("control", traced=True)
    new = injector.set_source(injector.version + 1)
    wait_for("the control copy to update", lambda: is_managed_copy(injector.copy(ns_control), new), timeout=PROMPT)
    time.sleep(1.0)  # the reconciler has had time to (wrongly) touch the others
    mine = injector.copy(ns_user)
    assert mine is not None
    assert mine["data"] == {"config.yaml": "mine: true\n"}
    assert MANAGED_BY_LABEL not in (mine["metadata"].get("labels") or {})
    opted = injector.copy(ns_opt)
    assert opted is not None
    assert opted["data"] == {"config.yaml": "hand-tuned: true\n"}
    assert opted["metadata"]["annotations"][HASH_ANNOTATION] == current

    # Unlabelling does not delete what is not managed either.
    label_namespace(kube, ns_user, {"tracing": None})
    label_namespace(kube, ns_opt, {"tracing": None})
    time.sleep(1.0)
    assert injector.copy(ns_user) is not None
    assert injector.copy(ns_opt) is not None


def test_removing_the_label_deletes_the_managed_copy(injector: Injector, kube: Kube) -> None:
    ns = injector.new_namespace("unlabel", traced=True)
    wait_for("the copy", lambda: injector.copy(ns), timeout=PROMPT)
    started = time.monotonic()
    label_namespace(kube, ns, {"tracing": None})
    wait_for("the copy to be deleted", lambda: injector.copy(ns) is None, timeout=PROMPT)
    print(f"copy deleted {time.monotonic() - started:.2f}s after unlabelling")


def test_pod_opted_in_by_label_gets_a_copy_in_an_unlabelled_namespace(injector: Injector, kube: Kube) -> None:
    ns = injector.new_namespace("pod-opt-in")
    time.sleep(0.5)
    assert injector.copy(ns) is None  # nothing needs one yet
    started = time.monotonic()
    pod = injected_pod(injector, ns, labels=TRACED)
    assert status_of(pod)["configMap"] == CM  # the object webhook injected it
    copy = wait_for("the copy for the opted-in pod", lambda: injector.copy(ns), timeout=PROMPT)
    print(f"copy for an opted-in pod created {time.monotonic() - started:.2f}s after the pod")
    assert is_managed_copy(copy, config_hash(config(injector.version).encode()))

    # A pod without the label in the same namespace is not injected and does not matter.
    kube.create(
        api_path("v1", "pods", ns),
        {"metadata": {"name": "plain", "namespace": ns}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
    )
    # The last opted-in pod goes: the copy stays for the grace period (2 s here), then goes.
    kube.delete(api_path("v1", "pods", ns, pod["metadata"]["name"]))
    gone_at = time.monotonic()
    time.sleep(1.0)
    assert injector.copy(ns) is not None, "deleted within the grace period"
    wait_for("the copy to be cleaned up", lambda: injector.copy(ns) is None, timeout=PROMPT + 2)
    print(f"pod-opt-in copy removed {time.monotonic() - gone_at:.2f}s after its last pod")
