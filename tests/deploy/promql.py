"""What the monitoring tests need to know about PromQL and Grafana, beside promtool.

promtool checks that an expression parses; :func:`metric_names` then lists the metrics it
selects. On an expression promtool accepted, removing string literals, label matchers
(``{...}``), range and subquery brackets (``[...]``), grouping label lists
(``by (...)``, ``on (...)``, ...) and ``offset`` durations leaves only metric names,
function names (followed by ``(``), keywords and numbers.
"""

from __future__ import annotations

import re

#: Grafana's variables in the dashboard and what the check puts in their place.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$job": "otel-injector"}

_KEYWORDS = {"and", "or", "unless", "bool", "inf", "nan", "offset", "by", "without", "on", "ignoring"}
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def substitute(expr: str) -> str:
    """``expr`` with the dashboard's Grafana variables replaced; raises ValueError for a
    variable this check does not know."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    if "$" in expr:
        raise ValueError(f"unknown Grafana variable in {expr!r}")
    return expr


def metric_names(expr: str) -> set[str]:
    """The metric names an expression (valid PromQL) selects."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _GROUPING.sub(" ", text)
    text = re.sub(r"\boffset\s+-?[0-9a-z]+", " ", text)
    found: set[str] = set()
    for match in _IDENTIFIER.finditer(text):
        word, rest = match.group(), text[match.end() :].lstrip()
        if rest.startswith("(") or word.lower() in _KEYWORDS:
            continue  # a function or aggregation, or a keyword
        if match.start() and (text[match.start() - 1].isdigit() or text[match.start() - 1] == "."):
            continue  # the exponent or unit of a number (1e3, 5m)
        found.add(word)
    return found
