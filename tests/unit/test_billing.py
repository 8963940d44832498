"""Money: the seed's formula against independent references, expiry, renewals, wallets.

Segments on a rental's status (open, close, re-close, refunds) are tested through the one adapter
production uses, in test_meter.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpurental.billing import (
    Meter,
    burn_cents_per_hour,
    charge_cents,
    dollars_to_cents,
    effective_duration,
    exhaustion_at,
    expiry_moment,
    hourly_burn,
    parse_money,
    rate_per_hour,
    remaining_seconds,
    renewal_cost_cents,
    renewal_covered,
    renewal_seconds,
    seconds_billed,
    storage_rate_per_hour,
    whole_seconds,
)

T0 = datetime(2026, 6, 7, 8, 0, 0, tzinfo=UTC)
TEN_YEARS = 10 * 365 * 24 * 3600
S = timedelta(seconds=1)


# --- independent references ------------------------------------------------------------------


def ref_decimal(seconds: int, rate: Decimal) -> int:
    """The contract's formula, literally, in Decimal at a precision far beyond any input."""
    with localcontext() as ctx:
        ctx.prec = 80
        value = Decimal(seconds) * rate * 100 / 3600
        return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def ref_fraction(seconds: int, rate: Decimal) -> int:
    """The same, as an exact rational rounded half-up by hand."""
    value = Fraction(seconds) * Fraction(rate) * 100 / 3600
    floor = value.numerator // value.denominator
    return floor + 1 if value - floor >= Fraction(1, 2) else floor


@st.composite
def rates(draw: st.DrawFn, low: str = "0.0001", high: str = "1000") -> Decimal:
    """Rates with 0 to 6 decimals (both trailing-zero and short forms) in [low, high]."""
    places = draw(st.integers(0, 6))
    lo = Decimal(low).scaleb(places).to_integral_value(rounding=ROUND_CEILING)
    hi = Decimal(high).scaleb(places).to_integral_value(rounding=ROUND_FLOOR)
    if lo > hi:
        places, lo, hi = 6, Decimal(low).scaleb(6), Decimal(high).scaleb(6)
    mantissa = draw(st.integers(int(lo), int(hi)))
    return Decimal(mantissa).scaleb(-places)


seconds_st = st.integers(0, TEN_YEARS)


# --- charge_cents ----------------------------------------------------------------------------


def test_seed_sample_is_self_consistent() -> None:
    """The gpuoutlet seed's meter sample: ratePerHour 2.80, secondsBilled 4827,
    currentChargeCents 375. 4827 / 3600 * 2.80 * 100 = 375.4333... -> 375: the sample is
    self-consistent. The contract's own sample (ratePerHour "0.69", secondsBilled 4827,
    currentChargeCents 93) is too: 92.5175 -> 93."""
    assert charge_cents(4827, Decimal("2.80")) == 375
    assert charge_cents(4827, Decimal("2.8")) == 375
    assert charge_cents(4827, Decimal("0.69")) == 93


@pytest.mark.parametrize(
    ("seconds", "rate", "cents"),
    [
        (0, "1000", 0),
        (3600, "0.69", 69),
        (1, "0.01", 0),  # 0.000277 cents
        (1800, "0.01", 1),  # exactly half a cent: half-up
        (1799, "0.01", 0),
        (45, "2.80", 4),  # 3.5 cents exactly -> 4
        (44, "2.80", 3),  # 3.422...
        (1, "18", 1),  # exactly 0.5 cent in one second
        (3, "6", 1),  # 0.5 cent
        (TEN_YEARS, "1000.000000", 8_760_000_000),
        (1, "0.000001", 0),
    ],
)
def test_charge_cents_examples(seconds: int, rate: str, cents: int) -> None:
    assert charge_cents(seconds, Decimal(rate)) == cents


@given(seconds_st, rates())
def test_charge_cents_matches_decimal_and_fraction_references(seconds: int, rate: Decimal) -> None:
    got = charge_cents(seconds, rate)
    assert got == ref_decimal(seconds, rate)
    assert got == ref_fraction(seconds, rate)
    assert isinstance(got, int)


@st.composite
def half_cent_cases(draw: st.DrawFn) -> tuple[int, Decimal, int]:
    """(seconds, rate, odd q) with seconds * rate * 100 / 3600 == q / 2 exactly.

    rate = 18 q / seconds dollars/hour; taking seconds = 2^a 5^b 3^c (a, b <= 6, c <= 2) keeps
    the rate a decimal with at most 6 places. Then the pair is scaled by a random multiplier of
    the seconds only when that keeps it on a half (odd multiplier, q*m odd)."""
    a, b, c = draw(st.integers(0, 6)), draw(st.integers(0, 6)), draw(st.integers(0, 2))
    seconds = 2**a * 5**b * 3**c
    q = draw(st.integers(0, max(0, (1000 * seconds // 18 - 1) // 2))) * 2 + 1  # rate <= 1000
    rate = Decimal(18 * q) / Decimal(seconds)
    m = draw(st.integers(0, 30)) * 2 + 1
    return seconds * m, rate, q * m


@given(half_cent_cases())
def test_exact_half_cent_boundaries_round_up(case: tuple[int, Decimal, int]) -> None:
    seconds, rate, q = case
    assert rate == rate.quantize(Decimal("0.000001"))  # a legal 6-decimal rate
    exact = Fraction(seconds) * Fraction(rate) * 100 / 3600
    assert exact == Fraction(q, 2)  # the construction really lands on a half cent
    assert charge_cents(seconds, rate) == (q + 1) // 2  # ... and it rounds up
    assert charge_cents(seconds, rate) == ref_decimal(seconds, rate)


@given(rates(), st.integers(0, TEN_YEARS))
def test_half_cent_boundaries_found_by_search_round_up(rate: Decimal, start: int) -> None:
    """For any rate: if some second lands exactly on a half cent, it rounds up."""
    exact_per_second = Fraction(rate) * 100 / 3600
    for s in range(start, start + 50):
        value = exact_per_second * s
        if value.denominator == 2:
            assert charge_cents(s, rate) == value.numerator // 2 + 1
        assert charge_cents(s, rate) == ref_fraction(s, rate)


@given(st.integers(0, TEN_YEARS - 1), rates())
def test_charge_is_monotone_in_seconds(seconds: int, rate: Decimal) -> None:
    a, b = charge_cents(seconds, rate), charge_cents(seconds + 1, rate)
    assert a <= b
    # One more second never adds more than one second of burn plus a rounding cent.
    assert b - a <= int(rate * 100 / 3600) + 1


@given(seconds_st, rates(), rates())
def test_charge_is_monotone_in_rate(seconds: int, r1: Decimal, r2: Decimal) -> None:
    lo, hi = sorted((r1, r2))
    assert charge_cents(seconds, lo) <= charge_cents(seconds, hi)


@pytest.mark.parametrize(
    ("seconds", "rate", "exc"),
    [
        (-1, Decimal("1"), ValueError),
        (1, Decimal("-0.01"), ValueError),
        (1, Decimal("NaN"), ValueError),
        (1, Decimal("Infinity"), ValueError),
        (1.5, Decimal("1"), TypeError),
        (True, Decimal("1"), TypeError),
        (1, 0.69, TypeError),
        (1, "0.69", TypeError),
    ],
)
def test_charge_rejects_bad_input(seconds: object, rate: object, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        charge_cents(seconds, rate)  # type: ignore[arg-type]


# --- money parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0.69", "0.69"),
        ("500.00", "500.00"),
        ("12", "12"),
        ("0", "0"),
        ("0.000001", "0.000001"),
        ("999999999999.999999", "999999999999.999999"),
    ],
)
def test_parse_money(text: str, value: str) -> None:
    got = parse_money(text)
    assert got == Decimal(value)
    assert str(got) == value  # exact, scale preserved


@pytest.mark.parametrize(
    "text",
    [
        "", "-1", "-0.01", "+1", "NaN", "nan", "Infinity", "inf", "1e3", "1E-2", "0.0000001",
        ".5", "5.", " 1", "1 ", "1,5", "$5", "1_000", "0x10", "1000000000000", "١٢",
    ],
)
def test_parse_money_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_money(text)


def test_parse_money_rejects_yaml_floats() -> None:
    with pytest.raises(ValueError, match="string"):
        parse_money(0.69)  # type: ignore[arg-type]


@given(st.integers(0, 10**12 - 1), st.integers(0, 6), st.data())
def test_parse_money_round_trip(whole: int, places: int, data: st.DataObject) -> None:
    frac = data.draw(st.integers(0, 10**places - 1)) if places else 0
    text = f"{whole}.{frac:0{places}d}" if places else str(whole)
    assert parse_money(text) == Fraction(text)
    assert str(parse_money(text)) == text  # statuses write amounts with str()


def test_dollars_to_cents_half_up() -> None:
    assert dollars_to_cents(Decimal("500.00")) == 50000
    assert dollars_to_cents(Decimal("0.125")) == 13
    assert dollars_to_cents(Decimal("0.124999")) == 12
    assert dollars_to_cents(Decimal("0.005")) == 1
    assert dollars_to_cents(Decimal("0.004999")) == 0
    assert dollars_to_cents(Decimal("0")) == 0
    with pytest.raises(ValueError):
        dollars_to_cents(Decimal("-1"))


@given(rates(low="0", high="1000000"))
def test_dollars_to_cents_matches_quantize(amount: Decimal) -> None:
    with localcontext() as ctx:
        ctx.prec = 50
        expected = int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    assert dollars_to_cents(amount) == expected


def test_rate_per_hour_is_written_as_a_plain_decimal() -> None:
    """status.ratePerHour is ``str(rate_per_hour(...))``: for any price parse_money accepts
    (no exponent, at most 6 decimals) that string is a plain decimal, never scientific."""
    assert rate_per_hour(Decimal("0.69"), 2) == Decimal("1.38")
    assert str(rate_per_hour(Decimal("0.69"), 2)) == "1.38"
    assert str(rate_per_hour(parse_money("0.000001"), 8)) == "0.000008"
    assert str(rate_per_hour(parse_money("1000.000001"), 1000)) == "1000000.001000"
    assert str(rate_per_hour(parse_money("12"), 2)) == "24"
    with pytest.raises(ValueError):
        rate_per_hour(Decimal("1"), -1)


# --- storage -----------------------------------------------------------------------------------


def test_storage_charge_examples() -> None:
    """Storage is charged as production does: charge_cents at the volume's hourly rate."""
    rate = storage_rate_per_hour(Decimal(50), Decimal("0.0001"))
    # 50 GiB at $0.0001/GiB-hour for 10 hours = $0.05 = 5 cents
    assert charge_cents(36000, rate) == 5
    # 50 GiB for one hour = 0.5 cent exactly -> half-up to 1
    assert charge_cents(3600, rate) == 1
    assert charge_cents(3599, rate) == 0
    assert storage_rate_per_hour(Decimal("1.5"), Decimal("0.0001")) == Decimal("0.00015")


@given(
    rates(low="0.001", high="100000"), seconds_st, rates(low="0.000001", high="1")
)
def test_storage_charge_matches_reference_and_rate_form(
    gib: Decimal, seconds: int, price: Decimal
) -> None:
    exact = Fraction(gib) * seconds * Fraction(price) * 100 / 3600
    floor = exact.numerator // exact.denominator
    expected = floor + (1 if exact - floor >= Fraction(1, 2) else 0)
    rate = storage_rate_per_hour(gib, price)
    assert charge_cents(seconds, rate) == expected
    # status.storageRatePerHour is str(rate): reading it back loses nothing.
    assert charge_cents(seconds, Decimal(str(rate))) == expected


# --- metering over segments -----------------------------------------------------------------


def test_meter_validation() -> None:
    with pytest.raises(ValueError):
        Meter(-1)
    with pytest.raises(ValueError, match="aware"):
        Meter(0, datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="aware"):
        seconds_billed(Meter(0, T0), datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="aware"):
        whole_seconds(datetime(2026, 1, 1), T0)


def test_clock_skew_never_negative() -> None:
    m = Meter(42, T0)
    assert seconds_billed(m, T0 - 3600 * S) == 42
    assert whole_seconds(T0, T0 - 5 * S) == 0
    assert seconds_billed(m, T0 + 0.999999 * S) == 42
    assert seconds_billed(m, T0 + S) == 43


# --- duration, expiry, renewals --------------------------------------------------------------


def test_remaining_seconds() -> None:
    assert remaining_seconds(4 * 3600, 600) == 4 * 3600 - 600
    assert remaining_seconds(None, 600) is None
    # Lowered below what already ran: remaining 0.
    assert remaining_seconds(300, 600) == 0


def test_expiry_moment_is_stable_and_moves_with_extend_and_pause() -> None:
    m = Meter(0, T0)
    four_h = 4 * 3600
    assert expiry_moment(m, four_h) == T0 + four_h * S
    # Run one hour, pause for a day, resume: the expiry moves by the paused time.
    m = Meter(3600, None)
    assert expiry_moment(m, four_h) is None
    resume = T0 + 3600 * S + timedelta(days=1)
    m = Meter(3600, resume)
    assert expiry_moment(m, four_h) == resume + 3 * 3600 * S
    # Extend (duration raised to 6h): later by 2h.
    assert expiry_moment(m, 6 * 3600) == resume + 5 * 3600 * S
    assert expiry_moment(m, None) is None


@given(
    st.integers(0, 10**6), st.integers(0, 10**6), st.integers(-(10**10), 10**10),
    st.integers(-(10**12), 10**12),
)
def test_expiry_moment_agrees_with_seconds_billed(
    accrued: int, prepaid: int, start_us: int, probe_us: int
) -> None:
    m = Meter(accrued, T0 + timedelta(microseconds=start_us))
    moment = expiry_moment(m, prepaid)
    assert moment is not None
    t = T0 + timedelta(microseconds=probe_us)
    if t >= m.running_since:  # type: ignore[operator]
        assert (seconds_billed(m, t) >= prepaid) == (t >= moment)


@pytest.mark.parametrize(
    ("duration", "renewed", "cap", "expected"),
    [
        (3600, 0, None, 3600),
        (3600, 2 * 3600, None, 3 * 3600),
        (4 * 3600, 80 * 3600, 72 * 3600, 72 * 3600),  # maxDuration caps renewals
        (100 * 3600, 0, 72 * 3600, 72 * 3600),  # ... and the duration itself
        (None, 3600, 72 * 3600, 72 * 3600),  # no duration: the cap alone
        (None, 0, None, None),  # unlimited
        (0, 0, None, 0),
    ],
)
def test_effective_duration(
    duration: int | None, renewed: int, cap: int | None, expected: int | None
) -> None:
    assert effective_duration(duration, renewed, cap) == expected


def test_extending_after_renewals_adds_exactly_the_raise() -> None:
    # Two 4h renewals, then the user raises duration from 4h to 5h: one hour more, not three.
    before = effective_duration(4 * 3600, 8 * 3600, None)
    after = effective_duration(5 * 3600, 8 * 3600, None)
    assert before is not None and after is not None and after - before == 3600


def test_renewals_near_the_cap() -> None:
    # 4h rentals under a 10h cap: 4h prepaid, the 1st renewal adds 4h, the 2nd only 2h, the
    # 3rd nothing.
    renewed, added = 0, []
    for _ in range(4):
        step = renewal_seconds(4 * 3600, renewed, 10 * 3600)
        added.append(step)
        renewed += step
    assert added == [4 * 3600, 2 * 3600, 0, 0]
    assert effective_duration(4 * 3600, 6 * 3600, 10 * 3600) == 10 * 3600
    assert renewal_seconds(4 * 3600, 0, None) == 4 * 3600
    assert renewal_seconds(None, 0, 10 * 3600) == 0


def test_renewal_cost_and_cover() -> None:
    rate = Decimal("0.69")
    # Marginal: what the charge will grow by, not a separately rounded block.
    assert renewal_cost_cents(4827, 3600, rate) == charge_cents(8427, rate) - 93
    assert renewal_cost_cents(0, 4 * 3600, rate) == 276
    assert renewal_covered(276, 0, 4 * 3600, rate)
    assert not renewal_covered(275, 0, 4 * 3600, rate)
    assert renewal_covered(None, 0, 4 * 3600, rate)  # no wallet: unbudgeted
    assert not renewal_covered(None, 0, 0, rate)  # capped: nothing to renew


@given(st.integers(0, 10**5), st.integers(0, 50), st.one_of(st.none(), st.integers(0, 10**7)))
def test_effective_duration_properties(duration: int, renewals: int, cap: int | None) -> None:
    renewed = duration * renewals
    total = effective_duration(duration, renewed, cap)
    assert total is not None
    if cap is not None:
        assert total <= cap
    assert total <= duration + renewed
    nxt = effective_duration(duration, renewed + duration, cap)
    assert nxt is not None
    assert nxt - total == renewal_seconds(duration, renewed, cap) >= 0


# --- wallets: burn ---------------------------------------------------------------------------


def test_burn_sums_exactly_then_rounds_once() -> None:
    assert burn_cents_per_hour([]) == 0
    assert burn_cents_per_hour([Decimal("0.69"), Decimal("2.07")]) == 276
    # Three half-cent rates: 1.5 cents -> 2; rounding each first would give 3.
    assert burn_cents_per_hour([Decimal("0.005")] * 3) == 2
    assert burn_cents_per_hour([Decimal("0.004")] * 3) == 1
    assert hourly_burn([Decimal("0.69"), Decimal("0.000001")]) == Decimal("0.690001")
    assert hourly_burn([]) == 0


@given(st.lists(rates(), max_size=20))
def test_burn_matches_fraction_reference(rs: list[Decimal]) -> None:
    total = sum((Fraction(r) for r in rs), Fraction(0))
    assert hourly_burn(rs) == total
    cents = total * 100
    floor = cents.numerator // cents.denominator
    assert burn_cents_per_hour(rs) == floor + (1 if cents - floor >= Fraction(1, 2) else 0)


# --- wallets: exhaustion ---------------------------------------------------------------------


def f_increase(accruals: list[tuple[int, Decimal]], t: int) -> int:
    """Charges accrued over t more whole seconds, via the public charge_cents only."""
    return sum(charge_cents(s + t, r) - charge_cents(s, r) for s, r in accruals)


def seconds_until_exhausted(remaining: int, accruals: list[tuple[int, Decimal]]) -> int | None:
    """exhaustion_at for meters opened exactly at now with these seconds already billed: their
    seconds tick at whole seconds from now, so the answer is a whole number of seconds."""
    got = exhaustion_at(remaining, [(Meter(s, T0), r) for s, r in accruals], T0)
    if got is None:
        return None
    assert (got - T0) % S == timedelta(0)
    return (got - T0) // S


def test_exhaustion_simple() -> None:
    # $18/h = 0.5 cent/s. 100 cents left -> 200 s.
    assert seconds_until_exhausted(100, [(0, Decimal(18))]) == 199  # 199 s: 99.5 -> 100 cents
    assert f_increase([(0, Decimal(18))], 199) == 100
    assert f_increase([(0, Decimal(18))], 198) == 99
    assert seconds_until_exhausted(0, [(0, Decimal(18))]) == 0
    assert seconds_until_exhausted(-5, []) == 0
    assert seconds_until_exhausted(100, []) is None
    assert seconds_until_exhausted(100, [(10, Decimal(0))]) is None


def test_exhaustion_accounts_for_per_rental_rounding() -> None:
    """Two rentals, each just below a half cent: each one rounds up separately at the same
    second, so the wallet runs out earlier than the summed burn rate alone would say."""
    accruals = [(1799, Decimal("0.01")), (1799, Decimal("0.01"))]  # 0.4997 cent each
    assert seconds_until_exhausted(2, accruals) == 1  # both round up to 1 cent at 1800 s
    assert f_increase(accruals, 1) == 2


accruals_small = st.lists(
    st.tuples(st.integers(0, 10**6), rates(low="0.5", high="100")), min_size=1, max_size=4
)


@settings(max_examples=60, deadline=None)
@given(accruals_small, st.integers(-3, 300))
def test_exhaustion_matches_brute_force(
    accruals: list[tuple[int, Decimal]], remaining: int
) -> None:
    got = seconds_until_exhausted(remaining, accruals)
    t = 0
    while f_increase(accruals, t) < remaining:
        t += 1
    assert got == t


def G(accruals: list[tuple[Meter, Decimal]], at: datetime) -> int:
    return sum(charge_cents(seconds_billed(m, at), r) for m, r in accruals)


meters_st = st.lists(
    st.tuples(
        st.integers(0, 10**6),  # accrued
        st.one_of(st.none(), st.integers(-(10**10), 5 * 10**6)),  # start, us before/after now
        rates(low="1", high="100"),
    ),
    min_size=1, max_size=4,
)


def build(raw: list[tuple[int, int | None, Decimal]]) -> list[tuple[Meter, Decimal]]:
    return [
        (Meter(a, None if off is None else T0 - timedelta(microseconds=off)), r)
        for a, off, r in raw
    ]


@settings(max_examples=60, deadline=None)
@given(meters_st, st.integers(-2, 100))
def test_exhaustion_at_matches_brute_force(
    raw: list[tuple[int, int | None, Decimal]], remaining: int
) -> None:
    """Brute force: walk every tick of every open meter in time order."""
    accruals = build(raw)
    got = exhaustion_at(remaining, accruals, T0)
    if remaining <= 0:
        assert got == T0
        return
    open_ = [(m, r) for m, r in accruals if m.running_since is not None]
    if not open_:
        assert got is None
        return
    base = G(accruals, T0)
    found = None
    k = 1
    while found is None:  # whole-second windows (T0 + (k-1)s, T0 + k s], ticks in time order
        ticks: set[datetime] = set()
        for m, _ in open_:
            since = m.running_since
            assert since is not None
            n0 = max(1, (T0 + (k - 1) * S - since) // S)
            for n in range(n0, n0 + 3):
                if T0 + (k - 1) * S < since + n * S <= T0 + k * S:
                    ticks.add(since + n * S)
        for tick in sorted(ticks):
            if G(accruals, tick) - base >= remaining:
                found = tick
                break
        k += 1
    assert got == found


@given(
    st.lists(
        st.tuples(
            st.integers(0, TEN_YEARS),
            st.one_of(st.none(), st.integers(-(10**13), 10**13)),
            st.one_of(rates(), st.just(Decimal(0))),
        ),
        min_size=1, max_size=10,
    ),
    st.integers(-5, 10**9),
)
def test_exhaustion_at_is_the_first_crossing_at_any_scale(
    raw: list[tuple[int, int | None, Decimal]], remaining: int
) -> None:
    """All instants are whole microseconds, so 'crossed at T, not at T - 1us' is exact."""
    accruals = build(raw)
    got = exhaustion_at(remaining, accruals, T0)
    if remaining <= 0:
        assert got == T0
        return
    if all(m.running_since is None or r == 0 for m, r in accruals):
        assert got is None
        return
    burn_per_second = sum(r for m, r in accruals if m.running_since is not None) * 100 / 3600
    if got is None:  # only when the moment lies past datetime.max (year 9999)
        horizon = (datetime.max.replace(tzinfo=UTC) - T0).total_seconds()
        assert remaining / burn_per_second > horizon - 2 * 86400
        return
    assert got > T0
    base = G(accruals, T0)
    assert G(accruals, got) - base >= remaining
    assert G(accruals, got - timedelta(microseconds=1)) - base < remaining
    # Overshoot at that instant: at most one second of burn (plus a rounding cent) per rental.
    over = G(accruals, got) - base - remaining
    assert over <= sum(int(r * 100 / 3600) + 1 for _, r in accruals)


@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6), rates()), min_size=1,
                max_size=5), st.integers(1, 10**6))
def test_exhaustion_at_whole_second_phases_equals_integer_form(
    raw: list[tuple[int, int, Decimal]], remaining: int
) -> None:
    """A meter opened e whole seconds ago with a seconds accrued exhausts the wallet exactly
    when one opened now with a + e accrued does."""
    accruals = [(Meter(a, T0 - e * S), r) for a, e, r in raw]
    opened_now = [(Meter(a + e, T0), r) for a, e, r in raw]
    assert exhaustion_at(remaining, accruals, T0) == exhaustion_at(remaining, opened_now, T0)


def test_exhaustion_at_far_future_is_none() -> None:
    tiny = [(Meter(0, T0), Decimal("0.0001"))]
    assert exhaustion_at(10**15, tiny, T0) is None  # beyond year 9999
    assert exhaustion_at(5, [(Meter(0), Decimal(1))], T0) is None  # paused: never runs out


def test_exhaustion_at_skewed_future_start() -> None:
    """A segment whose start is after now (skew) accrues nothing until it starts."""
    m = Meter(0, T0 + 10.5 * S)
    got = exhaustion_at(1, [(m, Decimal(18))], T0)  # 0.5 cent/s: 1 cent at the 1st second
    assert got == T0 + 11.5 * S
