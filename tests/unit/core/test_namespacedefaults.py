"""Namespace defaults under the pod's own annotations; the config choice is one choice."""

from __future__ import annotations

from webhook.core.namespacedefaults import mark_inherited, with_namespace_defaults
from webhook.core.overrides import Notice

MEM = "otel-injector.io/memory-limit"
CPU = "otel-injector.io/cpu-limit"
CONFIG = "otel-injector.io/config"
NAMED = "otel-injector.io/collector-config"


def test_the_pods_value_wins() -> None:
    merged, inherited = with_namespace_defaults({MEM: "384Mi"}, {MEM: "512Mi", CPU: "1"})
    assert merged == {MEM: "384Mi", CPU: "1"}
    assert inherited == {CPU}


def test_no_namespace_annotations_return_the_pods_own_mapping() -> None:
    own = {MEM: "1Gi"}
    merged, inherited = with_namespace_defaults(own, {})
    assert merged is own
    assert inherited == frozenset()


def test_a_pods_config_choice_drops_the_namespaces_either_key() -> None:
    merged, _ = with_namespace_defaults({CONFIG: "mine"}, {NAMED: "team-a"})
    assert merged == {CONFIG: "mine"}
    merged, _ = with_namespace_defaults({NAMED: "team-b"}, {CONFIG: "theirs", MEM: "1Gi"})
    assert merged == {NAMED: "team-b", MEM: "1Gi"}


def test_notices_about_inherited_keys_name_the_namespace() -> None:
    notices = [Notice("invalid-cpu-limit", f"{CPU}: 'lots' is bad"), Notice("x", f"{MEM}: fine")]
    marked = mark_inherited(notices, frozenset({CPU}), "shop")
    assert marked[0].message == f"{CPU} (from namespace shop): 'lots' is bad"
    assert marked[1] == notices[1]
