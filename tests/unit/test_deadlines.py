"""When a rental or wallet is looked at again: heartbeats, expiry, exhaustion."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from gpurental import deadlines, money
from gpurental.clock import ManualClock, format_ts, parse_ts
from gpurental.deadlines import HEARTBEAT_SLACK

INTERVAL = 30.0


def running(clock: ManualClock, heartbeat_age: float) -> dict[str, object]:
    return {"runningSince": format_ts(clock.now() - timedelta(seconds=600)),
            "accruedSeconds": 0, "ratePerHour": "3.60",
            "lastHeartbeatAt": format_ts(clock.now() - timedelta(seconds=heartbeat_age))}


EVERY_INTERVAL = deadlines.Cadence(INTERVAL, None)  # no phase: an interval after the last


def test_a_heartbeat_is_due_an_interval_after_the_last_one() -> None:
    clock = ManualClock()
    assert not EVERY_INTERVAL.due(running(clock, 10), clock.now())
    assert EVERY_INTERVAL.due(running(clock, 29.6), clock.now())  # slack
    assert EVERY_INTERVAL.due({**running(clock, 0), "lastHeartbeatAt": None}, clock.now())
    assert not EVERY_INTERVAL.due({"phase": "Paused"}, clock.now())


def test_a_running_rental_comes_back_at_its_next_heartbeat() -> None:
    clock = ManualClock()
    delay = deadlines.rental_delay(running(clock, 10), None, None, None, clock.now(),
                                   EVERY_INTERVAL)
    assert delay == 20.0


def test_a_rentals_heartbeats_fall_at_its_own_phase() -> None:
    cadence = deadlines.Cadence(INTERVAL, 7.5)  # 7.5 s past each multiple of 30 s
    clock = ManualClock(datetime(2026, 6, 7, 8, 0, 0, tzinfo=UTC))  # a multiple of 30 s
    opened = running(clock, 0)  # 08:00:00; 08:00:07.5 is too soon, 08:00:37.5 is next
    assert deadlines.rental_delay(opened, None, None, None, clock.now(), cadence) == 37.5
    clock.advance(37)
    assert cadence.due(opened, clock.now())  # half a second early is due
    stamped = {**opened, "lastHeartbeatAt": format_ts(clock.now())}  # 08:00:37
    assert not cadence.due(stamped, clock.now())  # never twice for one slot
    assert deadlines.rental_delay(stamped, None, None, None, clock.now(), cadence) == 30.5


def test_phases_need_whole_second_intervals() -> None:
    assert deadlines.Cadence.of("uid", 2.5).phase is None
    assert deadlines.Cadence.of("uid", 0.5).phase is None
    assert deadlines.Cadence.of("uid", 1.0).phase == 0.5
    phase = deadlines.Cadence.of("uid", 30.0).phase
    assert phase is not None and 0.5 <= phase < 30 and phase % 1 == 0.5


def test_rentals_created_together_spread_their_heartbeats_over_the_interval() -> None:
    uids = [str(uuid.uuid5(uuid.NAMESPACE_OID, str(n))) for n in range(3000)]
    per_second = Counter(int(deadlines.Cadence.of(uid, INTERVAL).phase or 0) for uid in uids)
    assert sorted(per_second) == list(range(30))  # every second of the interval is used
    assert max(per_second.values()) < 2 * 3000 / 30  # and none carries a wave


@given(uid=st.uuids(), interval=st.integers(1, 300), stamp=st.integers(0, 4_000_000_000),
       early=st.floats(0, HEARTBEAT_SLACK), late=st.floats(0, 0.499))
def test_a_heartbeat_written_near_its_slot_makes_the_next_one_a_whole_interval_later(
        uid: uuid.UUID, interval: int, stamp: int, early: float, late: float) -> None:
    cadence = deadlines.Cadence.of(str(uid), float(interval))
    last = datetime.fromtimestamp(stamp, tz=UTC)
    slot = cadence.next_after(last)
    assert timedelta(seconds=interval / 2) < slot - last <= timedelta(seconds=1.5 * interval + 1)
    for written in (slot - timedelta(seconds=early), slot + timedelta(seconds=late)):
        status = running(ManualClock(written), 0)  # stamped in whole seconds, truncated
        assert not cadence.due(status, written)
        assert cadence.next_after(parse_ts(status["lastHeartbeatAt"])) == (
            slot + timedelta(seconds=interval))


def test_expiry_comes_before_the_heartbeat_when_it_is_sooner() -> None:
    clock = ManualClock()
    status = running(clock, 0)  # 600 s billed so far
    delay = deadlines.rental_delay(status, None, 605, None, clock.now(), EVERY_INTERVAL)
    assert delay == 5.0
    exhausts = clock.now() + timedelta(seconds=3)
    assert deadlines.rental_delay(status, None, None, exhausts, clock.now(),
                                  EVERY_INTERVAL) == 3.0


def test_a_stopped_rental_only_comes_back_when_its_plan_asks() -> None:
    clock = ManualClock()
    assert deadlines.rental_delay({"phase": "Stopped"}, None, 60, None, clock.now(),
                                  EVERY_INTERVAL) is None
    assert deadlines.rental_delay({"phase": "Stopped"}, 2.0, None, None, clock.now(),
                                  EVERY_INTERVAL) == 2.0


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
