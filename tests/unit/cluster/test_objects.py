"""Metadata accessors that tolerate missing and mistyped metadata."""

from __future__ import annotations

from typing import Any

import pytest

from webhook.cluster.objects import annotations_of, labels_of, object_key, resource_version_of

FULL = {
    "metadata": {
        "name": "n",
        "namespace": "ns",
        "labels": {"a": "1"},
        "annotations": {"b": "2"},
        "resourceVersion": "7",
    }
}


def test_reads_the_metadata() -> None:
    assert labels_of(FULL) == {"a": "1"}
    assert annotations_of(FULL) == {"b": "2"}
    assert object_key(FULL) == ("ns", "n")
    assert resource_version_of(FULL) == "7"


@pytest.mark.parametrize("obj", [None, {}, {"metadata": None}, {"metadata": {"labels": ["x"], "annotations": "y"}}])
def test_missing_or_mistyped_is_empty(obj: Any) -> None:
    assert labels_of(obj) == {}
    assert annotations_of(obj) == {}
    if obj is not None:
        assert resource_version_of(obj) == ""


def test_cluster_scoped_objects_have_no_namespace() -> None:
    assert object_key({"metadata": {"name": "shop"}}) == ("", "shop")
