"""Faults of the world in the pure state machine: pods removed, nodes lost, claims deleted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gpurental import builders, disruptions
from gpurental.constants import FINALIZER
from gpurental.lifecycle import FORCE, ActionKind, Context, Plan, plan
from gpurental.models import OfferSpec, RentalSpec, parse_spec
from gpurental.observed import (
    Children,
    NodeLoss,
    NodeView,
    PodView,
    PvcView,
    RentalView,
    pinned_node,
)

T0 = datetime(2026, 6, 7, 8, 0, 0, tzinfo=UTC)
OFFER = parse_spec(OfferSpec, {"gpu": {"product": "NVIDIA-GeForce-RTX-4090"},
                               "pricePerGpuHour": "0.69"})
SPEC = {"offer": "rtx4090", "gpus": 1, "image": "busybox", "state": "Running"}
A = ActionKind
CLAIM = PvcView(name="r1-storage", phase="Bound", deleting=False, uid="claim-1")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ctx(seconds: float = 0, **kwargs: Any) -> Context:
    kwargs.setdefault("offer", OFFER)
    return Context(now=at(seconds), **kwargs)


def pod(uid: str = "p1", started: float = 0, **kw: Any) -> PodView:
    fields: dict[str, Any] = {"name": "r1", "uid": uid, "phase": "Running", "deleting": False,
                              "started_at": at(started), "node_name": "gpu-a"}
    fields.update(kw)
    return PodView(**fields)


def rental(status: dict[str, Any], generation: int = 1, **spec: Any) -> RentalView:
    return RentalView(namespace="ns", name="r1", uid="uid-1", generation=generation,
                      deleting=False, finalizers=(FINALIZER,), spec={**SPEC, **spec},
                      status=status)


def then(previous: RentalView, result: Plan, generation: int | None = None,
         **spec: Any) -> RentalView:
    return rental(result.status, generation or previous.generation, **{**previous.spec, **spec})


def running(started: float = 0) -> RentalView:
    """A rental that has run pod p1 on its claim since `started`."""
    first = plan(rental({"phase": "Provisioning"}), Children(pod=pod(started=started),
                                                             pvc=CLAIM), ctx(started + 1))
    assert first.status["phase"] == "Running"
    assert first.status["pvcUid"] == "claim-1"
    return then(rental({}), first)


def reasons(result: Plan) -> list[str]:
    return [event.reason for event in result.events]


def condition(result: Plan, type_: str) -> dict[str, Any]:
    return next(c for c in result.status["conditions"] if c["type"] == type_)


# --- pods removed behind the operator's back ---------------------------------------------------

def test_a_deleted_pod_is_billed_while_its_container_runs_out_its_grace_period() -> None:
    view = running()
    deleting = pod(deleting=True, deletion_deadline=at(130))
    result = plan(view, Children(pod=deleting, pvc=CLAIM), ctx(100))
    assert result.status["runningSince"] is not None  # the GPU is still held
    assert result.status["phase"] == "Provisioning"
    assert condition(result, "Ready")["reason"] == "PodDeleted"
    assert result.status["restarts"] == 1
    assert reasons(result).count("PodDeleted") == 1
    assert A.DELETE_POD not in result.kinds()
    assert result.requeue_after == 1.0

    # The kubelet reports the container's end: billing stops there, counted once.
    ended = pod(deleting=True, deletion_deadline=at(130), phase="Succeeded",
                finished_at=at(112))
    later = plan(then(view, result), Children(pod=ended, pvc=CLAIM), ctx(115))
    assert later.status["accruedSeconds"] == 112
    assert later.status["restarts"] == 1
    assert "PodDeleted" not in reasons(later)


def test_a_vanished_pod_is_billed_to_the_finished_at_of_its_last_state() -> None:
    view = running()
    gone = pod(deleting=True, phase="Succeeded", finished_at=at(65), deletion_deadline=at(95))
    result = plan(view, Children(pvc=CLAIM, gone_pod=gone), ctx(90))
    assert result.status["accruedSeconds"] == 65
    assert A.CREATE_POD in result.kinds()
    assert result.status["disruption"]["reason"] == disruptions.POD_DELETED


def test_without_its_last_state_a_vanished_pod_is_billed_to_its_killing_event() -> None:
    first = plan(running(), Children(pvc=CLAIM), ctx(90))
    assert first.needs_pod_end == "p1"  # the operator restarted: look the end up
    result = plan(running(), Children(pvc=CLAIM),
                  ctx(90, pod_end=at(70), pod_end_looked_up=True))
    assert result.needs_pod_end is None
    assert result.status["accruedSeconds"] == 70
    unknown = plan(running(), Children(pvc=CLAIM), ctx(90, pod_end_looked_up=True))
    assert unknown.status["accruedSeconds"] == 90  # nothing better is known: until noticed


def test_an_eviction_says_so() -> None:
    evicted = pod(deleting=True, deletion_deadline=at(30), disruption="EvictionByEvictionAPI",
                  disruption_message="Eviction API: evicting")
    result = plan(running(), Children(pod=evicted, pvc=CLAIM), ctx(40))
    assert result.status["accruedSeconds"] == 30  # past its grace period: ended by then
    assert result.status["disruption"]["reason"] == disruptions.EVICTED
    warning = next(e for e in result.events if e.reason == "Evicted")
    assert "evicted through the Eviction API: Eviction API: evicting" in warning.message


def test_a_replacement_that_runs_ends_the_recovery_and_bills_from_its_own_start() -> None:
    lost = plan(running(), Children(pvc=CLAIM), ctx(50))
    view = then(running(), lost)
    result = plan(view, Children(pod=pod(uid="p2", started=70), pvc=CLAIM), ctx(80))
    assert result.status["phase"] == "Running"
    assert result.status["disruption"]["recovering"] is False
    assert result.status["secondsBilled"] == 50 + 10


# --- a lost node ------------------------------------------------------------------------------

LOSS = NodeLoss(node="gpu-a", since=at(40))


def test_a_lost_node_stops_billing_at_its_last_heartbeat() -> None:
    result = plan(running(), Children(pod=pod(), pvc=CLAIM, node_loss=LOSS), ctx(100))
    assert result.status["accruedSeconds"] == 40
    assert result.status["runningSince"] is None
    assert result.status["phase"] == "Provisioning"
    assert condition(result, "Ready")["reason"] == "NodeLost"
    assert result.status["disruption"]["at"] == "2026-06-07T08:00:40Z"
    assert A.DELETE_POD not in result.kinds()  # Kubernetes' eviction decides when


def test_an_evicted_pod_on_a_lost_node_is_removed_with_grace_zero() -> None:
    view = then(running(), plan(running(), Children(pod=pod(), pvc=CLAIM, node_loss=LOSS),
                                ctx(100)))
    evicted = pod(deleting=True, deletion_deadline=at(130), disruption="DeletionByTaintManager")
    result = plan(view, Children(pod=evicted, pvc=CLAIM, node_loss=LOSS), ctx(120))
    delete = next(a for a in result.actions if a.kind is A.DELETE_POD)
    assert delete.body == FORCE
    assert result.status["accruedSeconds"] == 40
    assert result.status["restarts"] == 1


def test_pausing_a_rental_on_a_lost_node_forces_the_delete_and_bills_to_the_loss() -> None:
    paused = running()
    view = rental(paused.status, state="Paused")
    result = plan(view, Children(pod=pod(), pvc=CLAIM, node_loss=LOSS), ctx(100))
    assert result.status["phase"] == "Paused"
    assert result.status["accruedSeconds"] == 40
    assert next(a for a in result.actions if a.kind is A.DELETE_POD).body == FORCE


def test_no_capacity_after_a_loss_pauses_and_holds_until_the_spec_changes() -> None:
    lost = then(running(), plan(running(), Children(pvc=CLAIM), ctx(50)))
    waiting = pod(uid="p2", phase="Pending", started_at=None, unschedulable="0/2 nodes")
    result = plan(lost, Children(pod=waiting, pvc=CLAIM), ctx(50 + 601))
    assert result.status["phase"] == "Paused"
    assert condition(result, "Paused")["reason"] == "NoCapacity"
    assert result.status["accruedSeconds"] == 50  # what ran before the loss stays billed
    held = then(lost, result)
    assert A.CREATE_POD not in plan(held, Children(pvc=CLAIM), ctx(700)).kinds()
    retried = plan(then(held, result, generation=2), Children(pvc=CLAIM), ctx(700))
    assert A.CREATE_POD in retried.kinds()


def test_node_view_reads_the_node_lifecycle_controllers_verdict() -> None:
    node = NodeView.from_dict({
        "metadata": {"name": "gpu-a"},
        "spec": {"taints": [
            {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule",
             "timeAdded": "2026-06-07T08:01:00Z"},
            {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute",
             "timeAdded": "2026-06-07T08:01:05Z"}]},
        "status": {"conditions": [{"type": "Ready", "status": "Unknown",
                                   "lastHeartbeatTime": "2026-06-07T08:00:00Z"}]}})
    assert node.lost and node.lost_at == at(65) and node.heartbeat == at(0)
    fresh = NodeView.from_dict({"metadata": {"name": "new"}, "spec": {"taints": [
        {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]},
        "status": {"conditions": [{"type": "Ready", "status": "False"}]}})
    assert not fresh.lost  # a node not ready yet, not one that was lost
    # Most of a zone down (partial disruption): Unknown, but no NoExecute taint is added.
    unknown = NodeView.from_dict({"metadata": {"name": "gpu-b"}, "spec": {"taints": [
        {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}]},
        "status": {"conditions": [{"type": "Ready", "status": "Unknown",
                                   "lastTransitionTime": "2026-06-07T08:01:02Z"}]}})
    assert unknown.lost and unknown.lost_at == at(62)
    assert not NodeView.from_dict({"metadata": {"name": "bare"}, "status": {}}).lost


# --- a lost volume claim ---------------------------------------------------------------------

def test_a_paused_rentals_deleted_claim_is_never_replaced_silently() -> None:
    paused = then(running(), plan(rental(running().status, state="Paused"),
                                  Children(pvc=CLAIM), ctx(60)), state="Paused")
    result = plan(paused, Children(), ctx(70))
    assert result.status["lostClaim"]["uid"] == "claim-1"
    assert condition(result, "VolumeLost")["status"] == "True"
    assert reasons(result) == ["VolumeLost"]
    assert A.CREATE_PVC not in result.kinds()

    resumed = plan(then(paused, result, state="Running"), Children(), ctx(80))
    assert resumed.status["phase"] == "Paused"
    assert condition(resumed, "Paused")["reason"] == "VolumeLost"
    assert not {A.CREATE_PVC, A.CREATE_POD} & set(resumed.kinds())
    assert 'acceptLostClaim: "claim-1"' in resumed.status["message"]


def test_accepting_the_loss_by_its_uid_continues_on_a_new_empty_claim() -> None:
    paused = then(running(), plan(rental(running().status, state="Paused"),
                                  Children(pvc=CLAIM), ctx(60)), state="Paused")
    lost = then(paused, plan(paused, Children(), ctx(70)), state="Running",
                storage={"acceptLostClaim": "someone-else"})
    assert A.CREATE_PVC not in plan(lost, Children(), ctx(80)).kinds()
    accepted = then(lost, plan(lost, Children(), ctx(80)),
                    storage={"acceptLostClaim": "claim-1"})
    result = plan(accepted, Children(), ctx(90))
    assert {A.CREATE_PVC, A.CREATE_POD} <= set(result.kinds())
    assert condition(result, "VolumeLost")["status"] == "False"
    assert result.status["lostClaim"] is None
    new = PvcView(name="r1-storage", phase="Bound", deleting=False, uid="claim-2")
    again = plan(then(accepted, result), Children(pvc=new, pod=pod(uid="p3", started=95)),
                 ctx(100))
    assert again.status["pvcUid"] == "claim-2"
    assert again.status["phase"] == "Running"


def test_a_running_rental_whose_claim_is_deleted_keeps_running_and_says_so() -> None:
    doomed = PvcView(name="r1-storage", phase="Bound", deleting=True, uid="claim-1")
    result = plan(running(), Children(pod=pod(), pvc=doomed), ctx(60))
    assert result.status["phase"] == "Running"
    assert result.status["runningSince"] is not None
    assert condition(result, "VolumeLost")["status"] == "True"
    assert "its volume claim was deleted" in condition(result, "Ready")["message"]
    assert not {A.CREATE_PVC, A.DELETE_POD} & set(result.kinds())


def test_a_volume_pinned_to_a_lost_node_holds_the_rental_paused() -> None:
    lost = then(running(), plan(running(), Children(pvc=CLAIM), ctx(50)))
    result = plan(lost, Children(pvc=CLAIM, volume_lost_with="gpu-a"), ctx(60))
    assert result.status["phase"] == "Paused"
    assert condition(result, "Paused")["reason"] == "VolumeUnavailable"
    assert "gpu-a" in result.status["message"]
    assert A.CREATE_POD not in result.kinds()
    # The node is back: the rental resumes by itself, on the same claim.
    back = plan(then(lost, result), Children(pvc=CLAIM), ctx(90))
    assert A.CREATE_POD in back.kinds() and A.CREATE_PVC not in back.kinds()


def test_pinned_node_reads_a_local_volumes_node_affinity() -> None:
    def volume(*values: str, key: str = "kubernetes.io/hostname") -> dict[str, Any]:
        return {"spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": key, "operator": "In", "values": list(values)}]}]}}}}
    assert pinned_node(volume("gpu-a")) == "gpu-a"
    assert pinned_node(volume("gpu-a", "gpu-b")) is None  # can move between two
    assert pinned_node(volume("zone-1", key="topology.kubernetes.io/zone")) is None
    assert pinned_node({"spec": {}}) is None  # network storage


def test_a_pause_after_someone_else_deleted_the_pod_bills_only_to_its_end() -> None:
    ended = pod(deleting=True, deletion_deadline=at(130), phase="Succeeded",
                finished_at=at(20))
    paused = rental(running().status, state="Paused")
    result = plan(paused, Children(pod=ended, pvc=CLAIM), ctx(60))
    assert result.status["accruedSeconds"] == 20
    gone = plan(paused, Children(pvc=CLAIM, gone_pod=ended), ctx(60))
    assert gone.status["accruedSeconds"] == 20


# --- interruptible offers: preempted pods and spec.onInterruption --------------------------
PREEMPTED = {"deleting": True, "deletion_deadline": at(130),
             "disruption": "PreemptionByScheduler",
             "disruption_message": "default-scheduler: preempting to accommodate a higher "
                                   "priority pod"}


def status_condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


def preempted(**spec: Any) -> Any:
    """A rental running since 0 whose pod the scheduler preempted; its container ended at 40."""
    view = rental(running().status, **spec)
    victim = pod(**PREEMPTED, phase="Succeeded", finished_at=at(40))
    return view, plan(view, Children(pod=victim, pvc=CLAIM), ctx(45))


def test_a_preempted_rental_is_billed_to_its_containers_end_and_waits_for_capacity() -> None:
    _, result = preempted()
    status = result.status
    assert status["accruedSeconds"] == 40  # not a second more
    assert status["interruptions"] == 1 and status["restarts"] == 1
    assert status["phase"] == "Provisioning"
    assert status_condition(status, "Ready")["reason"] == "WaitingForCapacity"
    interrupted = status_condition(status, "Interrupted")
    assert interrupted["status"] == "True" and "preempting to accommodate" in \
        interrupted["message"]
    assert "Preempted" in reasons(result)


def test_waiting_for_capacity_never_fails_by_the_provisioning_timeout() -> None:
    view, result = preempted()
    waiting = then(view, plan(then(view, result), Children(pvc=CLAIM), ctx(46)))
    pending = pod(uid="p2", phase="Pending", started_at=None, unschedulable="0/1 nodes")
    later = plan(waiting, Children(pod=pending, pvc=CLAIM), ctx(46 + 3600))
    assert later.status["phase"] == "Provisioning"
    assert status_condition(later.status, "Ready")["reason"] == "WaitingForCapacity"
    assert A.DELETE_POD not in later.kinds()
    assert later.status["accruedSeconds"] == 40  # nothing accrues while waiting

    back = plan(then(waiting, later), Children(pod=pod(uid="p2", started=4000), pvc=CLAIM),
                ctx(4010))
    assert back.status["phase"] == "Running"
    assert back.status["interruptedSeconds"] == 4000 - 40
    assert status_condition(back.status, "Interrupted")["status"] == "False"
    assert back.status["secondsBilled"] == 40 + 10


def test_on_interruption_pause_holds_the_rental_paused_until_the_spec_changes() -> None:
    view, result = preempted(onInterruption="Pause")
    assert result.status["phase"] == "Paused"
    assert status_condition(result.status, "Paused")["reason"] == "Preempted"
    assert A.CREATE_POD not in result.kinds()
    held = then(view, result)
    assert A.CREATE_POD not in plan(held, Children(pvc=CLAIM), ctx(100)).kinds()
    resumed = plan(then(held, result, generation=2), Children(pvc=CLAIM), ctx(100))
    assert A.CREATE_POD in resumed.kinds()


def test_on_interruption_stop_settles_and_deletes() -> None:
    _, result = preempted(onInterruption="Stop")
    assert result.status["phase"] == "Stopped"
    assert result.status["accruedSeconds"] == 40
    assert A.DELETE_PVC in result.kinds()


def test_a_preemption_seen_only_in_events_after_a_restart_is_still_an_interruption() -> None:
    result = plan(running(), Children(pvc=CLAIM),
                  ctx(90, pod_end=at(30), pod_end_looked_up=True,
                      pod_end_preempted="Preempted by pod 1234 on node gpu-a"))
    assert result.status["accruedSeconds"] == 30
    assert result.status["interruptions"] == 1
    assert status_condition(result.status, "Ready")["reason"] == "WaitingForCapacity"


@pytest.mark.parametrize(("interruptible", "expected"), [(False, "on-demand"),
                                                         (True, "spot")])
def test_the_pod_gets_the_offers_priority_class(interruptible: bool, expected: str) -> None:
    offer = parse_spec(OfferSpec, {**OFFER.model_dump(by_alias=True, mode="json"),
                                   "interruptible": interruptible})
    spec = parse_spec(RentalSpec, {"offer": "x", "image": "busybox"})
    body = builders.make_pod("ns", "r1", "uid", spec, offer,
                             "spot" if offer.interruptible else "on-demand")
    assert body["spec"]["priorityClassName"] == expected
    assert "priorityClassName" not in builders.make_pod("ns", "r1", "uid", spec, offer)["spec"]


def test_a_pause_of_a_pod_that_vanished_unseen_bills_to_its_killing_event() -> None:
    paused = rental(running().status, state="Paused")
    first = plan(paused, Children(pvc=CLAIM), ctx(90))
    assert first.needs_pod_end == "p1"
    result = plan(paused, Children(pvc=CLAIM), ctx(90, pod_end=at(33), pod_end_looked_up=True))
    assert result.status["accruedSeconds"] == 33
    assert result.status["phase"] == "Paused"


def test_a_preemption_racing_a_users_stop_bills_to_the_containers_end_once() -> None:
    victim = pod(**PREEMPTED, phase="Succeeded", finished_at=at(40))
    stopping = rental(running().status, state="Stopped")
    result = plan(stopping, Children(pod=victim, pvc=CLAIM), ctx(45))
    assert result.status["phase"] == "Stopped"
    assert result.status["accruedSeconds"] == 40
    assert A.CREATE_POD not in result.kinds()
    assert "interruptions" not in result.status  # the user's stop came first: no interruption


def test_a_preemption_racing_an_expiry_does_not_run_again() -> None:
    from gpurental.holds import Hold
    from gpurental.models import DesiredState
    view, result = preempted(duration="40s")
    expired = Hold(DesiredState.PAUSED, "Expired", "prepaid time used up")
    later = plan(then(view, result), Children(pvc=CLAIM), ctx(50, hold=expired))
    assert later.status["phase"] == "Paused"
    assert A.CREATE_POD not in later.kinds()
    assert later.status["accruedSeconds"] == 40


def test_a_pause_closed_before_the_node_was_declared_lost_is_billed_to_the_loss() -> None:
    # The user paused at 100 while the node was already dead (last heartbeat 40), before the
    # node-lifecycle controller declared it lost: the pause closed the meter at 100.
    paused = rental(running().status, state="Paused")
    closed = plan(paused, Children(pod=pod(), pvc=CLAIM), ctx(100))
    assert closed.status["accruedSeconds"] == 100
    stuck = pod(deleting=True)  # the graceful delete no kubelet will ever confirm
    declared = plan(then(paused, closed), Children(pod=stuck, pvc=CLAIM, node_loss=LOSS),
                    ctx(130))
    assert declared.status["accruedSeconds"] == 40
    assert declared.status["lastSegment"]["end"].startswith("2026-06-07T08:00:40")
    assert next(a for a in declared.actions if a.kind is A.DELETE_POD).body == FORCE
    again = plan(then(paused, declared), Children(pod=stuck, pvc=CLAIM, node_loss=LOSS),
                 ctx(140))
    assert again.status["accruedSeconds"] == 40  # idempotent
