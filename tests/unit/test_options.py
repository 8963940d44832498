"""The console script's flags become one Options object whose defaults are written once."""

from __future__ import annotations

import dataclasses

import pytest

from gpurental.cli import operator_parser, parse_options
from gpurental.models import OfferSpec, parse_spec
from gpurental.options import DEFAULTS, Options


def test_no_flags_are_the_defaults() -> None:
    assert parse_options([]) == DEFAULTS


def test_every_flag_lands_in_its_field() -> None:
    options = parse_options(["-n", "team-a", "-n", "team-b", "--metering-interval", "10",
                             "--provisioning-timeout", "120", "--workers", "8",
                             "--api-connections", "4", "--idle-check-interval", "30"])
    assert options == dataclasses.replace(
        DEFAULTS, namespaces=("team-a", "team-b"), metering_interval=10.0,
        provisioning_timeout=120, workers=8, api_connections=4, idle_check_interval=30.0)


def test_every_option_has_a_flag() -> None:
    dests = {action.dest for action in operator_parser()._actions} - {"help", "all_namespaces"}
    assert dests == {field.name for field in dataclasses.fields(Options)}


@pytest.mark.parametrize("argv, problem", [
    (["--metering-interval", "0"], "intervals and timeouts must be positive"),
    (["--workers", "0"], "--workers and --api-connections must be positive"),
    (["--webhook-port", "8443"], "--webhook-port and --webhook-cert-dir go together"),
])
def test_unusable_options_exit_with_the_reason(argv: list[str], problem: str) -> None:
    with pytest.raises(SystemExit, match=problem):
        parse_options(argv)


def test_interruptible_offers_get_the_lower_priority_class() -> None:
    options = Options(on_demand_priority_class="od", interruptible_priority_class="spot")
    offer = {"gpu": {"product": "NVIDIA-H100"}, "pricePerGpuHour": "2.00"}
    assert options.priority_class(parse_spec(OfferSpec, offer)) == "od"
    spot = parse_spec(OfferSpec, {**offer, "interruptible": True})
    assert options.priority_class(spot) == "spot"
    assert options.priority_class(None) is None


def test_leader_election_is_off_unless_a_lease_is_named() -> None:
    assert parse_options([]).leader_election is None
    options = parse_options(["--leader-election", "gpurental", "--leader-election-namespace",
                             "gpu-system"])
    assert (options.leader_election, options.leader_election_namespace) == (
        "gpurental", "gpu-system")
