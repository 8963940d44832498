"""A rental not being deleted: what state it should be in, and the steps that take it there."""

from __future__ import annotations

from dataclasses import dataclass

from gpurental import conditions, durations
from gpurental.holds import Hold
from gpurental.lifecycle import halting, running, volume
from gpurental.lifecycle.draft import Draft
from gpurental.models import DesiredState, Phase, RentalSpec, SpecError


@dataclass(frozen=True)
class Target:
    """The state the rental should be in, and why: the user's word or the money layer's."""

    state: DesiredState
    reason: str
    message: str
    held: bool = False  # a hold (expiry, budget, idleness) outranked the user's state


def converge(d: Draft) -> None:
    """The ordered steps; each `return` ends the pass with the status it built."""
    if d.phase is Phase.STOPPED:
        return halting.stay_stopped(d)
    if d.phase is Phase.FAILED:
        return halting.stay_failed(d)
    try:
        spec = d.rental.parsed_spec()
    except SpecError as exc:
        return halting.reject(d, "InvalidSpec", str(exc))
    renew(d, spec)
    conditions.money(d.conditions, d.ctx.hold)
    target = decide(spec, d.ctx.hold)
    started = bool(d.status.get("firstStartedAt"))
    if target.held and spec.state is DesiredState.RUNNING and not started:
        # Money never stops what never started: the rental waits, Pending.
        return halting.reject(d, target.reason, target.message)
    record_idle(d, target)
    if target.state is DesiredState.STOPPED:
        return halting.stop(d, target.reason, target.message)
    volume_lost = volume.watch(d, spec)
    if target.state is DesiredState.PAUSED:
        return halting.pause(d, target.reason, target.message)
    pod = d.children.pod
    if volume_lost and (pod is None or not pod.running):
        return volume.wait_for_acceptance(d)
    held = held_pause(d)
    if held is not None:
        return halting.pause(d, *held)
    conditions.not_paused(d.conditions)
    return running.run(d, spec)


def decide(spec: RentalSpec, hold: Hold | None) -> Target:
    """The user's state, unless the money layer's hold asks for a further one."""
    if hold is not None and _RANK[hold.state] > _RANK[spec.state]:
        return Target(hold.state, hold.reason, hold.message, held=True)
    return Target(spec.state, "UserRequested", "paused by the user")


def renew(d: Draft, spec: RentalSpec) -> None:
    """Count a renewal the money layer approved for a rental that should run."""
    if not d.ctx.renew_seconds or spec.state is not DesiredState.RUNNING:
        return
    d.status["renewals"] = int(d.status.get("renewals") or 0) + 1
    d.status["renewedSeconds"] = int(d.status.get("renewedSeconds") or 0) + d.ctx.renew_seconds
    added = durations.format_duration_exact(d.ctx.renew_seconds)
    d.event("Normal", "Renewed", f"auto-renewed for another {added} "
            f"(renewal {d.status['renewals']})")


def record_idle(d: Draft, target: Target) -> None:
    """Record an idle pause (sticky until the spec changes), or lift a recorded one."""
    if target.reason == "Idle":
        if d.status.get("idlePausedGeneration") is None:
            d.status["idlePausedGeneration"] = d.rental.generation
            d.event("Normal", "Idle", target.message)
        conditions.idle(d.conditions, target.message)
    elif d.status.get("idlePausedGeneration") is not None:
        d.status.pop("idlePausedGeneration")
        conditions.idle_lifted(d.conditions)


def held_pause(d: Draft) -> tuple[str, str] | None:
    """A pause the operator decided for the user (a resume that found no capacity, a
    preemption with onInterruption: Pause) holds until the spec changes; the reason and
    message it was held with."""
    held = d.status.get("heldGeneration")
    if held is None:
        return None
    if held != d.rental.generation:
        d.status.pop("heldGeneration")
        return None
    return conditions.held_pause(d.conditions)


_RANK = {DesiredState.RUNNING: 0, DesiredState.PAUSED: 1, DesiredState.STOPPED: 2}
