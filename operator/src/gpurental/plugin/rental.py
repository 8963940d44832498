"""Reading a GpuRental as the API returns it (pure): its name, spec, status, whether it can
ever run again, and the order commands print rentals in."""

from __future__ import annotations

from typing import Any

from gpurental.plugin import meter

Obj = dict[str, Any]  # spelled here, not imported from .api, so this module needs no client


def name_of(obj: Obj) -> str:
    return str(obj["metadata"]["name"])


def spec_of(obj: Obj) -> Obj:
    return dict(obj.get("spec") or {})


def status_of(obj: Obj) -> Obj:
    return dict(obj.get("status") or {})


def ended(obj: Obj) -> str | None:
    """Why a rental can never run again, or None."""
    phase = meter.phase_of(obj)
    if spec_of(obj).get("state") == "Stopped" or phase == "Stopped":
        return "is stopped: stopped is permanent, create a new rental"
    if phase == "Failed":
        return "failed to provision and cannot run again; create a new rental"
    return None


def sorted_rentals(items: list[Obj]) -> list[Obj]:
    """By namespace, then name: the order kubectl lists in."""
    return sorted(items, key=lambda o: (o["metadata"].get("namespace") or "", name_of(o)))
