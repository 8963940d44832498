"""The meter on a rental's status: segments, re-closes, storage, refunds and the refreshed readings.

These are the functions the state machine and the wallet run; billing's arithmetic under them is
tested in test_billing.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpurental import billing, durations, meter
from gpurental.clock import format_ts, parse_ts

T0 = datetime(2026, 6, 7, 8, 0, 0, tzinfo=UTC)
S = timedelta(seconds=1)
US = timedelta(microseconds=1)


def running(start: datetime, accrued: int = 0, pod: str = "pod-1", **kw: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"accruedSeconds": accrued, **kw}
    meter.open_segment(status, start, pod)
    return status


# --- segments ----------------------------------------------------------------------------------


def test_meter_pause_resume_segments() -> None:
    status: dict[str, Any] = {"ratePerHour": "18"}
    assert meter.seconds_billed(status, T0) == 0
    meter.open_segment(status, T0, "pod-1")
    assert meter.is_open(status)
    assert meter.seconds_billed(status, T0 + 100.9 * S) == 100  # floor of the open segment
    meter.close_segment(status, T0 + 100.9 * S)  # pause
    assert (status["accruedSeconds"], status["runningSince"]) == (100, None)
    assert not meter.is_open(status)
    assert meter.seconds_billed(status, T0 + 10_000 * S) == 100  # nothing accrues while paused
    meter.open_segment(status, T0 + 200 * S, "pod-2")  # resume
    assert meter.seconds_billed(status, T0 + 200 * S) == 100
    assert meter.seconds_billed(status, T0 + 250 * S) == 150
    meter.close_segment(status, T0 + 300.5 * S)
    assert status["accruedSeconds"] == 200
    assert meter.gpu_cents(status, T0) == 100  # 200s at $18/h = 100 cents
    assert status["lastSegment"] == {"start": format_ts(T0 + 200 * S),
                                     "end": "2026-06-07T08:05:00.500000Z", "podUid": "pod-2"}


def test_open_segment_is_idempotent_and_close_of_closed_is_noop() -> None:
    status = running(T0, accrued=5)
    meter.open_segment(status, T0 + 60 * S, "pod-2")  # re-observing the running pod
    assert (status["runningSince"], status["segmentPodUid"]) == (format_ts(T0), "pod-1")
    meter.close_segment(status, T0 + 10 * S)
    closed = dict(status)
    meter.close_segment(status, T0 + 99 * S)
    assert status == closed


def test_clock_skew_never_negative() -> None:
    status = running(T0, accrued=42)
    assert meter.seconds_billed(status, T0 - 3600 * S) == 42
    assert meter.seconds_billed(status, T0 + 0.999999 * S) == 42
    assert meter.seconds_billed(status, T0 + S) == 43
    meter.close_segment(status, T0 - 5 * S)
    assert status["accruedSeconds"] == 42


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        meter.open_segment({}, datetime(2026, 1, 1), "pod-1")
    with pytest.raises(ValueError, match="aware"):
        meter.seconds_billed(running(T0), datetime(2026, 1, 1))


segments_st = st.lists(
    st.tuples(st.integers(0, 10**7), st.integers(0, 10**12)), min_size=1, max_size=8
)


@given(segments_st)
def test_segments_sum_floored_run_times(gaps_and_runs: list[tuple[int, int]]) -> None:
    """Any pause/resume history (pods start on whole seconds, as the kubelet reports them):
    billed = sum of each run's floored whole seconds."""
    status: dict[str, Any] = {}
    t = T0
    expected = 0
    for gap_s, run_us in gaps_and_runs:
        t = t.replace(microsecond=0) + gap_s * S
        meter.open_segment(status, t, "pod")
        t += timedelta(microseconds=run_us)
        assert meter.seconds_billed(status, t) == expected + run_us // 1_000_000
        meter.close_segment(status, t)
        expected += run_us // 1_000_000
        assert meter.seconds_billed(status, t + timedelta(days=365)) == expected


def exact_running(accrued: int, start_us: int) -> dict[str, Any]:
    """An open segment whose start has microseconds (``parse_ts`` keeps them)."""
    start = T0 + timedelta(microseconds=start_us)
    return {"accruedSeconds": accrued, "runningSince": meter.format_ts_exact(start),
            "segmentPodUid": "pod"}


@given(st.integers(0, 10**6), st.integers(-(10**12), 10**12), st.integers(0, 10**12))
def test_close_is_continuous_and_billed_monotone(accrued: int, start_us: int, dt_us: int) -> None:
    status = exact_running(accrued, start_us)
    t1 = T0 + timedelta(microseconds=dt_us)
    t2 = t1 + timedelta(microseconds=dt_us // 3)
    assert meter.seconds_billed(status, t1) <= meter.seconds_billed(status, t2)
    assert meter.seconds_billed(status, t1) >= accrued
    billed = meter.seconds_billed(status, t1)
    meter.close_segment(status, t1)
    assert meter.seconds_billed(status, t2) == billed


@given(st.integers(0, 10**6), st.integers(0, 10**9), st.integers(0, 10**9), st.integers(0, 10**9))
def test_reclose_shorten_and_reopen_equal_one_close_at_the_true_end(
    accrued: int, start_s: int, first_us: int, true_us: int
) -> None:
    """Whatever end the operator first closed a segment at, re-closing (the pod ran on) or
    shortening (its node was lost earlier) bills exactly what one close at the pod's true end
    bills, and reopening (the pod never stopped) bills what never closing it bills."""
    start = T0 + start_s * S

    def closed_at(end: datetime) -> dict[str, Any]:
        status = running(start, accrued)
        meter.close_segment(status, end)
        return status

    first, true_end = start + first_us * US, start + true_us * US
    fixed = closed_at(first)
    if true_end > first:
        meter.reclose_segment(fixed, "pod-1", true_end)
    else:
        meter.shorten_segment(fixed, "pod-1", true_end)
    assert fixed == closed_at(true_end)

    reopened = closed_at(first)
    assert meter.reopen_segment(reopened, "pod-1")
    never_closed = running(start, accrued)
    assert reopened == {**never_closed, "lastSegment": None}
    later = true_end + timedelta(days=1)
    assert meter.seconds_billed(reopened, later) == meter.seconds_billed(never_closed, later)


def test_reclose_shorten_reopen_touch_only_the_pod_of_the_last_segment() -> None:
    status = running(T0, accrued=10)
    meter.close_segment(status, T0 + 100 * S)
    before = dict(status)
    meter.reclose_segment(status, "other-pod", T0 + 500 * S)
    meter.shorten_segment(status, "other-pod", T0 + 50 * S)
    assert not meter.reopen_segment(status, "other-pod")
    meter.reclose_segment(status, "pod-1", T0 + 90 * S)  # not later: nothing to add
    meter.shorten_segment(status, "pod-1", T0 + 110 * S)  # not earlier: nothing to cut
    assert status == before
    meter.shorten_segment(status, "pod-1", T0 - 50 * S)  # never before the segment's start
    assert status["accruedSeconds"] == 10
    # An open meter is never re-closed, shortened or reopened.
    meter.open_segment(status, T0 + 200 * S, "pod-1")
    opened = dict(status)
    meter.reclose_segment(status, "pod-1", T0 + 900 * S)
    meter.shorten_segment(status, "pod-1", T0 + 1 * S)
    assert not meter.reopen_segment(status, "pod-1")
    assert status == opened


# --- storage -----------------------------------------------------------------------------------


def test_storage_accrues_while_the_volume_exists_and_closes_once() -> None:
    rate = meter.storage_rate(Decimal(50), Decimal("0.0001"))
    assert rate == Decimal("0.0050")
    assert meter.storage_rate(Decimal(50), None) is None  # the offer does not bill storage
    assert meter.storage_rate(Decimal(50), Decimal(0)) is None
    status: dict[str, Any] = {"storageRatePerHour": str(rate), "storageSince": format_ts(T0),
                              "storageAccruedSeconds": 0}
    assert meter.storage_seconds(status, T0 + 3599.9 * S) == 3599
    assert meter.storage_cents(status, T0 + 3599 * S) == 0
    assert meter.storage_cents(status, T0 + 3600 * S) == 1  # half a cent rounds up
    meter.close_storage(status, T0 + 36000 * S)
    assert (status["storageAccruedSeconds"], status["storageSince"]) == (36000, None)
    meter.close_storage(status, T0 + 99999 * S)
    assert status["storageAccruedSeconds"] == 36000
    assert meter.storage_cents(status, T0 + 10**6 * S) == 5
    assert meter.storage_cents({"storageAccruedSeconds": 36000}, T0) == 0  # no rate: unbilled


# --- charges, billable cents, refunds ----------------------------------------------------------


def test_charges_are_billings_formula_on_the_status() -> None:
    status = running(T0, accrued=4800, ratePerHour="2.80",
                     storageRatePerHour="0.36", storageAccruedSeconds=100)
    now = T0 + 27.5 * S
    assert meter.seconds_billed(status, now) == 4827
    assert meter.gpu_cents(status, now) == billing.charge_cents(4827, Decimal("2.80")) == 375
    assert meter.gpu_charge(status, 3600) == 280
    assert meter.storage_cents(status, now) == billing.charge_cents(100, Decimal("0.36")) == 1
    assert meter.total_cents(status, now) == 376
    assert meter.gpu_cents({"accruedSeconds": 4827}, now) == 0  # no rate locked yet
    assert meter.gpu_charge({}, 4827) == 0


def test_billable_cents_are_the_charges_less_refunds_never_negative() -> None:
    status = {"ratePerHour": "3.60", "accruedSeconds": 100, "storageRatePerHour": "36",
              "storageAccruedSeconds": 10}
    assert meter.billable_cents(status, T0) == 20
    assert meter.billable_cents({**status, "refundedCents": 5}, T0) == 15
    assert meter.billable_cents({**status, "refundedCents": 50}, T0) == 0
    assert meter.billable_cents({}, T0) == 0


def test_refund_all_refunds_everything_that_accrued() -> None:
    """Failed provisioning is never billed: the refund is the whole charge, GPU and storage,
    and once the meters are closed the wallet is charged nothing, however late it reads."""
    status = running(T0, ratePerHour="18", storageRatePerHour="36",
                     storageSince=format_ts(T0), storageAccruedSeconds=0)
    end = T0 + 200 * S
    assert meter.refund_all(status, end) == 100 + 200
    meter.close_segment(status, end)
    meter.close_storage(status, end)
    status["refundedCents"] = meter.refund_all(status, end)
    assert status["refundedCents"] == 300
    assert meter.billable_cents(status, end) == 0
    assert meter.billable_cents(status, end + timedelta(days=30)) == 0
    assert meter.refund_all({}, end) == 0


@given(st.integers(0, 10**7), st.integers(0, 10**7), st.integers(0, 10**6),
       st.sampled_from(["0.69", "2.80", "1000", "0.000001"]))
def test_refund_all_zeroes_what_the_wallet_is_charged(
    accrued: int, storage: int, open_s: int, rate: str
) -> None:
    status = running(T0, accrued, ratePerHour=rate, storageRatePerHour=rate,
                     storageAccruedSeconds=storage)
    end = T0 + open_s * S
    meter.close_segment(status, end)
    total = meter.total_cents(status, end)
    status["refundedCents"] = meter.refund_all(status, end)
    assert status["refundedCents"] == total >= 0
    assert meter.billable_cents(status, end) == 0


# --- refresh -----------------------------------------------------------------------------------


def test_refresh_writes_the_readings_and_only_clock_driven_fields() -> None:
    status = running(T0, accrued=100, ratePerHour="3.60", storageRatePerHour="36",
                     storageAccruedSeconds=10, phase="Running")
    before = dict(status)
    now = T0 + 3500.5 * S
    meter.refresh(status, now, 4 * 3600)
    assert status["secondsBilled"] == 3600
    assert status["currentChargeCents"] == 360
    assert (status["storageSecondsBilled"], status["storageChargeCents"]) == (10, 10)
    assert status["totalChargeCents"] == 370
    assert status["totalCharge"] == billing.dollars(370) == "$3.70"
    assert status["ranFor"] == durations.format_duration(3600)
    assert status["lastHeartbeatAt"] == format_ts(now)
    assert status["remainingSeconds"] == 3 * 3600
    assert status["expiresAt"] == format_ts(T0 + (4 * 3600 - 100) * S)
    changed = {k for k in status if status[k] != before.get(k)}
    assert changed <= meter.REFRESHED_FIELDS
    unbilled_storage: dict[str, Any] = {"accruedSeconds": 5}
    meter.refresh(unbilled_storage, now, None)
    assert "storageChargeCents" not in unbilled_storage


def test_refresh_expiry_running_paused_unlimited_and_lowered() -> None:
    status = running(T0 - 600 * S)
    meter.refresh(status, T0, 4 * 3600)
    assert status["expiresAt"] == format_ts(T0 + (4 * 3600 - 600) * S)
    assert status["remainingSeconds"] == 4 * 3600 - 600
    # The expiry is a moment, not "now + remaining": a later refresh keeps it.
    meter.refresh(status, T0 + 0.7 * S, 4 * 3600)
    assert status["expiresAt"] == format_ts(T0 + (4 * 3600 - 600) * S)
    # Paused: the prepaid time does not run out, only what is left is shown.
    meter.close_segment(status, T0)
    meter.refresh(status, T0 + 86400 * S, 4 * 3600)
    assert (status["expiresAt"], status["remainingSeconds"]) == (None, 4 * 3600 - 600)
    # Resumed a day later: the expiry moved by the paused time.
    resume = T0 + 86400 * S
    meter.open_segment(status, resume, "pod-2")
    meter.refresh(status, resume, 4 * 3600)
    assert status["expiresAt"] == format_ts(resume + (4 * 3600 - 600) * S)
    # Unlimited.
    meter.refresh(status, resume, None)
    assert (status["expiresAt"], status["remainingSeconds"]) == (None, None)
    # Lowered below what already ran: expired (in the past), nothing left.
    meter.refresh(status, resume, 300)
    assert parse_ts(status["expiresAt"]) <= resume
    assert status["remainingSeconds"] == 0


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(-(10**6), 10**6),
       st.integers(0, 10**12))
def test_refreshed_expiry_is_when_the_meter_reaches_the_prepaid_time(
    accrued: int, prepaid: int, start_s: int, probe_us: int
) -> None:
    start = T0 + start_s * S
    status = running(start, accrued)
    meter.refresh(status, T0, prepaid)
    moment = parse_ts(status["expiresAt"])
    t = start + timedelta(microseconds=probe_us)
    assert (meter.seconds_billed(status, t) >= prepaid) == (t >= moment)
