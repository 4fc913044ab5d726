"""Manual injection of Kubernetes YAML."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from webhook.core import names
from webhook.core.manifests import ManifestError, inject_yaml
from webhook.core.settings import InjectionSettings

SETTINGS = InjectionSettings()
POD_SPEC = {"containers": [{"name": "app", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]}


def template(labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"labels": labels or {"app": "web"}}, "spec": POD_SPEC}


WORKLOADS: dict[str, dict[str, Any]] = {
    "Deployment": {"apiVersion": "apps/v1", "spec": {"replicas": 2, "template": template()}},
    "StatefulSet": {"apiVersion": "apps/v1", "spec": {"serviceName": "web", "template": template()}},
    "DaemonSet": {"apiVersion": "apps/v1", "spec": {"template": template()}},
    "ReplicaSet": {"apiVersion": "apps/v1", "spec": {"template": template()}},
    "Job": {"apiVersion": "batch/v1", "spec": {"template": template()}},
    "CronJob": {
        "apiVersion": "batch/v1",
        "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": template()}}},
    },
}
ATTRIBUTE_KEY = {
    "Deployment": "k8s.deployment.name",
    "StatefulSet": "k8s.statefulset.name",
    "DaemonSet": "k8s.daemonset.name",
    "ReplicaSet": "k8s.replicaset.name",
    "Job": "k8s.job.name",
    "CronJob": "k8s.cronjob.name",
}


def workload(kind: str, name: str = "web", namespace: str | None = None) -> dict[str, Any]:
    document = {"apiVersion": WORKLOADS[kind]["apiVersion"], "kind": kind, "metadata": {"name": name}}
    if namespace:
        document["metadata"]["namespace"] = namespace
    document["spec"] = WORKLOADS[kind]["spec"]
    return document


def dump(*documents: Any) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False)


def load(text: str) -> list[Any]:
    return list(yaml.safe_load_all(text))


def pod_spec_of(document: dict[str, Any]) -> dict[str, Any]:
    if document["kind"] == "Pod":
        return dict(document["spec"])
    if document["kind"] == "CronJob":
        return dict(document["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return dict(document["spec"]["template"]["spec"])


def app_env(document: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in pod_spec_of(document)["containers"][0]["env"]}


@pytest.mark.parametrize("kind", sorted(WORKLOADS))
def test_each_workload_template_is_injected(kind: str) -> None:
    output, report = inject_yaml(dump(workload(kind)), SETTINGS)
    (document,) = load(output)
    spec = pod_spec_of(document)
    assert [c["name"] for c in spec["initContainers"]] == ["otel-collector"]
    assert spec["initContainers"][0]["restartPolicy"] == "Always"
    assert [c["name"] for c in spec["containers"]] == ["app"]
    assert [v["name"] for v in spec["volumes"]] == [names.VOLUME_NAME]
    env = app_env(document)
    assert env["OTEL_SERVICE_NAME"] == "web"
    assert f"{ATTRIBUTE_KEY[kind]}=web" in env["OTEL_RESOURCE_ATTRIBUTES"]
    assert "k8s.namespace.name=default," in env["OTEL_RESOURCE_ATTRIBUTES"]
    template_meta = (
        document["spec"]["jobTemplate"]["spec"]["template"]["metadata"]
        if kind == "CronJob"
        else document["spec"]["template"]["metadata"]
    )
    assert names.STATUS_ANNOTATION in template_meta["annotations"]
    # Only the template changes: the workload's own fields stay as they were.
    assert document["metadata"] == {"name": "web"}
    assert (report.injected, report.skipped, report.messages) == (1, 0, [])


def test_pod_is_injected_and_keeps_document_order() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "debug"}, "spec": POD_SPEC}
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "1"}}
    output, report = inject_yaml(dump(config_map, pod), SETTINGS)
    first, second = load(output)
    assert first == config_map
    assert list(second) == ["apiVersion", "kind", "metadata", "spec"]
    assert [c["name"] for c in second["spec"]["initContainers"]] == ["otel-collector"]
    assert app_env(second)["OTEL_SERVICE_NAME"] == "app"
    assert report.injected == 1


def test_multi_document_yaml() -> None:
    text = dump(workload("Deployment", "a"), workload("StatefulSet", "b"), workload("Job", "c"))
    output, report = inject_yaml(text, SETTINGS)
    documents = load(output)
    assert [d["metadata"]["name"] for d in documents] == ["a", "b", "c"]
    assert all("initContainers" in pod_spec_of(d) for d in documents)
    assert report.injected == 3


def test_empty_documents_are_dropped() -> None:
    output, report = inject_yaml("---\n---\n" + dump(workload("Deployment")) + "---\n", SETTINGS)
    assert len(load(output)) == 1
    assert report.injected == 1


def test_list_items_are_injected() -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}
    listing = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [workload("Deployment"), service, workload("DaemonSet", "agent")],
    }
    output, report = inject_yaml(dump(listing), SETTINGS)
    (document,) = load(output)
    deployment, passed, daemonset = document["items"]
    assert "initContainers" in pod_spec_of(deployment)
    assert passed == service
    assert "k8s.daemonset.name=agent," in app_env(daemonset)["OTEL_RESOURCE_ATTRIBUTES"]
    assert report.injected == 2


def test_other_kinds_pass_through_unchanged() -> None:
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "app-config", "labels": {"tracing": "enabled"}},
        "data": {"config.yaml": "a: 1\nb:\n  - c\n", "empty": "", "number": "0123"},
    }
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}
    text = yaml.safe_dump_all([config_map, service], sort_keys=False, default_flow_style=False, width=1 << 16)
    output, report = inject_yaml(text, SETTINGS)
    assert output == text
    assert load(output) == [config_map, service]
    assert (report.injected, report.skipped, report.messages) == (0, 0, [])


def test_bad_yaml_is_one_line_error() -> None:
    with pytest.raises(ManifestError) as info:
        inject_yaml("kind: Pod\nmetadata: {name: [\n  oops\n", SETTINGS)
    message = str(info.value)
    assert message.startswith("invalid YAML: ")
    assert "\n" not in message


def test_labels_on_workload_instead_of_template_are_reported() -> None:
    deployment = workload("Deployment")
    deployment["metadata"]["labels"] = {"tracing": "disabled", "team": "x"}
    deployment["metadata"]["annotations"] = {"otel-injector.io/sidecar-mode": "container", "other/a": "b"}
    output, report = inject_yaml(dump(deployment), SETTINGS)
    assert report.messages == [
        "Deployment/web: label tracing is on the Deployment, not on its pod template; "
        "only spec.template.metadata reaches the pods",
        "Deployment/web: annotation otel-injector.io/sidecar-mode is on the Deployment, not on its pod template; "
        "only spec.template.metadata reaches the pods",
    ]
    # The label did not reach the pods, so they are injected, in the default native mode.
    assert "initContainers" in pod_spec_of(load(output)[0])


def test_labels_on_both_are_not_reported() -> None:
    deployment = workload("Deployment")
    deployment["metadata"]["labels"] = {"tracing": "enabled"}
    deployment["spec"] = {"template": template({"app": "web", "tracing": "enabled"})}
    _, report = inject_yaml(dump(deployment), SETTINGS)
    assert report.messages == []


def test_opt_out_on_template_skips_with_message() -> None:
    deployment = workload("Deployment")
    deployment["spec"] = {"template": template({"app": "web", "tracing": "disabled"})}
    output, report = inject_yaml(dump(deployment), SETTINGS)
    assert load(output) == [deployment]
    assert report.messages == [
        "Deployment/web: otel-injector: sidecar not injected: pod has the label tracing=disabled"
    ]
    assert (report.injected, report.skipped) == (0, 1)


def test_namespace_override_sets_attribute() -> None:
    text = dump(workload("Deployment", namespace="staging"))
    own, _ = inject_yaml(text, SETTINGS)
    assert "k8s.namespace.name=staging," in app_env(load(own)[0])["OTEL_RESOURCE_ATTRIBUTES"]
    overridden, _ = inject_yaml(text, SETTINGS, namespace="prod")
    attributes = app_env(load(overridden)[0])["OTEL_RESOURCE_ATTRIBUTES"]
    assert "k8s.namespace.name=prod," in attributes
    assert "staging" not in attributes


def test_system_namespace_is_skipped_with_message() -> None:
    text = dump(workload("DaemonSet", "agent", namespace="kube-system"))
    output, report = inject_yaml(text, SETTINGS)
    assert load(output) == load(text)
    assert report.messages == [
        "DaemonSet/agent: otel-injector: sidecar not injected: namespace kube-system is a system namespace"
    ]
    assert (report.injected, report.skipped) == (0, 1)
    _, overridden = inject_yaml(dump(workload("Deployment")), SETTINGS, namespace="kube-system")
    assert overridden.skipped == 1


def test_fallback_notices_are_reported_with_the_object() -> None:
    deployment = workload("Deployment")
    deployment["spec"] = {"template": template()}
    deployment["spec"]["template"]["metadata"]["annotations"] = {"otel-injector.io/cpu-limit": "lots"}
    output, report = inject_yaml(dump(deployment), SETTINGS)
    assert report.messages == [
        "Deployment/web: otel-injector: otel-injector.io/cpu-limit: 'lots' is not a Kubernetes quantity "
        "(e.g. 100m, 128Mi); using the default 500m"
    ]
    sidecar = pod_spec_of(load(output)[0])["initContainers"][0]
    assert sidecar["resources"]["limits"]["cpu"] == "500m"


def test_already_injected_output_is_stable() -> None:
    once, _ = inject_yaml(dump(workload("Deployment")), SETTINGS)
    twice, report = inject_yaml(once, SETTINGS)
    assert load(twice) == load(once)
    assert report.skipped == 1
    assert report.messages == [
        "Deployment/web: otel-injector: sidecar not injected: pod already has the otel-collector sidecar"
    ]


def test_workload_without_template_passes_through() -> None:
    odd = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {"replicas": 1}}
    output, report = inject_yaml(dump(odd), SETTINGS)
    assert load(output) == [odd]
    assert (report.injected, report.skipped) == (0, 0)


def test_scalar_documents_pass_through() -> None:
    output, _ = inject_yaml("just a string\n", SETTINGS)
    assert load(output) == ["just a string"]
