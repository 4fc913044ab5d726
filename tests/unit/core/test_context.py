"""The cluster context's helpers: what a Namespace passes on, what the envFrom cache keeps,
which ConfigMaps a pod references, and the collector config names."""

from __future__ import annotations

from webhook.core import appenv, names
from webhook.core.context import (
    _OURS,
    MAX_ENV_VALUE,
    NO_CONTEXT,
    NOT_INHERITED,
    collector_config_name,
    copy_name,
    env_from_config_maps,
    is_traced_namespace,
    namespace_defaults,
    otel_keys,
)


def test_no_context_knows_nothing_and_does_not_look_at_env_from() -> None:
    assert dict(NO_CONTEXT.namespace_annotations) == {}
    assert dict(NO_CONTEXT.collector_configs) == {}
    assert NO_CONTEXT.config_maps is None
    assert NO_CONTEXT.notices == ()


def test_a_namespace_passes_on_its_overrides_only() -> None:
    annotations = {
        "otel-injector.io/memory-limit": "512Mi",
        "otel-injector.io/collector-config": "team-a",
        "otel-injector.io/typo": "x",  # passed on: the pod hears it is unknown
        names.STATUS_ANNOTATION: "{}",
        "otel-injector.io/auto-restart": "true",
        "example.com/owner": "me",
        "otel-injector.io/number": 3,
    }
    assert dict(namespace_defaults(annotations)) == {
        "otel-injector.io/memory-limit": "512Mi",
        "otel-injector.io/collector-config": "team-a",
        "otel-injector.io/typo": "x",
    }
    assert names.STATUS_ANNOTATION in NOT_INHERITED
    assert dict(namespace_defaults({})) == {}


def test_traced_namespace_is_the_label() -> None:
    assert is_traced_namespace({"tracing": "enabled"})
    assert not is_traced_namespace({"tracing": "disabled"})
    assert not is_traced_namespace({})


def test_otel_keys_keep_otel_keys_and_our_names_without_the_prefix() -> None:
    data = {
        "OTEL_SERVICE_NAME": "a",
        "OTEL_SOMETHING_ELSE": "b",
        "SERVICE_NAME": "c",  # becomes OTEL_SERVICE_NAME under prefix OTEL_
        "NAME": "d",
        "LOG_LEVEL": "debug",
        "OTEL_RESOURCE_ATTRIBUTES": "x" * (MAX_ENV_VALUE + 10),
    }
    kept = otel_keys(data)
    assert set(kept) == {"OTEL_SERVICE_NAME", "OTEL_SOMETHING_ELSE", "SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"}
    assert len(kept["OTEL_RESOURCE_ATTRIBUTES"]) == MAX_ENV_VALUE
    assert otel_keys({"A": "1"}) is otel_keys(None)  # one shared empty mapping


def test_our_names_list_every_variable_appenv_sets() -> None:
    ours = {appenv.ENDPOINT, appenv.PROTOCOL, appenv.SERVICE_NAME, appenv.RESOURCE_ATTRIBUTES, appenv.PROPAGATORS}
    ours |= {var for var, _, _ in names.APP_DOWNWARD_ENV}
    assert ours == _OURS


def test_env_from_config_maps_tolerates_any_shape() -> None:
    pod = {
        "spec": {
            "containers": [
                {
                    "envFrom": [
                        {"configMapRef": {"name": "a"}},
                        {"secretRef": {"name": "s"}},
                        "junk",
                        {"configMapRef": 3},
                    ]
                },
                {"envFrom": "junk"},
                "junk",
            ],
            "initContainers": [{"envFrom": [{"configMapRef": {"name": "b"}}]}],
        }
    }
    assert list(env_from_config_maps(pod)) == ["a", "b"]
    assert list(env_from_config_maps({"spec": []})) == []


def test_collector_config_names_are_dns_labels() -> None:
    label = "otel-injector.io/collector-config"
    assert collector_config_name({label: "team-a"}) == "team-a"
    assert collector_config_name({label: "Team_A"}) is None
    assert collector_config_name({label: "x" * 64}) is None
    assert collector_config_name({}) is None
    assert copy_name(names.CONFIGMAP_NAME, "team-a") == "otel-collector-sidecar-team-a"
