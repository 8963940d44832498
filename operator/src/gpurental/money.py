"""The money layer's verdicts: a wallet's reading, and the holds that money puts on rentals.

Pure: from specs, statuses and `now`, decides what a wallet has spent and when it runs out,
whether a rental's prepaid time has run out, and whether an auto-renewal is covered. The state
machine (lifecycle) applies the verdicts; the reconcilers schedule the moments they predict.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from gpurental import billing, durations, meter
from gpurental.clock import format_ts
from gpurental.holds import Hold
from gpurental.models import (
    ConditionType,
    DesiredState,
    ExhaustAction,
    OfferSpec,
    RentalSpec,
    WalletSpec,
    set_condition,
)
from gpurental.observed import RentalView

_ACTION_STATE = {ExhaustAction.PAUSE: DesiredState.PAUSED, ExhaustAction.STOP: DesiredState.STOPPED}


@dataclass(frozen=True)
class WalletReading:
    budget_cents: int
    spent_cents: int
    burn_cents_per_hour: int
    exhausts_at: datetime | None
    # Every figure above holds until this moment (the next tick of one of the wallet's running
    # meters) while nothing it was read from changes; None: nothing accrues.
    holds_until: datetime | None = None

    @property
    def remaining_cents(self) -> int:
        return max(self.budget_cents - self.spent_cents, 0)

    @property
    def exhausted(self) -> bool:
        return self.spent_cents >= self.budget_cents


@dataclass(frozen=True)
class Wallet:
    """A wallet as a rental's pass sees it: its spec, its live reading, and the rentals its
    settlement ledger already holds (those are charged through the ledger, once)."""

    name: str
    spec: WalletSpec
    reading: WalletReading
    settled_uids: frozenset[str] = frozenset()

    @property
    def exhausted(self) -> bool:
        return self.reading.exhausted


def settled_uids(wallet_status: dict[str, Any]) -> frozenset[str]:
    return frozenset(e.get("rentalUid", "") for e in wallet_status.get("settlements") or ())


def accruals(status: dict[str, Any]) -> list[tuple[billing.Meter, Decimal]]:
    """The rental's meters that are accruing right now, with their hourly rates."""
    found = []
    if status.get("ratePerHour") and status.get("runningSince"):
        found.append((meter.gpu_meter(status), Decimal(status["ratePerHour"])))
    if status.get("storageRatePerHour") and status.get("storageSince"):
        found.append((meter.storage_meter(status), Decimal(status["storageRatePerHour"])))
    return found


def read_wallet(spec: WalletSpec, wallet_status: dict[str, Any],
                rentals: Iterable[RentalView], now: datetime) -> WalletReading:
    """Spent = settled charges of deleted rentals + what every live rental has accrued.

    A rental already in the settlement ledger (deleted, finalizer not yet released) is counted
    once, through the ledger."""
    settled = settled_uids(wallet_status)
    spent = int(wallet_status.get("settledCents") or 0)
    running: list[tuple[billing.Meter, Decimal]] = []
    for rental in rentals:
        if rental.uid in settled:
            continue
        spent += meter.billable_cents(rental.status, now)
        running.extend(accruals(rental.status))
    budget = spec.budget_cents
    ticks = [tick for m, _ in running if (tick := billing.next_tick(m, now)) is not None]
    return WalletReading(
        budget_cents=budget,
        spent_cents=spent,
        burn_cents_per_hour=billing.burn_cents_per_hour(rate for _, rate in running),
        exhausts_at=billing.exhaustion_at(budget - spent, running, now),
        holds_until=min(ticks, default=None),
    )


def prepaid_seconds(spec: RentalSpec, status: dict[str, Any], offer: OfferSpec | None
                    ) -> int | None:
    """Prepaid running time: duration + renewed seconds, capped by the offer's maxDuration."""
    max_duration = offer.max_duration if offer is not None else None
    return billing.effective_duration(spec.duration, int(status.get("renewedSeconds") or 0),
                                      max_duration)


@dataclass(frozen=True)
class Assessment:
    hold: Hold | None = None
    renew_seconds: int = 0  # an approved auto-renewal adds this much prepaid time
    prepaid_seconds: int | None = None


def assess(spec: RentalSpec, status: dict[str, Any], offer: OfferSpec | None,
          wallet: Wallet | None, now: datetime) -> Assessment:
    """Whether money holds the rental below its desired state, or renews it."""
    prepaid = prepaid_seconds(spec, status, offer)
    if wallet is not None and wallet.exhausted:
        reading = wallet.reading
        message = (f"the wallet ran out: spent {billing.dollars(reading.spent_cents)} of "
                   f"{billing.dollars(reading.budget_cents)}")
        hold = Hold(_ACTION_STATE[wallet.spec.on_exhausted], "BudgetExhausted", message)
        return Assessment(hold=hold, prepaid_seconds=prepaid)
    billed = meter.seconds_billed(status, now)
    if prepaid is None or billed < prepaid:
        return Assessment(prepaid_seconds=prepaid)
    added = _renewal(spec, status, offer, wallet, billed) if spec.auto_renew else 0
    if added:
        return Assessment(renew_seconds=added, prepaid_seconds=prepaid)
    message = f"the prepaid {durations.format_duration_exact(prepaid)} of running time ran out"
    return Assessment(hold=Hold(_ACTION_STATE[spec.on_expiry], "Expired", message),
                   prepaid_seconds=prepaid)


def _renewal(spec: RentalSpec, status: dict[str, Any], offer: OfferSpec | None,
             wallet: Wallet | None, billed: int) -> int:
    """Seconds one more renewal adds, if the wallet covers them at the locked rate; else 0."""
    max_duration = offer.max_duration if offer is not None else None
    added = billing.renewal_seconds(spec.duration, int(status.get("renewedSeconds") or 0),
                                    max_duration)
    rate = Decimal(status.get("ratePerHour") or 0)
    remaining = wallet.reading.remaining_cents if wallet is not None else None
    return added if billing.renewal_covered(remaining, billed, added, rate) else 0


def next_deadline(status: dict[str, Any], prepaid: int | None,
                  wallet_exhausts_at: datetime | None) -> datetime | None:
    """The next moment money may change the rental's fate: expiry or wallet exhaustion."""
    moments = []
    if prepaid is not None:
        expiry = billing.expiry_moment(meter.gpu_meter(status), prepaid)
        if expiry is not None:
            moments.append(expiry)
    if wallet_exhausts_at is not None:
        moments.append(wallet_exhausts_at)
    return min(moments) if moments else None


# Fields of a wallet's status that move with the clock alone (written on the heartbeat).
WALLET_MOVING_FIELDS = frozenset({"spentCents", "remainingCents", "spent", "remaining",
                                  "lastUpdatedAt"})


def wallet_status(old: dict[str, Any], reading: WalletReading, generation: int,
                  now: datetime) -> dict[str, Any]:
    """The wallet's status for `reading`: integer cents for machines, dollars for people."""
    status = dict(old)
    status.update({
        "observedGeneration": generation,
        "budgetCents": reading.budget_cents,
        "spentCents": reading.spent_cents,
        "remainingCents": reading.remaining_cents,
        "burnCentsPerHour": reading.burn_cents_per_hour,
        "exhausted": reading.exhausted,
        "exhaustsAt": _exhausts_at(old, reading),
        "spent": billing.dollars(reading.spent_cents),
        "remaining": billing.dollars(reading.remaining_cents),
        "burnPerHour": f"{billing.dollars(reading.burn_cents_per_hour)}/h",
        "lastUpdatedAt": format_ts(now),
    })
    spent, budget = billing.dollars(reading.spent_cents), billing.dollars(reading.budget_cents)
    left = billing.dollars(reading.remaining_cents)
    message = f"spent {spent} of {budget}" if reading.exhausted else f"{left} left"
    status["conditions"] = set_condition(
        list(old.get("conditions") or []), ConditionType.BUDGET_EXHAUSTED.value,
        reading.exhausted, "BudgetExhausted" if reading.exhausted else "BudgetAvailable",
        message, format_ts(now), generation)
    return status


def _exhausts_at(old: dict[str, Any], reading: WalletReading) -> str | None:
    """When the money runs (or ran) out. Once exhausted it keeps the moment it ran out: the
    reading says "now" for an exhausted wallet, and the status of an exhausted wallet must not
    move with the clock, or each status write's own watch event would trigger the next write
    (one write a second, forever, per exhausted wallet)."""
    if reading.exhausted and old.get("exhausted") and old.get("exhaustsAt"):
        return str(old["exhaustsAt"])
    return format_ts(reading.exhausts_at) if reading.exhausts_at else None


def wallet_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Did anything but the clock-driven readings change?"""
    def steady(status: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in status.items()
                if k not in WALLET_MOVING_FIELDS and k != "conditions" and v is not None}
    old_exhausted = next((c.get("status") for c in old.get("conditions") or ()
                          if c.get("type") == ConditionType.BUDGET_EXHAUSTED), None)
    return steady(old) != steady(new) or old_exhausted is None
