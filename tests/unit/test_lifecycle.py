"""The pure state machine: desired spec + observed children -> status and actions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gpurental import money
from gpurental.constants import FINALIZER
from gpurental.holds import Hold
from gpurental.lifecycle import (
    ActionKind,
    Context,
    DesiredState,
    Plan,
    plan,
)
from gpurental.models import OfferSpec, WalletSpec, parse_spec
from gpurental.observed import Children, PodView, PvcView, RentalView, SecretView

T0 = datetime(2026, 6, 7, 8, 0, 0, tzinfo=UTC)
OFFER = parse_spec(OfferSpec, {
    "gpu": {"product": "NVIDIA-GeForce-RTX-4090"},
    "pricePerGpuHour": "0.69",
    "maxGpus": 4,
})
SPEC = {"offer": "rtx4090", "gpus": 2, "image": "busybox", "state": "Running",
        "sshKeys": ["ssh-ed25519 AAAAkey a@b"]}
A = ActionKind


def rental(spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None,
           deleting: bool = False, finalizers: tuple[str, ...] = (FINALIZER,)) -> RentalView:
    return RentalView(namespace="ns", name="r1", uid="uid-1", generation=1, deleting=deleting,
                      finalizers=finalizers, spec=spec or dict(SPEC), status=status or {})


def ctx(at: float = 0, **kwargs: Any) -> Context:
    kwargs.setdefault("offer", OFFER)
    return Context(now=T0 + timedelta(seconds=at), **kwargs)


def _wallet(name: str, exhausted: bool, settled_uids: frozenset[str] = frozenset()
            ) -> money.Wallet:
    budget = 100
    reading = money.WalletReading(budget_cents=budget, spent_cents=budget if exhausted else 0,
                                  burn_cents_per_hour=0, exhausts_at=None)
    return money.Wallet(name, parse_spec(WalletSpec, {"budget": "1.00"}), reading, settled_uids)


def running_pod(started: float = 0) -> PodView:
    return PodView(name="r1", uid="p1", phase="Running", deleting=False,
                   started_at=T0 + timedelta(seconds=started))


def secret_for(spec: dict[str, Any] = SPEC) -> SecretView:
    from gpurental import builders
    from gpurental.models import RentalSpec

    parsed = parse_spec(RentalSpec, spec)
    return SecretView(name="r1-ssh", keys_digest=builders.secret_digest(parsed))


BOUND = PvcView(name="r1-storage", phase="Bound", deleting=False)


def up(children: Children | None = None, **kw: Any) -> Children:
    base = {"pod": running_pod(), "pvc": BOUND, "secret": secret_for()}
    base.update(kw)
    return Children(**base)


def then(view: RentalView, result: Plan, **changes: Any) -> RentalView:
    """The rental as stored after the plan's status write."""
    spec = {**view.spec, **changes.pop("spec", {})}
    return RentalView(namespace=view.namespace, name=view.name, uid=view.uid,
                      generation=view.generation, deleting=view.deleting,
                      finalizers=view.finalizers, spec=spec, status=result.status)


def condition(result: Plan, type_: str) -> dict[str, Any]:
    return next(c for c in result.status["conditions"] if c["type"] == type_)


def test_a_new_rental_gets_its_finalizer_volume_keys_and_pod() -> None:
    result = plan(rental(finalizers=()), Children(), ctx())
    assert result.kinds() == [A.ADD_FINALIZER, A.CREATE_PVC, A.APPLY_SECRET, A.CREATE_POD]
    assert result.status["phase"] == "Provisioning"
    assert result.status["provisioningSince"] == "2026-06-07T08:00:00Z"
    assert condition(result, "Ready")["status"] == "False"
    assert [e.reason for e in result.events] == ["Provisioning"]
    pod = result.actions[-1].body
    assert pod is not None and pod["spec"]["containers"][0]["resources"] == {
        "limits": {"nvidia.com/gpu": "2"}}


def test_a_running_pod_opens_the_meter_at_the_container_start_and_locks_the_rate() -> None:
    result = plan(rental(status={"phase": "Provisioning"}), up(pod=running_pod(started=5)),
                  ctx(at=7))
    assert result.kinds() == []
    assert result.status["phase"] == "Running"
    assert result.status["runningSince"] == "2026-06-07T08:00:05Z"
    assert result.status["ratePerHour"] == "1.38"
    assert result.status["secondsBilled"] == 2
    assert condition(result, "Ready")["status"] == "True"
    assert [e.reason for e in result.events] == ["Running"]


def test_reconciling_a_converged_rental_changes_nothing() -> None:
    first = plan(rental(status={"phase": "Provisioning"}), up(), ctx(at=1))
    second = plan(then(rental(), first), up(), ctx(at=9))
    assert second.kinds() == []
    assert second.events == []
    assert second.status == first.status  # no heartbeat due: no meter write


def test_the_heartbeat_refreshes_the_meter() -> None:
    first = plan(rental(status={"phase": "Provisioning"}), up(), ctx(at=0))
    beat = plan(then(rental(), first), up(), ctx(at=3600, heartbeat=True))
    assert beat.status["secondsBilled"] == 3600
    assert beat.status["currentChargeCents"] == 138
    assert beat.status["lastHeartbeatAt"] == "2026-06-07T09:00:00Z"
    assert beat.kinds() == []


def test_pause_closes_the_segment_before_deleting_the_pod_and_keeps_the_volume() -> None:
    running = then(rental(), plan(rental(status={"phase": "Provisioning"}), up(), ctx()))
    paused = plan(then(running, Plan(running.status), spec={"state": "Paused"}), up(),
                  ctx(at=100))
    assert paused.kinds() == [A.DELETE_POD]
    assert paused.status["phase"] == "Paused"
    assert paused.status.get("runningSince") is None
    assert paused.status["accruedSeconds"] == 100
    assert paused.status["secondsBilled"] == 100
    assert condition(paused, "Paused")["reason"] == "UserRequested"


def test_resume_makes_a_new_pod_on_the_same_volume_and_sums_segments() -> None:
    status = {"phase": "Paused", "accruedSeconds": 100, "runningSince": None,
              "ratePerHour": "1.38", "firstStartedAt": "2026-06-07T07:00:00Z"}
    resumed = plan(rental(status=status), up(pod=None), ctx(at=500))
    assert resumed.kinds() == [A.CREATE_POD]
    assert resumed.status["phase"] == "Provisioning"
    running = plan(then(rental(), resumed), up(pod=running_pod(started=510)), ctx(at=511))
    later = plan(then(rental(), running), up(pod=running_pod(started=510)),
                 ctx(at=610, heartbeat=True))
    assert later.status["secondsBilled"] == 200
    assert later.status["ratePerHour"] == "1.38"


def test_stop_deletes_pod_volume_and_keys_and_settles() -> None:
    running = then(rental(), plan(rental(status={"phase": "Provisioning"}), up(), ctx()))
    stopped = plan(then(running, Plan(running.status), spec={"state": "Stopped"}), up(),
                   ctx(at=4827))
    assert stopped.kinds() == [A.DELETE_POD, A.DELETE_PVC, A.DELETE_SECRET]
    assert stopped.status["phase"] == "Stopped"
    assert stopped.status["secondsBilled"] == 4827
    assert stopped.status["currentChargeCents"] == 185  # 4827/3600*1.38*100 = 185.03
    assert stopped.status["settledAt"] == "2026-06-07T09:20:27Z"


def test_stopped_is_permanent_and_says_so_once() -> None:
    status = {"phase": "Stopped", "accruedSeconds": 10}
    first = plan(rental(status=status), Children(), ctx())
    assert first.kinds() == []
    assert condition(first, "Accepted")["reason"] == "StoppedIsPermanent"
    assert [(e.type, e.reason) for e in first.events] == [("Warning", "StoppedIsPermanent")]
    again = plan(then(rental(), first), Children(), ctx(at=5))
    assert again.events == [] and again.kinds() == []


def test_a_stopped_rental_heals_leftover_children() -> None:
    result = plan(rental(spec={**SPEC, "state": "Stopped"}, status={"phase": "Stopped"}),
                  up(), ctx())
    assert result.kinds() == [A.DELETE_POD, A.DELETE_PVC, A.DELETE_SECRET]


def test_a_pod_lost_behind_the_operators_back_is_recreated_and_billing_paused() -> None:
    running = then(rental(), plan(rental(status={"phase": "Provisioning"}), up(), ctx()))
    lost = plan(running, up(pod=None), ctx(at=60))
    assert lost.kinds() == [A.CREATE_POD]
    assert lost.status["accruedSeconds"] == 60
    assert lost.status.get("runningSince") is None
    assert "PodDeleted" in [e.reason for e in lost.events]
    assert lost.status["restarts"] == 1


def test_provisioning_timeout_fails_a_first_start_with_the_scheduler_reason() -> None:
    pending = PodView(name="r1", uid="p", phase="Pending", deleting=False,
                      unschedulable="0/2 nodes are available: 2 Insufficient nvidia.com/gpu.")
    status = {"phase": "Provisioning", "provisioningSince": "2026-06-07T08:00:00Z"}
    early = plan(rental(status=status), up(pod=pending), ctx(at=599))
    assert early.status["phase"] == "Provisioning"
    assert early.requeue_after == pytest.approx(1.0)
    late = plan(rental(status=status), up(pod=pending), ctx(at=600))
    assert late.needs_diagnosis
    assert late.status["phase"] == "Failed"
    assert late.status["message"].startswith("Unschedulable: 0/2 nodes are available")
    assert late.kinds() == [A.DELETE_POD, A.DELETE_PVC, A.DELETE_SECRET]
    assert late.status["refundedCents"] == 0
    assert late.events[-1].type == "Warning"


def test_image_pull_failure_is_reported() -> None:
    pulling = PodView(name="r1", uid="p", phase="Pending", deleting=False,
                      waiting_reason="ImagePullBackOff", waiting_message="Back-off pulling")
    status = {"phase": "Provisioning", "provisioningSince": "2026-06-07T08:00:00Z"}
    result = plan(rental(status=status), up(pod=pulling), ctx(at=601, diagnosis=""))
    assert result.status["message"] == "ImagePullBackOff: Back-off pulling"


def test_volume_failure_uses_the_diagnosis() -> None:
    waiting = PodView(name="r1", uid="p", phase="Pending", deleting=False)
    status = {"phase": "Provisioning", "provisioningSince": "2026-06-07T08:00:00Z"}
    diagnosis = "ProvisioningFailed: storageclass.storage.k8s.io \"nope\" not found"
    result = plan(rental(status=status), up(pod=waiting, pvc=PvcView("r1-storage", "Pending",
                                                                      False)),
                  ctx(at=601, diagnosis=diagnosis))
    assert result.status["message"] == diagnosis


def test_a_resume_that_cannot_provision_goes_back_to_paused_and_keeps_the_data() -> None:
    pending = PodView(name="r1", uid="p", phase="Pending", deleting=False, unschedulable="full")
    status = {"phase": "Provisioning", "provisioningSince": "2026-06-07T08:00:00Z",
              "firstStartedAt": "2026-06-07T07:00:00Z", "accruedSeconds": 50}
    result = plan(rental(status=status), up(pod=pending), ctx(at=600, diagnosis=""))
    assert result.status["phase"] == "Paused"
    assert result.kinds() == [A.DELETE_POD]
    assert condition(result, "Paused")["reason"] == "ResumeFailed"


@pytest.mark.parametrize(("context", "spec", "reason"), [
    ({"offer": None}, {}, "OfferNotFound"),
    ({}, {"gpus": 5}, "TooManyGpus"),
    ({}, {"wallet": "team"}, "WalletNotFound"),
    ({"wallet": _wallet("team", exhausted=True)}, {"wallet": "team"}, "BudgetExhausted"),
])
def test_a_rental_that_may_not_start_gets_a_condition_not_a_pod(
    context: dict[str, Any], spec: dict[str, Any], reason: str
) -> None:
    result = plan(rental(spec={**SPEC, **spec}), Children(), ctx(**context))
    assert A.CREATE_POD not in result.kinds()
    assert result.status["phase"] == "Pending"
    accepted = condition(result, "Accepted")
    assert (accepted["status"], accepted["reason"]) == ("False", reason)
    assert result.events[0].type == "Warning"


def test_an_invalid_spec_is_a_condition_naming_the_field() -> None:
    result = plan(rental(spec={**SPEC, "gpus": 0}), Children(), ctx())
    assert condition(result, "Accepted")["reason"] == "InvalidSpec"
    assert "spec.gpus" in condition(result, "Accepted")["message"]
    assert result.kinds() == []


def test_a_money_hold_pauses_a_running_rental() -> None:
    running = then(rental(), plan(rental(status={"phase": "Provisioning"}), up(), ctx()))
    hold = Hold(DesiredState.PAUSED, "Expired", "the prepaid duration ran out")
    result = plan(running, up(), ctx(at=30, hold=hold))
    assert result.kinds() == [A.DELETE_POD]
    assert condition(result, "Paused")["reason"] == "Expired"


def test_deletion_cleans_up_then_settles_then_lets_go() -> None:
    running = then(rental(spec={**SPEC, "wallet": "team"}),
                   plan(rental(status={"phase": "Provisioning"}), up(), ctx()))
    deleting = RentalView(**{**running.__dict__, "deleting": True})
    wallet = _wallet("team", exhausted=False)
    first = plan(deleting, up(), ctx(at=10, wallet=wallet))
    assert first.kinds() == [A.DELETE_POD, A.DELETE_PVC, A.DELETE_SECRET]
    assert first.status["accruedSeconds"] == 10
    gone = plan(then(deleting, first), Children(), ctx(at=12, wallet=wallet))
    assert gone.kinds() == [A.SETTLE, A.REMOVE_FINALIZER]
    assert gone.status["secondsBilled"] == 10
    settled = _wallet("team", exhausted=False, settled_uids=frozenset({"uid-1"}))
    replay = plan(then(deleting, first), Children(), ctx(at=15, wallet=settled))
    assert replay.kinds() == [A.REMOVE_FINALIZER]


def test_ssh_key_change_updates_the_secret_without_touching_the_pod() -> None:
    keys = {**SPEC, "sshKeys": ["ssh-ed25519 AAAAnew c@d"]}
    running = then(rental(), plan(rental(status={"phase": "Provisioning"}), up(), ctx()))
    result = plan(then(running, Plan(running.status), spec=keys), up(), ctx(at=5))
    assert result.kinds() == [A.APPLY_SECRET]


def test_a_segment_closed_before_a_crash_is_reclosed_when_its_pod_outlived_it() -> None:
    """The operator closed the meter at t=100 and died before deleting the pod; restarted at
    t=130 it finds the pod still running: billing follows the pod, to t=130."""
    running = then(rental(), plan(rental(status={"phase": "Provisioning"}), up(), ctx()))
    stopping = then(running, Plan(running.status), spec={"state": "Stopped"})
    closed = plan(stopping, up(), ctx(at=100))
    assert closed.status["accruedSeconds"] == 100
    after_crash = plan(then(stopping, closed), up(), ctx(at=130))
    assert after_crash.status["accruedSeconds"] == 130
    assert after_crash.status["secondsBilled"] == 130
    assert after_crash.kinds() == [A.DELETE_POD, A.DELETE_PVC, A.DELETE_SECRET]
    gone = plan(then(stopping, after_crash), up(pod=None), ctx(at=200))
    assert gone.status["accruedSeconds"] == 130  # a pod that is gone is not re-closed


@pytest.mark.parametrize("state", ["Paused", "Stopped"])
def test_a_pod_that_ran_where_no_pass_saw_it_is_billed_from_its_start(state: str) -> None:
    """Found by the chaos crash test: the pod started at t=0 while the operator was down (or
    between two passes), the user paused it, and the next pass at t=6 deletes it. The pod held
    its GPUs for 6 s; before the fix the meter, never opened, billed nothing."""
    provisioning = rental(spec={**SPEC, "state": state}, status={"phase": "Provisioning"})
    result = plan(provisioning, up(), ctx(at=6))
    assert result.status["accruedSeconds"] == 6
    assert result.status["secondsBilled"] == 6
    assert result.status["ratePerHour"] == "1.38"
    assert result.status["lastSegment"]["podUid"] == "p1"
    assert A.DELETE_POD in result.kinds()


def test_a_pod_that_outlived_its_pause_is_not_billed_twice_on_resume() -> None:
    """Found by the chaos crash test: paused at t=7 (meter closed), the operator died before
    its DELETE, the user resumed; the restarted operator found the same pod running at t=20.
    Its segment continues from t=0: billed 20 s at t=20, not 7 + 20."""
    running = then(rental(), plan(rental(status={"phase": "Provisioning"}), up(), ctx()))
    pausing = then(running, Plan(running.status), spec={"state": "Paused"})
    closed = plan(pausing, up(), ctx(at=7))
    assert closed.status["accruedSeconds"] == 7
    resumed = then(pausing, closed, spec={"state": "Running"})
    result = plan(resumed, up(), ctx(at=20))
    assert result.status["secondsBilled"] == 20
    assert A.DELETE_POD not in result.kinds()
