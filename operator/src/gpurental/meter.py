"""A rental's meter as it lives in status: segments of running time and of stored volume.

Pure: the one adapter between a rental's status dict and billing's exact maths. It reads a
segment of status as a :class:`billing.Meter` (:func:`gpu_meter`, :func:`storage_meter`) and
counts its seconds, charges and expiry only through billing, so the operator's status, the
wallet's reading and the kubectl plugin's live meter are the same numbers, rounded the same way.
The meter is derived from timestamps kept in status (the open segment's start and the seconds of
closed ones), never from counters in memory, so an operator restart loses nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from gpurental import billing, durations
from gpurental.clock import format_ts, parse_ts


def format_ts_exact(dt: datetime) -> str:
    """RFC 3339 with microseconds: a closed segment's end must re-close exactly."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

# Fields that change with the clock alone; a status that differs only in these is not a
# transition and is written only when the heartbeat is due.
REFRESHED_FIELDS = frozenset({
    "secondsBilled", "currentChargeCents", "storageSecondsBilled", "storageChargeCents",
    "totalChargeCents", "ranFor", "totalCharge", "lastHeartbeatAt", "expiresAt",
    "remainingSeconds",
})


# Every field a wallet's reading reads of a rental's status (`billable_cents` and
# `money.accruals`): two statuses equal in these are charged the same at every moment, so a
# heartbeat (which rewrites only REFRESHED_FIELDS) never invalidates a cached reading.
BILLING_FIELDS = ("accruedSeconds", "runningSince", "ratePerHour", "storageAccruedSeconds",
                  "storageSince", "storageRatePerHour", "refundedCents")


def billing_inputs(status: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(status.get(name) for name in BILLING_FIELDS)


def is_open(status: Mapping[str, Any]) -> bool:
    return bool(status.get("runningSince"))


def open_segment(status: dict[str, Any], start: datetime, pod_uid: str) -> None:
    if not is_open(status):
        status["runningSince"] = format_ts(start)
        status["segmentPodUid"] = pod_uid


def close_segment(status: dict[str, Any], end: datetime) -> None:
    """Close the open segment at `end` and remember it, so it can be re-closed later."""
    since = status.get("runningSince")
    if since:
        # Folding the open segment keeps seconds_billed continuous across the close.
        status["accruedSeconds"] = billing.seconds_billed(gpu_meter(status), end)
        status["lastSegment"] = {"start": since, "end": format_ts_exact(end),
                                 "podUid": status.get("segmentPodUid") or ""}
    status["runningSince"] = None
    status["segmentPodUid"] = None


def reclose_segment(status: dict[str, Any], pod_uid: str, end: datetime) -> None:
    """The pod of the last closed segment is still running: the operator closed the meter,
    then died before its DELETE reached the API server. The pod held its GPU until now, so the
    segment ends now - billing follows the pod's life, not the operator's intent."""
    last = status.get("lastSegment") or {}
    if is_open(status) or not last or last.get("podUid") != pod_uid:
        return
    start, old_end = parse_ts(last["start"]), parse_ts(last["end"])
    if end <= old_end:
        return
    status["accruedSeconds"] = (int(status.get("accruedSeconds") or 0)
                                - billing.whole_seconds(start, old_end)
                                + billing.whole_seconds(start, end))
    status["lastSegment"] = {**last, "end": format_ts_exact(end)}


def shorten_segment(status: dict[str, Any], pod_uid: str, end: datetime) -> None:
    """The pod of the last closed segment lost its node before the close (the operator closed
    it, for a pause or stop, while the node was dead but not yet declared lost): its GPU was
    unreachable from `end` on, so the segment ends there."""
    last = status.get("lastSegment") or {}
    if is_open(status) or not last or last.get("podUid") != pod_uid:
        return
    start, old_end = parse_ts(last["start"]), parse_ts(last["end"])
    if end >= old_end:
        return
    end = max(end, start)
    status["accruedSeconds"] = (int(status.get("accruedSeconds") or 0)
                                - billing.whole_seconds(start, old_end)
                                + billing.whole_seconds(start, end))
    status["lastSegment"] = {**last, "end": format_ts_exact(end)}


def reopen_segment(status: dict[str, Any], pod_uid: str) -> bool:
    """The pod of the last closed segment is running and the rental runs again (a pause or
    stop was decided, the operator died before its DELETE, the user resumed): the segment was
    never really closed, so it continues from its start. Opening a new one at the container's
    start would bill the closed part twice."""
    last = status.get("lastSegment") or {}
    if is_open(status) or not last or last.get("podUid") != pod_uid:
        return False
    start, end = parse_ts(last["start"]), parse_ts(last["end"])
    status["accruedSeconds"] = (int(status.get("accruedSeconds") or 0)
                                - billing.whole_seconds(start, end))
    status["runningSince"] = last["start"]
    status["segmentPodUid"] = pod_uid
    status["lastSegment"] = None
    return True


def close_storage(status: dict[str, Any], end: datetime) -> None:
    if status.get("storageSince"):
        status["storageAccruedSeconds"] = billing.seconds_billed(storage_meter(status), end)
    status["storageSince"] = None


def storage_rate(gib: Decimal, price_per_gib_hour: Decimal | None) -> Decimal | None:
    """USD per hour for the whole volume, or None when the offer does not bill storage."""
    if not price_per_gib_hour:
        return None
    return billing.storage_rate_per_hour(gib, price_per_gib_hour)


def _meter(status: Mapping[str, Any], accrued: str, since: str) -> billing.Meter:
    start = status.get(since)
    return billing.Meter(accrued_seconds=int(status.get(accrued) or 0),
                         running_since=parse_ts(start) if start else None)


def gpu_meter(status: Mapping[str, Any]) -> billing.Meter:
    """The rental's running time: ``accruedSeconds`` and the open segment's ``runningSince``."""
    return _meter(status, "accruedSeconds", "runningSince")


def storage_meter(status: Mapping[str, Any]) -> billing.Meter:
    """The volume's stored time: ``storageAccruedSeconds`` and ``storageSince``."""
    return _meter(status, "storageAccruedSeconds", "storageSince")


def seconds_billed(status: Mapping[str, Any], now: datetime) -> int:
    return billing.seconds_billed(gpu_meter(status), now)


def storage_seconds(status: Mapping[str, Any], now: datetime) -> int:
    return billing.seconds_billed(storage_meter(status), now)


def gpu_charge(status: Mapping[str, Any], seconds: int) -> int:
    """The charge of ``seconds`` of running time at the rental's locked ``ratePerHour``; 0 before
    a rate is locked."""
    rate = status.get("ratePerHour")
    if not rate:
        return 0
    return billing.charge_cents(seconds, Decimal(rate))


def gpu_cents(status: Mapping[str, Any], now: datetime) -> int:
    return gpu_charge(status, seconds_billed(status, now))


def storage_cents(status: Mapping[str, Any], now: datetime) -> int:
    rate = status.get("storageRatePerHour")
    if not rate:
        return 0
    return billing.charge_cents(storage_seconds(status, now), Decimal(rate))


def total_cents(status: Mapping[str, Any], now: datetime) -> int:
    return gpu_cents(status, now) + storage_cents(status, now)


def billable_cents(status: Mapping[str, Any], now: datetime) -> int:
    """What the wallet is charged for this rental: everything accrued, less refunds."""
    return max(total_cents(status, now) - int(status.get("refundedCents") or 0), 0)


def refund_all(status: Mapping[str, Any], now: datetime) -> int:
    """Failed provisioning is never billed: refund whatever accrued."""
    return total_cents(status, now)


def refresh(status: dict[str, Any], now: datetime, prepaid: int | None) -> None:
    """Write the meter's readings for `now`: what kubectl, the seed's meter API and the
    wallet read."""
    seconds = seconds_billed(status, now)
    gpu = gpu_cents(status, now)
    storage = storage_cents(status, now)
    status["secondsBilled"] = seconds
    status["currentChargeCents"] = gpu
    if status.get("storageRatePerHour"):
        status["storageSecondsBilled"] = storage_seconds(status, now)
        status["storageChargeCents"] = storage
    status["totalChargeCents"] = gpu + storage
    status["ranFor"] = durations.format_duration(seconds)
    status["totalCharge"] = billing.dollars(gpu + storage)
    status["lastHeartbeatAt"] = format_ts(now)
    _refresh_expiry(status, prepaid, seconds)


def _refresh_expiry(status: dict[str, Any], prepaid: int | None, seconds: int) -> None:
    """expiresAt is the exact moment the open segment reaches the prepaid time; it moves
    when the user extends (raises duration) or pauses (no expiry while paused)."""
    status["remainingSeconds"] = billing.remaining_seconds(prepaid, seconds)
    moment = billing.expiry_moment(gpu_meter(status), prepaid)
    status["expiresAt"] = format_ts(moment) if moment is not None else None


# --- the state machine's meter steps ---------------------------------------------------------
# What lifecycle decides to do to the meter, in the meter's own terms: each step below keeps
# the segments' invariant (at most one open segment, closed segments never overlap, a closed
# segment's seconds are in accruedSeconds exactly once).

def lock_rate(status: dict[str, Any], rate: Decimal | None) -> None:
    """The GPU rate is fixed the first time a segment opens: a later price change of the
    offer never re-prices time already rented."""
    if "ratePerHour" not in status and rate is not None:
        status["ratePerHour"] = str(rate)


def lock_storage_rate(status: dict[str, Any], gib: Decimal,
                      price_per_gib_hour: Decimal | None) -> None:
    """Like the GPU rate, the volume's rate is fixed once, when the volume is first asked for."""
    if "storageRatePerHour" not in status:
        rate = storage_rate(gib, price_per_gib_hour)
        if rate is not None:
            status["storageRatePerHour"] = str(rate)


def start_storage(status: dict[str, Any], now: datetime) -> None:
    """A billed volume is metered from when it is asked for until it is deleted or lost: a
    lost claim stores nothing, so its segment never reopens."""
    if (status.get("storageRatePerHour") and not status.get("storageSince")
            and not status.get("lostClaim")):
        status["storageSince"] = format_ts(now)


def start_running(status: dict[str, Any], pod_uid: str, started_at: datetime | None,
                  now: datetime) -> None:
    """A pod runs: meter it from its container's start. A segment closed for this very pod
    (a pause decided, the DELETE never sent) continues instead: it was never really closed."""
    if not is_open(status) and not reopen_segment(status, pod_uid):
        open_segment(status, started_at or now, pod_uid)
    _first_start(status, started_at or now)


def _first_start(status: dict[str, Any], at: datetime) -> None:
    if "firstStartedAt" not in status:  # formatted only once: every heartbeat passes here
        status["firstStartedAt"] = format_ts(at)


def bill_unseen_run(status: dict[str, Any], pod_uid: str, started_at: datetime | None,
                    now: datetime, rate: Decimal | None) -> None:
    """A running pod that no open segment meters is being stopped. If it is the last closed
    segment's pod, that segment ends now; otherwise the pod started where no pass saw it run
    (the operator was down, or the user paused between the kubelet's start and the next
    pass). Either way it held its GPUs until now, and billing follows the pod's life."""
    if (status.get("lastSegment") or {}).get("podUid") == pod_uid:
        reclose_segment(status, pod_uid, now)
        return
    lock_rate(status, rate)
    open_segment(status, started_at or now, pod_uid)
    close_segment(status, now)
    _first_start(status, started_at or now)


def count_interruption(status: dict[str, Any], restarted_at: datetime) -> None:
    """A preempted rental runs again: the time since its last segment ended was interrupted
    (reported, never billed)."""
    last = (status.get("lastSegment") or {}).get("end")
    if last:
        gap = billing.whole_seconds(parse_ts(last), restarted_at)
        status["interruptedSeconds"] = int(status.get("interruptedSeconds") or 0) + gap


def refund(status: dict[str, Any], now: datetime) -> None:
    """Failed first provisioning is never billed: everything accrued is refunded."""
    status["refundedCents"] = refund_all(status, now)


def is_transition(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Does `new` differ from `old` in more than the clock-driven readings? Nulls count as
    absent: a merge patch stores a null as a missing field."""
    def fields(status: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in status.items() if k not in REFRESHED_FIELDS and v is not None}
    return fields(old) != fields(new)
