"""Type confusion in a pod: null is absent, any other wrong type is named by its path."""

from __future__ import annotations

from typing import Any

import pytest

from webhook.core.shape import ShapeError, check_pod_shape, shape_problem

GOOD: dict[str, Any] = {
    "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {}, "ownerReferences": []},
    "spec": {
        "containers": [{"name": "web", "env": [{"name": "A", "value": "b"}], "ports": [{"containerPort": 80}]}],
        "initContainers": [],
        "volumes": [{"name": "v"}],
    },
}


@pytest.mark.parametrize(
    "pod",
    [
        GOOD,
        {},
        {"metadata": None, "spec": None},
        {"metadata": {"labels": None, "annotations": None, "name": None, "ownerReferences": None}},
        {"spec": {"containers": None, "initContainers": None, "volumes": None}},
        {"spec": {"containers": [{"name": None, "env": None, "ports": None}]}},
        {"spec": {"containers": [{"env": [{"name": None, "value": 3}]}]}},
    ],
)
def test_usable_shapes(pod: dict[str, Any]) -> None:
    check_pod_shape(pod)
    assert shape_problem(pod) is None


@pytest.mark.parametrize(
    ("pod", "message"),
    [
        ({"metadata": []}, "metadata must be an object, not a list"),
        ({"metadata": "x"}, "metadata must be an object, not a string"),
        ({"metadata": {"name": ["x"]}}, "metadata.name must be a string, not a list"),
        ({"metadata": {"generateName": 3}}, "metadata.generateName must be a string, not a number"),
        ({"metadata": {"labels": ["a"]}}, "metadata.labels must be an object, not a list"),
        ({"metadata": {"annotations": "a=b"}}, "metadata.annotations must be an object, not a string"),
        ({"metadata": {"annotations": {1: "a"}}}, "metadata.annotations has a key that is not a string: 1"),
        ({"metadata": {"ownerReferences": {}}}, "metadata.ownerReferences must be a list, not an object"),
        ({"spec": "hello"}, "spec must be an object, not a string"),
        ({"spec": {"containers": "w"}}, "spec.containers must be a list, not a string"),
        ({"spec": {"containers": [None]}}, "spec.containers[0] must be an object, not null"),
        ({"spec": {"initContainers": [{"name": "a"}, 3]}}, "spec.initContainers[1] must be an object, not a number"),
        ({"spec": {"containers": [{"name": True}]}}, "spec.containers[0].name must be a string, not a boolean"),
        ({"spec": {"containers": [{"env": {"A": "b"}}]}}, "spec.containers[0].env must be a list, not an object"),
        ({"spec": {"containers": [{"env": ["A=b"]}]}}, "spec.containers[0].env[0] must be an object, not a string"),
        (
            {"spec": {"containers": [{"env": [{"name": 1}]}]}},
            "spec.containers[0].env[0].name must be a string, not a number",
        ),
        ({"spec": {"containers": [{"ports": [80]}]}}, "spec.containers[0].ports[0] must be an object, not a number"),
        ({"spec": {"volumes": "v"}}, "spec.volumes must be a list, not a string"),
        ({"spec": {"volumes": [[]]}}, "spec.volumes[0] must be an object, not a list"),
    ],
)
def test_wrong_types_are_named(pod: dict[str, Any], message: str) -> None:
    with pytest.raises(ShapeError) as err:
        check_pod_shape(pod)
    assert str(err.value) == message
    assert shape_problem(pod) == message


def test_a_deep_value_in_a_checked_field_is_described_not_rendered() -> None:
    value: Any = "x"
    for _ in range(5000):
        value = [value]
    assert shape_problem({"metadata": {"name": value}}) == "metadata.name must be a string, not a list"


def test_the_check_is_linear() -> None:
    import time

    pod = {"spec": {"containers": [{"name": f"c{i}", "env": [{"name": "A"}] * 5} for i in range(100_000)]}}
    started = time.perf_counter()
    assert shape_problem(pod) is None
    assert time.perf_counter() - started < 2.0
