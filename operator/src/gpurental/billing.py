"""Money and metered time: per-second charges, rounding, segments, expiry, renewals, wallets.

Owns every number a customer could dispute:

* the seed's formula ``currentChargeCents = ROUND_HALF_UP(secondsBilled / 3600 * ratePerHour *
  100)`` (:func:`charge_cents`), the same rounding for storage at the volume's hourly rate
  (:func:`storage_rate_per_hour`);
* parsing prices and budgets (:func:`parse_money`), dollars -> cents (:func:`dollars_to_cents`);
* showing cents to people (:func:`dollars`, the only place cents become ``$1.23``);
* running time as segments (:class:`Meter`: closed seconds + the open segment's start) and the
  whole seconds they bill (:func:`whole_seconds`, :func:`seconds_billed`);
* prepaid duration, expiry, renewals and an offer's ``maxDuration`` cap;
* wallet burn and the exact moment a wallet runs out (:func:`exhaustion_at`).

A rental's status dict is read and written only by :mod:`gpurental.meter`, which keeps its
segments as :class:`Meter` values for this module's maths; nothing else recomputes seconds or
charges.

Never does: floats (money is ``Decimal`` in, integer cents out; every result is computed exactly,
with integers, from the Decimals' exact ratios, and rounded once), I/O, clock reads (``now`` is
always a parameter), Kubernetes calls, or decisions about what to do next (the lifecycle decides;
this module only computes). Times are timezone-aware datetimes; naive ones are rejected.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, Inexact, localcontext
from fractions import Fraction

__all__ = [
    "MONEY_PATTERN",
    "Meter",
    "burn_cents_per_hour",
    "charge_cents",
    "dollars",
    "dollars_to_cents",
    "effective_duration",
    "exhaustion_at",
    "expiry_moment",
    "hourly_burn",
    "parse_money",
    "rate_per_hour",
    "remaining_seconds",
    "renewal_cost_cents",
    "renewal_covered",
    "renewal_seconds",
    "seconds_billed",
    "storage_rate_per_hour",
    "whole_seconds",
]

_SECOND = timedelta(seconds=1)
_US_PER_S = 1_000_000

# --- exact arithmetic ------------------------------------------------------------------------


def _ratio(value: Decimal, what: str) -> tuple[int, int]:
    """The exact ``(numerator, denominator)`` of a finite, non-negative Decimal."""
    if not isinstance(value, Decimal):
        raise TypeError(f"{what} must be a Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"{what} must be finite, got {value}")
    if value < 0:
        raise ValueError(f"{what} must not be negative, got {value}")
    return value.as_integer_ratio()


def _half_up(num: int, den: int) -> int:
    """ROUND_HALF_UP of ``num / den`` for ``num >= 0, den > 0``: ``floor(num/den + 1/2)``."""
    return (2 * num + den) // (2 * den)


def _check_seconds(seconds: int, what: str = "seconds") -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise TypeError(f"{what} must be an int, got {type(seconds).__name__}")
    if seconds < 0:
        raise ValueError(f"{what} must be >= 0, got {seconds}")
    return seconds


def _exact_product(a: Decimal, b: Decimal) -> Decimal:
    """``a * b`` without any rounding (the precision is raised to fit; Inexact would raise)."""
    with localcontext() as ctx:
        ctx.prec = len(a.as_tuple().digits) + len(b.as_tuple().digits) + 2
        ctx.traps[Inexact] = True
        return a * b


def _aware(dt: datetime, what: str) -> datetime:
    if not isinstance(dt, datetime):
        raise TypeError(f"{what} must be a datetime, got {type(dt).__name__}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {dt!r}")
    return dt


# --- money ------------------------------------------------------------------------------------

#: Plain decimal dollars: up to 12 integer digits, optionally a point and 1 to 6 decimals.
MONEY_PATTERN = r"^[0-9]{1,12}(\.[0-9]{1,6})?$"
_MONEY = re.compile(MONEY_PATTERN)


def parse_money(text: str) -> Decimal:
    """Parse a price or budget string (``"0.69"``, ``"500.00"``, ``"12"``) into an exact Decimal.

    Rejects (``ValueError``) signs (negative or ``+``), NaN/Infinity, exponents (``1e3``),
    spaces, a bare or trailing point (``.5``, ``5.``), more than 6 decimals and more than 12
    integer digits. Non-strings (a YAML float such as ``0.69``) are rejected: prices are strings.
    """
    if not isinstance(text, str):
        raise ValueError(
            f"money must be a decimal string such as \"0.69\", got {type(text).__name__} {text!r}"
        )
    if _MONEY.fullmatch(text) is None:
        raise ValueError(
            f"invalid amount {text!r}: expected a non-negative decimal string such as \"0.69\" "
            "or \"500.00\" (at most 6 decimals, no sign, exponent or spaces)"
        )
    return Decimal(text)


def dollars(cents: int) -> str:
    """``$1.23`` from integer cents, exact (no float): the one way cents are shown to people,
    in statuses, events, condition messages and the plugin's tables."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}${whole}.{rest:02d}"


def dollars_to_cents(amount: Decimal) -> int:
    """Dollars -> integer cents, ROUND_HALF_UP (``0.125`` -> 13)."""
    n, d = _ratio(amount, "amount")
    return _half_up(n * 100, d)


def rate_per_hour(price_per_gpu_hour: Decimal, gpus: int) -> Decimal:
    """A rental's locked ``ratePerHour``: the offer's price times the GPU count, exactly."""
    _ratio(price_per_gpu_hour, "price_per_gpu_hour")
    _check_seconds(gpus, "gpus")
    return _exact_product(price_per_gpu_hour, Decimal(gpus))


def storage_rate_per_hour(gib: Decimal, price_per_gib_hour: Decimal) -> Decimal:
    """Dollars per hour a volume of ``gib`` GiB costs, exactly (``gib * price``)."""
    _ratio(gib, "gib")
    _ratio(price_per_gib_hour, "price_per_gib_hour")
    return _exact_product(gib, price_per_gib_hour)


def charge_cents(seconds: int, rate_per_hour: Decimal) -> int:
    """``ROUND_HALF_UP(seconds / 3600 * rate_per_hour * 100)`` in integer cents, exactly.

    Computed as the exact fraction ``seconds * n * 100 / (3600 * d)`` where ``n/d`` is the
    Decimal's exact ratio, so no precision is ever lost however many seconds or decimals.
    """
    _check_seconds(seconds)
    n, d = _ratio(rate_per_hour, "rate_per_hour")
    return _half_up(seconds * n * 100, 3600 * d)


# --- metering over segments ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Meter:
    """Billed running time as kept in status: whole seconds of closed segments
    (``status.accruedSeconds``) plus the start of the open segment, if any
    (``status.runningSince``; ``None`` while not running)."""

    accrued_seconds: int = 0
    running_since: datetime | None = None

    def __post_init__(self) -> None:
        _check_seconds(self.accrued_seconds, "accrued_seconds")
        if self.running_since is not None:
            _aware(self.running_since, "running_since")

    @property
    def running(self) -> bool:
        return self.running_since is not None


def whole_seconds(start: datetime, end: datetime) -> int:
    """Whole seconds from ``start`` to ``end``, floored, in exact integer arithmetic; 0 if ``end``
    is before ``start`` (clock skew between the kubelet and the operator never bills negative
    time). Every billed second of a segment is counted by this one function."""
    return max(0, (_aware(end, "end") - _aware(start, "start")) // _SECOND)


def seconds_billed(meter: Meter, now: datetime) -> int:
    """``accrued + floor(now - running_since)`` in whole seconds; never negative, never less than
    ``accrued`` (a ``now`` before ``running_since``, i.e. clock skew, adds nothing)."""
    if meter.running_since is None:
        return meter.accrued_seconds
    return meter.accrued_seconds + whole_seconds(meter.running_since, now)


def next_tick(meter: Meter, now: datetime) -> datetime | None:
    """The first instant after ``now`` at which ``seconds_billed(meter, ·)`` changes (its open
    segment's next whole second); ``None`` for a closed meter, which never changes."""
    if meter.running_since is None:
        return None
    return meter.running_since + (whole_seconds(meter.running_since, now) + 1) * _SECOND


# --- duration, expiry, renewals --------------------------------------------------------------


def effective_duration(
    duration: int | None, renewed_seconds: int, max_duration: int | None
) -> int | None:
    """Total prepaid running seconds: ``duration + renewed_seconds``, capped by the offer's
    ``maxDuration``. Renewals are kept as the seconds they added (not a count), so raising
    ``duration`` later (extend) adds exactly the raise. Without a duration the cap alone
    limits (``None``: unlimited)."""
    _check_seconds(renewed_seconds, "renewed_seconds")
    if max_duration is not None:
        _check_seconds(max_duration, "max_duration")
    if duration is None:
        return max_duration
    _check_seconds(duration, "duration")
    total = duration + renewed_seconds
    return total if max_duration is None else min(total, max_duration)


def remaining_seconds(prepaid_seconds: int | None, billed_seconds: int) -> int | None:
    """Prepaid running time left: ``max(0, prepaid - billed)``; ``None`` when unlimited."""
    _check_seconds(billed_seconds, "billed_seconds")
    if prepaid_seconds is None:
        return None
    _check_seconds(prepaid_seconds, "prepaid_seconds")
    return max(0, prepaid_seconds - billed_seconds)


def expiry_moment(meter: Meter, prepaid_seconds: int | None) -> datetime | None:
    """The exact moment a running meter reaches ``prepaid_seconds``:
    ``running_since + (prepaid - accrued)``. Stable (independent of when it is computed), and
    ``seconds_billed(meter, t) >= prepaid`` exactly when ``t >= expiry_moment``. ``None`` when
    paused or unlimited. May lie in the past (the prepaid time was lowered below what ran)."""
    if prepaid_seconds is None or meter.running_since is None:
        return None
    _check_seconds(prepaid_seconds, "prepaid_seconds")
    return meter.running_since + timedelta(seconds=prepaid_seconds - meter.accrued_seconds)


def renewal_seconds(duration: int | None, renewed_seconds: int,
                    max_duration: int | None) -> int:
    """Running seconds one more renewal adds: another ``duration``, or less near the
    ``maxDuration`` cap, 0 at the cap or without a duration (nothing to renew)."""
    if duration is None:
        return 0
    now_total = effective_duration(duration, renewed_seconds, max_duration)
    next_total = effective_duration(duration, renewed_seconds + duration, max_duration)
    assert now_total is not None and next_total is not None
    return next_total - now_total


def renewal_cost_cents(billed_seconds: int, added_seconds: int, rate_per_hour: Decimal) -> int:
    """What ``added_seconds`` more running time will add to the rental's charge, in cents:
    ``charge(billed + added) - charge(billed)`` (the marginal charge the wallet will see)."""
    _check_seconds(added_seconds, "added_seconds")
    return charge_cents(billed_seconds + added_seconds, rate_per_hour) - charge_cents(
        billed_seconds, rate_per_hour
    )


def renewal_covered(
    wallet_remaining: int | None, billed_seconds: int, added_seconds: int, rate_per_hour: Decimal
) -> bool:
    """Whether a wallet with ``wallet_remaining`` cents covers a renewal of ``added_seconds``
    at ``rate_per_hour``. ``None`` (no wallet: metered but unbudgeted) always covers. A renewal
    that adds nothing (at the cap) is never covered."""
    if added_seconds <= 0:
        return False
    if wallet_remaining is None:
        return True
    return wallet_remaining >= renewal_cost_cents(billed_seconds, added_seconds, rate_per_hour)


# --- wallets ---------------------------------------------------------------------------------


def hourly_burn(rates: Iterable[Decimal]) -> Decimal:
    """Exact sum of ``ratePerHour`` (dollars per hour); the ``gpurental_hourly_burn_dollars``
    gauge."""
    total = Fraction(0)
    for rate in rates:
        n, d = _ratio(rate, "rate")
        total += Fraction(n, d)
    # Every rate is a finite decimal, so the sum is one: its denominator divides a power of ten.
    with localcontext() as ctx:
        ctx.prec = 200
        ctx.traps[Inexact] = True
        return Decimal(total.numerator) / Decimal(total.denominator)


def burn_cents_per_hour(rates: Iterable[Decimal]) -> int:
    """``Wallet.status.burnCentsPerHour``: the exact sum of the rates, in cents, rounded once,
    half-up. (Rounding each rate first and summing would drift by up to half a cent per rental.)
    Pass storage rates (:func:`storage_rate_per_hour`) along with GPU rates to include them."""
    return dollars_to_cents(hourly_burn(rates))


@dataclass(frozen=True, slots=True)
class _Accrual:
    """One accruing charge: ``seconds(u) = accrued + max(0, floor((elapsed_us + u) / 1s))`` at
    ``u`` microseconds from the reference moment; the charge is ``half_up(seconds * num /
    den)`` cents."""

    accrued: int
    elapsed_us: int
    num: int
    den: int

    def seconds_at(self, u: int) -> int:
        return self.accrued + max(0, (self.elapsed_us + u) // _US_PER_S)

    def cents_at(self, u: int) -> int:
        return _half_up(self.seconds_at(u) * self.num, self.den)


def _total(items: Sequence[_Accrual], u: int) -> int:
    return sum(item.cents_at(u) for item in items)


def _first_whole_second(items: Sequence[_Accrual], remaining_cents: int) -> int:
    """Least whole ``t >= 1`` with ``total(t s) - total(0) >= remaining_cents > 0``.

    Each rental's seconds grow by exactly ``t`` over ``t`` whole seconds (less a bounded lag for
    a segment that starts in the future), and half-up rounding is off by at most half a cent at
    each end, so with ``R`` the summed exact burn in cents per second and ``k`` rentals the
    increase ``f(t)`` lies within ``[t*R - k - lag*R, t*R + k]``. That brackets the answer in a
    window of about ``2k/R`` seconds, searched by bisection over the monotone ``f``:
    ``O(k * log(k/R))`` rather than the brute-force ``O(k * t)``.
    """
    base = _total(items, 0)
    burn = sum((Fraction(i.num, i.den) for i in items), Fraction(0))  # cents per second
    k = len(items)
    lag = max((-i.elapsed_us + _US_PER_S - 1) // _US_PER_S for i in items)
    lag = max(lag, 0)
    hi = -(-(remaining_cents + k) // burn) + lag  # ceil
    lo = max(1, -(-(remaining_cents - k) // burn))
    lo = min(lo, hi)
    # Invariant: f(hi) >= remaining; answer in [lo, hi].
    while lo < hi:
        mid = (lo + hi) // 2
        if _total(items, mid * _US_PER_S) - base >= remaining_cents:
            hi = mid
        else:
            lo = mid + 1
    return hi


def _positive(rate: Decimal) -> tuple[int, int] | None:
    n, d = _ratio(rate, "rate_per_hour")
    return (n * 100, 3600 * d) if n > 0 else None


def exhaustion_at(
    remaining_cents: int, accruals: Iterable[tuple[Meter, Decimal]], now: datetime
) -> datetime | None:
    """The exact moment the wallet runs out, for scheduling the budget pause.

    ``accruals`` are ``(meter, rate_per_hour)`` pairs (GPU meters with ``ratePerHour``, storage
    meters with :func:`storage_rate_per_hour`); ``remaining_cents`` is the wallet's remainder as
    computed at ``now``. Each meter's seconds tick at its own ``running_since + k`` instants, so the
    result is the earliest such instant ``T >= now`` at which ``sum(charge(seconds_billed(m_i, T),
    r_i)) - sum(charge(seconds_billed(m_i, now), r_i)) >= remaining_cents``. ``now`` itself if
    already exhausted; ``None`` if nothing accrues (closed meters, zero rates) or the moment is
    past the year 9999.

    Algorithm: find the first whole second ``t`` after ``now`` by bisection
    (:func:`_first_whole_second`); the crossing lies in ``(now + t - 1s, now + t]``, where
    each meter ticks at most once; bisect over those (at most one per meter) sorted ticks.
    """
    _aware(now, "now")
    items: list[_Accrual] = []
    for meter, rate in accruals:
        nd = _positive(rate)
        if nd is None or meter.running_since is None:
            continue
        elapsed = now - meter.running_since
        elapsed_us = elapsed // timedelta(microseconds=1)
        items.append(_Accrual(meter.accrued_seconds, elapsed_us, nd[0], nd[1]))
    if remaining_cents <= 0:
        return now
    if not items:
        return None
    t = _first_whole_second(items, remaining_cents)
    end_us = t * _US_PER_S
    ticks = sorted(
        {
            end_us - (i.elapsed_us + end_us) % _US_PER_S
            for i in items
            if (i.elapsed_us + end_us) // _US_PER_S >= 1
        }
    )
    base = _total(items, 0)
    lo, hi = 0, len(ticks) - 1  # the last tick is where f reaches its value at end_us
    while lo < hi:
        mid = (lo + hi) // 2
        if _total(items, ticks[mid]) - base >= remaining_cents:
            hi = mid
        else:
            lo = mid + 1
    try:
        return now + timedelta(microseconds=ticks[lo])
    except OverflowError:
        return None
