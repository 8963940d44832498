"""When a rental or wallet is looked at again: heartbeats, expiry, exhaustion."""

from __future__ import annotations

from datetime import timedelta

from gpurental import deadlines, money
from gpurental.clock import ManualClock, format_ts

INTERVAL = 30.0


def running(clock: ManualClock, heartbeat_age: float) -> dict[str, object]:
    return {"runningSince": format_ts(clock.now() - timedelta(seconds=600)),
            "accruedSeconds": 0, "ratePerHour": "3.60",
            "lastHeartbeatAt": format_ts(clock.now() - timedelta(seconds=heartbeat_age))}


def test_a_heartbeat_is_due_an_interval_after_the_last_one() -> None:
    clock = ManualClock()
    assert not deadlines.heartbeat_due(running(clock, 10), clock.now(), INTERVAL)
    assert deadlines.heartbeat_due(running(clock, 29.6), clock.now(), INTERVAL)  # slack
    assert deadlines.heartbeat_due({**running(clock, 0), "lastHeartbeatAt": None},
                                   clock.now(), INTERVAL)
    assert not deadlines.heartbeat_due({"phase": "Paused"}, clock.now(), INTERVAL)


def test_a_running_rental_comes_back_at_its_next_heartbeat() -> None:
    clock = ManualClock()
    delay = deadlines.rental_delay(running(clock, 10), None, None, None, clock.now(), INTERVAL)
    assert delay == 20.0


def test_expiry_comes_before_the_heartbeat_when_it_is_sooner() -> None:
    clock = ManualClock()
    status = running(clock, 0)  # 600 s billed so far
    delay = deadlines.rental_delay(status, None, 605, None, clock.now(), INTERVAL)
    assert delay == 5.0
    exhausts = clock.now() + timedelta(seconds=3)
    assert deadlines.rental_delay(status, None, None, exhausts, clock.now(), INTERVAL) == 3.0


def test_a_stopped_rental_only_comes_back_when_its_plan_asks() -> None:
    clock = ManualClock()
    assert deadlines.rental_delay({"phase": "Stopped"}, None, 60, None, clock.now(),
                                  INTERVAL) is None
    assert deadlines.rental_delay({"phase": "Stopped"}, 2.0, None, None, clock.now(),
                                  INTERVAL) == 2.0


def test_a_burning_wallet_is_read_each_interval_and_at_its_exhaustion() -> None:
    clock = ManualClock()
    soon = clock.now() + timedelta(seconds=12)
    burning = money.WalletReading(1000, 10, 360, soon)
    assert deadlines.wallet_delay(burning, clock.now(), INTERVAL) == 12.0
    idle = money.WalletReading(1000, 10, 0, None)
    assert deadlines.wallet_delay(idle, clock.now(), INTERVAL) is None
    spent = money.WalletReading(1000, 1000, 360, clock.now())
    assert deadlines.wallet_delay(spent, clock.now(), INTERVAL) == INTERVAL  # no busy loop


def test_wallet_spent_is_written_once_per_interval_while_meters_tick() -> None:
    clock = ManualClock()
    old = {"spentCents": 10, "lastUpdatedAt": format_ts(clock.now() - timedelta(seconds=5))}
    ticking = money.WalletReading(1000, 11, 360, None)
    assert not deadlines.wallet_spent_due(old, ticking, clock.now(), INTERVAL)
    clock.advance(25)
    assert deadlines.wallet_spent_due(old, ticking, clock.now(), INTERVAL)
    settled = money.WalletReading(1000, 50, 0, None)  # nothing accruing: a settlement
    assert deadlines.wallet_spent_due(old, settled, ManualClock().now(), INTERVAL)
    unchanged = money.WalletReading(1000, 10, 360, None)
    assert not deadlines.wallet_spent_due(old, unchanged, clock.now(), INTERVAL)
