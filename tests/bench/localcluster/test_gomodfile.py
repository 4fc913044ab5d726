"""Reading a release's go.mod and the overrides a wrapper repeats."""

from __future__ import annotations

import pytest

from bench.localcluster.gomodfile import BinaryBuildError, carried_overrides, parse_go_mod, staging_overrides

GO_MOD = """module k8s.io/kubernetes

go 1.26.0

godebug default=go1.26

require (
\tk8s.io/api v0.0.0
\tgithub.com/x/y v1.2.3 // indirect
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tgithub.com/x/y => github.com/x/y v1.2.4
)

exclude github.com/bad/mod v0.1.0
"""


def test_parse_reads_blocks_and_single_lines() -> None:
    mod = parse_go_mod(GO_MOD)
    assert mod.go == "1.26.0"
    assert mod.godebug == ["default=go1.26"]
    assert mod.require == {"k8s.io/api": "v0.0.0", "github.com/x/y": "v1.2.3"}
    assert ("k8s.io/api", "", "./staging/src/k8s.io/api", "") in mod.replace
    assert mod.exclude == [("github.com/bad/mod", "v0.1.0")]


def test_staging_modules_point_at_the_published_tag_and_pins_are_repeated() -> None:
    text = staging_overrides(parse_go_mod(GO_MOD), "k8s.io/kubernetes", "v0.36.3")
    assert "k8s.io/api => k8s.io/api v0.36.3" in text
    assert "github.com/x/y => github.com/x/y v1.2.4" in text
    assert "github.com/bad/mod v0.1.0" in text


def test_a_local_replace_of_an_unpublished_version_cannot_be_carried() -> None:
    with pytest.raises(BinaryBuildError, match="not published"):
        carried_overrides(parse_go_mod(GO_MOD), "k8s.io/kubernetes")
