"""Watching the rental's claim: a claim deleted by someone else is never hidden. A VolumeLost
condition and a Warning say so, and the rental does not resume onto a new empty claim until
spec.storage.acceptLostClaim names the lost one's uid."""

from __future__ import annotations

from gpurental import builders, conditions, meter
from gpurental.lifecycle import halting
from gpurental.lifecycle.draft import Draft
from gpurental.models import RentalSpec


def watch(d: Draft, spec: RentalSpec) -> bool:
    """Is the rental's data gone (and the loss not yet accepted)?"""
    pvc, known = d.children.pvc, d.status.get("pvcUid")
    lost = d.status.get("lostClaim") or None
    if lost is not None and spec.storage.accept_lost_claim == lost.get("uid"):
        _accept_loss(d, str(lost.get("uid")))
        return False
    if pvc is not None and not pvc.deleting and not known and pvc.uid:
        d.status["pvcUid"] = known = pvc.uid
    gone = known and (pvc is None or pvc.deleting or pvc.uid != known)
    if gone and lost is None:
        lost = {"name": builders.pvc_name(d.rental.name), "uid": known, "noticedAt": d.now}
        d.status["lostClaim"] = lost
        d.event("Warning", "VolumeLost", conditions.volume_lost_message(lost))
    if lost is None:
        return False
    if pvc is None or pvc.uid != known:
        meter.close_storage(d.status, d.ctx.now)  # no claim, nothing stored
    conditions.volume_lost(d.conditions, lost)
    return True


def wait_for_acceptance(d: Draft) -> None:
    """Resuming onto a new, empty claim would hide the loss: paused until the user's word."""
    message = conditions.volume_lost_message(d.status.get("lostClaim") or {})
    halting.pause(d, "VolumeLost", message)
    d.status["message"] = message


def _accept_loss(d: Draft, uid: str) -> None:
    d.status["lostClaim"] = None
    d.status.pop("pvcUid", None)
    conditions.volume_loss_accepted(d.conditions, uid)
    d.event("Normal", "VolumeReplaced", f"continuing on a new, empty volume "
            f"(the loss of claim {uid} was accepted)")
