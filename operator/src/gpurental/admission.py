"""Admission checks for GpuRentals: what the CRD schema cannot express, decided up front.

Pure: given the operation, the rental (and its previous version) and the cached offers and
wallets, say why the write must be rejected, naming the field, or None. The kopf handler that
answers the validating webhook (handlers/admission.py) is the only caller; the reconciler keeps
enforcing the same rules as conditions, because the webhook is optional and may be bypassed.
Never reads the API and never changes the rental.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gpurental.models import DesiredState, OfferSpec, Phase, RentalSpec, SpecError, parse_spec
from gpurental.observed import Key


def check_rental(operation: str, rental: Mapping[str, Any], old: Mapping[str, Any] | None,
                 offers: Mapping[str, Mapping[str, Any]],
                 wallets: Mapping[Key, Mapping[str, Any]]) -> str | None:
    """The first reason to reject this CREATE or UPDATE of a rental, or None to allow it."""
    if operation not in ("CREATE", "UPDATE"):
        return None
    try:
        spec = parse_spec(RentalSpec, rental.get("spec"))
    except SpecError as exc:
        return str(exc)
    if operation == "UPDATE" and old is not None:
        problem = _reopened(spec, old)
        if problem:
            return problem
    if operation == "CREATE" or _offer_terms_changed(rental, old):
        problem = _within_offer(spec, rental.get("spec") or {}, offers)
        if problem:
            return problem
    if operation == "CREATE":
        namespace = (rental.get("metadata") or {}).get("namespace", "")
        return _wallet_has_budget(spec, namespace, wallets)
    return None


def _reopened(spec: RentalSpec, old: Mapping[str, Any]) -> str | None:
    """Stopped is permanent: the bill is settled and the volume gone. Only a change of
    spec.state is judged: the operator's own finalizer patches on a rental it stopped for
    budget (spec still Running, phase Stopped) must pass."""
    was = (old.get("spec") or {}).get("state", DesiredState.RUNNING)
    phase = (old.get("status") or {}).get("phase")
    if spec.state != was and (was == DesiredState.STOPPED or phase == Phase.STOPPED) and \
            spec.state != DesiredState.STOPPED:
        return (f"spec.state: a Stopped rental cannot be set to {spec.state.value}; "
                "stopping is permanent, create a new rental")
    return None


def _offer_terms_changed(rental: Mapping[str, Any], old: Mapping[str, Any] | None) -> bool:
    """Only a change of offer, gpus or duration is judged against the offer again, so an
    offer tightened (or deleted) later never blocks unrelated edits such as sshKeys."""
    new_spec, old_spec = rental.get("spec") or {}, (old or {}).get("spec") or {}
    return any(new_spec.get(f) != old_spec.get(f) for f in ("offer", "gpus", "duration"))


def _within_offer(spec: RentalSpec, raw: Mapping[str, Any],
                  offers: Mapping[str, Mapping[str, Any]]) -> str | None:
    body = offers.get(spec.offer)
    if body is None:
        known = ", ".join(sorted(offers)) or "none"
        return f'spec.offer: GpuOffer "{spec.offer}" not found (offers: {known})'
    try:
        offer = parse_spec(OfferSpec, body.get("spec"))
    except SpecError as exc:
        return f'spec.offer: GpuOffer "{spec.offer}" is invalid ({exc})'
    if offer.max_gpus is not None and spec.gpus > offer.max_gpus:
        return f"spec.gpus: {spec.gpus} exceeds offer {spec.offer}'s maxGpus {offer.max_gpus}"
    if offer.max_duration is not None and spec.duration is not None and \
            spec.duration > offer.max_duration:
        limit = (body.get("spec") or {}).get("maxDuration")
        return (f"spec.duration: {raw.get('duration')} exceeds offer {spec.offer}'s "
                f"maxDuration {limit}")
    return None


def _wallet_has_budget(spec: RentalSpec, namespace: str,
                       wallets: Mapping[Key, Mapping[str, Any]]) -> str | None:
    """A new rental on an exhausted wallet could never start; say so now, not as a condition."""
    if not spec.wallet or spec.state == DesiredState.STOPPED:
        return None
    wallet = wallets.get((namespace, spec.wallet))
    if wallet is not None and (wallet.get("status") or {}).get("exhausted"):
        return f'spec.wallet: Wallet "{spec.wallet}" is exhausted (no budget left); top it up first'
    return None

