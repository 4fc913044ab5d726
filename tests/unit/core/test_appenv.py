"""OTEL_* env vars for app containers: the user's env always wins."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from webhook.core.appenv import PodIdentity, inject_env, pod_service_name, service_name_for
from webhook.core.endpoint import NODE_ENDPOINT, AppEndpoint
from webhook.core.overrides import Notice
from webhook.core.resource import Encoded, PodResource
from webhook.core.settings import InjectionSettings
from webhook.core.workload import Workload

SETTINGS = InjectionSettings()
DEPLOYMENT = PodIdentity(namespace="shop", workload=Workload("Deployment", "checkout"), service_name=None)
HELPERS: list[dict[str, Any]] = [
    {
        "name": "OTEL_RESOURCE_ATTRIBUTES_POD_NAME",
        "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}},
    },
    {
        "name": "OTEL_RESOURCE_ATTRIBUTES_POD_UID",
        "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.uid"}},
    },
    {
        "name": "OTEL_RESOURCE_ATTRIBUTES_NODE_NAME",
        "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}},
    },
]
HELPER_NAMES = [h["name"] for h in HELPERS]
POD_ATTRS = (
    "k8s.pod.name=$(OTEL_RESOURCE_ATTRIBUTES_POD_NAME),"
    "k8s.pod.uid=$(OTEL_RESOURCE_ATTRIBUTES_POD_UID),"
    "k8s.node.name=$(OTEL_RESOURCE_ATTRIBUTES_NODE_NAME)"
)


def instance_id(namespace: str, container: str) -> str:
    """The ``service.instance.id`` attribute the conventions give a container."""
    return f"service.instance.id={namespace}.$(OTEL_RESOURCE_ATTRIBUTES_POD_NAME).{container}"


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def names_of(container: dict[str, Any]) -> list[str]:
    return [e["name"] for e in container["env"]]


def test_container_without_env_gets_everything_in_order() -> None:
    container: dict[str, Any] = {"name": "app", "image": "shop/checkout:1"}
    added, notices = inject_env(container, DEPLOYMENT, SETTINGS)
    assert notices == []
    assert container["env"] == [
        *HELPERS,
        {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://localhost:4318"},
        {"name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": "http/protobuf"},
        {"name": "OTEL_SERVICE_NAME", "value": "checkout"},
        {"name": "OTEL_PROPAGATORS", "value": "tracecontext,baggage"},
        {
            "name": "OTEL_RESOURCE_ATTRIBUTES",
            "value": f"k8s.namespace.name=shop,{POD_ATTRS},k8s.deployment.name=checkout,k8s.container.name=app,"
            f"service.version=1,{instance_id('shop', 'app')}",
        },
    ]
    assert added == [
        *HELPER_NAMES,
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_SERVICE_NAME",
        "OTEL_PROPAGATORS",
        "OTEL_RESOURCE_ATTRIBUTES",
    ]
    assert container["image"] == "shop/checkout:1"


def test_grpc_setting_uses_grpc_port() -> None:
    container: dict[str, Any] = {"name": "app"}
    inject_env(container, DEPLOYMENT, InjectionSettings(app_otlp_protocol="grpc"))
    env = env_of(container)
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://localhost:4317"
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"


def test_user_env_is_appended_after_and_never_overridden() -> None:
    user = [
        {"name": "OTEL_SERVICE_NAME", "value": "mine"},
        {"name": "OTEL_PROPAGATORS", "value": "b3"},
        {"name": "DB_URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}},
    ]
    container: dict[str, Any] = {"name": "app", "env": copy.deepcopy(user)}
    added, _ = inject_env(container, DEPLOYMENT, SETTINGS)
    assert container["env"][:3] == user
    assert env_of(container)["OTEL_SERVICE_NAME"] == "mine"
    assert env_of(container)["OTEL_PROPAGATORS"] == "b3"
    assert "OTEL_SERVICE_NAME" not in added
    assert "OTEL_PROPAGATORS" not in added
    assert names_of(container).count("OTEL_SERVICE_NAME") == 1


def test_existing_literal_resource_attributes_are_merged_after_helpers() -> None:
    container: dict[str, Any] = {
        "name": "app",
        "env": [
            {"name": "FOO", "value": "1"},
            {"name": "OTEL_RESOURCE_ATTRIBUTES", "value": "team=payments,k8s.namespace.name=custom"},
            {"name": "BAR", "value": "2"},
        ],
    }
    added, notices = inject_env(container, DEPLOYMENT, SETTINGS)
    assert notices == []
    order = names_of(container)
    assert order == [
        "FOO",
        *HELPER_NAMES,
        "OTEL_RESOURCE_ATTRIBUTES",
        "BAR",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_SERVICE_NAME",
        "OTEL_PROPAGATORS",
    ]
    # The kubelet only expands $(VAR) for variables defined earlier in the list.
    attrs_at = order.index("OTEL_RESOURCE_ATTRIBUTES")
    assert all(order.index(helper) < attrs_at for helper in HELPER_NAMES)
    # The user's keys stay, the user's value for a key we also set wins, ours follow.
    assert env_of(container)["OTEL_RESOURCE_ATTRIBUTES"] == (
        f"team=payments,k8s.namespace.name=custom,{POD_ATTRS},k8s.deployment.name=checkout,k8s.container.name=app,"
        + instance_id("shop", "app")
    )
    assert added == [
        *HELPER_NAMES,
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_SERVICE_NAME",
        "OTEL_PROPAGATORS",
        "OTEL_RESOURCE_ATTRIBUTES",
    ]


def test_existing_attributes_with_trailing_comma_and_empty() -> None:
    for value, expected_prefix in (("team=a,", "team=a,"), ("", "")):
        container: dict[str, Any] = {"name": "c", "env": [{"name": "OTEL_RESOURCE_ATTRIBUTES", "value": value}]}
        inject_env(container, PodIdentity("ns", None, None), SETTINGS)
        assert env_of(container)["OTEL_RESOURCE_ATTRIBUTES"] == (
            f"{expected_prefix}k8s.namespace.name=ns,{POD_ATTRS},k8s.container.name=c,{instance_id('ns', 'c')}"
        )


def test_existing_attributes_that_already_have_every_key_are_untouched() -> None:
    full = f"k8s.namespace.name=x,{POD_ATTRS},k8s.container.name=app,service.instance.id=mine"
    container: dict[str, Any] = {"name": "app", "env": [{"name": "OTEL_RESOURCE_ATTRIBUTES", "value": full}]}
    added, _ = inject_env(container, PodIdentity("shop", None, None), SETTINGS)
    assert container["env"][0] == {"name": "OTEL_RESOURCE_ATTRIBUTES", "value": full}
    assert "OTEL_RESOURCE_ATTRIBUTES" not in added
    assert not set(HELPER_NAMES) & set(names_of(container))


def test_resource_attributes_from_value_from_left_alone() -> None:
    value_from = {"configMapKeyRef": {"name": "otel", "key": "attrs"}}
    container: dict[str, Any] = {
        "name": "app",
        "env": [{"name": "OTEL_RESOURCE_ATTRIBUTES", "valueFrom": value_from}],
    }
    added, notices = inject_env(container, DEPLOYMENT, SETTINGS)
    assert container["env"][0] == {"name": "OTEL_RESOURCE_ATTRIBUTES", "valueFrom": value_from}
    assert notices == [
        Notice(
            "attributes-from-valuefrom",
            "container app: OTEL_RESOURCE_ATTRIBUTES comes from valueFrom; left as it is, without the k8s.* attributes",
        )
    ]
    assert "OTEL_RESOURCE_ATTRIBUTES" not in added
    assert not set(HELPER_NAMES) & set(names_of(container))
    assert names_of(container) == [
        "OTEL_RESOURCE_ATTRIBUTES",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_SERVICE_NAME",
        "OTEL_PROPAGATORS",
    ]


@pytest.mark.parametrize(
    ("protocol", "endpoint"),
    [
        ("grpc", "http://localhost:4317"),
        ("http/protobuf", "http://localhost:4318"),
        ("http/json", "http://localhost:4318"),
    ],
)
def test_user_protocol_only_gets_matching_endpoint(protocol: str, endpoint: str) -> None:
    container: dict[str, Any] = {"name": "app", "env": [{"name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": protocol}]}
    added, _ = inject_env(container, DEPLOYMENT, SETTINGS)
    assert env_of(container)["OTEL_EXPORTER_OTLP_ENDPOINT"] == endpoint
    assert env_of(container)["OTEL_EXPORTER_OTLP_PROTOCOL"] == protocol
    assert names_of(container).count("OTEL_EXPORTER_OTLP_PROTOCOL") == 1
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in added
    assert "OTEL_EXPORTER_OTLP_PROTOCOL" not in added


def test_user_protocol_we_do_not_know_gets_no_endpoint() -> None:
    container: dict[str, Any] = {
        "name": "app",
        "env": [{"name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": "carrier-pigeon"}],
    }
    added, _ = inject_env(container, DEPLOYMENT, SETTINGS)
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in names_of(container)
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in added


def test_user_endpoint_only_gets_neither() -> None:
    container: dict[str, Any] = {
        "name": "app",
        "env": [{"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://collector.obs:4317"}],
    }
    added, _ = inject_env(container, DEPLOYMENT, SETTINGS)
    assert names_of(container).count("OTEL_EXPORTER_OTLP_ENDPOINT") == 1
    assert env_of(container)["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector.obs:4317"
    assert "OTEL_EXPORTER_OTLP_PROTOCOL" not in names_of(container)
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in added
    assert "OTEL_EXPORTER_OTLP_PROTOCOL" not in added


def test_cronjob_job_attributes_and_name() -> None:
    identity = PodIdentity("batch", Workload("Job", "report-29012345"), None)
    container: dict[str, Any] = {"name": "runner"}
    inject_env(container, identity, SETTINGS)
    env = env_of(container)
    assert env["OTEL_SERVICE_NAME"] == "report"
    assert env["OTEL_RESOURCE_ATTRIBUTES"] == (
        f"k8s.namespace.name=batch,{POD_ATTRS},k8s.job.name=report-29012345,"
        f"k8s.cronjob.name=report,k8s.container.name=runner,{instance_id('batch', 'runner')}"
    )


def test_attribute_values_are_percent_encoded() -> None:
    identity = PodIdentity("ns", Workload("Deployment", "a,b=c d"), None)
    container: dict[str, Any] = {"name": "app"}
    inject_env(container, identity, SETTINGS)
    assert "k8s.deployment.name=a%2Cb%3Dc%20d," in env_of(container)["OTEL_RESOURCE_ATTRIBUTES"]


def test_service_name_precedence() -> None:
    workload = Workload("StatefulSet", "db")
    labels = {"app.kubernetes.io/name": "k8s-name", "app": "app-label"}
    assert pod_service_name("from-annotation", labels) == "from-annotation"
    assert pod_service_name(None, labels) == "k8s-name"
    assert pod_service_name(None, {"app": " app-label "}) == "app-label"
    assert pod_service_name("  ", {"app": ""}) is None
    assert pod_service_name(None, {"app": 3}) is None

    assert service_name_for(PodIdentity("ns", workload, "explicit"), "c") == "explicit"
    assert service_name_for(PodIdentity("ns", workload, None), "c") == "db"
    assert service_name_for(PodIdentity("ns", None, None), "c") == "c"


def test_service_name_label_beats_workload_in_env() -> None:
    identity = PodIdentity("ns", Workload("Deployment", "checkout"), pod_service_name(None, {"app": "cart"}))
    container: dict[str, Any] = {"name": "app"}
    inject_env(container, identity, SETTINGS)
    assert env_of(container)["OTEL_SERVICE_NAME"] == "cart"


def test_bare_pod_service_name_is_container_name() -> None:
    container: dict[str, Any] = {"name": "sidecar-less"}
    inject_env(container, PodIdentity("ns", None, None), SETTINGS)
    assert env_of(container)["OTEL_SERVICE_NAME"] == "sidecar-less"


def test_user_helper_var_is_not_duplicated() -> None:
    own = {"name": "OTEL_RESOURCE_ATTRIBUTES_POD_NAME", "value": "fixed"}
    container: dict[str, Any] = {"name": "app", "env": [own]}
    inject_env(container, DEPLOYMENT, SETTINGS)
    assert names_of(container).count("OTEL_RESOURCE_ATTRIBUTES_POD_NAME") == 1
    assert container["env"][0] == own


def test_propagators_from_settings() -> None:
    container: dict[str, Any] = {"name": "app"}
    inject_env(container, DEPLOYMENT, InjectionSettings(propagators="b3multi"))
    assert env_of(container)["OTEL_PROPAGATORS"] == "b3multi"


def test_a_helper_the_user_defines_after_their_attributes_is_not_referenced() -> None:
    container = {
        "name": "app",
        "env": [
            {"name": "OTEL_RESOURCE_ATTRIBUTES", "value": "team=a"},
            {"name": "OTEL_RESOURCE_ATTRIBUTES_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
    }
    _, notices = inject_env(container, DEPLOYMENT, SETTINGS)
    value = env_of(container)["OTEL_RESOURCE_ATTRIBUTES"]
    assert "$(OTEL_RESOURCE_ATTRIBUTES_POD_NAME)" not in value
    assert "k8s.pod.name" not in value
    assert "k8s.pod.uid=$(OTEL_RESOURCE_ATTRIBUTES_POD_UID)" in value
    names = names_of(container)
    assert names.index("OTEL_RESOURCE_ATTRIBUTES_POD_UID") < names.index("OTEL_RESOURCE_ATTRIBUTES")
    assert [n.reason for n in notices] == ["attributes-helper-order"]


def test_a_helper_the_user_defines_before_their_attributes_is_used() -> None:
    container = {
        "name": "app",
        "env": [
            {"name": "OTEL_RESOURCE_ATTRIBUTES_POD_NAME", "value": "fixed"},
            {"name": "OTEL_RESOURCE_ATTRIBUTES", "value": "team=a"},
        ],
    }
    _, notices = inject_env(container, DEPLOYMENT, SETTINGS)
    assert "k8s.pod.name=$(OTEL_RESOURCE_ATTRIBUTES_POD_NAME)" in env_of(container)["OTEL_RESOURCE_ATTRIBUTES"]
    assert notices == []


# --- env only (webhook.core.endpoint) and the conventions' attributes ---


def test_node_endpoint_helper_comes_before_the_endpoint() -> None:
    container: dict[str, Any] = {"name": "app", "env": [{"name": "FOO", "value": "1"}]}
    added, _ = inject_env(container, DEPLOYMENT, SETTINGS, endpoint=NODE_ENDPOINT)
    order = names_of(container)
    assert order.index("FOO") < order.index("OTEL_NODE_IP") < order.index("OTEL_EXPORTER_OTLP_ENDPOINT")
    assert env_of(container)["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://$(OTEL_NODE_IP):4318"
    assert "OTEL_NODE_IP" in added


@pytest.mark.parametrize(("protocol", "port"), [("grpc", 4317), ("http/protobuf", 4318), ("http/json", 4318)])
def test_node_endpoint_follows_the_users_protocol(protocol: str, port: int) -> None:
    container: dict[str, Any] = {"name": "app", "env": [{"name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": protocol}]}
    inject_env(container, DEPLOYMENT, SETTINGS, endpoint=NODE_ENDPOINT)
    assert env_of(container)["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://$(OTEL_NODE_IP):{port}"


def test_node_endpoint_uses_the_users_own_node_ip_and_endpoint() -> None:
    mine = {"name": "OTEL_NODE_IP", "value": "10.1.2.3"}
    container: dict[str, Any] = {"name": "app", "env": [mine]}
    added, _ = inject_env(container, DEPLOYMENT, SETTINGS, endpoint=NODE_ENDPOINT)
    assert names_of(container).count("OTEL_NODE_IP") == 1
    assert container["env"][0] == mine
    assert "OTEL_NODE_IP" not in added
    own = {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://mine:4318"}
    container = {"name": "app", "env": [own]}
    inject_env(container, DEPLOYMENT, SETTINGS, endpoint=NODE_ENDPOINT)
    assert "OTEL_NODE_IP" not in names_of(container)  # nothing references it
    assert env_of(container)["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://mine:4318"


def test_url_endpoint_with_an_unknown_user_protocol_is_still_the_url() -> None:
    container: dict[str, Any] = {"name": "app", "env": [{"name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": "pigeon"}]}
    inject_env(container, DEPLOYMENT, SETTINGS, endpoint=AppEndpoint("url", "http://gw:4318"))
    assert env_of(container)["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://gw:4318"


def test_users_service_name_attribute_means_no_otel_service_name() -> None:
    container: dict[str, Any] = {
        "name": "app",
        "env": [{"name": "OTEL_RESOURCE_ATTRIBUTES", "value": "service.name=x"}],
    }
    added, _ = inject_env(container, DEPLOYMENT, SETTINGS)
    assert "OTEL_SERVICE_NAME" not in names_of(container)  # it would override the user's attribute
    assert "OTEL_SERVICE_NAME" not in added


def test_annotated_attributes_reach_the_env_encoded_and_users_keys_win() -> None:
    resource = PodResource(annotated=(("team", Encoded("a%2Cb")), ("tier", Encoded("web"))), version="9")
    identity = PodIdentity("shop", None, None, resource)
    container: dict[str, Any] = {"name": "app", "env": [{"name": "OTEL_RESOURCE_ATTRIBUTES", "value": "team=mine"}]}
    inject_env(container, identity, SETTINGS)
    value = env_of(container)["OTEL_RESOURCE_ATTRIBUTES"]
    assert value.startswith("team=mine,")
    assert "team=a%2Cb" not in value
    assert "tier=web" in value
    assert "service.version=9" in value


def test_instance_id_brings_its_pod_name_helper_even_when_the_user_set_k8s_pod_name() -> None:
    container: dict[str, Any] = {
        "name": "app",
        "env": [{"name": "OTEL_RESOURCE_ATTRIBUTES", "value": "k8s.pod.name=mine"}],
    }
    inject_env(container, DEPLOYMENT, SETTINGS)
    order = names_of(container)
    assert order.index("OTEL_RESOURCE_ATTRIBUTES_POD_NAME") < order.index("OTEL_RESOURCE_ATTRIBUTES")
    assert instance_id("shop", "app") in env_of(container)["OTEL_RESOURCE_ATTRIBUTES"]
