"""Resource attributes by the OTel k8s conventions: annotations, labels, image tags,
service.instance.id, the ReplicaSet; encoding, and what is rejected with a warning."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhook.core.resource import (
    MAX_ANNOTATED,
    MAX_VALUE_LENGTH,
    NO_RESOURCE,
    Encoded,
    PodResource,
    container_attributes,
    format_value,
    image_tag,
    read_pod_resource,
)
from webhook.core.workload import Workload

POD_NAME = "$(OTEL_RESOURCE_ATTRIBUTES_POD_NAME)"


def read(annotations: dict[str, Any] | None = None, labels: dict[str, Any] | None = None, **metadata: Any) -> Any:
    return read_pod_resource(metadata, labels or {}, annotations or {})


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("nginx:1.27", "1.27"),
        ("registry.example:5000/team/app:2.3.4", "2.3.4"),
        ("registry.example:5000/team/app", None),  # the port is not a tag
        ("localhost:5000/app", None),
        ("app@sha256:" + "a" * 64, None),  # a digest is not a version
        ("registry:5000/app:1.0.0@sha256:" + "a" * 64, "1.0.0"),
        ("busybox", None),
        ("busybox:latest", None),
        ("app:-bad", None),
        ("app:" + "1" * 129, None),
        ("", None),
        (None, None),
        (7, None),
    ],
)
def test_image_tag(image: object, tag: str | None) -> None:
    assert image_tag(image) == tag


def test_nothing_to_read_is_no_resource() -> None:
    assert read() == (NO_RESOURCE, [])


def test_labels_give_service_namespace_and_version() -> None:
    labels = {"app.kubernetes.io/part-of": "storefront", "app.kubernetes.io/version": " 4.1.0 "}
    resource, notices = read(labels=labels)
    assert notices == []
    assert resource.derived == (("service.namespace", "storefront"),)
    attrs = container_attributes(resource, [], namespace="shop", container_name="app", image="app:9")
    assert ("service.version", "4.1.0") in attrs  # the label wins over the image tag


def test_image_tag_is_the_version_without_a_label() -> None:
    attrs = container_attributes(NO_RESOURCE, [], namespace="shop", container_name="app", image="app:9")
    assert attrs == [("service.version", "9"), ("service.instance.id", f"shop.{POD_NAME}.app")]


def test_replicaset_from_owner_or_generate_name() -> None:
    owner = [{"kind": "ReplicaSet", "name": "web-5d8f", "controller": True}]
    assert read(ownerReferences=owner)[0].derived == (("k8s.replicaset.name", "web-5d8f"),)
    generated = read(labels={"pod-template-hash": "5d8f"}, generateName="web-5d8f-")[0]
    assert generated.derived == (("k8s.replicaset.name", "web-5d8f"),)
    job = [{"kind": "Job", "name": "j", "controller": True}]
    assert read(ownerReferences=job)[0] == NO_RESOURCE
    assert read(labels={"pod-template-hash": "5d8f"}, generateName="other-")[0] == NO_RESOURCE
    # A ReplicaSet without a Deployment is the workload itself: its attributes name it already.
    alone = read_pod_resource({"ownerReferences": owner}, {}, {}, Workload("ReplicaSet", "web-5d8f"))[0]
    assert alone == NO_RESOURCE


def test_long_names_are_capped_with_a_notice() -> None:
    owner = [{"kind": "ReplicaSet", "name": "r" * 300, "controller": True}]
    resource, notices = read(labels={"app.kubernetes.io/part-of": "p" * 100}, ownerReferences=owner)
    assert dict(resource.derived) == {"k8s.replicaset.name": "r" * 253, "service.namespace": "p" * 63}
    assert [n.reason for n in notices] == ["capped-value", "capped-value"]


def test_annotations_are_encoded_and_win_over_derived() -> None:
    annotations = {
        "resource.opentelemetry.io/team": 'a,b=c; "d" $(HOME) 100% ü',
        "resource.opentelemetry.io/service.version": "v2",
        "resource.opentelemetry.io/k8s.namespace.name": "other",
        "resource.opentelemetry.io/replicas": 3,  # an unquoted YAML number in a manifest
    }
    resource, notices = read(annotations, labels={"app.kubernetes.io/version": "1"})
    assert notices == []
    k8s = [("k8s.namespace.name", "shop"), ("k8s.container.name", "app")]
    attrs = container_attributes(resource, k8s, namespace="shop", container_name="app", image="x:1")
    keys = [k for k, _ in attrs]
    assert len(keys) == len(set(keys))
    values = {k: unquote(format_value(v)) for k, v in attrs}
    assert values["team"] == 'a,b=c; "d" $(HOME) 100% ü'
    assert "$" not in format_value(dict(attrs)["team"])  # the kubelet expands nothing of theirs
    assert values["service.version"] == "v2"
    assert values["k8s.namespace.name"] == "other"
    assert values["replicas"] == "3"


def test_service_name_annotation_is_kept_for_otel_service_name() -> None:
    resource, _ = read({"resource.opentelemetry.io/service.name": "cart"})
    assert resource.service_name == "cart"
    assert resource.annotated == ()


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("resource.opentelemetry.io/", "x", "is not a valid attribute key"),
        ("resource.opentelemetry.io/a=b", "x", "is not a valid attribute key"),
        ("resource.opentelemetry.io/a,b", "x", "is not a valid attribute key"),
        ("resource.opentelemetry.io/-a", "x", "is not a valid attribute key"),
        ("resource.opentelemetry.io/" + "k" * 64, "x", "is not a valid attribute key"),
        ("resource.opentelemetry.io/a/b", "x", "is not a valid attribute key"),
        ("resource.opentelemetry.io/team", "", "the value is empty"),
        ("resource.opentelemetry.io/team", "  ", "the value is empty"),
        ("resource.opentelemetry.io/team", "a\nb", "the value has control characters"),
        ("resource.opentelemetry.io/team", "v" * (MAX_VALUE_LENGTH + 1), "the value is longer than"),
        ("resource.opentelemetry.io/team", ["a"], "the value is not text"),
        ("resource.opentelemetry.io/team", True, "the value is not text"),
    ],
)
def test_rejected_annotations_warn_and_are_left_out(key: str, value: Any, why: str) -> None:
    resource, notices = read({key: value})
    assert resource == NO_RESOURCE
    assert len(notices) == 1
    assert notices[0].reason == "invalid-resource-attribute"
    assert why in notices[0].message
    assert notices[0].message.endswith("; ignored")
    assert len(notices[0].message) < 400


def test_at_most_so_many_annotations_and_one_line_for_the_rest() -> None:
    annotations = {f"resource.opentelemetry.io/k{i:03}": "v" for i in range(MAX_ANNOTATED + 50)}
    resource, notices = read(annotations)
    assert len(resource.annotated) == MAX_ANNOTATED
    assert resource.annotated[0][0] == "k000"  # the first in key order
    assert [n.message for n in notices] == [
        f"50 resource.opentelemetry.io/ annotations beyond the first {MAX_ANNOTATED} ignored"
    ]


def test_derived_values_keep_our_references_and_encode_the_rest() -> None:
    assert format_value(f"ns.{POD_NAME}.app") == f"ns.{POD_NAME}.app"
    assert format_value("a b,c") == "a%20b%2Cc"
    assert format_value(Encoded("a%20b")) == "a%20b"


def test_pod_resource_is_immutable() -> None:
    with pytest.raises(AttributeError):
        PodResource().version = "x"  # type: ignore[misc]


@given(st.text(min_size=1, max_size=MAX_VALUE_LENGTH))
def test_any_accepted_value_round_trips_through_the_sdk_decoding(value: str) -> None:
    resource, notices = read({"resource.opentelemetry.io/any": value})
    if notices:
        return
    ((key, encoded),) = resource.annotated
    text = f"{key}={format_value(encoded)}"
    # What an SDK does: split on "," and the first "=", trim, percent-decode the value.
    ((parsed_key, parsed_value),) = [item.split("=", 1) for item in text.split(",")]
    assert parsed_key == "any"
    assert unquote(parsed_value.strip()) == value.strip()
    assert "$" not in text
    assert " " not in text
