"""The one injectable clock, and RFC 3339 timestamps as Kubernetes writes them.

Owns: where "now" comes from. Every part of the operator that needs the time takes a
:class:`Clock` (``now()`` is an aware UTC ``datetime``, ``monotonic()`` a float of seconds), so
unit tests drive time with :class:`ManualClock` and end-to-end tests move a running operator
process's clock with :class:`FileOffsetClock` (``GPURENTAL_CLOCK_OFFSET_FILE``) without restarting
it. Also owns :func:`format_ts`/:func:`parse_ts`, the only timestamp format in status.

Never does: sleep, schedule, talk to Kubernetes, or return naive datetimes. The only I/O is
:class:`FileOffsetClock` stat-ing and reading its offset file.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = [
    "CLOCK_OFFSET_ENV",
    "Clock",
    "FileOffsetClock",
    "ManualClock",
    "SystemClock",
    "clock_from_env",
    "format_ts",
    "parse_ts",
]

#: Environment variable naming the offset file of :class:`FileOffsetClock`.
CLOCK_OFFSET_ENV = "GPURENTAL_CLOCK_OFFSET_FILE"


@runtime_checkable
class Clock(Protocol):
    """A source of wall time (aware UTC) and of monotonic seconds."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The real clock: ``datetime.now(UTC)`` and ``time.monotonic()``."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that moves only when told to; for tests.

    ``advance(seconds)`` moves both wall and monotonic time forward. ``set(dt)`` jumps the wall
    clock anywhere (backwards too, to simulate skew or NTP steps); the monotonic clock follows
    forward jumps and ignores backward ones, as a real monotonic clock would.
    """

    def __init__(self, start: datetime | None = None, monotonic_start: float = 0.0) -> None:
        if start is None:
            start = datetime(2026, 6, 7, 8, 0, 0, tzinfo=UTC)
        self._now = _require_aware(start, "start")
        self._mono = float(monotonic_start)

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> datetime:
        """Move time forward by ``seconds`` (>= 0) and return the new ``now()``."""
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"advance() needs a finite, non-negative number, got {seconds!r}")
        self._now += timedelta(seconds=seconds)
        self._mono += seconds
        return self._now

    def set(self, dt: datetime) -> datetime:
        """Set the wall clock to ``dt`` (aware); the monotonic clock never goes back."""
        dt = _require_aware(dt, "dt")
        forward = (dt - self._now).total_seconds()
        if forward > 0:
            self._mono += forward
        self._now = dt
        return self._now

    def __repr__(self) -> str:
        return f"ManualClock({format_ts(self._now)!r})"


class FileOffsetClock:
    """A base clock (the system clock by default) plus an offset in seconds read from a file.

    The file holds one decimal number of seconds (``3600``, ``-2.5``); surrounding whitespace is
    ignored. It is re-read whenever its identity changes (inode, mtime in ns, or size), so a test
    moves a running operator's clock by rewriting the file; writers should replace it atomically
    (write a temporary file, then rename). A missing file means offset 0. A file that cannot be
    parsed (for example caught half-written) leaves the previous offset in force and is read
    again on the next call.

    ``monotonic()`` is the base's monotonic time plus the offset, clamped so that it never
    decreases: moving the offset forward makes timeouts measured on it elapse; moving it back
    stalls it instead of running it backwards.
    """

    def __init__(self, path: str | os.PathLike[str], base: Clock | None = None) -> None:
        self.path = Path(path)
        self._base: Clock = base if base is not None else SystemClock()
        self._lock = threading.Lock()
        self._key: tuple[int, int, int] | None = None
        self._offset = 0.0
        self._last_mono = -math.inf

    def offset(self) -> float:
        """The current offset in seconds (re-reading the file if it changed)."""
        with self._lock:
            return self._refresh()

    def now(self) -> datetime:
        return self._base.now() + timedelta(seconds=self.offset())

    def monotonic(self) -> float:
        with self._lock:
            value = self._base.monotonic() + self._refresh()
            if value < self._last_mono:
                value = self._last_mono
            self._last_mono = value
            return value

    def _refresh(self) -> float:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._key = None
            self._offset = 0.0
            return self._offset
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key == self._key:
            return self._offset
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            self._key = None
            self._offset = 0.0
            return self._offset
        try:
            value = float(text.strip())
        except ValueError:
            return self._offset  # half-written or garbage: keep the last good one, retry later
        if not math.isfinite(value):
            return self._offset
        self._offset = value
        self._key = key
        return self._offset

    def __repr__(self) -> str:
        return f"FileOffsetClock({str(self.path)!r})"


def clock_from_env(environ: Mapping[str, str] | None = None) -> Clock:
    """:class:`FileOffsetClock` if ``GPURENTAL_CLOCK_OFFSET_FILE`` is set (non-empty), else the
    :class:`SystemClock`."""
    env = os.environ if environ is None else environ
    path = env.get(CLOCK_OFFSET_ENV, "")
    if path:
        return FileOffsetClock(path)
    return SystemClock()


# --- RFC 3339 -------------------------------------------------------------------------------

_TS = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt](?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<frac>\d+))?"
    r"(?P<tz>[Zz]|[+-]\d{2}:\d{2})"
)


def format_ts(dt: datetime) -> str:
    """``2026-06-07T08:42:11Z``: converted to UTC, truncated to whole seconds, ``Z`` suffix."""
    if type(dt) is not datetime or dt.tzinfo is not UTC:  # every clock here gives UTC
        dt = _require_aware(dt, "dt")
    # isoformat, not strftime: a third of the time, and every pass formats "now" twice.
    return dt.isoformat(timespec="seconds")[:19] + "Z"


def parse_ts(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (``Z`` or a numeric offset, optional fractional seconds of any
    length, truncated to microseconds) into an aware UTC datetime. Raises ``ValueError``."""
    if not isinstance(text, str):
        raise ValueError(f"timestamp must be a string, got {type(text).__name__}")
    m = _TS.fullmatch(text)
    if m is None:
        raise ValueError(f"invalid RFC 3339 timestamp {text!r}; expected e.g. 2026-06-07T08:42:11Z")
    frac = (m["frac"] or "")[:6].ljust(6, "0")
    tz = m["tz"]
    offset = "+00:00" if tz in ("Z", "z") else tz
    try:
        dt = datetime.fromisoformat(f"{m['date']}T{m['time']}.{frac}{offset}")
    except ValueError as exc:
        raise ValueError(f"invalid RFC 3339 timestamp {text!r}: {exc}") from None
    return dt.astimezone(UTC)


def _require_aware(dt: datetime, name: str) -> datetime:
    if not isinstance(dt, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(dt).__name__}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {dt!r}")
    return dt.astimezone(UTC)
