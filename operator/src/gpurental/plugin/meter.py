"""Pure computations behind the plugin: the seed's meter JSON, the KPI summary, status filters,
extending a duration and matching SSH keys.

Never does I/O or reads the clock: ``now`` is always a parameter. The live meter is the
operator's own (:mod:`gpurental.meter`): the same segments, the same whole seconds and the same
half-up rounding as the status the operator writes, so ``kubectl gpurental`` never disagrees with
it. Money is ``Decimal`` in and integer cents out; no float ever touches a price.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from gpurental import durations
from gpurental import meter as operator_meter

Obj = Mapping[str, Any]

# --- status filters (the seed's chips) -------------------------------------------------------

#: The seed's status filter chips -> the phases they show. "In progress" is everything that has
#: not started yet; a rental the operator has not seen (no status) counts as Pending.
STATUS_FILTERS: dict[str, frozenset[str] | None] = {
    "all": None,
    "running": frozenset({"Running"}),
    "in-progress": frozenset({"Pending", "Provisioning"}),
    "paused": frozenset({"Paused"}),
    "stopped": frozenset({"Stopped"}),
    "failed": frozenset({"Failed"}),
    "disrupted": None,  # see disruption_of: not a phase, a pod or volume taken away
    "interrupted": None,  # see interrupted: preempted and not running again yet
}

TERMINAL_PHASES = frozenset({"Stopped", "Failed"})


def phase_of(obj: Obj) -> str:
    return str((obj.get("status") or {}).get("phase") or "Pending")


#: Paused reasons that a fault of the world, not the user, put the rental in.
_FAULT_HOLDS = frozenset({"NoCapacity", "VolumeUnavailable", "VolumeLost", "Preempted"})


def disruption_of(obj: Obj) -> str | None:
    """Why the rental is not where its user wants it because of a fault of the world: its
    claim was deleted, its pod is being replaced (NodeLost, PodDeleted, Evicted, ...), or it
    waits Paused for capacity. None when nothing was taken away or it has recovered."""
    status = obj.get("status") or {}
    if status.get("lostClaim"):
        return "VolumeLost"
    disruption = status.get("disruption") or {}
    if disruption.get("recovering"):
        return str(disruption.get("reason") or "Disrupted")
    for condition in status.get("conditions") or ():
        if (condition.get("type") == "Paused" and condition.get("status") == "True"
                and condition.get("reason") in _FAULT_HOLDS):
            return str(condition["reason"])
    return None


def interrupted(obj: Obj) -> bool:
    """The scheduler preempted the rental's pod and it does not run again yet."""
    return any(c.get("type") == "Interrupted" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or ())


def phase_text(obj: Obj) -> str:
    """The PHASE column: the phase, and the fault behind it if any ("Paused (VolumeLost)")."""
    cause = disruption_of(obj)
    return f"{phase_of(obj)} ({cause})" if cause else phase_of(obj)


def matches_filter(obj: Obj, status_filter: str) -> bool:
    if status_filter == "disrupted":
        return disruption_of(obj) is not None
    if status_filter == "interrupted":
        return interrupted(obj)
    phases = STATUS_FILTERS[status_filter]
    return phases is None or phase_of(obj) in phases


# --- the meter ---------------------------------------------------------------------------------


def live_seconds(status: Obj, now: datetime) -> int:
    """The operator's ``seconds_billed`` at ``now`` (``accruedSeconds`` + whole seconds of the
    open segment), never less than the ``secondsBilled`` the operator last wrote: this machine's
    clock may be behind the operator's, and a meter must not run backwards."""
    return max(operator_meter.seconds_billed(status, now), int(status.get("secondsBilled") or 0))


def rate_of(status: Obj) -> Decimal | None:
    """The locked ``ratePerHour`` as an exact Decimal, or None before the first start."""
    return parse_rate(status.get("ratePerHour"))


def parse_rate(text: Any) -> Decimal | None:
    if text in (None, ""):
        return None
    try:
        value = Decimal(str(text))
    except InvalidOperation:
        return None
    return value if value.is_finite() and value >= 0 else None


@dataclass(frozen=True)
class Reading:
    """A rental's meter at one moment."""

    seconds: int
    gpu_cents: int
    storage_cents: int
    refunded_cents: int

    @property
    def total_cents(self) -> int:
        return self.gpu_cents + self.storage_cents

    @property
    def charged_cents(self) -> int:
        """What the customer pays for this rental: everything accrued, less refunds."""
        return max(self.total_cents - self.refunded_cents, 0)


def read(status: Obj, now: datetime, live: bool = True) -> Reading:
    """The meter live at ``now`` (``live``) or as the operator last wrote it."""
    refunded = int(status.get("refundedCents") or 0)
    if not live:
        gpu = int(status.get("currentChargeCents") or 0)
        total = status.get("totalChargeCents")
        storage = (int(total) - gpu) if total is not None else int(
            status.get("storageChargeCents") or 0)
        return Reading(int(status.get("secondsBilled") or 0), gpu, max(storage, 0), refunded)
    # A rate the plugin cannot read (a hand-edited status) shows no charge instead of failing.
    seconds = live_seconds(status, now)
    gpu = operator_meter.gpu_charge(status, seconds) if rate_of(status) is not None else 0
    storage = (operator_meter.storage_cents(status, now)
               if parse_rate(status.get("storageRatePerHour")) is not None else 0)
    return Reading(seconds, gpu, storage, refunded)


def meter_document(obj: Obj, now: datetime, live: bool = True) -> dict[str, Any]:
    """The seed's meter JSON for one rental (``ratePerHour`` stays a Decimal; see
    :func:`meter_json`)."""
    status = obj.get("status") or {}
    reading = read(status, now, live)
    return {
        "rentalId": (obj.get("metadata") or {}).get("uid"),
        "ratePerHour": rate_of(status),
        "secondsBilled": reading.seconds,
        "currentChargeCents": reading.gpu_cents,
        "lastHeartbeatAt": status.get("lastHeartbeatAt"),
    }


def decimal_json_number(value: Decimal) -> str:
    """A JSON number token written exactly from the Decimal (``2.80`` stays ``2.80``)."""
    if not value.is_finite():
        raise ValueError(f"not a finite number: {value}")
    text = format(value, "f")
    if text.startswith("-"):
        raise ValueError(f"negative rate: {value}")
    return text


def _json_value(value: Any) -> str:
    if isinstance(value, Decimal):
        return decimal_json_number(value)
    return json.dumps(value)


def to_json(doc: Mapping[str, Any], indent: int = 2, level: int = 0) -> str:
    """JSON like ``jq``'s output, with Decimals written as exact number tokens (never floats)."""
    if not doc:
        return "{}"
    pad = " " * (indent * (level + 1))
    items = []
    for key, value in doc.items():
        text = (to_json(value, indent, level + 1) if isinstance(value, Mapping)
                else _json_value(value))
        items.append(f"{pad}{_json_value(str(key))}: {text}")
    return "{\n" + ",\n".join(items) + "\n" + " " * (indent * level) + "}"


def meter_json(doc: Mapping[str, Any]) -> str:
    return to_json(doc)


# --- the summary (the seed's three KPI cards) --------------------------------------------------


@dataclass
class Summary:
    active_instances: int = 0
    hourly_burn: Decimal = Decimal("0")
    spend_cents: int = 0

    def add(self, other: Summary) -> None:
        self.active_instances += other.active_instances
        self.hourly_burn += other.hourly_burn
        self.spend_cents += other.spend_cents

    def document(self) -> dict[str, Any]:
        return {"activeInstances": self.active_instances,
                "hourlyBurn": self.hourly_burn,
                "spendCents": self.spend_cents}


@dataclass
class Summaries:
    total: Summary = field(default_factory=Summary)
    by_namespace: dict[str, Summary] = field(default_factory=dict)


def summarize(rentals: Iterable[Obj], wallets: Iterable[Obj], now: datetime) -> Summaries:
    """Active instances (phase Running), hourly burn (sum of their ``ratePerHour``) and spend.

    Spend = every listed rental's live charge less refunds, plus the wallets' ``settledCents``
    (the final charges of deleted rentals). A rental already in its wallet's settlement ledger
    (deleted, finalizer not yet released) is counted once, through the wallet."""
    out = Summaries()
    settled: set[str] = set()
    for wallet in wallets:
        ns = str((wallet.get("metadata") or {}).get("namespace") or "")
        status = wallet.get("status") or {}
        part = out.by_namespace.setdefault(ns, Summary())
        part.spend_cents += int(status.get("settledCents") or 0)
        settled.update(str(e.get("rentalUid")) for e in status.get("settlements") or ())
    for rental in rentals:
        meta = rental.get("metadata") or {}
        ns = str(meta.get("namespace") or "")
        part = out.by_namespace.setdefault(ns, Summary())
        status = rental.get("status") or {}
        if phase_of(rental) == "Running":
            part.active_instances += 1
            part.hourly_burn += rate_of(status) or Decimal("0")
        if str(meta.get("uid")) not in settled:
            part.spend_cents += read(status, now).charged_cents
    for part in out.by_namespace.values():
        out.total.add(part)
    return out


# --- extend -------------------------------------------------------------------------------------


class ExtendError(ValueError):
    pass


def hours_to_seconds(hours: Decimal) -> int:
    """``--hours N`` as whole seconds: positive, and a whole number of seconds."""
    if not hours.is_finite() or hours <= 0:
        raise ExtendError(f"--hours must be a positive number, got {hours}")
    seconds = hours * 3600
    if seconds != seconds.to_integral_value():
        raise ExtendError(f"--hours {hours} is not a whole number of seconds")
    return int(seconds)


def ceil_to_hour(seconds: int) -> int:
    return -(-seconds // 3600) * 3600


@dataclass(frozen=True)
class Extension:
    old_duration: str | None
    new_duration: str
    added_prepaid_seconds: int  # how much later the rental expires


def extend(duration: str | None, hours: Decimal, billed_seconds: int,
           from_now: bool = False) -> Extension:
    """The new ``spec.duration`` that adds ``hours`` of prepaid running time.

    Prepaid time is ``duration + status.renewedSeconds``, so raising the duration by N hours
    adds exactly N hours, renewals or not.

    A rental without a duration runs until stopped: extending it would *impose* a limit, so this
    refuses unless ``from_now``, which sets ``duration = billed time rounded up to the hour +
    hours`` (the rental then has between ``hours`` and ``hours + 1h`` left)."""
    added = hours_to_seconds(hours)
    if not duration:
        if not from_now:
            raise ExtendError("it has no spec.duration: it runs until stopped, so there is "
                              "nothing to extend (pass --from-now to set a limit of the time "
                              "already run, rounded up to the hour, plus --hours)")
        new = ceil_to_hour(billed_seconds) + added
        if new > durations.MAX_DURATION_SECONDS:
            raise ExtendError("the new duration would exceed 10 years")
        return Extension(None, durations.format_duration_exact(new), new - billed_seconds)
    try:
        current = durations.parse_duration(duration)
    except ValueError as exc:
        raise ExtendError(str(exc)) from None
    new = current + added
    if new > durations.MAX_DURATION_SECONDS:
        raise ExtendError("the new duration would exceed 10 years")
    return Extension(duration, durations.format_duration_exact(new), added)


# --- SSH keys -------------------------------------------------------------------------------------

_KEY = re.compile(r"^(?P<type>\S+) (?P<blob>[A-Za-z0-9+/]+={0,3})(?: (?P<comment>.*))?$")


def key_parts(key: str) -> tuple[str, str, str]:
    """``(type, base64 blob, comment)`` of an OpenSSH public key line."""
    m = _KEY.match(key.strip())
    if m is None:
        return "", "", key.strip()
    return m["type"], m["blob"], (m["comment"] or "")


def fingerprint(key: str) -> str:
    """``SHA256:...`` as ``ssh-keygen -l`` prints it."""
    _, blob, _ = key_parts(key)
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        return "<invalid>"
    digest = base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def key_matches(key: str, token: str) -> bool:
    """A key is named by its full line, its ``type blob``, its blob, its fingerprint or its
    comment."""
    token = token.strip()
    kind, blob, comment = key_parts(key)
    return token in {key.strip(), f"{kind} {blob}", blob, fingerprint(key)} or (
        bool(comment) and token == comment)


def add_keys(existing: list[str], new: Iterable[str]) -> list[str]:
    """Existing keys plus the new ones, skipping any whose ``type blob`` is already there."""
    out = list(existing)
    seen = {key_parts(k)[:2] for k in out}
    for key in new:
        key = key.strip()
        ident = key_parts(key)[:2]
        if ident in seen and ident[1]:
            continue
        seen.add(ident)
        out.append(key)
    return out


def remove_keys(existing: list[str], tokens: Iterable[str]) -> tuple[list[str], list[str]]:
    """``(kept keys, tokens that matched nothing)``."""
    tokens = list(tokens)
    kept = [k for k in existing if not any(key_matches(k, t) for t in tokens)]
    unmatched = [t for t in tokens if not any(key_matches(k, t) for k in existing)]
    return kept, unmatched
