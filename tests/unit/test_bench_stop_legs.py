"""The bench's cut of one stop where it changes hands, from the server's request record."""

from __future__ import annotations

import pytest

from gpurental_bench.figures import StopLatencies, stop_legs


def record(timestamp: float, duration: float) -> dict[str, float]:
    return {"timestamp": timestamp, "duration": duration}


def test_a_stop_is_cut_into_the_servers_writes_and_the_operators_gaps() -> None:
    # user PATCH in at 100.000 for 20 ms; the meter's write in at 100.050 for 30 ms; the
    # pod's DELETE in at 100.090
    legs = stop_legs(record(100.000, 0.020), record(100.050, 0.030), 100.090)
    assert legs.user_write == pytest.approx(20)
    assert legs.reaction == pytest.approx(30)  # 100.020 -> 100.050
    assert legs.meter_write == pytest.approx(30)
    assert legs.turnaround == pytest.approx(10)  # 100.080 -> 100.090
    assert legs.server == pytest.approx(50)
    total = legs.user_write + legs.reaction + legs.meter_write + legs.turnaround
    assert total == pytest.approx(90)  # the whole stop, PATCH in to DELETE in


def test_the_split_reports_each_leg_and_the_servers_sum_per_stop() -> None:
    stops = StopLatencies([90.0], [60.0], [
        stop_legs(record(0.0, 0.020), record(0.050, 0.030), 0.090),
        stop_legs(record(10.0, 0.010), record(10.030, 0.010), 10.060)])
    assert stops.server == [pytest.approx(50), pytest.approx(20)]
    text = stops.split()
    assert "user_write 10.0 / 20.0" in text and "turnaround 10.0 / 20.0" in text
    assert text.endswith("together 20.0 / 50.0")


def test_no_status_write_in_the_record_is_said_so() -> None:
    assert "no status write" in StopLatencies([1.0], []).split()


def test_the_slowest_stops_are_given_leg_by_leg() -> None:
    fast = stop_legs(record(0.0, 0.010), record(0.030, 0.010), 0.060)
    stalled = stop_legs(record(10.0, 0.010), record(18.010, 0.010), 18.130)
    stops = StopLatencies([60.0, 8130.0], [5.0], [fast, stalled])
    text = stops.slowest(n=1)
    assert "8130 (10.0 / 8000.0 / 10.0 / 110.0)" in text
    assert "60 (" not in text
    assert text.endswith("1 of 3 without a meter write between PATCH and DELETE in the record")
