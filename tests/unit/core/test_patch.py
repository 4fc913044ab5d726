"""The JSON patch between the original and the injected pod."""

from __future__ import annotations

import copy
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from webhook.core.injection import inject_pod
from webhook.core.patch import EMPTY, Patch, apply_patch, make_patch
from webhook.core.settings import InjectionSettings


def pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {"example.com/a": "1"}},
        "spec": {
            "initContainers": [{"name": "migrate", "image": "m"}, {"name": "warmup", "image": "w"}],
            "containers": [{"name": "app", "image": "nginx"}],
        },
    }


def test_equal_documents_give_empty_patch() -> None:
    assert make_patch(pod(), pod()) is EMPTY
    same = pod()
    assert make_patch(same, same) is EMPTY
    assert EMPTY.operations == []
    assert EMPTY.body == b"[]"
    assert len(EMPTY) == 0


def test_patch_applies_to_the_mutated_document() -> None:
    original = pod()
    result = inject_pod(original, InjectionSettings(), namespace="shop")
    patch = make_patch(original, result.pod)
    assert len(patch) == len(patch.operations) > 0
    assert orjson.loads(patch.body) == patch.operations
    assert apply_patch(original, patch) == result.pod
    assert apply_patch(original, patch.operations) == result.pod
    assert original == pod()


def test_annotation_and_label_keys_are_escaped() -> None:
    original = pod()
    mutated = copy.deepcopy(original)
    mutated["metadata"]["annotations"]["otel-injector.io/status"] = "{}"
    mutated["metadata"]["annotations"]["a~b/c"] = "x"
    mutated["metadata"]["labels"]["app.kubernetes.io/name"] = "web"
    patch = make_patch(original, mutated)
    assert sorted(patch.operations, key=lambda op: op["path"]) == [
        {"op": "add", "path": "/metadata/annotations/a~0b~1c", "value": "x"},
        {"op": "add", "path": "/metadata/annotations/otel-injector.io~1status", "value": "{}"},
        {"op": "add", "path": "/metadata/labels/app.kubernetes.io~1name", "value": "web"},
    ]
    assert apply_patch(original, patch) == mutated


def test_insert_at_front_of_init_containers_is_one_add() -> None:
    original = pod()
    mutated = copy.deepcopy(original)
    sidecar = {"name": "otel-collector", "image": "otelcol", "restartPolicy": "Always"}
    mutated["spec"]["initContainers"].insert(0, sidecar)
    patch = make_patch(original, mutated)
    assert patch.operations == [{"op": "add", "path": "/spec/initContainers/0", "value": sidecar}]


def test_missing_annotations_get_one_add_of_the_map() -> None:
    original = pod()
    del original["metadata"]["annotations"]
    result = inject_pod(original, InjectionSettings(), namespace="shop")
    patch = make_patch(original, result.pod)
    annotation_ops = [op for op in patch.operations if op["path"].startswith("/metadata/annotations")]
    assert annotation_ops == [
        {"op": "add", "path": "/metadata/annotations", "value": dict(result.pod["metadata"]["annotations"])}
    ]
    assert apply_patch(original, patch) == result.pod


def test_injection_patch_only_adds() -> None:
    original = pod()
    result = inject_pod(original, InjectionSettings(), namespace="shop")
    patch = make_patch(original, result.pod)
    assert {op["op"] for op in patch.operations} == {"add"}
    paths = {op["path"] for op in patch.operations}
    assert "/spec/initContainers/0" in paths
    assert "/spec/volumes" in paths
    assert "/metadata/annotations/otel-injector.io~1status" in paths


def test_patch_type() -> None:
    patch = make_patch({"a": 1}, {"a": 2})
    assert isinstance(patch, Patch)
    assert patch.operations == [{"op": "replace", "path": "/a", "value": 2}]
    assert patch.body == b'[{"op":"replace","path":"/a","value":2}]'


KEYS = st.text(alphabet="ab/~.-", min_size=1, max_size=5)
# Kubernetes integers are int64, as are orjson's.
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.text(max_size=4),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=3),
    max_leaves=10,
)


@given(st.dictionaries(KEYS, VALUES, max_size=4), st.dictionaries(KEYS, VALUES, max_size=4))
def test_patch_round_trip(original: dict[str, Any], mutated: dict[str, Any]) -> None:
    before = copy.deepcopy(original)
    assert apply_patch(original, make_patch(original, mutated)) == mutated
    assert original == before
