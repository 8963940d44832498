"""Pausing, stopping, deleting, and refusing: the steps that take a rental's pod away (or
never start one). Each closes the meter before the actions that delete the pod: the
reconciler writes the status first, so a crash between the two neither loses nor doubles a
billed second."""

from __future__ import annotations

from gpurental import billing, conditions, meter
from gpurental.constants import FINALIZER
from gpurental.lifecycle import metering
from gpurental.lifecycle.children import (
    delete_children,
    delete_pod,
    delete_service,
    paused_endpoints,
)
from gpurental.lifecycle.draft import Draft
from gpurental.lifecycle.plans import ActionKind
from gpurental.models import DesiredState, Phase


def pause(d: Draft, reason: str, message: str) -> None:
    """Paused keeps the volume and the keys; the pod and its ports go."""
    metering.close_segment(d, None)
    delete_pod(d)
    delete_service(d)  # nothing listens on a port nobody pays for
    paused_endpoints(d)
    d.status.pop("provisioningSince", None)
    d.set_phase(Phase.PAUSED, "Paused", message)
    conditions.paused(d.conditions, reason, message)


def stop(d: Draft, reason: str, message: str) -> None:
    """Stopped is the end: every child goes, the bill is final."""
    if reason == "UserRequested":
        message = "stopped by the user"
    metering.close_all(d)
    delete_children(d, keep_volume=False)
    d.status.pop("provisioningSince", None)
    d.status.setdefault("settledAt", d.now)
    d.set_phase(Phase.STOPPED, "Stopped", message)
    conditions.stopped(d.conditions, reason, message)


def stay_stopped(d: Draft) -> None:
    """Stopped is permanent: heal leftovers, refuse to run again."""
    delete_children(d, keep_volume=False)
    if d.rental.spec.get("state", "Running") != DesiredState.STOPPED:
        refuse_restart(d, "StoppedIsPermanent", "a stopped rental never runs again; "
                       "create a new GpuRental")


def stay_failed(d: Draft) -> None:
    delete_children(d, keep_volume=False)
    if d.rental.spec.get("state", "Running") == DesiredState.RUNNING:
        refuse_restart(d, "FailedIsPermanent", "a failed rental does not retry; "
                       "create a new GpuRental")


def refuse_restart(d: Draft, reason: str, message: str) -> None:
    if conditions.refused(d.conditions, reason, message):
        d.event("Warning", reason, message)


def reject(d: Draft, reason: str, message: str) -> None:
    """The spec cannot be acted on: say so where the user looks, start nothing."""
    if conditions.rejected(d.conditions, reason, message):
        d.event("Warning", reason, message)
    if d.phase in (Phase.PENDING, Phase.PROVISIONING):
        d.status.pop("provisioningSince", None)
        d.set_phase(Phase.PENDING, reason, message)
    d.status["message"] = message


def delete(d: Draft) -> None:
    """kubectl delete: the same as Stop, then settle into the wallet and let go."""
    if not d.phase.terminal:
        metering.close_all(d)
        d.status.pop("provisioningSince", None)
        d.status.setdefault("settledAt", d.now)
        d.set_phase(Phase.STOPPED, "Deleted", "deleted by the user; settling the bill")
        conditions.deleted(d.conditions)
    delete_children(d, keep_volume=False)
    children = d.children
    if (children.pod or children.pvc or children.secret or children.service
            or children.ingress):
        d.plan.requeue_after = 1.0
        return
    wallet = d.ctx.wallet
    if wallet is not None and d.rental.uid not in wallet.settled_uids:
        d.act(ActionKind.SETTLE, wallet.name)
        charge = billing.dollars(meter.billable_cents(d.status, d.ctx.now))
        d.event("Normal", "Settled", f"final charge {charge} moved to wallet {wallet.name}")
    if FINALIZER in d.rental.finalizers:
        d.act(ActionKind.REMOVE_FINALIZER)
