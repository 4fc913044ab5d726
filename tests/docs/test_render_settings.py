"""docs/settings.md: the one table of every setting is current, and it cannot silently
lose a setting or describe one that does not exist."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from webhook.config.settings import all_field_names, env_var

REPO = Path(__file__).resolve().parents[2]
DEPLOYMENT = REPO / "deploy" / "helm" / "otel-injector" / "templates" / "deployment.yaml"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_settings", REPO / "docs" / "render_settings.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["render_settings"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def render() -> ModuleType:
    return load()


def test_the_committed_table_is_current(render: ModuleType) -> None:
    current = (REPO / "docs" / "settings.md").read_text(encoding="utf-8")
    assert render.render(current) == current, "docs/settings.md is stale; run python docs/render_settings.py"


def test_every_setting_has_one_row(render: ModuleType) -> None:
    rows = [line for line in render.table().splitlines() if line.startswith("| `")]
    assert [row.split("|")[3].strip(" `") for row in rows] == all_field_names()
    for row, name in zip(rows, all_field_names(), strict=True):
        assert f"`{env_var(name)}`" in row


def test_a_setting_without_a_meaning_fails(render: ModuleType) -> None:
    meanings = dict(render.MEANINGS)
    del meanings["resync_seconds"]
    with pytest.raises(ValueError, match="undescribed \\['resync_seconds'\\]"):
        render.table(meanings)
    with pytest.raises(ValueError, match="unknown \\['no_such_setting'\\]"):
        render.table({**render.MEANINGS, "no_such_setting": "x"})


def test_every_variable_the_chart_sets_is_a_setting_and_in_the_table(render: ModuleType) -> None:
    chart_vars = set(re.findall(r"- name: (OTEL_INJECTOR_\w+)", DEPLOYMENT.read_text(encoding="utf-8")))
    known = {env_var(name) for name in all_field_names()}
    assert chart_vars <= known, f"the chart sets unknown variables {sorted(chart_vars - known)}"
    sources = render.chart_sources()
    table = render.table()
    for variable in chart_vars:
        assert sources[variable], variable
        assert any(variable in line and sources[variable] in line for line in table.splitlines()), variable
