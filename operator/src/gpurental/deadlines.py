"""When each object's next pass is due: the heartbeat, expiry, exhaustion and retry moments.

Pure: from a status, the metering interval and `now`, says how long until a rental or wallet
must be looked at again. The reconcilers turn these delays into delayed re-adds of the key to
their work queue; no timer or task is ever kept per object.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gpurental import meter, money
from gpurental.clock import parse_ts

# A heartbeat this close to its interval is due: the queue's timer may fire a little early,
# and skipping it would leave the status a whole interval staler.
HEARTBEAT_SLACK = 0.5


def _age(stamp: str, now: datetime) -> float:
    return (now - parse_ts(stamp)).total_seconds()


@dataclass(frozen=True)
class Cadence:
    """When one rental's heartbeats fall: every `interval` seconds, at its own `phase` past
    each multiple of the interval since the epoch (None: an interval after the last one).

    Rentals created together would otherwise tick together for ever: a thousand heartbeat
    PATCHes and their watch echoes in the same second, every interval, with a user's stop
    queued behind them. A phase from the rental's uid spreads them evenly over the interval.
    It is a whole number of seconds plus one half: the status stamps whole seconds
    (truncating), and the queue may fire half a second early, so a heartbeat written anywhere
    in [slot - 0.5, slot + 0.5) is stamped in the slot's own second and the next one is due a
    whole interval later, never twice per slot.
    """

    interval: float
    phase: float | None

    @classmethod
    def of(cls, uid: str, interval: float) -> Cadence:
        """Phases need whole-second intervals (the stamps' grain); others keep `last + interval`."""
        if interval < 1 or interval != int(interval):
            return cls(interval, None)
        return cls(interval, zlib.crc32(uid.encode()) % int(interval) + 0.5)

    def next_after(self, last: datetime) -> datetime:
        """The heartbeat after one stamped `last`: the first slot more than half an interval
        later. In the steady state that is exactly an interval; a meter just opened (or a
        heartbeat written more than half an interval late) waits half to one and a half
        intervals, so a rental's start costs no extra write."""
        if self.phase is None:
            return last + timedelta(seconds=self.interval)
        gap = max(self.interval / 2, HEARTBEAT_SLACK)
        since_phase = last.timestamp() + gap - self.phase
        slot = (math.floor(since_phase / self.interval) + 1) * self.interval + self.phase
        return datetime.fromtimestamp(slot, tz=UTC)

    def due(self, status: dict[str, Any], now: datetime) -> bool:
        """An open meter whose next heartbeat has come (or that has none yet) is refreshed."""
        if not meter.is_open(status):
            return False
        last = status.get("lastHeartbeatAt")
        return not last or self.until_next(last, now) <= HEARTBEAT_SLACK

    def until_next(self, last: str, now: datetime) -> float:
        """Seconds from `now` to the heartbeat after the one stamped `last`."""
        return (self.next_after(parse_ts(last)) - now).total_seconds()


def rental_delay(status: dict[str, Any], requeue_after: float | None, prepaid: int | None,
                 wallet_exhausts_at: datetime | None, now: datetime,
                 cadence: Cadence) -> float | None:
    """Seconds until the rental's next pass: the plan's own requeue, the next heartbeat, or
    the moment money changes its fate (expiry, wallet exhaustion) while its meter runs."""
    delays = [requeue_after] if requeue_after is not None else []
    running = meter.is_open(status)
    if running and status.get("lastHeartbeatAt"):
        delays.append(cadence.until_next(status["lastHeartbeatAt"], now))
    deadline = money.next_deadline(status, prepaid, wallet_exhausts_at)
    if deadline is not None and running:
        delays.append((deadline - now).total_seconds())
    return max(min(delays), 0.0) if delays else None


def wallet_spent_due(old: dict[str, Any], reading: money.WalletReading, now: datetime,
                     interval: float) -> bool:
    """Spent moved. While meters tick that is written once per metering interval; with
    nothing accruing it was a settlement or a transition, written at once."""
    last = old.get("lastUpdatedAt")
    if old.get("spentCents") == reading.spent_cents:
        return False
    if reading.burn_cents_per_hour == 0 or not isinstance(last, str):
        return True
    return _age(last, now) >= interval - HEARTBEAT_SLACK


def wallet_delay(reading: money.WalletReading, now: datetime, interval: float) -> float | None:
    """Seconds until the wallet's next pass: its heartbeat while it burns, and the predicted
    exhaustion moment. An exhausted wallet's moment is "now", which would re-run it in a busy
    loop: its rentals were re-queued when it flipped to exhausted instead."""
    delays = []
    if reading.burn_cents_per_hour > 0:
        delays.append(interval)
    if reading.exhausts_at is not None and not reading.exhausted:
        delays.append((reading.exhausts_at - now).total_seconds())
    return max(min(delays), 0.0) if delays else None


@dataclass(frozen=True)
class Backoff:
    """Rate-limited retry delays (client-go's ItemExponentialFailureRateLimiter): doubling
    per consecutive failure of the same key from `base`, capped at `cap`; a server's
    Retry-After (a 429's) is a floor, never shortened."""

    base: float = 0.25
    cap: float = 30.0

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        delay = min(self.base * 2 ** min(max(failures, 1), 16), self.cap)
        return max(delay, retry_after) if retry_after is not None else delay
