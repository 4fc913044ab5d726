"""The Helm chart, the kustomize manifests generated from it, the collector config file,
the apiserver tracing example and the Dockerfile.

Everything here is offline: helm renders and lints, kubectl only runs ``kustomize``, and
kubernetes-validate checks every rendered object against the API's OpenAPI schemas.
Applying the objects to a real apiserver is the e2e suite's job.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import shutil
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
import yaml

import webhook
from tests.deploy.support import (
    CHART,
    DEPLOY,
    HELM_TARGET,
    NAMESPACE,
    REPO,
    Objects,
    find,
    helm_template,
    kinds,
    parse_stream,
    run,
)
from webhook.config import settings
from webhook.config.timings import ClusterTimings, ServingTimings
from webhook.core import names
from webhook.core.settings import COLLECTOR_VERSION, InjectionSettings

Render = Callable[..., Objects]
RenderError = Callable[..., str]

COLLECTOR_FILE = DEPLOY / "collector" / "config.yaml"
CHART_COLLECTOR_FILE = CHART / "files" / "collector-config.yaml"
ENDPOINT_PLACEHOLDER = "${env:OTEL_INJECTOR_EXPORTER_ENDPOINT}"
CERT_DIR = "/var/run/otel-injector/certs"
SYSTEM_NAMESPACES = ["kube-system", "kube-public", "kube-node-lease", NAMESPACE]

# The env vars the webhook process reads, by contract.
CONTRACT_ENV = {
    "POD_NAMESPACE",
    "POD_NAME",
    "OTEL_INJECTOR_SIDECAR_IMAGE",
    "OTEL_INJECTOR_SIDECAR_IMAGE_PULL_POLICY",
    "OTEL_INJECTOR_SIDECAR_MODE",
    "OTEL_INJECTOR_SIDECAR_CPU_REQUEST",
    "OTEL_INJECTOR_SIDECAR_CPU_LIMIT",
    "OTEL_INJECTOR_SIDECAR_MEMORY_REQUEST",
    "OTEL_INJECTOR_SIDECAR_MEMORY_LIMIT",
    "OTEL_INJECTOR_CONFIG_MAP",
    "OTEL_INJECTOR_CERT_MODE",
    "OTEL_INJECTOR_CERT_SECRET",
    "OTEL_INJECTOR_WEBHOOK_CONFIG_NAME",
    "OTEL_INJECTOR_SERVICE_NAME",
    "OTEL_INJECTOR_RECONCILE",
    "OTEL_INJECTOR_COLLECTOR_SOURCE",
    "OTEL_INJECTOR_LEADER_ELECTION",
    "OTEL_INJECTOR_LEASE_NAME",
    "OTEL_INJECTOR_LOG_LEVEL",
    "OTEL_INJECTOR_RESYNC_SECONDS",
    "OTEL_INJECTOR_POD_GRACE_SECONDS",
    "OTEL_INJECTOR_CERT_SYNC_SECONDS",
    "OTEL_INJECTOR_CERT_POLL_SECONDS",
    "OTEL_INJECTOR_LEASE_DURATION_SECONDS",
    "OTEL_INJECTOR_RENEW_DEADLINE_SECONDS",
    "OTEL_INJECTOR_RETRY_PERIOD_SECONDS",
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
}

# Value combinations that must render, lint and pass schema validation.
VARIANTS: dict[str, tuple[str, ...]] = {
    "default": (),
    "cert-manager": ("certs.mode=cert-manager",),
    "secret": ("certs.mode=secret", "certs.secretName=my-tls", "certs.caBundle=Q0EK"),
    "container-sidecar": ("sidecar.mode=container",),
    "jaeger": ("jaeger.deploy=true", "webhook.tracing.enabled=true", "jaeger.collectorClusterIP=10.96.43.17"),
    "one-replica": ("webhook.replicas=1", "reconciler.enabled=false", "namespace.create=false"),
    "everything": (
        "webhook.replicas=3",
        "webhook.topologySpread.enabled=true",
        "webhook.excludedNamespaces={istio-system,monitoring}",
        "webhook.failurePolicy=Fail",
        "webhook.timeoutSeconds=10",
        "webhook.tracing.enabled=true",
        "webhook.tracing.endpoint=http://otel.observability.svc:4317",
        "webhook.tracing.protocol=grpc",
        "webhook.priorityClassName=system-cluster-critical",
        "webhook.nodeSelector.kubernetes\\.io/os=linux",
        "webhook.podAnnotations.example\\.com/team=tracing",
        "collector.exporterEndpoint=tempo.observability.svc:4317",
        "collector.exporterInsecure=false",
        "logLevel=debug",
    ),
}


# --- helpers ----------------------------------------------------------------------------


def env_of(deployment: dict[str, Any]) -> dict[str, Any]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def webhook_deployment(objects: Objects) -> dict[str, Any]:
    return find(objects, "Deployment", "otel-injector")


def collector_config_text(objects: Objects) -> str:
    config_map = find(objects, "ConfigMap", "otel-injector-collector-config")
    text: str = config_map["data"]["config.yaml"]
    return text


def mwc_webhooks(objects: Objects) -> dict[str, dict[str, Any]]:
    mwc = find(objects, "MutatingWebhookConfiguration")
    return {w["name"]: w for w in mwc["webhooks"]}


def rules_for(role: dict[str, Any], resource: str) -> list[dict[str, Any]]:
    return [r for r in role.get("rules", []) if resource in r["resources"]]


# Values that are free-form maps passed through to Kubernetes, documented as a whole.
FREE_FORM_VALUES = {"namespace.labels", "webhook.resources", "jaeger.resources"}


def leaf_paths(value: Any, prefix: str = "") -> Iterator[str]:
    """Dotted paths of the leaves of values.yaml; an empty map or list, or a free-form
    map, is a leaf."""
    if isinstance(value, dict) and value and prefix.rstrip(".") not in FREE_FORM_VALUES:
        for key, child in value.items():
            yield from leaf_paths(child, f"{prefix}{key}.")
    else:
        yield prefix.rstrip(".")


def load_render_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_kustomize", DEPLOY / "render_kustomize.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def by_identity(objects: Objects) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objects}


# --- lint, render, schemas --------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_helm_lint_is_clean(helm: Path, variant: str) -> None:
    argv: list[str | Path] = [helm, "lint", "--strict", CHART, *HELM_TARGET]
    for value in VARIANTS[variant]:
        argv += ["--set", value]
    proc = run(argv)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[WARNING]" not in proc.stdout, proc.stdout


@pytest.mark.parametrize("kube_version", ["1.30.0", kubernetes_validate.latest_version()])
@pytest.mark.parametrize("variant", VARIANTS)
def test_rendered_objects_match_the_kubernetes_schema(render: Render, variant: str, kube_version: str) -> None:
    for obj in render(*VARIANTS[variant]):
        if obj["apiVersion"].startswith("cert-manager.io/"):
            continue
        try:
            kubernetes_validate.validate(obj, kube_version, strict=True)
        except kubernetes_validate.ValidationError as err:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} is invalid for {kube_version}: {err.message}")


def test_values_schema_is_strict() -> None:
    # helm lint (above) validates values.yaml against it; here: typos in keys are errors.
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(schema["properties"]) >= set(values)


def test_default_render_has_the_expected_objects(render: Render) -> None:
    objects = render()
    assert kinds(objects) == sorted(
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "Deployment",
            "MutatingWebhookConfiguration",
            "Namespace",
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount",
        ]
    )
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration"}
    for obj in objects:
        if obj["kind"] in cluster_scoped:
            assert "namespace" not in obj["metadata"], obj["kind"]
        else:
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["kind"]
    namespace = find(objects, "Namespace")
    assert namespace["metadata"]["name"] == NAMESPACE
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert "Namespace" not in kinds(render("namespace.create=false"))


def test_chart_versions_and_defaults_follow_the_code() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == webhook.__version__
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    defaults = InjectionSettings()
    sidecar = values["sidecar"]
    assert f"{sidecar['image']['repository']}:{sidecar['image']['tag']}" == defaults.sidecar_image
    assert sidecar["image"]["tag"] == COLLECTOR_VERSION
    assert sidecar["image"]["pullPolicy"] == defaults.sidecar_image_pull_policy
    assert sidecar["mode"] == defaults.sidecar_mode
    assert sidecar["resources"]["requests"] == {
        "cpu": defaults.sidecar_cpu_request,
        "memory": defaults.sidecar_memory_request,
    }
    assert sidecar["resources"]["limits"] == {
        "cpu": defaults.sidecar_cpu_limit,
        "memory": defaults.sidecar_memory_limit,
    }
    assert values["collector"]["configMapName"] == names.CONFIGMAP_NAME == defaults.config_map
    assert values["selectors"] == {
        "label": names.TRACING_LABEL,
        "enabledValue": names.TRACING_ENABLED,
        "disabledValue": names.TRACING_DISABLED,
    }
    cluster, serving = ClusterTimings(), ServingTimings()
    assert values["webhook"]["timings"] == {
        "resyncSeconds": cluster.resync_seconds,
        "podGraceSeconds": cluster.pod_grace_seconds,
        "certSyncSeconds": cluster.cert_sync_seconds,
        "certPollSeconds": serving.cert_poll_seconds,
        "leaseDurationSeconds": cluster.lease_duration_seconds,
        "renewDeadlineSeconds": cluster.renew_deadline_seconds,
        "retryPeriodSeconds": cluster.retry_period_seconds,
        "contextSyncSeconds": cluster.context_sync_seconds,
    }


def test_readme_documents_every_value() -> None:
    readme = (CHART / "README.md").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    missing = [path for path in leaf_paths(values) if f"`{path}`" not in readme]
    assert not missing, f"chart README.md does not document: {', '.join(missing)}"


# --- bad values fail with a clear message -----------------------------------------------

BAD_VALUES = [
    ("certs.mode=bogus", "certs.mode", ["self-managed", "cert-manager", "secret"]),
    ("sidecar.mode=bogus", "sidecar.mode", ["native", "container"]),
    ("webhook.failurePolicy=Sometimes", "failurePolicy", ["Ignore", "Fail"]),
]


def _mentions(message: str, path: str) -> bool:
    # helm's schema errors name the value as /certs/mode, the templates as certs.mode.
    return path in message or "/" + path.replace(".", "/") in message


@pytest.mark.parametrize(("setting", "path", "choices"), BAD_VALUES)
def test_bad_choice_is_rejected_by_the_schema(
    render_error: RenderError, setting: str, path: str, choices: list[str]
) -> None:
    message = render_error(setting)
    assert _mentions(message, path), message
    assert all(choice in message for choice in choices), message


@pytest.mark.parametrize(("setting", "path", "choices"), BAD_VALUES)
def test_bad_choice_is_rejected_by_the_templates(
    render_error: RenderError, setting: str, path: str, choices: list[str]
) -> None:
    message = render_error(setting, extra=["--skip-schema-validation"])
    assert f"{path} must be one of {', '.join(choices)}" in message, message


def test_secret_mode_needs_a_ca_bundle(render_error: RenderError) -> None:
    message = render_error("certs.mode=secret")
    assert "certs.mode=secret needs certs.caBundle" in message, message


def test_webhook_tracing_needs_an_endpoint(render_error: RenderError) -> None:
    message = render_error("webhook.tracing.enabled=true")
    assert "webhook.tracing.endpoint" in message, message


def test_unknown_value_is_rejected(render_error: RenderError) -> None:
    message = render_error("webhook.replica=3")
    assert "replica" in message, message


# --- MutatingWebhookConfiguration -------------------------------------------------------


def test_webhook_configuration_filters_at_the_apiserver(render: Render) -> None:
    mwc = find(render(), "MutatingWebhookConfiguration")
    assert mwc["metadata"]["name"] == "otel-injector"
    hooks = mwc_webhooks(render())
    assert set(hooks) == {"namespace.otel-injector.io", "object.otel-injector.io"}
    system = {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": SYSTEM_NAMESPACES}

    by_namespace = hooks["namespace.otel-injector.io"]
    assert by_namespace["namespaceSelector"] == {"matchLabels": {"tracing": "enabled"}, "matchExpressions": [system]}
    assert by_namespace["objectSelector"] == {
        "matchExpressions": [{"key": "tracing", "operator": "NotIn", "values": ["disabled"]}]
    }

    by_object = hooks["object.otel-injector.io"]
    assert by_object["namespaceSelector"] == {
        "matchExpressions": [{"key": "tracing", "operator": "NotIn", "values": ["enabled"]}, system]
    }
    assert by_object["objectSelector"] == {"matchLabels": {"tracing": "enabled"}}

    for hook in hooks.values():
        assert hook["rules"] == [
            {
                "operations": ["CREATE"],
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["pods"],
                "scope": "Namespaced",
            }
        ]
        assert hook["failurePolicy"] == "Ignore"
        assert hook["timeoutSeconds"] == 5
        assert hook["sideEffects"] == "NoneOnDryRun"
        assert hook["admissionReviewVersions"] == ["v1"]
        assert hook["reinvocationPolicy"] == "IfNeeded"
        assert hook["matchPolicy"] == "Equivalent"
        assert hook["clientConfig"] == {
            "service": {"name": "otel-injector", "namespace": NAMESPACE, "path": "/mutate", "port": 443}
        }


def test_no_pod_matches_both_webhooks(render: Render) -> None:
    """Evaluate both selectors for every combination of namespace and pod label."""
    hooks = mwc_webhooks(render())

    def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
        for key, value in selector.get("matchLabels", {}).items():
            if labels.get(key) != value:
                return False
        for expr in selector.get("matchExpressions", []):
            present = expr["key"] in labels
            if expr["operator"] == "NotIn" and present and labels[expr["key"]] in expr["values"]:
                return False
            if expr["operator"] == "In" and not (present and labels[expr["key"]] in expr["values"]):
                return False
        return True

    label_values: list[str | None] = [None, "enabled", "disabled", "other"]
    for ns_name in ["default", "shop", *SYSTEM_NAMESPACES]:
        for ns_value in label_values:
            for pod_value in label_values:
                ns_labels = {"kubernetes.io/metadata.name": ns_name} | ({"tracing": ns_value} if ns_value else {})
                pod_labels = {"tracing": pod_value} if pod_value else {}
                hits = [
                    name
                    for name, hook in hooks.items()
                    if matches(hook["namespaceSelector"], ns_labels) and matches(hook["objectSelector"], pod_labels)
                ]
                expected = ns_name not in SYSTEM_NAMESPACES and (
                    (ns_value == "enabled" and pod_value != "disabled")
                    or (ns_value != "enabled" and pod_value == "enabled")
                )
                assert len(hits) == (1 if expected else 0), (ns_name, ns_value, pod_value, hits)


def test_webhook_configuration_follows_the_values(render: Render) -> None:
    objects = render(
        "webhook.configName=tracing-injector",
        "webhook.failurePolicy=Fail",
        "webhook.timeoutSeconds=9",
        "selectors.label=otel",
        "selectors.enabledValue=on",
        "selectors.disabledValue=off",
        "webhook.excludedNamespaces={istio-system}",
    )
    mwc = find(objects, "MutatingWebhookConfiguration")
    assert mwc["metadata"]["name"] == "tracing-injector"
    hooks = {w["name"]: w for w in mwc["webhooks"]}
    for hook in hooks.values():
        assert hook["failurePolicy"] == "Fail"
        assert hook["timeoutSeconds"] == 9
    ns_hook = hooks["namespace.otel-injector.io"]
    assert ns_hook["namespaceSelector"]["matchLabels"] == {"otel": "on"}
    assert ns_hook["namespaceSelector"]["matchExpressions"][0]["values"] == [*SYSTEM_NAMESPACES, "istio-system"]
    assert ns_hook["objectSelector"]["matchExpressions"] == [{"key": "otel", "operator": "NotIn", "values": ["off"]}]
    assert hooks["object.otel-injector.io"]["objectSelector"] == {"matchLabels": {"otel": "on"}}
    env = env_of(webhook_deployment(objects))
    assert env["OTEL_INJECTOR_WEBHOOK_CONFIG_NAME"] == "tracing-injector"
    assert env["OTEL_INJECTOR_SYSTEM_NAMESPACES"] == "kube-system,kube-public,kube-node-lease,istio-system"
    clusterrole = find(objects, "ClusterRole")
    assert rules_for(clusterrole, "mutatingwebhookconfigurations")[0]["resourceNames"] == ["tracing-injector"]


# --- certificate modes ------------------------------------------------------------------


def test_self_managed_certs(render: Render) -> None:
    objects = render()
    deployment = webhook_deployment(objects)
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert "emptyDir" in volumes["certs"]
    env = env_of(deployment)
    assert env["OTEL_INJECTOR_CERT_MODE"] == "self-managed"
    assert env["OTEL_INJECTOR_CERT_SECRET"] == "otel-injector-tls"
    assert env["OTEL_INJECTOR_SERVICE_NAME"] == find(objects, "Service")["metadata"]["name"] == "otel-injector"
    for hook in mwc_webhooks(objects).values():
        assert "caBundle" not in hook["clientConfig"]
    assert "annotations" not in find(objects, "MutatingWebhookConfiguration")["metadata"]
    role = find(objects, "Role")
    secret_rules = rules_for(role, "secrets")
    assert secret_rules[0]["resourceNames"] == ["otel-injector-tls"]
    assert secret_rules[0]["verbs"] == ["get", "update", "patch"]
    # create cannot be restricted by name; it is the only unrestricted verb.
    assert secret_rules[1]["verbs"] == ["create"]
    assert "resourceNames" not in secret_rules[1]
    mwc_rule = rules_for(find(objects, "ClusterRole"), "mutatingwebhookconfigurations")[0]
    assert mwc_rule["verbs"] == ["get", "patch", "update"]
    assert mwc_rule["resourceNames"] == ["otel-injector"]


def test_cert_manager_mode(render: Render) -> None:
    objects = render("certs.mode=cert-manager")
    issuers = [o for o in objects if o["kind"] == "Issuer"]
    assert {i["metadata"]["name"] for i in issuers} == {"otel-injector-selfsigned", "otel-injector-ca"}
    certificate = find(objects, "Certificate", "otel-injector")
    assert certificate["spec"]["secretName"] == "otel-injector-tls"
    assert "otel-injector.otel-injector.svc" in certificate["spec"]["dnsNames"]
    assert certificate["spec"]["issuerRef"]["name"] == "otel-injector-ca"
    mwc = find(objects, "MutatingWebhookConfiguration")
    assert mwc["metadata"]["annotations"] == {"cert-manager.io/inject-ca-from": f"{NAMESPACE}/otel-injector"}
    deployment = webhook_deployment(objects)
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["certs"]["secret"]["secretName"] == "otel-injector-tls"
    assert env_of(deployment)["OTEL_INJECTOR_CERT_MODE"] == "cert-manager"
    # cert-manager owns the Secret and the caBundle: the webhook may touch neither.
    assert not rules_for(find(objects, "Role"), "secrets")
    assert rules_for(find(objects, "ClusterRole"), "mutatingwebhookconfigurations")[0]["verbs"] == ["get"]


def test_secret_mode(render: Render) -> None:
    objects = render(*VARIANTS["secret"])
    deployment = webhook_deployment(objects)
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["certs"]["secret"]["secretName"] == "my-tls"
    mounts = {m["name"]: m for m in deployment["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["certs"] == {"name": "certs", "mountPath": CERT_DIR, "readOnly": True}
    env = env_of(deployment)
    assert env["OTEL_INJECTOR_CERT_MODE"] == "secret"
    assert env["OTEL_INJECTOR_CERT_SECRET"] == "my-tls"
    for hook in mwc_webhooks(objects).values():
        assert hook["clientConfig"]["caBundle"] == "Q0EK"
    assert not [o for o in objects if o["apiVersion"].startswith("cert-manager.io/")]
    assert not rules_for(find(objects, "Role"), "secrets")


# --- RBAC -------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_rbac_is_least_privilege(render: Render, variant: str) -> None:
    objects = render(*VARIANTS[variant])
    roles = [o for o in objects if o["kind"] in ("ClusterRole", "Role")]
    for role in roles:
        for rule in role["rules"]:
            assert "*" not in rule["verbs"], rule
            assert "*" not in rule["resources"], rule
            if "pods" in rule["resources"]:
                assert rule["verbs"] == ["list", "watch"], "pods are only watched, by the reconciler"
            assert not {"secrets", "leases"} & set(rule["resources"]) or role["kind"] == "Role", rule
            if "resourceNames" not in rule:
                assert not {"secrets", "leases", "mutatingwebhookconfigurations"} & set(rule["resources"]) or rule[
                    "verbs"
                ] == ["create"], rule
            for verb in ("list", "watch"):
                assert not (verb in rule["verbs"] and "resourceNames" in rule), "list/watch ignore resourceNames"
    clusterrole = find(objects, "ClusterRole")
    assert rules_for(clusterrole, "namespaces")[0]["verbs"] == ["get", "list", "watch"]
    assert rules_for(clusterrole, "events")[0]["verbs"] == ["create", "patch"]
    for binding_kind, role_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        for binding in (o for o in objects if o["kind"] == binding_kind):
            assert binding["roleRef"] == {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": role_kind,
                "name": "otel-injector",
            }
            assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "otel-injector", "namespace": NAMESPACE}]


def test_configmap_writes_and_pod_reads_only_with_the_reconciler(render: Render) -> None:
    on = rules_for(find(render(), "ClusterRole"), "configmaps")[0]["verbs"]
    assert on == ["get", "list", "watch", "create", "update", "patch", "delete"]
    assert rules_for(find(render(), "ClusterRole"), "pods") == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]}
    ]
    off_objects = render("reconciler.enabled=false")
    assert rules_for(find(off_objects, "ClusterRole"), "configmaps")[0]["verbs"] == ["get", "list", "watch"]
    assert not rules_for(find(off_objects, "ClusterRole"), "pods"), "without the reconciler nothing reads pods"
    assert env_of(webhook_deployment(off_objects))["OTEL_INJECTOR_RECONCILE"] == "false"


def test_leader_election_follows_the_replica_count(render: Render) -> None:
    two = render()
    assert env_of(webhook_deployment(two))["OTEL_INJECTOR_LEADER_ELECTION"] == "true"
    lease_rules = rules_for(find(two, "Role"), "leases")
    assert lease_rules[0]["resourceNames"] == ["otel-injector-leader"]
    assert lease_rules[0]["verbs"] == ["get", "update"]
    assert lease_rules[1]["verbs"] == ["create"]
    one = render("webhook.replicas=1")
    assert env_of(webhook_deployment(one))["OTEL_INJECTOR_LEADER_ELECTION"] == "false"
    assert not rules_for(find(one, "Role"), "leases")
    assert "PodDisruptionBudget" not in kinds(one)
    one_cm = render("webhook.replicas=1", "certs.mode=cert-manager")
    assert "Role" not in kinds(one_cm)
    assert "RoleBinding" not in kinds(one_cm)


# --- Deployment -------------------------------------------------------------------------


def test_deployment_is_hardened_and_highly_available(render: Render) -> None:
    objects = render()
    deployment = webhook_deployment(objects)
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "otel-injector"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    term = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"]
    assert pod["terminationGracePeriodSeconds"] == 30

    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["image"] == f"otel-injector:{webhook.__version__}"
    assert container["command"] == ["otel-injector"]
    assert container["args"] == [
        "serve",
        "--port",
        "8443",
        "--tls-cert",
        f"{CERT_DIR}/tls.crt",
        "--tls-key",
        f"{CERT_DIR}/tls.key",
    ]
    assert container["ports"] == [{"name": "https", "containerPort": 8443, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "https", "scheme": "HTTPS"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "https", "scheme": "HTTPS"}
    assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    assert container["resources"]["limits"]["memory"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts == {"/tmp": "tmp", CERT_DIR: "certs"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["tmp"]
    assert "emptyDir" in volumes["certs"]

    env = env_of(deployment)
    assert set(env) >= CONTRACT_ENV, f"missing: {CONTRACT_ENV - set(env)}"
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["OTEL_INJECTOR_SIDECAR_IMAGE"] == InjectionSettings().sidecar_image
    assert env["OTEL_INJECTOR_CONFIG_MAP"] == "otel-collector-sidecar"
    assert env["OTEL_INJECTOR_COLLECTOR_SOURCE"] == "otel-injector-collector-config"
    assert env["OTEL_INJECTOR_LEASE_NAME"] == "otel-injector-leader"
    assert env["OTEL_INJECTOR_RECONCILE"] == "true"
    assert env["OTEL_INJECTOR_LOG_LEVEL"] == "INFO"
    assert env["OTEL_SERVICE_NAME"] == "otel-injector"
    assert env["OTEL_SDK_DISABLED"] == "true"
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env
    assert all(isinstance(v, str | dict) for v in env.values()), "env values must be strings"

    pdb = find(objects, "PodDisruptionBudget")
    assert pdb["spec"] == {"minAvailable": 1, "selector": {"matchLabels": spec["selector"]["matchLabels"]}}
    service = find(objects, "Service")
    assert service["spec"]["ports"] == [{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}]
    assert service["spec"]["selector"] == spec["selector"]["matchLabels"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_webhook_accepts_the_env_the_chart_sets(render: Render, variant: str) -> None:
    """The Deployment's env, read by the real settings loader: no unknown value, no typo."""
    env = {k: v for k, v in env_of(webhook_deployment(render(*VARIANTS[variant]))).items() if isinstance(v, str)}
    env["POD_NAMESPACE"] = NAMESPACE
    loaded = settings.load_settings(environ=env, overrides={"tls_cert": "/c", "tls_key": "/k"})
    assert loaded.cert_mode == env["OTEL_INJECTOR_CERT_MODE"]
    assert loaded.reconcile is (env["OTEL_INJECTOR_RECONCILE"] == "true")
    assert loaded.leader_election is (env["OTEL_INJECTOR_LEADER_ELECTION"] == "true")
    assert loaded.injection.sidecar_image == env["OTEL_INJECTOR_SIDECAR_IMAGE"]
    assert loaded.injection.namespace == NAMESPACE
    assert NAMESPACE in loaded.injection.excluded_namespaces
    assert loaded.cluster == ClusterTimings()
    assert loaded.serving == ServingTimings()


def test_timings_reach_the_webhook(render: Render) -> None:
    """Chart values, through the Deployment's env, to the settings the controllers get."""
    objects = render("webhook.timings.resyncSeconds=600", "webhook.timings.retryPeriodSeconds=0.5")
    env = {k: v for k, v in env_of(webhook_deployment(objects)).items() if isinstance(v, str)}
    loaded = settings.load_settings(environ=env, overrides={"tls_cert": "/c", "tls_key": "/k"})
    assert loaded.cluster.resync_seconds == 600
    assert loaded.cluster.retry_period_seconds == 0.5


@pytest.mark.parametrize("mode", ["native", "container"])
def test_sidecar_settings_reach_the_webhook(render: Render, mode: str) -> None:
    env = env_of(
        webhook_deployment(
            render(
                f"sidecar.mode={mode}",
                "sidecar.image.repository=registry.example/otelcol",
                "sidecar.image.tag=1.2.3",
                "sidecar.image.pullPolicy=Always",
                "sidecar.resources.requests.cpu=10m",
                "sidecar.resources.limits.cpu=1",
                "sidecar.resources.requests.memory=32Mi",
                "sidecar.resources.limits.memory=1Gi",
            )
        )
    )
    assert env["OTEL_INJECTOR_SIDECAR_MODE"] == mode
    assert env["OTEL_INJECTOR_SIDECAR_IMAGE"] == "registry.example/otelcol:1.2.3"
    assert env["OTEL_INJECTOR_SIDECAR_IMAGE_PULL_POLICY"] == "Always"
    assert env["OTEL_INJECTOR_SIDECAR_CPU_REQUEST"] == "10m"
    assert env["OTEL_INJECTOR_SIDECAR_CPU_LIMIT"] == "1"
    assert env["OTEL_INJECTOR_SIDECAR_MEMORY_REQUEST"] == "32Mi"
    assert env["OTEL_INJECTOR_SIDECAR_MEMORY_LIMIT"] == "1Gi"


def test_webhook_tracing(render: Render) -> None:
    env = env_of(webhook_deployment(render("jaeger.deploy=true", "webhook.tracing.enabled=true")))
    assert env["OTEL_SDK_DISABLED"] == "false"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://jaeger-collector.{NAMESPACE}.svc:4318"
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    env = env_of(webhook_deployment(render(*VARIANTS["everything"])))
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel.observability.svc:4317"
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
    assert env["OTEL_INJECTOR_LOG_LEVEL"] == "DEBUG"


# --- collector config -------------------------------------------------------------------


def test_collector_config_file_is_the_charts_default() -> None:
    assert CHART_COLLECTOR_FILE.read_bytes() == COLLECTOR_FILE.read_bytes(), (
        f"cp {COLLECTOR_FILE.relative_to(REPO)} {CHART_COLLECTOR_FILE.relative_to(REPO)}"
    )


def test_collector_config_file_has_the_pipelines() -> None:
    text = COLLECTOR_FILE.read_text()
    assert text.count(ENDPOINT_PLACEHOLDER) == 1
    assert text.count("insecure: true") == 1, "the chart flips this one line for exporterInsecure=false"
    config = yaml.safe_load(text)
    assert config["receivers"]["otlp"]["protocols"] == {
        "grpc": {"endpoint": f"localhost:{names.OTLP_GRPC_PORT}"},
        "http": {"endpoint": f"localhost:{names.OTLP_HTTP_PORT}"},
    }
    assert config["processors"]["memory_limiter"] == {
        "check_interval": "1s",
        "limit_percentage": 80,
        "spike_limit_percentage": 25,
    }
    attributes = {a["key"]: a for a in config["processors"]["resource"]["attributes"]}
    expected = {
        "k8s.pod.name": "K8S_POD_NAME",
        "k8s.namespace.name": "K8S_NAMESPACE_NAME",
        "k8s.pod.uid": "K8S_POD_UID",
        "k8s.node.name": "K8S_NODE_NAME",
    }
    assert {k: a["value"] for k, a in attributes.items()} == {k: f"${{env:{v}}}" for k, v in expected.items()}
    assert {a["action"] for a in attributes.values()} == {"upsert"}
    # Every env var the config reads is one the injector sets on the sidecar.
    assert set(expected.values()) == {env for env, _ in names.SIDECAR_DOWNWARD_ENV}
    assert config["exporters"]["otlp_grpc"] == {"endpoint": ENDPOINT_PLACEHOLDER, "tls": {"insecure": True}}
    assert config["extensions"]["health_check"]["endpoint"] == f"0.0.0.0:{names.HEALTH_PORT}"
    service = config["service"]
    assert service["extensions"] == ["health_check"]
    assert set(service["pipelines"]) == {"traces", "metrics", "logs"}
    for pipeline in service["pipelines"].values():
        assert pipeline["receivers"] == ["otlp"]
        assert pipeline["processors"][0] == "memory_limiter"
        assert pipeline["processors"][-1] == "batch"
        assert pipeline["exporters"] == ["otlp_grpc"]
    assert service["telemetry"]["metrics"] == {"level": "none"}
    assert "0.0.0.0:8888" not in text


def test_chart_fills_in_the_exporter_endpoint(render: Render) -> None:
    template = COLLECTOR_FILE.read_text()
    text = collector_config_text(render("collector.exporterEndpoint=tempo.observability.svc:4317"))
    assert text == template.replace(ENDPOINT_PLACEHOLDER, "tempo.observability.svc:4317")
    text = collector_config_text(render("jaeger.deploy=true"))
    assert text == template.replace(ENDPOINT_PLACEHOLDER, f"jaeger-collector.{NAMESPACE}.svc:4317")
    secure = yaml.safe_load(collector_config_text(render(*VARIANTS["everything"])))
    assert secure["exporters"]["otlp_grpc"] == {"endpoint": "tempo.observability.svc:4317", "tls": {"insecure": False}}


def test_without_an_endpoint_the_sidecars_use_a_debug_exporter(render: Render) -> None:
    config = yaml.safe_load(collector_config_text(render()))
    expected = yaml.safe_load(COLLECTOR_FILE.read_text())
    expected["exporters"] = {"debug": {"verbosity": "basic"}}
    for pipeline in expected["service"]["pipelines"].values():
        pipeline["exporters"] = ["debug"]
    assert config == expected


@pytest.mark.parametrize("style", ["string", "map"])
def test_collector_config_override_replaces_the_whole_config(
    render: Render, helm: Path, tmp_path: Path, style: str
) -> None:
    custom = {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "localhost:4317"}}}},
        "exporters": {"debug": {}},
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["debug"]}}},
    }
    values = tmp_path / "values.yaml"
    as_value: Any = yaml.safe_dump(custom) if style == "string" else custom
    values.write_text(yaml.safe_dump({"collector": {"config": as_value, "exporterEndpoint": "ignored:4317"}}))
    proc = run([helm, "template", "otel-injector", CHART, *HELM_TARGET, "-f", values])
    assert proc.returncode == 0, proc.stderr
    text = collector_config_text(parse_stream(proc.stdout))
    assert yaml.safe_load(text) == custom
    if style == "string":
        assert text.rstrip("\n") == yaml.safe_dump(custom).rstrip("\n")


# --- Jaeger -----------------------------------------------------------------------------


def test_quick_start_jaeger(render: Render) -> None:
    objects = render(*VARIANTS["jaeger"])
    jaeger = find(objects, "Deployment", "jaeger")
    (container,) = jaeger["spec"]["template"]["spec"]["containers"]
    assert re.fullmatch(r"jaegertracing/jaeger:2\.\d+\.\d+", container["image"]), container["image"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert jaeger["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    collector = find(objects, "Service", "jaeger-collector")
    assert {p["port"] for p in collector["spec"]["ports"]} == {4317, 4318}
    assert collector["spec"]["clusterIP"] == "10.96.43.17"
    query = find(objects, "Service", "jaeger-query")
    assert [p["port"] for p in query["spec"]["ports"]] == [16686]
    for service in (collector, query):
        assert service["spec"]["selector"] == jaeger["spec"]["selector"]["matchLabels"]
    # The webhook's Service selector must not pick up the Jaeger pod, nor the reverse.
    webhook_selector = find(objects, "Service", "otel-injector")["spec"]["selector"]
    jaeger_labels = jaeger["spec"]["template"]["metadata"]["labels"]
    assert not webhook_selector.items() <= jaeger_labels.items()


# --- kustomize --------------------------------------------------------------------------


def test_kustomize_base_is_not_stale(helm: Path) -> None:
    module = load_render_module()
    problems = module.stale(module.render(helm), DEPLOY / "kustomize")
    assert not problems, "deploy/kustomize is stale; run deploy/render-kustomize.sh\n" + "".join(problems)


def test_kustomize_base_builds_to_the_chart_defaults(kubectl: Path, render: Render) -> None:
    proc = run([kubectl, "kustomize", DEPLOY / "kustomize" / "base"])
    assert proc.returncode == 0, proc.stderr
    assert by_identity(parse_stream(proc.stdout)) == by_identity(render())


def test_kustomize_base_has_one_object_per_file() -> None:
    base = DEPLOY / "kustomize" / "base"
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    for name in kustomization["resources"]:
        assert len(parse_stream((base / name).read_text())) == 1, name
    (mwc,) = parse_stream((base / "mutatingwebhookconfiguration.yaml").read_text())
    assert mwc["kind"] == "MutatingWebhookConfiguration"


def without_merge_order(objects: Objects) -> Objects:
    """Sort the pod lists a strategic merge patch reorders (env, mounts, volumes): the
    patched entries move to the front, which changes nothing for Kubernetes here."""
    result = copy.deepcopy(objects)
    for obj in result:
        if obj["kind"] != "Deployment":
            continue
        pod = obj["spec"]["template"]["spec"]
        pod["volumes"].sort(key=lambda v: v["name"])
        for container in pod["containers"]:
            container["env"].sort(key=lambda e: e["name"])
            container["volumeMounts"].sort(key=lambda m: m["mountPath"])
    return result


def test_cert_manager_overlay_builds_to_the_chart_in_cert_manager_mode(kubectl: Path, render: Render) -> None:
    proc = run([kubectl, "kustomize", DEPLOY / "kustomize" / "overlays" / "cert-manager"])
    assert proc.returncode == 0, proc.stderr
    built = by_identity(without_merge_order(parse_stream(proc.stdout)))
    assert built == by_identity(without_merge_order(render("certs.mode=cert-manager")))


# --- apiserver tracing example ----------------------------------------------------------


def test_apiserver_tracing_example() -> None:
    directory = DEPLOY / "apiserver-tracing"
    tracing = yaml.safe_load((directory / "tracing-config.yaml").read_text())
    assert tracing["apiVersion"] == "apiserver.config.k8s.io/v1"
    assert tracing["kind"] == "TracingConfiguration"
    assert re.fullmatch(r"[^/:]+:4317", tracing["endpoint"]), "host:port, no scheme"
    assert 0 <= tracing["samplingRatePerMillion"] <= 1_000_000
    assert tracing["endpoint"].split(":")[0] in (directory / "README.md").read_text()

    kind_config = yaml.safe_load((directory / "kind-cluster.yaml").read_text())
    control_plane = next(n for n in kind_config["nodes"] if n["role"] == "control-plane")
    (mount,) = control_plane["extraMounts"]
    assert (REPO / mount["hostPath"]).resolve() == (directory / "tracing-config.yaml").resolve()
    (patch_text,) = control_plane["kubeadmConfigPatches"]
    patch = yaml.safe_load(patch_text)
    flag = patch["apiServer"]["extraArgs"]["tracing-config-file"]
    assert flag == mount["containerPath"]
    (volume,) = patch["apiServer"]["extraVolumes"]
    assert flag.startswith(volume["mountPath"] + "/")
    assert volume["hostPath"] == volume["mountPath"]


# --- image ------------------------------------------------------------------------------


def test_dockerfile_is_lint_clean(hadolint: Path) -> None:
    proc = run([hadolint, "--no-color", "--failure-threshold", "style", REPO / "Dockerfile"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "", proc.stdout


def test_dockerfile_runs_unprivileged_with_exec_entrypoint() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["otel-injector"]' in text
    assert re.search(r"^CMD \[\"serve\",", text, re.MULTILINE)
    assert re.findall(r"^USER (\S+)", text, re.MULTILINE)[-1] == "65532:65532"
    assert not re.search(r"^HEALTHCHECK", text, re.MULTILINE)
    assert "--require-hashes" in text
    # Debian's own python3 (as distroless Python), from Debian's image or a stand-in passed in.
    assert re.search(r"^ARG DEBIAN_IMAGE=debian:bookworm-slim$", text, re.MULTILINE)
    assert re.search(r"^ARG PYTHON_IMAGE=debian-python3$", text, re.MULTILINE)
    assert re.search(r"^FROM \$\{DEBIAN_IMAGE\} AS debian-python3$", text, re.MULTILINE)
    assert "apt-get install -y --no-install-recommends python3=" in text
    assert re.findall(r"^FROM (\S+)", text, re.MULTILINE)[-1] == "${PYTHON_IMAGE}"
    assert "PIP_NO_INDEX" in text


def test_requirements_lock_pins_exactly_the_runtime_dependencies() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    def dist(requirement: str) -> str:
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
        assert match, requirement
        return norm(match.group(0))

    lock = (REPO / "requirements.lock").read_text()
    pins = {
        norm(m.group(1)): m.group(2) for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", lock, re.MULTILINE)
    }
    runtime = {dist(r) for r in pyproject["project"]["dependencies"]}
    assert runtime <= set(pins), f"not locked: {runtime - set(pins)}; run deploy/docker/update-locks.sh"
    test_only = {dist(r) for r in pyproject["project"]["optional-dependencies"]["test"]} - runtime
    assert not test_only & set(pins), f"test-only packages in the runtime lock: {test_only & set(pins)}"
    for block in re.split(r"\n(?=[A-Za-z0-9])", lock.split("\n", 2)[2]):
        assert "--hash=sha256:" in block, block.splitlines()[0]
    assert "://" not in lock, "the lock must not name an index"


# --- NOTES.txt --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def notes(helm: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., str]:
    """NOTES.txt as ``helm install`` would print it. ``helm template`` does not output the
    notes, so a copy of the chart gets one more template that carries them in a ConfigMap.
    """
    chart = tmp_path_factory.mktemp("chart") / "otel-injector"
    shutil.copytree(CHART, chart)
    (chart / "templates" / "zz-notes-under-test.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes-under-test\ndata:\n"
        '  notes: {{ include (print $.Template.BasePath "/NOTES.txt") . | toJson }}\n'
    )

    def _notes(*sets: str) -> str:
        argv: list[str | Path] = [helm, "template", "otel-injector", chart, *HELM_TARGET]
        for value in sets:
            argv += ["--set", value]
        proc = run(argv)
        assert proc.returncode == 0, proc.stderr
        text: str = find(parse_stream(proc.stdout), "ConfigMap", "notes-under-test")["data"]["notes"]
        return text

    return _notes


def test_notes_tell_the_next_steps(notes: Callable[..., str]) -> None:
    text = notes()
    assert "kubectl label namespace <ns> tracing=enabled" in text
    assert "--tracing-config-file" in text
    assert "debug exporter" in text
    assert "port-forward" not in text
    with_jaeger = notes("jaeger.deploy=true")
    assert f"kubectl -n {NAMESPACE} port-forward svc/jaeger-query 16686" in with_jaeger
    assert "debug exporter" not in with_jaeger
    assert "kubectl label namespace <ns> team=on" in notes("selectors.label=team", "selectors.enabledValue=on")


def test_uninstall_hooks_remove_the_webhook_first_then_the_leftovers(helm: Path) -> None:
    objects = parse_stream(helm_template(helm, hooks=True))
    hooks = [o for o in objects if "helm.sh/hook" in (o["metadata"].get("annotations") or {})]
    assert kinds(hooks) == sorted(
        ["ClusterRole", "ClusterRoleBinding", "Job", "Job", "Role", "RoleBinding", "ServiceAccount"]
    )
    jobs = {o["metadata"]["annotations"]["helm.sh/hook"]: o for o in hooks if o["kind"] == "Job"}
    assert set(jobs) == {"pre-delete", "post-delete"}
    for phase, job in jobs.items():
        container = job["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == ["uninstall", "--phase", phase]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
    rbac = [o for o in hooks if o["kind"] != "Job"]
    # The identity exists before the Jobs run, and only while a hook runs.
    for obj in rbac:
        annotations = obj["metadata"]["annotations"]
        assert int(annotations["helm.sh/hook-weight"]) < 0
        assert "hook-succeeded" in annotations["helm.sh/hook-delete-policy"]
    rules = find(rbac, "ClusterRole")["rules"]
    webhook_rule = next(r for r in rules if "mutatingwebhookconfigurations" in r["resources"])
    assert webhook_rule["resourceNames"] == ["otel-injector"]


def test_repair_values_reach_the_settings_and_rbac_grants_only_rollouts(render: Render) -> None:
    objects = render()
    env = env_of(webhook_deployment(objects))
    assert env["OTEL_INJECTOR_REPAIR_MISSING_SIDECARS"] == "false"
    assert env["OTEL_INJECTOR_MAX_RESTARTS_PER_MINUTE"] == "2"
    assert env["OTEL_INJECTOR_RESTART_COOLDOWN_SECONDS"] == "600"
    clusterrole = find(objects, "ClusterRole")
    assert rules_for(clusterrole, "replicasets") == [
        {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get"]}
    ]
    assert rules_for(clusterrole, "deployments") == [
        {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets"], "verbs": ["get", "patch"]}
    ]
    assert not rules_for(clusterrole, "jobs"), "Jobs are never touched"
    on = env_of(webhook_deployment(render("repair.missingSidecars.enabled=true", "repair.maxRestartsPerMinute=5")))
    assert (on["OTEL_INJECTOR_REPAIR_MISSING_SIDECARS"], on["OTEL_INJECTOR_MAX_RESTARTS_PER_MINUTE"]) == ("true", "5")
    off = find(render("reconciler.enabled=false"), "ClusterRole")
    assert not rules_for(off, "deployments"), "without the reconciler nothing is rolled"


# --- env-only injection (issue 12 section 5) ----------------------------------------------


@pytest.mark.parametrize("endpoint", ["node", "http://otel-gateway.observability.svc:4318"])
def test_the_default_env_only_endpoint_reaches_the_webhook(render: Render, endpoint: str) -> None:
    env = env_of(webhook_deployment(render(f"injection.endpoint={endpoint}")))
    assert env["OTEL_INJECTOR_ENV_ONLY_ENDPOINT"] == endpoint
    strings = {k: v for k, v in env.items() if isinstance(v, str)}
    loaded = settings.load_settings(environ=strings, overrides={"tls_cert": "/c", "tls_key": "/k"})
    assert loaded.injection.env_only_endpoint == endpoint


def test_no_default_env_only_endpoint_sets_no_variable(render: Render) -> None:
    assert "OTEL_INJECTOR_ENV_ONLY_ENDPOINT" not in env_of(webhook_deployment(render()))


@pytest.mark.parametrize("endpoint", ["gateway:4317", "http://u:p@gw", "http://gw/?x=1"])
def test_a_bad_env_only_endpoint_is_rejected_by_the_schema(render_error: RenderError, endpoint: str) -> None:
    message = render_error(f"injection.endpoint={endpoint}")
    assert _mentions(message, "injection.endpoint"), message
