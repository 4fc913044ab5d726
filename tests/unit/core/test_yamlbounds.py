"""YAML in and out of ``inject``: the C loader, a nesting limit, an alias-expansion limit,
and one-line errors for every input."""

from __future__ import annotations

import pytest
import yaml

from webhook.core import yamlbounds
from webhook.core.yamlbounds import YamlError, dump_documents, load_documents


def test_the_c_loader_and_dumper_are_used_where_libyaml_is_there() -> None:
    if yaml.__with_libyaml__:
        assert yamlbounds.Loader.__name__ == "CSafeLoader"
        assert yamlbounds.Dumper.__name__ == "CSafeDumper"


def test_round_trip_keeps_order() -> None:
    text = "kind: Pod\nmetadata:\n  name: web\n---\nb: 1\na: [x, y]\n"
    documents = load_documents(text)
    assert documents == [{"kind": "Pod", "metadata": {"name": "web"}}, {"b": 1, "a": ["x", "y"]}]
    assert dump_documents(documents) == "kind: Pod\nmetadata:\n  name: web\n---\nb: 1\na:\n- x\n- y\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 101 + "]" * 101, "YAML nested deeper than 100 levels (line 1)"),
        ("".join("  " * i + "a:\n" for i in range(200)) + "  " * 200 + "b\n", "YAML nested deeper than 100 levels"),
        ("x: " + "9" * 5000, "a YAML number has more than 4,300 digits"),
        ("\x00", "invalid YAML: unacceptable character"),
        ("a:\n\t- b", "invalid YAML:"),
        ("{[1]: 2}", "invalid YAML:"),
        ("a: *nowhere", "invalid YAML:"),
    ],
)
def test_bad_input_is_one_line(text: str, message: str) -> None:
    with pytest.raises(YamlError) as err:
        load_documents(text)
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    assert len(str(err.value)) < 400


def test_moderate_aliases_are_read() -> None:
    text = "env: &env [{name: A, value: b}]\nc1: {env: *env}\nc2: {env: *env}\n"
    (document,) = load_documents(text)
    assert document["c2"]["env"] == [{"name": "A", "value": "b"}]


@pytest.mark.parametrize(
    "text",
    [
        # a string written 1,500 times by alias
        "a: &s '" + "x" * 10_000 + "'\nb: [" + ", ".join(["*s"] * 1500) + "]\n",
        # the billion laughs
        'a0: &a0 ["'
        + "x" * 64
        + '"]\n'
        + "\n".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 8))
        + "\n",
    ],
)
def test_alias_expansion_past_the_bound_is_refused(text: str) -> None:
    with pytest.raises(YamlError, match="YAML aliases expand the input"):
        load_documents(text)
