"""Kubernetes-style durations: parsing, the CRD pattern, the two output forms."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpurental.durations import (
    DURATION_MAX_LENGTH,
    DURATION_PATTERN,
    MAX_DURATION_SECONDS,
    format_duration,
    format_duration_exact,
    parse_duration,
    parse_positive_duration,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("4h", 14400),
        ("1h30m", 5400),
        ("2h45m30s", 9930),
        ("1.5h", 5400),
        ("0.5m", 30),
        ("0s", 0),
        ("0h0m0s", 0),
        ("30m1h", 5400),  # Go accepts any order; so do we
        ("1h1h", 7200),
        ("007m", 420),
        ("1.0001h", 3600),  # 3600.36s truncated to whole seconds
        ("0.9s", 0),
        ("72h", 259200),
        ("87600h", MAX_DURATION_SECONDS),
    ],
)
def test_parse_valid(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("4", "invalid duration"),
        ("h", "invalid duration"),
        ("4d", "invalid duration"),
        ("4H", "invalid duration"),
        ("10ms", "invalid duration"),
        ("-1h", "invalid duration"),
        ("+1h", "invalid duration"),
        (" 1h", "invalid duration"),
        ("1h ", "invalid duration"),
        ("1h\n", "invalid duration"),
        ("1 h", "invalid duration"),
        (".5h", "invalid duration"),
        ("5.h", "invalid duration"),
        ("1e3s", "invalid duration"),
        ("1h30", "invalid duration"),
        ("four hours", "invalid duration"),
        ("87600h1s", "10 years"),
        ("99999999999h", "10 years"),
        ("1" * (DURATION_MAX_LENGTH) + "s", "longer than"),
    ],
)
def test_parse_invalid(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_duration(text)


def test_parse_rejects_non_string() -> None:
    with pytest.raises(ValueError, match="string"):
        parse_duration(3600)  # type: ignore[arg-type]


def test_positive_duration_rejects_zero() -> None:
    assert parse_positive_duration("1s") == 1
    for text in ("0s", "0.5s", "0h0m"):
        with pytest.raises(ValueError, match="at least 1s"):
            parse_positive_duration(text)


# --- the CRD pattern and the parser agree ---------------------------------------------------

_PATTERN = re.compile(DURATION_PATTERN)

_term = st.builds(
    lambda whole, frac, unit: f"{whole}{'.' + frac if frac else ''}{unit}",
    st.integers(0, 999).map(str),
    st.one_of(st.just(""), st.text("0123456789", min_size=1, max_size=3)),
    st.sampled_from("hms"),
)
_accepted = st.lists(_term, min_size=1, max_size=4).map("".join)


@given(_accepted)
def test_every_pattern_accepted_string_parses(text: str) -> None:
    """Everything the CRD admits (within maxLength and 10 years) parses, with the exact value."""
    assert _PATTERN.fullmatch(text)
    assert _PATTERN.search(text)  # the anchored pattern used as the API server uses it
    from fractions import Fraction

    units = {"h": 3600, "m": 60, "s": 1}
    exact = sum(
        Fraction(n) * units[u] for n, u in re.findall(r"([0-9.]+)([hms])", text)
    )
    if exact > MAX_DURATION_SECONDS:
        with pytest.raises(ValueError):
            parse_duration(text)
    else:
        assert parse_duration(text) == int(exact)


@given(st.text(alphabet="0123456789.hmsd-+ eE", max_size=12))
def test_pattern_and_parser_agree_on_arbitrary_text(text: str) -> None:
    matches = _PATTERN.fullmatch(text) is not None
    try:
        parse_duration(text)
        parsed = True
    except ValueError:
        parsed = False
    # Within 12 characters nothing exceeds 10 years except huge hour counts, which the pattern
    # admits but the parser refuses; everything else must agree exactly.
    if matches and not parsed:
        with pytest.raises(ValueError, match="10 years"):
            parse_duration(text)
    else:
        assert matches == parsed, text


# --- formatting -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (45, "45s"),
        (60, "1m"),
        (900, "15m"),
        (5400, "1h30m"),
        (3600, "1h"),
        (3605, "1h0m5s"),
        (180000, "50h"),
        (180005, "50h0m5s"),
    ],
)
def test_format_exact(seconds: int, text: str) -> None:
    assert format_duration_exact(seconds) == text


@given(st.integers(0, MAX_DURATION_SECONDS))
def test_format_exact_round_trips(seconds: int) -> None:
    text = format_duration_exact(seconds)
    assert _PATTERN.fullmatch(text)
    assert parse_duration(text) == seconds


def test_format_exact_rejects_negative() -> None:
    with pytest.raises(ValueError):
        format_duration_exact(-1)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        # Expected values from k8s.io/apimachinery/pkg/util/duration.HumanDuration.
        (-5, "0s"),
        (0, "0s"),
        (12, "12s"),
        (119, "119s"),
        (120, "2m"),
        (200, "3m20s"),
        (599, "9m59s"),
        (600, "10m"),
        (10799, "179m"),
        (10800, "3h"),
        (4 * 3600 + 12 * 60 + 59, "4h12m"),
        (8 * 3600, "8h"),
        (47 * 3600 + 3599, "47h"),
        (48 * 3600, "2d"),
        (5 * 86400 + 2 * 3600, "5d2h"),
        (8 * 86400, "8d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (3 * 365 * 86400 + 12 * 86400, "3y12d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_format_kubectl_age_style(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_rejects_non_int() -> None:
    with pytest.raises(TypeError):
        format_duration(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        format_duration_exact(True)
