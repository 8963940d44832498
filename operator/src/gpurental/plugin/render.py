"""Pure rendering: kubectl-like tables, money, rates, ages and error lines.

Tables follow kubectl's ``text/tabwriter`` settings (minwidth 6, padding 3, pad with spaces):
every column but the last is padded to ``max(widest cell + 3, 6)``; the last is not padded.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from gpurental import durations
from gpurental.clock import parse_ts
from gpurental.constants import GROUP, RENTALS

RESOURCE = f"{RENTALS}.{GROUP}"  # kubectl's "gpurentals.gpurental.dev" in error messages
KIND_REF = f"gpurental.{GROUP}"  # kubectl's "gpurental.gpurental.dev/NAME" lines
NONE = "<none>"

_MIN_WIDTH, _PADDING = 6, 3


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A kubectl table: upper-case headers, columns separated like kubectl's tabwriter."""
    all_rows = [list(headers), *[list(r) for r in rows]]
    ncols = len(headers)
    widths = [max(len(r[i]) for r in all_rows) for i in range(ncols)]
    lines = []
    for row in all_rows:
        cells = [cell.ljust(max(widths[i] + _PADDING, _MIN_WIDTH))
                 for i, cell in enumerate(row[:-1])]
        lines.append("".join(cells) + row[-1])
    return "\n".join(line.rstrip() if line.strip() else line for line in lines)


def decimal_text(amount: Decimal) -> str:
    """At least two decimals, more only when they carry digits: 0.69, 2.80, 0.123456."""
    if amount == amount.quantize(Decimal("0.01")):
        return f"{amount.quantize(Decimal('0.01')):f}"
    return f"{amount.normalize():f}"


def rate(amount: Decimal | None) -> str:
    """``$0.69/hr`` (the seed's ``$X.XX/hr``); never hides a price's extra decimals."""
    return NONE if amount is None else f"${decimal_text(amount)}/hr"


def age(timestamp: str | None, now: datetime) -> str:
    """kubectl's AGE column (``HumanDuration``)."""
    if not timestamp:
        return "<unknown>"
    try:
        then = parse_ts(timestamp)
    except ValueError:
        return "<unknown>"
    return durations.format_duration(int((now - then).total_seconds()))


def ref(name: str) -> str:
    return f"{KIND_REF}/{name}"


def patched(name: str, changed: bool = True, dry_run: bool = False) -> str:
    suffix = "" if changed else " (no change)"
    if dry_run:
        suffix += " (dry run)"
    return f"{ref(name)} patched{suffix}"


def not_found(name: str) -> str:
    return f'Error from server (NotFound): {RESOURCE} "{name}" not found'


def api_error(status: int | None, reason: str | None, body: Any) -> str:
    """kubectl's line for a failed API call, from the Status object the server returned."""
    doc: dict[str, Any] = {}
    if isinstance(body, (str, bytes)):
        try:
            parsed = json.loads(body)
            if isinstance(parsed, dict):
                doc = parsed
        except ValueError:
            doc = {}
    message = str(doc.get("message") or reason or "unknown error")
    why = str(doc.get("reason") or reason or "Unknown")
    details = doc.get("details") or {}
    if why == "Invalid" and details.get("kind") and details.get("name"):
        _head, sep, tail = message.partition(" is invalid: ")
        rest = tail if sep else message
        return f'The {details["kind"]} "{details["name"]}" is invalid: {rest}'
    if why == "Unknown" and status:
        why = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
               409: "Conflict"}.get(status, "InternalError")
    return f"Error from server ({why}): {message}"
