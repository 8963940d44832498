"""When each object's next pass is due: the heartbeat, expiry, exhaustion and retry moments.

Pure: from a status, the metering interval and `now`, says how long until a rental or wallet
must be looked at again. The reconcilers turn these delays into delayed re-adds of the key to
their work queue; no timer or task is ever kept per object.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gpurental import meter, money
from gpurental.clock import parse_ts

# A heartbeat this close to its interval is due: the queue's timer may fire a little early,
# and skipping it would leave the status a whole interval staler.
HEARTBEAT_SLACK = 0.5


def _age(stamp: str, now: datetime) -> float:
    return (now - parse_ts(stamp)).total_seconds()


def heartbeat_due(status: dict[str, Any], now: datetime, interval: float) -> bool:
    """An open meter whose last heartbeat is an interval old (or missing) is refreshed."""
    if not meter.is_open(status):
        return False
    last = status.get("lastHeartbeatAt")
    return not last or _age(last, now) >= interval - HEARTBEAT_SLACK


def rental_delay(status: dict[str, Any], requeue_after: float | None, prepaid: int | None,
                 wallet_exhausts_at: datetime | None, now: datetime,
                 interval: float) -> float | None:
    """Seconds until the rental's next pass: the plan's own requeue, the next heartbeat, or
    the moment money changes its fate (expiry, wallet exhaustion) while its meter runs."""
    delays = [requeue_after] if requeue_after is not None else []
    running = meter.is_open(status)
    if running and status.get("lastHeartbeatAt"):
        delays.append(interval - _age(status["lastHeartbeatAt"], now))
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
