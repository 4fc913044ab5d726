"""bench.peers.builds: the recipes are pinned and their wrapper templates exist (no builds)."""

from __future__ import annotations

from bench.localcluster import gobuild
from bench.peers import builds


def test_the_recipes_are_pinned_and_cached_like_the_other_binaries() -> None:
    assert builds.ISTIO.version == builds.ISTIO_VERSION
    assert builds.KYVERNO.version == "v1.19.1"
    for group in builds.PEER_BUILDS.values():
        text = gobuild.template_text(group.template, group.template_package)
        assert "$version" in text
        assert "$overrides" in text
        assert len(gobuild.group_recipe(group)) == 16


def test_the_version_is_stamped_into_the_binary() -> None:
    assert any("BuildVersion=v1.19.1" in flag for flag in builds.KYVERNO.ldflags(""))
    assert any(builds.ISTIO_VERSION in flag for flag in builds.ISTIO.ldflags(""))
