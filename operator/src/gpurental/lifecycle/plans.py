"""What a planning pass reads (Context, beside the rental and its children) and returns (a Plan
of status, actions and events). Pure data: the reconciler builds the one and executes the
other."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from gpurental.holds import Hold
from gpurental.models import OfferSpec
from gpurental.money import Wallet
from gpurental.options import DEFAULT_SSHD_IMAGE


class ActionKind(StrEnum):
    ADD_FINALIZER = "AddFinalizer"
    CREATE_PVC = "CreatePvc"
    APPLY_SECRET = "ApplySecret"
    CREATE_POD = "CreatePod"
    DELETE_POD = "DeletePod"
    DELETE_PVC = "DeletePvc"
    DELETE_SECRET = "DeleteSecret"
    CREATE_SERVICE = "CreateService"
    DELETE_SERVICE = "DeleteService"
    CREATE_INGRESS = "CreateIngress"
    DELETE_INGRESS = "DeleteIngress"
    SETTLE = "Settle"  # debit the wallet with a deleted rental's final charge, once
    REMOVE_FINALIZER = "RemoveFinalizer"


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    name: str = ""
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


# Delete options for a pod on a lost node: no kubelet will ever confirm a graceful delete.
FORCE: dict[str, Any] = {"gracePeriodSeconds": 0}


@dataclass(frozen=True)
class Context:
    now: datetime
    offer: OfferSpec | None
    offer_error: str | None = None  # the offer exists but its spec is unusable
    wallet: Wallet | None = None  # None: not named, or named and missing (see spec)
    provisioning_timeout: int = 600
    hold: Hold | None = None
    heartbeat: bool = False  # refresh the meter even if nothing else changed
    prepaid_seconds: int | None = None  # running time paid for (duration, renewals, cap)
    renew_seconds: int = 0  # the money layer approved one more auto-renewal of this length
    diagnosis: str | None = None  # warning events on the children, fetched on provisioning timeout
    # When a billed pod that vanished unseen began terminating (its kubelet's Killing Event),
    # fetched when the plan asks: the pod's own last state was lost with an operator restart.
    pod_end: datetime | None = None
    pod_end_looked_up: bool = False
    pod_end_preempted: str | None = None  # the scheduler's Preempted Event on that pod, if any
    priority_class: str | None = None  # the PriorityClass for the offer's pods
    sshd_image: str = DEFAULT_SSHD_IMAGE  # the sidecar's image unless the offer names one


@dataclass
class Plan:
    status: dict[str, Any]
    actions: list[Action] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None
    needs_diagnosis: bool = False  # fetch the children's warning events and plan again
    needs_pod_end: str | None = None  # the uid of a vanished pod whose end to look up

    def kinds(self) -> list[ActionKind]:
        return [action.kind for action in self.actions]
