"""The injectable clock and RFC 3339 helpers. No sleeps: time only moves when a test moves it."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpurental.clock import (
    CLOCK_OFFSET_ENV,
    Clock,
    FileOffsetClock,
    ManualClock,
    SystemClock,
    clock_from_env,
    format_ts,
    parse_ts,
)

T0 = datetime(2026, 6, 7, 8, 42, 11, tzinfo=UTC)


class FakeBase:
    """A base clock for FileOffsetClock that the test controls."""

    def __init__(self) -> None:
        self.wall = T0
        self.mono = 100.0

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono


def write_offset(path: Path, text: str) -> None:
    """Replace the file atomically, as the docstring asks writers to (new inode each time)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# --- SystemClock / Protocol ------------------------------------------------------------------


def test_system_clock_is_aware_utc_and_a_clock() -> None:
    clock = SystemClock()
    assert isinstance(clock, Clock)
    now = clock.now()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
    assert abs((now - datetime.now(UTC)).total_seconds()) < 5
    assert clock.monotonic() <= clock.monotonic()


# --- ManualClock -----------------------------------------------------------------------------


def test_manual_clock_advance_and_set() -> None:
    clock = ManualClock(T0, monotonic_start=10.0)
    assert isinstance(clock, Clock)
    assert clock.now() == T0
    assert clock.advance(90) == T0 + timedelta(seconds=90)
    assert clock.monotonic() == 100.0
    clock.advance(0.25)
    assert clock.now() == T0 + timedelta(seconds=90.25)
    # Jump back (skew): wall clock goes back, monotonic does not.
    clock.set(T0)
    assert clock.now() == T0
    assert clock.monotonic() == 100.25
    # Jump forward: both move.
    clock.set(T0 + timedelta(hours=1))
    assert clock.monotonic() == 100.25 + 3600


def test_manual_clock_normalises_to_utc_and_rejects_naive() -> None:
    plus2 = timezone(timedelta(hours=2))
    clock = ManualClock(datetime(2026, 6, 7, 10, 42, 11, tzinfo=plus2))
    assert clock.now() == T0 and clock.now().tzinfo == UTC
    with pytest.raises(ValueError, match="aware"):
        ManualClock(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="aware"):
        clock.set(datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.advance(float("nan"))


def test_manual_clock_default_start_is_aware() -> None:
    assert ManualClock().now().tzinfo == UTC


# --- FileOffsetClock -------------------------------------------------------------------------


def test_file_offset_clock_missing_file_means_no_offset(tmp_path: Path) -> None:
    base = FakeBase()
    clock = FileOffsetClock(tmp_path / "offset", base=base)
    assert isinstance(clock, Clock)
    assert clock.now() == T0
    assert clock.offset() == 0.0
    assert clock.monotonic() == 100.0


def test_file_offset_clock_follows_rewrites(tmp_path: Path) -> None:
    path = tmp_path / "offset"
    base = FakeBase()
    clock = FileOffsetClock(path, base=base)
    write_offset(path, "3600\n")
    assert clock.now() == T0 + timedelta(hours=1)
    assert clock.monotonic() == 3700.0
    write_offset(path, "  7200.5 ")
    assert clock.now() == T0 + timedelta(seconds=7200.5)
    base.wall += timedelta(seconds=10)  # the base clock keeps running underneath
    assert clock.now() == T0 + timedelta(seconds=7210.5)
    # Moving the offset back: wall time goes back, monotonic stalls instead of decreasing.
    before = clock.monotonic()
    write_offset(path, "-30")
    assert clock.now() == T0 + timedelta(seconds=10 - 30)
    assert clock.monotonic() == before
    base.mono += 1_000_000
    assert clock.monotonic() == 100.0 + 1_000_000 - 30
    # Deleting the file removes the offset.
    path.unlink()
    assert clock.now() == T0 + timedelta(seconds=10)


def test_file_offset_clock_rereads_in_place_write_with_new_mtime(tmp_path: Path) -> None:
    path = tmp_path / "offset"
    path.write_text("10")
    clock = FileOffsetClock(path, base=FakeBase())
    assert clock.offset() == 10.0
    path.write_text("20")  # same inode, same size: only the mtime tells
    st_ = path.stat()
    os.utime(path, ns=(st_.st_atime_ns, st_.st_mtime_ns + 1_000_000))
    assert clock.offset() == 20.0


def test_file_offset_clock_does_not_reread_unchanged_file(tmp_path: Path) -> None:
    path = tmp_path / "offset"
    path.write_text("10")
    clock = FileOffsetClock(path, base=FakeBase())
    assert clock.offset() == 10.0
    st_ = path.stat()
    path.write_text("99")  # same size, then restore the old mtime: looks unchanged
    os.utime(path, ns=(st_.st_atime_ns, st_.st_mtime_ns))
    assert path.stat().st_ino == st_.st_ino
    assert clock.offset() == 10.0  # cached: no read when nothing visibly changed


@pytest.mark.parametrize("garbage", ["", "abc", "nan", "inf", "1h"])
def test_file_offset_clock_keeps_last_good_offset_on_garbage(tmp_path: Path, garbage: str) -> None:
    path = tmp_path / "offset"
    clock = FileOffsetClock(path, base=FakeBase())
    write_offset(path, "60")
    assert clock.offset() == 60.0
    write_offset(path, garbage)
    assert clock.offset() == 60.0
    write_offset(path, "120")
    assert clock.offset() == 120.0


def test_file_offset_clock_default_base_is_system(tmp_path: Path) -> None:
    path = tmp_path / "offset"
    write_offset(path, str(10 * 24 * 3600))
    clock = FileOffsetClock(path)
    ahead = (clock.now() - datetime.now(UTC)).total_seconds()
    assert 10 * 24 * 3600 - 5 < ahead < 10 * 24 * 3600 + 5


def test_clock_from_env(tmp_path: Path) -> None:
    assert isinstance(clock_from_env({}), SystemClock)
    assert isinstance(clock_from_env({CLOCK_OFFSET_ENV: ""}), SystemClock)
    clock = clock_from_env({CLOCK_OFFSET_ENV: str(tmp_path / "offset")})
    assert isinstance(clock, FileOffsetClock)
    assert clock.path == tmp_path / "offset"


def test_clock_from_env_reads_os_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CLOCK_OFFSET_ENV, str(tmp_path / "o"))
    assert isinstance(clock_from_env(), FileOffsetClock)
    monkeypatch.delenv(CLOCK_OFFSET_ENV)
    assert isinstance(clock_from_env(), SystemClock)


# --- RFC 3339 --------------------------------------------------------------------------------


def test_format_ts() -> None:
    assert format_ts(T0) == "2026-06-07T08:42:11Z"
    assert format_ts(T0 + timedelta(microseconds=999_999)) == "2026-06-07T08:42:11Z"
    plus2 = timezone(timedelta(hours=2))
    assert format_ts(datetime(2026, 6, 7, 10, 42, 11, tzinfo=plus2)) == "2026-06-07T08:42:11Z"
    with pytest.raises(ValueError):
        format_ts(datetime(2026, 6, 7, 8, 42, 11))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-06-07T08:42:11Z", T0),
        ("2026-06-07t08:42:11z", T0),
        ("2026-06-07T08:42:11+00:00", T0),
        ("2026-06-07T10:42:11+02:00", T0),
        ("2026-06-07T03:42:11-05:00", T0),
        ("2026-06-07T08:42:11.5Z", T0 + timedelta(microseconds=500_000)),
        ("2026-06-07T08:42:11.123456789Z", T0 + timedelta(microseconds=123_456)),
        ("2026-06-07T08:42:11.000001+00:00", T0 + timedelta(microseconds=1)),
    ],
)
def test_parse_ts(text: str, expected: datetime) -> None:
    got = parse_ts(text)
    assert got == expected
    assert got.tzinfo == UTC


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2026-06-07T08:42:11",  # no offset: ambiguous
        "2026-06-07 08:42:11Z",
        "2026-06-07T08:42Z",
        "2026-13-07T08:42:11Z",
        "2026-06-07T24:00:00Z",
        "2026-06-07T08:42:60Z",
        "2026-06-07T08:42:11.Z",
        "2026-06-07T08:42:11+0000",
        "2026-06-07T08:42:11Z ",
        "yesterday",
    ],
)
def test_parse_ts_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_ts(text)


@given(st.datetimes(timezones=st.just(UTC), min_value=datetime(1971, 1, 1)))
def test_ts_round_trip_truncates_to_seconds(dt: datetime) -> None:
    assert parse_ts(format_ts(dt)) == dt.replace(microsecond=0)
