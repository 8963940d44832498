"""A rental's conditions as they live in status: which condition says what, and in which words.

Pure: upserts status.conditions through models.set_condition. Each function names one fact the
state machine records (the rental runs, is paused, lost its volume...) and writes every
condition that fact touches, in a fixed order, so the conditions a user reads with
`kubectl describe` always agree with each other and with the phase.
"""

from __future__ import annotations

from typing import Any

from gpurental.holds import Hold
from gpurental.models import ConditionType, get_condition, set_condition

C = ConditionType


class Conditions:
    """The conditions of one status dict, written at one moment for one generation."""

    def __init__(self, status: dict[str, Any], now: str, generation: int) -> None:
        self.status = status
        self.now = now
        self.generation = generation

    def get(self, type_: ConditionType) -> dict[str, Any] | None:
        return get_condition(self.status.get("conditions") or [], type_)

    def set(self, type_: ConditionType, value: bool, reason: str, message: str) -> None:
        self.status["conditions"] = set_condition(
            self.status.get("conditions") or [], type_.value, value, reason, message, self.now,
            self.generation,
        )

    def clear(self, type_: ConditionType, reason: str, message: str) -> None:
        """False, if the condition was ever set: a condition never set needs no denial."""
        if self.get(type_) is not None:
            self.set(type_, False, reason, message)


# --- admission and money ------------------------------------------------------------------

def money(conds: Conditions, hold: Hold | None) -> None:
    """Expired and BudgetExhausted explain a hold the money layer decided."""
    if hold is not None and hold.reason == "Expired":
        conds.set(C.EXPIRED, True, "DurationElapsed", hold.message)
    else:
        conds.clear(C.EXPIRED, "TimeRemaining", "prepaid time remains")
    if hold is not None and hold.reason == "BudgetExhausted":
        conds.set(C.BUDGET_EXHAUSTED, True, hold.reason, hold.message)


def accepted(conds: Conditions, hold: Hold | None) -> None:
    conds.set(C.ACCEPTED, True, "Accepted", "the rental can run")
    if hold is None or hold.reason != "BudgetExhausted":
        conds.clear(C.BUDGET_EXHAUSTED, "BudgetAvailable", "the wallet has budget")


def rejected(conds: Conditions, reason: str, message: str) -> bool:
    """The spec cannot be acted on. True when this is a new reason (worth a Warning)."""
    new = refused(conds, reason, message)
    conds.set(C.READY, False, reason, message)
    if reason == "BudgetExhausted":
        conds.set(C.BUDGET_EXHAUSTED, True, reason, message)
    return new


def refused(conds: Conditions, reason: str, message: str) -> bool:
    """Accepted False. True when this is a new reason (worth a Warning)."""
    current = conds.get(C.ACCEPTED)
    new = current is None or current.get("reason") != reason
    conds.set(C.ACCEPTED, False, reason, message)
    return new


# --- idle and held pauses -----------------------------------------------------------------

def idle(conds: Conditions, message: str) -> None:
    conds.set(C.IDLE, True, "Idle", message)


def idle_lifted(conds: Conditions) -> None:
    conds.set(C.IDLE, False, "SpecChanged", "the spec changed after the idle pause")


def held_pause(conds: Conditions) -> tuple[str, str]:
    """The reason and message a pause the operator decided for the user was held with."""
    paused = conds.get(C.PAUSED) or {}
    return str(paused.get("reason") or "Held"), str(paused.get("message") or "held")


# --- phases -------------------------------------------------------------------------------

def provisioning(conds: Conditions, reason: str, message: str) -> None:
    conds.set(C.READY, False, reason, message)


def running(conds: Conditions, message: str) -> None:
    conds.set(C.READY, True, "Running", message)


def not_paused(conds: Conditions) -> None:
    conds.clear(C.PAUSED, "Running", "the rental is not paused")


def paused(conds: Conditions, reason: str, message: str) -> None:
    conds.set(C.PAUSED, True, reason, message)
    conds.set(C.READY, False, "Paused", message)


def paused_by_the_operator(conds: Conditions, reason: str, message: str) -> None:
    """A pause the operator chose (a resume that failed, a volume on a lost node)."""
    conds.set(C.READY, False, reason, message)
    conds.set(C.PAUSED, True, reason, message)


def provisioning_failed(conds: Conditions, message: str) -> None:
    conds.set(C.READY, False, "ProvisioningFailed", message)


def stopped(conds: Conditions, reason: str, message: str) -> None:
    conds.set(C.READY, False, "Stopped", message)
    conds.set(C.SETTLED, True, reason, "final charge settled")


def deleted(conds: Conditions) -> None:
    conds.set(C.READY, False, "Deleted", "the rental is being deleted")


# --- disruptions --------------------------------------------------------------------------

def interrupted(conds: Conditions, message: str) -> None:
    conds.set(C.INTERRUPTED, True, "Preempted", message)


def interruption_over(conds: Conditions, pod_name: str) -> None:
    conds.set(C.INTERRUPTED, False, "Running", f"pod {pod_name} runs again")


def volume_lost(conds: Conditions, lost: dict[str, Any]) -> None:
    conds.set(C.VOLUME_LOST, True, "ClaimDeleted", volume_lost_message(lost))


def volume_loss_accepted(conds: Conditions, uid: str) -> None:
    conds.set(C.VOLUME_LOST, False, "Accepted", f"the loss of claim {uid} was accepted; "
              "continuing on a new, empty volume")


def volume_lost_message(lost: dict[str, Any]) -> str:
    """What a user reads about a claim deleted outside the operator, and how to go on."""
    return (f"the volume claim {lost.get('name')} (uid {lost.get('uid')}) was deleted "
            f"outside the operator (noticed {lost.get('noticedAt')}); its data is gone. "
            f"To continue on a new, empty volume set spec.storage.acceptLostClaim: "
            f"\"{lost.get('uid')}\"")
