"""DocumentView: the CLI's cluster context from the Namespace and ConfigMap documents of its input."""

from __future__ import annotations

from webhook.core.documents import WHERE, DocumentView
from webhook.core.settings import config_hash

LABEL = "otel-injector.io/collector-config"
DOCS = [
    {"kind": "Namespace", "metadata": {"name": "shop", "annotations": {"otel-injector.io/image": "x:1", "a": "b"}}},
    {
        "kind": "List",
        "items": [
            {
                "kind": "ConfigMap",
                "metadata": {"name": "src", "namespace": "otel-injector", "labels": {LABEL: "team-a"}},
                "data": {"config.yaml": "receivers: {}\n"},
            }
        ],
    },
    {
        "kind": "ConfigMap",
        "metadata": {"name": "elsewhere", "namespace": "shop", "labels": {LABEL: "team-x"}},
        "data": {"config.yaml": "receivers: {}\n"},
    },
    {"kind": "ConfigMap", "metadata": {"name": "app", "namespace": "shop"}, "data": {"OTEL_SERVICE_NAME": "s"}},
    {"kind": "ConfigMap", "metadata": {"name": "app"}, "data": {"OTEL_SERVICE_NAME": "in-default"}},
    "junk",
    {"kind": "ConfigMap", "metadata": {"name": 3}},
]
POD = {"spec": {"containers": [{"envFrom": [{"configMapRef": {"name": "app"}}, {"configMapRef": {"name": "no"}}]}]}}


def test_the_input_gives_namespace_defaults_named_configs_and_env_from() -> None:
    view = DocumentView(DOCS, injector_namespace="otel-injector")
    context = view.context_for(POD, "shop")
    assert dict(context.namespace_annotations) == {"otel-injector.io/image": "x:1"}
    assert dict(context.collector_configs) == {"team-a": config_hash(b"receivers: {}\n")}
    assert context.config_maps == {"app": {"OTEL_SERVICE_NAME": "s"}}
    assert context.where == WHERE
    other = view.context_for(POD, "default")
    assert dict(other.namespace_annotations) == {}
    assert other.config_maps == {"app": {"OTEL_SERVICE_NAME": "in-default"}}


def test_the_namespace_flag_moves_every_configmap() -> None:
    view = DocumentView(DOCS, namespace="staging")
    assert view.context_for(POD, "staging").config_maps == {"app": {"OTEL_SERVICE_NAME": "in-default"}}
