"""A small PromQL scanner for tests: which metric selectors does an expression use?

Syntax itself is checked by the real parser (`promtool check rules`, see `promtool_check_exprs`);
this only needs to tell metric names apart from functions, keywords, label names and literals.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path
from typing import NamedTuple

import yaml

# Words that look like identifiers but never name a metric.
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
    "and", "or", "unless", "atan2", "inf", "nan", "start", "end",
}
# After these, a parenthesised list holds label names, not expressions.
LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
# `sum by (le) (...)`: an aggregation whose grouping comes before its argument.
AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}

_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_NUMBER = re.compile(r"(0x[0-9a-fA-F]+|[0-9][0-9a-zA-Z.]*)")  # also durations: 5m, 1h30m
_MATCHER = re.compile(
    r"""\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)\s*,?"""
)

# Grafana's variables, replaced by something PromQL accepts before parsing.
GRAFANA_SUBSTITUTIONS = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
}


class Selector(NamedTuple):
    metric: str
    matchers: dict[str, tuple[str, str]]  # label -> (operator, unquoted value)


def _skip_string(expr: str, i: int) -> int:
    quote = expr[i]
    i += 1
    while i < len(expr) and expr[i] != quote:
        i += 2 if expr[i] == "\\" and quote != "`" else 1
    if i >= len(expr):
        raise ValueError(f"unterminated string in {expr!r}")
    return i + 1


def _matching(expr: str, i: int, open_: str, close: str) -> int:
    """Index just past the bracket closing the one at expr[i], skipping strings."""
    depth = 0
    while i < len(expr):
        ch = expr[i]
        if ch in "\"'`":
            i = _skip_string(expr, i)
            continue
        if ch == open_:
            depth += 1
        elif ch == close:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"unbalanced {open_}{close} in {expr!r}")


def parse_matchers(body: str) -> dict[str, tuple[str, str]]:
    matchers: dict[str, tuple[str, str]] = {}
    pos = 0
    body = body.strip()
    while pos < len(body):
        m = _MATCHER.match(body, pos)
        if not m:
            raise ValueError(f"cannot read label matchers {body!r}")
        matchers[m.group(1)] = (m.group(2), m.group(3)[1:-1])
        pos = m.end()
    return matchers


def selectors(expr: str) -> list[Selector]:
    """Every metric selector in a PromQL expression, in order."""
    found: list[Selector] = []
    i = 0
    previous_word = ""
    while i < len(expr):
        ch = expr[i]
        if ch.isspace():
            i += 1
        elif ch in "\"'`":
            i = _skip_string(expr, i)
        elif ch == "[":
            i = _matching(expr, i, "[", "]")  # range or subquery duration
        elif ch == "{":
            raise ValueError(f"selector without a metric name in {expr!r}")
        elif ch == "(" and previous_word in LABEL_LIST_KEYWORDS:
            i = _matching(expr, i, "(", ")")  # by (namespace, offer)
            previous_word = ""
        elif ch.isdigit() or (ch == "." and expr[i + 1 : i + 2].isdigit()):
            i = _NUMBER.match(expr, i).end()  # type: ignore[union-attr]
        elif m := _IDENT.match(expr, i):
            word = m.group(0)
            i = m.end()
            rest = expr[i:].lstrip()
            if word in KEYWORDS:
                previous_word = word
                continue
            if rest.startswith("(") or (
                word in AGGREGATIONS and re.match(r"(by|without)\b", rest)
            ):  # function or aggregation
                previous_word = word
                continue
            matchers: dict[str, tuple[str, str]] = {}
            if rest.startswith("{"):
                start = expr.index("{", i)
                end = _matching(expr, start, "{", "}")
                matchers = parse_matchers(expr[start + 1 : end - 1])
                i = end
            found.append(Selector(word, matchers))
            previous_word = ""
        else:
            previous_word = ""
            i += 1
    return found


def metric_names(expr: str) -> set[str]:
    return {s.metric for s in selectors(expr)}


def grafana_to_promql(expr: str, variables: dict[str, str]) -> str:
    """Replace Grafana's built-in and template variables so the real parser can read `expr`."""
    for name, value in GRAFANA_SUBSTITUTIONS.items():
        expr = expr.replace(name, value)
    for name, value in variables.items():
        expr = expr.replace("${" + name + "}", value).replace("$" + name, value)
    if "$" in expr:
        raise ValueError(f"unknown Grafana variable left in {expr!r}")
    return expr


def promtool_check_exprs(promtool: str, exprs: dict[str, str], workdir: Path | None = None) -> None:
    """Parse every expression with Prometheus's own parser (as recording rules)."""
    rules = [
        {"record": f"check:expr_{n}", "expr": expr, "labels": {"source": name[:60]}}
        for n, (name, expr) in enumerate(exprs.items())
    ]
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = Path(tmp) / "exprs.yaml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "check", "rules": rules}]}))
        proc = subprocess.run(
            [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
        )
    if proc.returncode != 0:
        raise AssertionError(f"promtool rejected an expression:\n{proc.stdout}{proc.stderr}")
