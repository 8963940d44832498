"""A wallet's reading is reused across its rentals' passes only while it is exact.

Each pass of each rental a wallet pays for asks for the wallet's live reading, which is linear
in its rentals: a team wallet with 1,000 running rentals read on every heartbeat pass would
cost the operator more than a core. `context.wallet_of` keeps the last reading while nothing it
was read from changed (`World.wallet_version`) and none of its meters ticked
(`WalletReading.holds_until`); these tests hold it to the uncached reading.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gpurental import billing, context, meter, money
from gpurental.clock import format_ts
from gpurental.models import WalletSpec, parse_spec
from gpurental.observed import RentalView
from gpurental.world import World

START = datetime(2026, 6, 7, 8, 0, 0, tzinfo=UTC)
WALLET = ("team", "w")


class Recording(dict[str, Any]):
    """A status that remembers which fields were read."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)


def status(since: datetime, rate: str = "2.49", accrued: int = 0, **extra: Any
           ) -> dict[str, Any]:
    return {"phase": "Running", "ratePerHour": rate, "runningSince": format_ts(since),
            "accruedSeconds": accrued, "storageRatePerHour": "0.01",
            "storageSince": format_ts(START), "refundedCents": 0, **extra}


def rental(i: int, body_status: dict[str, Any], rv: int = 1) -> dict[str, Any]:
    return {"metadata": {"name": f"r{i}", "namespace": WALLET[0], "uid": f"uid-{i}",
                         "resourceVersion": str(rv), "generation": 1},
            "spec": {"offer": "a100", "wallet": WALLET[1]}, "status": body_status}


def world_with(budget: str, statuses: list[dict[str, Any]]) -> World:
    world = World()
    world.put_wallet(WALLET, {"metadata": {"name": WALLET[1], "namespace": WALLET[0]},
                              "spec": {"budget": budget}, "status": {}})
    for i, s in enumerate(statuses):
        world.put_rental(rental(i, s))
    return world


def fresh(world: World, now: datetime) -> money.WalletReading:
    """The reading as computed without any cache."""
    spec = parse_spec(WalletSpec, world.wallets[WALLET]["spec"])
    rentals = [r for k in world.rentals_of_wallet(WALLET) if (r := world.rental(k))]
    return money.read_wallet(spec, {}, rentals, now)


def reading(world: World, now: datetime) -> money.WalletReading:
    wallet = context.wallet_of(world, WALLET[0], WALLET[1], now)
    assert wallet is not None
    return wallet.reading


def test_the_reading_reads_only_the_billing_fields() -> None:
    """Whatever else a status holds, only meter.BILLING_FIELDS can change what a wallet is
    charged: a heartbeat, which rewrites other fields, must never be missed by the cache."""
    recorded = Recording(status(START, accrued=7, lastSegment={"start": "x"}))
    view = dataclasses.replace(RentalView.from_dict(rental(0, {})), status=recorded)
    spec = parse_spec(WalletSpec, {"budget": "100"})
    money.read_wallet(spec, {}, [view], START + timedelta(seconds=90))
    assert "runningSince" in recorded.read  # the recording works
    assert recorded.read <= set(meter.BILLING_FIELDS)


@given(since=st.integers(0, 10**6), offset=st.integers(0, 10**6),
       now=st.integers(-10**6, 10**7))
def test_a_meter_is_constant_until_its_next_tick_and_changes_there(
        since: int, offset: int, now: int) -> None:
    start = START + timedelta(seconds=since, microseconds=offset)
    moment = START + timedelta(microseconds=now)
    m = billing.Meter(accrued_seconds=3, running_since=start)
    tick = billing.next_tick(m, moment)
    assert tick is not None and tick > moment
    before = tick - timedelta(microseconds=1)
    assert billing.seconds_billed(m, before) == billing.seconds_billed(m, moment)
    assert billing.seconds_billed(m, tick) == billing.seconds_billed(m, moment) + 1
    assert billing.next_tick(billing.Meter(accrued_seconds=3), moment) is None


def test_a_heartbeat_keeps_the_reading_and_a_meter_change_renews_it() -> None:
    world = world_with("100", [status(START), status(START)])
    now = START + timedelta(seconds=60, milliseconds=200)
    first = context.wallet_of(world, *WALLET, now)
    # A heartbeat of one of the wallet's rentals: only clock-driven fields change.
    heartbeat = status(START, lastHeartbeatAt=format_ts(now), secondsBilled=60)
    world.put_rental(rental(0, heartbeat, rv=2))
    assert context.wallet_of(world, *WALLET, now + timedelta(milliseconds=500)) is first
    # The next whole second ticks both meters: read again.
    assert context.wallet_of(world, *WALLET, now + timedelta(seconds=1)) is not first
    # A closed segment changes the meter: read again, even within the same second.
    later = now + timedelta(seconds=1, milliseconds=100)
    kept = context.wallet_of(world, *WALLET, later)
    closed = {**status(START), "runningSince": None, "accruedSeconds": 61}
    world.put_rental(rental(1, closed, rv=3))
    assert context.wallet_of(world, *WALLET, later) is not kept
    assert reading(world, later) == fresh(world, later)


def test_a_new_rental_a_settlement_or_a_budget_change_renews_it() -> None:
    world = world_with("100", [status(START)])
    now = START + timedelta(seconds=10, milliseconds=100)
    first = context.wallet_of(world, *WALLET, now)
    world.put_rental(rental(5, status(START)))
    second = context.wallet_of(world, *WALLET, now)
    assert second is not first and second is not None
    assert second.reading.spent_cents == fresh(world, now).spent_cents
    body = world.wallets[WALLET]
    world.put_wallet(WALLET, {**body, "spec": {"budget": "0.01"}})
    assert reading(world, now) == fresh(world, now)
    assert reading(world, now).exhausted


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.tuples(st.integers(0, 2_500_000),  # microseconds forward
                                st.sampled_from(["heartbeat", "close", "open", "none"]),
                                st.integers(0, 3)),
                      min_size=1, max_size=25),
       budget=st.sampled_from(["0.05", "0.30", "5"]))
def test_the_cached_reading_is_always_the_fresh_one(
        steps: list[tuple[int, str, int]], budget: str) -> None:
    starts = [START + timedelta(seconds=i) for i in range(4)]
    world = world_with(budget, [status(s) for s in starts])
    now, rv = START + timedelta(seconds=5), 1
    for forward, change, i in steps:
        now += timedelta(microseconds=forward)
        rv += 1
        current = dict(world.rental((WALLET[0], f"r{i}")).status)  # type: ignore[union-attr]
        if change == "heartbeat":
            current.update(lastHeartbeatAt=format_ts(now), secondsBilled=rv)
        elif change == "close" and current.get("runningSince"):
            meter.close_segment(current, now)
        elif change == "open":
            meter.open_segment(current, now, f"pod-{rv}")
        if change != "none":
            world.put_rental(rental(i, current, rv=rv))
        assert reading(world, now) == fresh(world, now)
