"""The rental state machine: desired spec + observed children -> a plan.

Pure and level-based: given the rental as stored, its children as cached and a context (now,
the offer, the wallet, the money layer's verdict), it returns the status the rental should
have and the ordered actions that converge the world on it. It never looks at what changed,
only at what is, so a missed event, a restart or a deleted pod heals on the next pass.

Ordering rule the reconciler relies on: the status (with any running segment closed) is
written before the actions run, so a crash between "stop billing" and "delete the pod" can
neither lose nor double a billed second.

Where things are: `plan` below is the whole pass in order; converge.py decides the state a
live rental should be in; running.py, pods.py and provisioning.py run it; halting.py pauses,
stops, deletes and refuses; children.py keeps the volume, keys, Service and Ingress;
volume.py watches for a lost claim; disrupted.py records pods taken away; metering.py says
when the meter stops (meter.py keeps the books); gpurental.conditions words the conditions.
"""

from __future__ import annotations

from gpurental.constants import FINALIZER
from gpurental.lifecycle import converge, halting, metering
from gpurental.lifecycle.draft import Draft
from gpurental.lifecycle.plans import FORCE, Action, ActionKind, Context, Event, Plan
from gpurental.lifecycle.provisioning import IMAGE_PULL_REASONS
from gpurental.models import DesiredState
from gpurental.observed import Children, RentalView

__all__ = [
    "FORCE", "IMAGE_PULL_REASONS", "Action", "ActionKind", "Children", "Context",
    "DesiredState", "Event", "Plan", "plan",
]


def plan(rental: RentalView, children: Children, ctx: Context) -> Plan:
    """Decide the rental's status and the actions that converge its children on it."""
    d = Draft(rental, children, ctx)  # the stored status, copied, and the cached children
    d.status["observedGeneration"] = rental.generation
    if FINALIZER not in rental.finalizers and not rental.deleting:
        d.act(ActionKind.ADD_FINALIZER)
    if rental.deleting:
        halting.delete(d)  # close the meter, delete the children, settle, let go
    else:
        converge.converge(d)  # decide the state, then meter, phase, conditions, actions
    metering.refresh(d)  # the meter's readings, at a transition or a heartbeat
    return d.plan
