"""Property-based tests over generated pods (hypothesis).

For any pod: the patch applies cleanly; injecting the result again is a no-op (empty
patch); the app containers' own fields are unchanged apart from env; and the result
validates against the Kubernetes 1.36 Pod schema (kubernetes-validate, strict).
"""

from __future__ import annotations

import copy
import re
from typing import Any
from urllib.parse import unquote

import kubernetes_validate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webhook.core import names
from webhook.core.injection import inject_pod
from webhook.core.patch import apply_patch, make_patch
from webhook.core.settings import InjectionSettings

K8S_VERSION = "1.36"
SETTINGS = InjectionSettings()

dns_label = st.from_regex(r"[a-z]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
env_name = st.from_regex(r"[A-Z_][A-Z0-9_]{0,12}", fullmatch=True)
label_key = st.one_of(dns_label, st.builds(lambda p, n: f"{p}.io/{n}", dns_label, dns_label))
label_value = st.from_regex(r"([a-z0-9]([a-z0-9._-]{0,8}[a-z0-9])?)?", fullmatch=True)
text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=20)


@st.composite
def env_var(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(
        st.one_of(
            env_name,
            st.sampled_from(
                [
                    "OTEL_SERVICE_NAME",
                    "OTEL_RESOURCE_ATTRIBUTES",
                    "OTEL_EXPORTER_OTLP_PROTOCOL",
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                ]
            ),
        )
    )
    if draw(st.booleans()):
        return {"name": name, "value": draw(text)}
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}


@st.composite
def container(draw: st.DrawFn, name: str) -> dict[str, Any]:
    result: dict[str, Any] = {"name": name, "image": draw(st.sampled_from(["nginx:1.27", "busybox", "app:1"]))}
    if draw(st.booleans()):
        envs = draw(st.lists(env_var(), max_size=8, unique_by=lambda e: e["name"]))
        result["env"] = envs
    if draw(st.booleans()):
        result["ports"] = [
            {"containerPort": draw(st.integers(1, 65535).filter(lambda p: p not in names.COLLECTOR_PORTS))}
        ]
    if draw(st.booleans()):
        result["args"] = draw(st.lists(text, max_size=3))
    if draw(st.booleans()):
        result["resources"] = {"requests": {"cpu": "10m"}}
    return result


@st.composite
def pods(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 4))
    container_names = draw(
        st.lists(dns_label, min_size=count, max_size=count, unique=True).filter(
            lambda ns: names.CONTAINER_NAME not in ns
        )
    )
    metadata: dict[str, Any] = {"name": draw(dns_label)}
    if draw(st.booleans()):
        metadata["labels"] = draw(st.dictionaries(label_key, label_value, max_size=4))
        metadata["labels"].pop(names.TRACING_LABEL, None)
    if draw(st.booleans()):
        metadata["annotations"] = draw(st.dictionaries(label_key, text, max_size=3))
    spec: dict[str, Any] = {"containers": [draw(container(n)) for n in container_names]}
    if draw(st.booleans()):
        init_name = draw(dns_label.filter(lambda n: n not in container_names and n != names.CONTAINER_NAME))
        spec["initContainers"] = [{"name": init_name, "image": "busybox"}]
    if draw(st.booleans()):
        spec["volumes"] = [{"name": "data", "emptyDir": {}}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(pods())
def test_patch_applies_and_equals_the_injected_pod(pod: dict[str, Any]) -> None:
    original = copy.deepcopy(pod)
    result = inject_pod(pod, SETTINGS, namespace="shop")
    assert pod == original, "the input pod must not be modified"
    assert result.injected
    patch = make_patch(pod, result.pod)
    assert apply_patch(pod, patch) == result.pod


@PROPERTY_SETTINGS
@given(pods())
def test_injecting_twice_equals_injecting_once(pod: dict[str, Any]) -> None:
    once = inject_pod(pod, SETTINGS, namespace="shop").pod
    twice = inject_pod(once, SETTINGS, namespace="shop")
    assert not twice.injected
    assert make_patch(once, twice.pod).operations == []


@PROPERTY_SETTINGS
@given(pods())
def test_app_containers_change_only_in_env(pod: dict[str, Any]) -> None:
    result = inject_pod(pod, SETTINGS, namespace="shop").pod
    before = pod["spec"]["containers"]
    after = result["spec"]["containers"]
    assert len(after) == len(before)
    for old, new in zip(before, after, strict=True):
        assert {k: v for k, v in old.items() if k != "env"} == {k: v for k, v in new.items() if k != "env"}
        old_env = {e["name"]: e for e in old.get("env", [])}
        new_env = {e["name"]: e for e in new.get("env", [])}
        for var, entry in old_env.items():
            if var == "OTEL_RESOURCE_ATTRIBUTES" and "value" in entry:
                assert new_env[var]["value"].startswith(entry["value"]), "the user's attributes must be kept"
            else:
                assert new_env[var] == entry, f"{var} was changed"
    assert result["spec"].get("volumes", [])[: len(pod["spec"].get("volumes", []))] == pod["spec"].get("volumes", [])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pods(), st.sampled_from(["native", "container", "none"]))
def test_result_validates_against_the_pod_schema(pod: dict[str, Any], mode: str) -> None:
    pod["metadata"].setdefault("annotations", {})["otel-injector.io/sidecar-mode"] = mode
    pod["metadata"]["annotations"]["otel-injector.io/endpoint"] = "node"
    result = inject_pod(pod, SETTINGS, namespace="shop").pod
    kubernetes_validate.validate(result, K8S_VERSION, strict=True)


@PROPERTY_SETTINGS
@given(pods(), st.sampled_from(["native", "none"]), st.dictionaries(dns_label, text, max_size=3))
def test_every_reference_we_add_resolves_and_user_attributes_survive(
    pod: dict[str, Any], mode: str, attributes: dict[str, str]
) -> None:
    """The kubelet expands ``$(VAR)`` only from variables defined earlier: each reference in
    a value we add names one; and resource.opentelemetry.io values reach the env unchanged
    after the SDK's percent-decoding (or are refused with a warning)."""
    annotations = pod["metadata"].setdefault("annotations", {})
    annotations.update({"otel-injector.io/sidecar-mode": mode, "otel-injector.io/endpoint": "node"})
    annotations.update({f"resource.opentelemetry.io/{k}": v for k, v in attributes.items()})
    result = inject_pod(pod, SETTINGS, namespace="shop")
    refused = {m.split(": ", 2)[1] for m in result.warnings if "resource.opentelemetry.io/" in m}
    for old, new in zip(pod["spec"]["containers"], result.pod["spec"]["containers"], strict=True):
        user_env = {e["name"] for e in old.get("env", [])}
        defined: set[str] = set()
        for entry in new.get("env", []):
            value = entry.get("value")
            if entry["name"] not in user_env and isinstance(value, str):
                for ref in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", value):
                    assert ref in defined, f"{entry['name']} references {ref} before it is defined"
            defined.add(entry["name"])
        ours = {e["name"]: e.get("value") for e in new.get("env", [])}.get("OTEL_RESOURCE_ATTRIBUTES")
        if "OTEL_RESOURCE_ATTRIBUTES" in user_env or not isinstance(ours, str):
            continue
        decoded = {k: unquote(v) for k, v in (item.split("=", 1) for item in ours.split(","))}
        for key, value in attributes.items():
            if f"resource.opentelemetry.io/{key}" not in refused and key != "service.name":
                assert decoded[key] == value.strip()


def test_schema_validation_can_fail() -> None:
    """Guard against a validator that accepts anything: a broken sidecar must be rejected."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "a", "image": "x"}]},
    }
    result = copy.deepcopy(dict(inject_pod(pod, SETTINGS, namespace="shop").pod))
    result["spec"]["initContainers"][0]["restartPolicy"] = 5
    try:
        kubernetes_validate.validate(result, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError:
        return
    raise AssertionError("an invalid pod passed schema validation")
