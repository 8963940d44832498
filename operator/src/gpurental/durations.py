"""Kubernetes-style duration strings <-> whole seconds.

Owns: the one grammar for durations in manifests (``spec.duration``, ``GpuOffer.spec.maxDuration``),
the regular expression the CRD schemas use for it (:data:`DURATION_PATTERN`), and how a number of
seconds is shown to humans (:func:`format_duration`, kubectl's "AGE" style) or written back in a
form this module parses again (:func:`format_duration_exact`).

Never does: I/O, clock reads, Kubernetes calls, or policy. :func:`parse_duration` parses; whether
zero is an acceptable rental duration is decided by the caller (see :func:`parse_positive_duration`
for the common rule). No floats: fractions such as ``1.5h`` are evaluated exactly.

Grammar (a strict subset of Go's ``time.ParseDuration``, which is what Kubernetes users write):
one or more ``<number><unit>`` terms, number ``[0-9]+`` optionally followed by ``.[0-9]+``, unit
``h``, ``m`` or ``s``; no sign, no spaces, no ``ms``/``us``/``ns``, no days. Terms add up
(``1h30m``; ``30m1h`` is also accepted, as Go accepts it). The exact total is truncated to whole
seconds (``1.0001h`` -> 3600s), since billing counts whole seconds. Totals above
:data:`MAX_DURATION_SECONDS` (ten years) and texts longer than :data:`DURATION_MAX_LENGTH`
characters are rejected.
"""

from __future__ import annotations

import re
from fractions import Fraction

__all__ = [
    "DURATION_MAX_LENGTH",
    "DURATION_PATTERN",
    "MAX_DURATION_SECONDS",
    "format_duration",
    "format_duration_exact",
    "parse_duration",
    "parse_positive_duration",
]

#: The pattern for ``type: string`` duration fields in the CRD OpenAPI schemas. Written without
#: non-capturing groups or lookarounds so that Go's RE2 (the API server) and Python agree on it.
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(h|m|s))+$"

#: ``maxLength`` for duration fields in the CRD schemas; longer texts are rejected here too.
DURATION_MAX_LENGTH = 64

#: Ten years of 365 days. Anything longer is a typo, not a rental.
MAX_DURATION_SECONDS = 10 * 365 * 24 * 3600

_UNIT_SECONDS = {"h": 3600, "m": 60, "s": 1}
_WHOLE = re.compile(DURATION_PATTERN)
_TERM = re.compile(r"([0-9]+(?:\.[0-9]+)?)([hms])")


def parse_duration(text: str) -> int:
    """Parse ``90s``, ``15m``, ``4h``, ``1h30m``, ``1.5h``, ``0s`` into whole seconds (>= 0).

    Raises ``ValueError`` naming the offending text for anything outside the grammar in the module
    docstring, and for totals above ten years.
    """
    if not isinstance(text, str):
        raise ValueError(f"duration must be a string like '1h30m', got {type(text).__name__}")
    if text == "":
        raise ValueError("duration is empty; write e.g. '90s', '15m', '4h' or '1h30m'")
    if len(text) > DURATION_MAX_LENGTH:
        raise ValueError(f"duration is longer than {DURATION_MAX_LENGTH} characters")
    if _WHOLE.fullmatch(text) is None:
        raise ValueError(
            f"invalid duration {text!r}: expected terms like '90s', '15m', '4h', '1h30m' or "
            "'1.5h' (units h, m, s; no sign, spaces or days)"
        )
    total = Fraction(0)
    for number, unit in _TERM.findall(text):
        total += Fraction(number) * _UNIT_SECONDS[unit]
    if total > MAX_DURATION_SECONDS:
        raise ValueError(
            f"duration {text!r} is longer than the maximum of 10 years "
            f"({MAX_DURATION_SECONDS}s)"
        )
    return int(total)  # Fraction >= 0: int() truncates, i.e. floors


def parse_positive_duration(text: str) -> int:
    """:func:`parse_duration`, additionally rejecting durations shorter than one second."""
    seconds = parse_duration(text)
    if seconds <= 0:
        raise ValueError(f"duration {text!r} must be at least 1s")
    return seconds


def format_duration_exact(seconds: int) -> str:
    """Exact, round-trippable form: ``0s``, ``45s``, ``15m``, ``1h30m``, ``50h0m5s``.

    Hours are never folded into days (Kubernetes durations have no day unit);
    ``parse_duration(format_duration_exact(n)) == n`` for every ``0 <= n <= MAX_DURATION_SECONDS``.
    """
    _check_seconds(seconds)
    if seconds == 0:
        return "0s"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    out = ""
    if hours:
        out += f"{hours}h"
    if minutes or (hours and secs):
        out += f"{minutes}m"
    if secs:
        out += f"{secs}s"
    return out


def format_duration(seconds: int) -> str:
    """Short human form for printer columns and messages, exactly kubectl's AGE column.

    This is ``k8s.io/apimachinery/pkg/util/duration.HumanDuration``: ``12s`` (up to 119s),
    ``3m20s`` (under 10m), ``42m`` (under 3h), ``4h12m`` (under 8h), ``20h`` (under 48h),
    ``5d2h`` (under 8d), ``45d`` (under 2y), ``3y12d`` (under 8y), ``9y``. It is lossy by design;
    use :func:`format_duration_exact` where the text must parse back. Negative input (a moment
    already passed, clock skew) shows as ``0s``.
    """
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise TypeError(f"seconds must be an int, got {type(seconds).__name__}")
    if seconds < 120:
        return f"{max(seconds, 0)}s"
    minutes = seconds // 60
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    days = hours // 24
    if hours < 24 * 365 * 2:
        return f"{days}d"
    if hours < 24 * 365 * 8:
        d = days % 365
        return f"{days // 365}y" if d == 0 else f"{days // 365}y{d}d"
    return f"{days // 365}y"


def _check_seconds(seconds: int) -> None:
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise TypeError(f"seconds must be an int, got {type(seconds).__name__}")
    if seconds < 0:
        raise ValueError(f"seconds must be >= 0, got {seconds}")
