"""promtool's build recipe: pinned module, only ./cmd/promtool, version ldflags, and a
binary from the environment wins over a build."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.localcluster import promtool
from bench.localcluster.gobuild import group_recipe, template_text


def test_recipe_is_pinned_and_builds_only_promtool() -> None:
    group = promtool.PROMETHEUS
    assert group.module == "github.com/prometheus/prometheus"
    assert group.version == "v0.316.0"
    assert group.label == "v3.16.0"  # the cache slot: promtool-v3.16.0
    assert dict(group.packages) == {"promtool": "github.com/prometheus/prometheus/cmd/promtool"}
    assert "-X github.com/prometheus/common/version.Version=3.16.0" in group.ldflags("t")
    assert "$version" in template_text(group.template)
    assert len(group_recipe(group)) == 16


def test_a_promtool_in_the_environment_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = tmp_path / "promtool"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    monkeypatch.setenv("OTEL_INJECTOR_BIN_DIR", str(tmp_path))
    assert promtool.ensure_promtool() == binary.resolve()
