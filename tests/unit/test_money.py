"""The money layer on an injectable clock: expiry, extend, renewals, wallet exhaustion."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gpurental import meter, money
from gpurental.clock import ManualClock, format_ts
from gpurental.constants import FINALIZER
from gpurental.lifecycle import Children, Context, DesiredState, plan
from gpurental.models import OfferSpec, RentalSpec, WalletSpec, parse_spec
from gpurental.observed import PodView, PvcView, RentalView

CLOCK_START = ManualClock().now()
OFFER = parse_spec(OfferSpec, {"gpu": {"product": "X"}, "pricePerGpuHour": "3.60"})
CAPPED = parse_spec(OfferSpec, {"gpu": {"product": "X"}, "pricePerGpuHour": "3.60",
                                "maxDuration": "30m"})


def spec(**kw: Any) -> RentalSpec:
    return parse_spec(RentalSpec, {"offer": "x", "image": "busybox", **kw})


def running_status(clock: ManualClock, rate: str = "3.60", **kw: Any) -> dict[str, Any]:
    return {"phase": "Running", "ratePerHour": rate, "runningSince": format_ts(clock.now()),
            "accruedSeconds": 0, **kw}


def test_expiry_holds_exactly_at_the_prepaid_second_and_extend_lifts_it() -> None:
    clock = ManualClock()
    status = running_status(clock)
    clock.advance(3599)
    assert money.assess(spec(duration="1h"), status, OFFER, None, clock.now()).hold is None
    clock.advance(1)
    verdict = money.assess(spec(duration="1h"), status, OFFER, None, clock.now())
    assert verdict.hold is not None
    assert (verdict.hold.state, verdict.hold.reason) == (DesiredState.PAUSED, "Expired")
    stop = money.assess(spec(duration="1h", onExpiry="Stop"), status, OFFER, None, clock.now())
    assert stop.hold is not None and stop.hold.state is DesiredState.STOPPED
    assert money.assess(spec(duration="2h"), status, OFFER, None, clock.now()).hold is None


def test_the_offers_cap_wins_over_a_longer_duration() -> None:
    clock = ManualClock()
    status = running_status(clock)
    clock.advance(1800)
    verdict = money.assess(spec(duration="10h"), status, CAPPED, None, clock.now())
    assert verdict.prepaid_seconds == 1800 and verdict.hold is not None


def test_expiry_is_scheduled_for_the_exact_moment() -> None:
    clock = ManualClock()
    status = running_status(clock, accruedSeconds=600)
    deadline = money.next_deadline(status, 3600, None)
    assert deadline == clock.now() + timedelta(seconds=3000)


def test_pausing_stops_the_expiry_clock() -> None:
    clock = ManualClock()
    status = running_status(clock)
    clock.advance(1000)
    meter.close_segment(status, clock.now())
    clock.advance(10_000)  # paused for hours: prepaid time does not run out while paused
    assert money.assess(spec(duration="1h"), status, OFFER, None, clock.now()).hold is None
    assert money.next_deadline(status, 3600, None) is None


def test_auto_renew_adds_another_duration_when_covered() -> None:
    clock = ManualClock()
    status = running_status(clock)
    clock.advance(3600)
    verdict = money.assess(spec(duration="1h", autoRenew=True), status, OFFER, None, clock.now())
    assert verdict.hold is None and verdict.renew_seconds == 3600
    # A wallet with 3.59 left cannot cover another hour at 3.60/h.
    wallet = parse_spec(WalletSpec, {"budget": "7.19"})
    reading = money.WalletReading(budget_cents=719, spent_cents=360, burn_cents_per_hour=360,
                                  exhausts_at=None)
    refused = money.assess(spec(duration="1h", autoRenew=True), status, OFFER,
                          money.Wallet("team", wallet, reading), clock.now())
    assert refused.renew_seconds == 0 and refused.hold is not None
    assert refused.hold.reason == "Expired"


def test_a_renewal_goes_through_the_state_machine() -> None:
    clock = ManualClock()
    status = running_status(clock, firstStartedAt=format_ts(clock.now()))
    clock.advance(3600)
    view = RentalView("ns", "r", "uid", 1, False, (FINALIZER,),
                      {"offer": "x", "image": "busybox", "duration": "1h", "autoRenew": True},
                      status)
    pod = PodView("r", "pod-uid", "Running", False, started_at=CLOCK_START)
    children = Children(pod=pod, pvc=PvcView("r-storage", "Bound", False))
    verdict = money.assess(spec(duration="1h", autoRenew=True), status, OFFER, None, clock.now())
    result = plan(view, children, Context(now=clock.now(), offer=OFFER,
                                          renew_seconds=verdict.renew_seconds,
                                          prepaid_seconds=verdict.prepaid_seconds))
    assert result.status["renewals"] == 1 and result.status["renewedSeconds"] == 3600
    assert "Renewed" in [e.reason for e in result.events]
    after = money.assess(spec(duration="1h", autoRenew=True), result.status, OFFER, None,
                        clock.now())
    assert after.prepaid_seconds == 7200 and after.hold is None and after.renew_seconds == 0


def _fleet_reading(wallet: WalletSpec, statuses: list[dict[str, Any]],
                   clock: ManualClock) -> money.WalletReading:
    views = [RentalView("ns", f"r{i}", f"uid{i}", 1, False, (), {}, s)
             for i, s in enumerate(statuses)]
    return money.read_wallet(wallet, {}, views, clock.now())


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["0.69", "2.80", "3.60", "12.34", "360.00"]),
                       st.integers(0, 3600)), min_size=1, max_size=8),
    st.integers(100, 50_000),
)
def test_wallet_exhaustion_is_predicted_to_the_moment_and_overshoot_is_one_second(
    fleet: list[tuple[str, int]], budget_cents: int
) -> None:
    """Rentals started at different times drain a wallet; at the predicted moment every one is
    held, one microsecond earlier none is, and pausing them then overshoots the budget by at
    most one second of each rental's burn."""
    clock = ManualClock()
    wallet = parse_spec(WalletSpec, {"budget": f"{Decimal(budget_cents) / 100:.2f}"})
    statuses = []
    for rate, started_ago in fleet:
        jitter = timedelta(microseconds=started_ago * 7919 % 10**6)
        start = clock.now() - timedelta(seconds=started_ago) - jitter
        statuses.append({"ratePerHour": rate, "runningSince": start.isoformat(),
                         "accruedSeconds": 0})
    reading = _fleet_reading(wallet, statuses, clock)
    if reading.exhausted:
        return  # already spent before the test's "now": nothing to predict
    assert reading.exhausts_at is not None
    clock.set(reading.exhausts_at - timedelta(microseconds=1))
    assert not _fleet_reading(wallet, statuses, clock).exhausted
    clock.set(reading.exhausts_at)
    at = _fleet_reading(wallet, statuses, clock)
    assert at.exhausted
    team = money.Wallet("team", wallet, at)
    verdicts = [money.assess(spec(), s, OFFER, team, clock.now()) for s in statuses]
    assert all(v.hold is not None and v.hold.reason == "BudgetExhausted" for v in verdicts)
    for status in statuses:
        meter.close_segment(status, clock.now())
    spent = _fleet_reading(wallet, statuses, clock).spent_cents
    one_second_each = sum(int(Decimal(rate) * 100 / 3600) + 1 for rate, _ in fleet)
    assert 0 <= spent - budget_cents <= one_second_each


def test_an_exhausted_wallet_status_stops_moving_with_the_clock() -> None:
    """An exhausted wallet's reading says it runs out "now"; its status keeps the moment it
    ran out, so re-reading it later changes nothing worth writing (the benchmark found one
    status write a second per exhausted wallet, each triggered by the last one's event)."""
    clock = ManualClock()
    exhausted = money.WalletReading(budget_cents=150, spent_cents=160, burn_cents_per_hour=0,
                                    exhausts_at=clock.now())
    first = money.wallet_status({}, exhausted, 1, clock.now())
    clock.advance(7)
    later = money.WalletReading(budget_cents=150, spent_cents=160, burn_cents_per_hour=0,
                                exhausts_at=clock.now())
    second = money.wallet_status(first, later, 1, clock.now())
    assert second["exhaustsAt"] == first["exhaustsAt"]
    assert not money.wallet_changed(first, second)
