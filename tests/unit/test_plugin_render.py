"""The plugin's kubectl-like output: tables, money, rates, ages, error lines, the parser."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpurental import billing
from gpurental.clock import format_ts
from gpurental.plugin import cli, render
from gpurental.plugin.parser import build_parser

NOW = datetime(2026, 6, 7, 8, 42, 11, tzinfo=UTC)


def test_table_uses_kubectls_tabwriter_spacing() -> None:
    out = render.table(["NAME", "PHASE", "AGE"],
                       [["finetune", "Running", "5m"], ["a", "Paused", "12s"]])
    assert out.splitlines() == ["NAME       PHASE     AGE",
                                "finetune   Running   5m",
                                "a          Paused    12s"]


def test_narrow_columns_get_kubectls_minimum_width() -> None:
    # tabwriter minwidth 6: a one-letter column still takes six characters.
    assert render.table(["A", "B"], [["1", "2"]]).splitlines() == ["A     B", "1     2"]


cell = st.text(alphabet="abcdefghijklmnopqrstuvwxyz$./0123456789", min_size=1, max_size=12)


@given(st.lists(st.lists(cell, min_size=3, max_size=3), max_size=6))
def test_every_column_starts_at_the_same_offset(rows: list[list[str]]) -> None:
    lines = render.table(["NAME", "X", "LAST"], rows).splitlines()
    assert len(lines) == len(rows) + 1
    everything = [["NAME", "X", "LAST"], *rows]
    width0 = max(len(r[0]) for r in everything) + 3
    width1 = max(max(len(r[1]) for r in everything) + 3, 6)
    for line, row in zip(lines, everything, strict=True):
        assert line[:width0].rstrip() == row[0]
        assert line[width0:width0 + width1].rstrip() == row[1]
        assert line[width0 + width1:] == row[2]


@pytest.mark.parametrize(("cents", "text"), [
    (0, "$0.00"), (5, "$0.05"), (123, "$1.23"), (100000, "$1000.00"), (-250, "-$2.50"),
])
def test_dollars(cents: int, text: str) -> None:
    assert billing.dollars(cents) == text


@pytest.mark.parametrize(("rate", "text"), [
    ("0.69", "$0.69/hr"), ("2.8", "$2.80/hr"), ("1.380000", "$1.38/hr"), ("5", "$5.00/hr"),
    ("0.123456", "$0.123456/hr"), ("0", "$0.00/hr"), ("1E+1", "$10.00/hr"),
])
def test_rate_shows_the_seeds_dollars_per_hour_and_never_hides_decimals(rate: str,
                                                                          text: str) -> None:
    assert render.rate(Decimal(rate)) == text
    assert render.rate(None) == "<none>"


@given(st.decimals(min_value=0, max_value=10**9, places=6, allow_nan=False,
                   allow_infinity=False))
def test_rate_text_is_exact(rate: Decimal) -> None:
    assert Decimal(render.rate(rate)[1:-3]) == rate


@pytest.mark.parametrize(("ago", "text"), [
    (timedelta(seconds=5), "5s"), (timedelta(minutes=3, seconds=20), "3m20s"),
    (timedelta(hours=4, minutes=12), "4h12m"), (timedelta(days=3, hours=1), "3d1h"),
    (-timedelta(seconds=5), "0s"),
])
def test_age_is_kubectls(ago: timedelta, text: str) -> None:
    assert render.age(format_ts(NOW - ago), NOW) == text
    assert render.age(None, NOW) == "<unknown>"
    assert render.age("yesterday", NOW) == "<unknown>"


def test_lines_look_like_kubectls() -> None:
    assert render.patched("x") == "gpurental.gpurental.dev/x patched"
    assert render.patched("x", changed=False) == "gpurental.gpurental.dev/x patched (no change)"
    assert render.patched("x", dry_run=True) == "gpurental.gpurental.dev/x patched (dry run)"
    assert render.not_found("x") == \
        'Error from server (NotFound): gpurentals.gpurental.dev "x" not found'


def test_api_errors_are_rendered_from_the_servers_status() -> None:
    body = json.dumps({"kind": "Status", "reason": "Forbidden", "code": 403,
                       "message": 'gpurentals.gpurental.dev "x" is forbidden: no'})
    assert render.api_error(403, "Forbidden", body) == \
        'Error from server (Forbidden): gpurentals.gpurental.dev "x" is forbidden: no'
    invalid = json.dumps({"kind": "Status", "reason": "Invalid", "code": 422,
                          "details": {"kind": "GpuRental", "name": "x"},
                          "message": 'GpuRental.gpurental.dev "x" is invalid: spec.sshKeys[0]: '
                                     'Invalid value: "bad"'})
    assert render.api_error(422, "Unprocessable Entity", invalid) == \
        'The GpuRental "x" is invalid: spec.sshKeys[0]: Invalid value: "bad"'
    assert render.api_error(409, None, b"not json") == \
        "Error from server (Conflict): unknown error"
    assert render.api_error(500, "Internal Server Error", None) == \
        "Error from server (Internal Server Error): Internal Server Error"


# --- the parser and errors without a cluster -----------------------------------------------------


def test_global_flags_go_before_or_after_the_command() -> None:
    parser = build_parser()
    before = parser.parse_args(["-n", "team-a", "--kubeconfig", "k", "list"])
    assert (before.namespace, before.kubeconfig, before.all_namespaces) == ("team-a", "k", False)
    after = parser.parse_args(["list", "-n", "team-b", "-A", "--status", "in-progress"])
    assert (after.namespace, after.all_namespaces, after.status) == ("team-b", True,
                                                                     "in-progress")
    with pytest.raises(SystemExit):
        parser.parse_args(["list", "--status", "sleeping"])
    with pytest.raises(SystemExit):
        parser.parse_args(["autorenew", "x", "maybe"])


def test_a_missing_kubeconfig_is_an_error_line() -> None:
    err = io.StringIO()
    rc = cli.main(["--kubeconfig", "/nonexistent/kubeconfig", "list"], stdout=io.StringIO(),
                  stderr=err)
    assert rc == 1
    assert err.getvalue().startswith("error: ")
