"""The rental state machine: desired spec + observed children -> a plan.

Pure and level-based: given the rental as stored, its children as cached and a context (now,
the offer, the wallet, the money layer's verdict), it returns the status the rental should
have and the ordered actions that converge the world on it. It never looks at what changed,
only at what is, so a missed event, a restart or a deleted pod heals on the next pass.

Ordering rule the reconciler relies on: the status (with any running segment closed) is
written before the actions run, so a crash between "stop billing" and "delete the pod" can
neither lose nor double a billed second.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from gpurental import access, billing, builders, disruptions, durations, meter
from gpurental.clock import format_ts, parse_ts
from gpurental.constants import FINALIZER
from gpurental.holds import Hold
from gpurental.models import (
    ConditionType,
    DesiredState,
    InterruptAction,
    OfferSpec,
    Phase,
    RentalSpec,
    SpecError,
    get_condition,
    set_condition,
)
from gpurental.money import Wallet
from gpurental.observed import (
    Children,
    IngressView,
    NodeLoss,
    PodView,
    RentalView,
    ServiceView,
)
from gpurental.options import DEFAULT_SSHD_IMAGE

IMAGE_PULL_REASONS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")


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
    wallet_exhausts_at: datetime | None = None  # when the rental's wallet is predicted to run out
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


def plan(rental: RentalView, children: Children, ctx: Context) -> Plan:
    """Decide the rental's status and the actions that converge its children on it."""
    return _Planner(rental, children, ctx).run()


class _Planner:
    def __init__(self, rental: RentalView, children: Children, ctx: Context) -> None:
        self.rental = rental
        self.children = children
        self.ctx = ctx
        self.now = format_ts(ctx.now)
        self.old = rental.status
        self.status: dict[str, Any] = copy.deepcopy(rental.status)
        self.plan = Plan(status=self.status)
        self.phase = Phase(self.old.get("phase") or Phase.PENDING)

    # --- entry -------------------------------------------------------------------------------

    def run(self) -> Plan:
        self.status["observedGeneration"] = self.rental.generation
        if FINALIZER not in self.rental.finalizers and not self.rental.deleting:
            self._act(ActionKind.ADD_FINALIZER)
        if self.rental.deleting:
            self._delete()
        else:
            self._converge()
        self._finish()
        return self.plan

    def _converge(self) -> None:
        if self.phase is Phase.STOPPED:
            return self._stay_stopped()
        if self.phase is Phase.FAILED:
            return self._stay_failed()
        try:
            spec = self.rental.parsed_spec()
        except SpecError as exc:
            return self._reject("InvalidSpec", str(exc))
        target, reason, message = spec.state, "UserRequested", "paused by the user"
        self._money_conditions(spec)
        hold = self.ctx.hold
        if hold and _rank(hold.state) > _rank(target):
            if not self.status.get("firstStartedAt") and target is DesiredState.RUNNING:
                # Money never stops what never started: the rental waits, Pending.
                return self._reject(hold.reason, hold.message)
            target, reason, message = hold.state, hold.reason, hold.message
        self._idle_conditions(reason, message)
        if target is DesiredState.STOPPED:
            return self._stop(reason, message)
        volume_lost = self._watch_volume(spec)
        if target is DesiredState.PAUSED:
            return self._pause(reason, message)
        pod = self.children.pod
        if volume_lost and (pod is None or not pod.running):
            # Resuming onto a new, empty claim would hide the loss: wait for the user's word.
            self._pause("VolumeLost", self._volume_lost_message())
            self.status["message"] = self._volume_lost_message()
            return
        held = self._held_pause()
        if held is not None:
            return self._pause(*held)
        self._clear(ConditionType.PAUSED, "Running", "the rental is not paused")
        return self._run(spec)

    def _money_conditions(self, spec: RentalSpec) -> None:
        """Renewals, and the Expired / BudgetExhausted conditions that explain a hold."""
        if self.ctx.renew_seconds and spec.state is DesiredState.RUNNING:
            self.status["renewals"] = int(self.status.get("renewals") or 0) + 1
            self.status["renewedSeconds"] = (int(self.status.get("renewedSeconds") or 0)
                                             + self.ctx.renew_seconds)
            added = durations.format_duration_exact(self.ctx.renew_seconds)
            self._event("Normal", "Renewed", f"auto-renewed for another {added} "
                        f"(renewal {self.status['renewals']})")
        hold = self.ctx.hold
        if hold is not None and hold.reason == "Expired":
            self._condition(ConditionType.EXPIRED, True, "DurationElapsed", hold.message)
        else:
            self._clear(ConditionType.EXPIRED, "TimeRemaining", "prepaid time remains")
        if hold is not None and hold.reason == "BudgetExhausted":
            self._condition(ConditionType.BUDGET_EXHAUSTED, True, hold.reason, hold.message)

    def _idle_conditions(self, reason: str, message: str) -> None:
        """Record an idle pause (sticky until the spec changes), or lift a recorded one."""
        if reason == "Idle":
            if self.status.get("idlePausedGeneration") is None:
                self.status["idlePausedGeneration"] = self.rental.generation
                self._event("Normal", "Idle", message)
            self._condition(ConditionType.IDLE, True, "Idle", message)
        elif self.status.get("idlePausedGeneration") is not None:
            self.status.pop("idlePausedGeneration")
            self._condition(ConditionType.IDLE, False, "SpecChanged",
                            "the spec changed after the idle pause")

    # --- desired Running -------------------------------------------------------------------

    def _run(self, spec: RentalSpec) -> None:
        problem = self._admission(spec)
        pod = self.children.pod
        if problem is not None:
            reason, message = problem
            if pod is None or not pod.running:
                return self._reject(reason, message)
        self._accept()
        offer = self.ctx.offer
        assert offer is not None or pod is not None
        self._ensure_volume(spec, offer)
        self._ensure_keys(spec)
        self._ensure_service(spec, offer)
        self._ensure_ingress(spec, offer)
        self._endpoints(spec, offer, pod)
        if pod is None and self.children.volume_lost_with:
            return self._volume_unavailable(self.children.volume_lost_with)
        if pod is None:
            return self._create_pod(spec, offer)
        if self.children.node_loss is not None:
            return self._node_lost(pod, self.children.node_loss)
        if pod.deleting or pod.ended:
            return self._replace_pod(pod, spec)
        if pod.running:
            return self._running(pod, spec, offer)
        return self._provisioning(pod)

    def _admission(self, spec: RentalSpec) -> tuple[str, str] | None:
        """Why the rental may not start now, if it may not."""
        ctx = self.ctx
        if ctx.offer is None:
            detail = ctx.offer_error or (f'GpuOffer "{spec.offer}" not found; '
                                         "`kubectl get gpuoffers` lists the offers")
            return ("OfferNotFound" if ctx.offer_error is None else "InvalidOffer", detail)
        if ctx.offer.max_gpus is not None and spec.gpus > ctx.offer.max_gpus:
            return (
                "TooManyGpus",
                f"spec.gpus: {spec.gpus} exceeds the offer {spec.offer}'s maxGpus "
                f"{ctx.offer.max_gpus}",
            )
        if spec.wallet and ctx.wallet is None:
            return ("WalletNotFound", f'Wallet "{spec.wallet}" not found in this namespace')
        if ctx.wallet is not None and ctx.wallet.exhausted:
            return ("BudgetExhausted", f'Wallet "{ctx.wallet.name}" has no budget left')
        conflict = access.port_conflict(spec, ctx.offer)
        if conflict is not None:
            return ("InvalidPorts", conflict)
        return None

    def _held_pause(self) -> tuple[str, str] | None:
        """A pause the operator decided for the user (a resume that found no capacity, a
        preemption with onInterruption: Pause) holds until the spec changes; the reason and
        message it was held with."""
        held = self.status.get("heldGeneration")
        if held is None:
            return None
        if held != self.rental.generation:
            self.status.pop("heldGeneration")
            return None
        paused = get_condition(self.status.get("conditions") or [], ConditionType.PAUSED) or {}
        return str(paused.get("reason") or "Held"), str(paused.get("message") or "held")

    def _watch_volume(self, spec: RentalSpec) -> bool:
        """Is the rental's data gone? Its claim deleted or marked for deletion by someone
        else is never hidden: a VolumeLost condition and a Warning say so, and the rental
        does not resume onto a new empty claim until spec.storage.acceptLostClaim names the
        lost one's uid."""
        pvc, known = self.children.pvc, self.status.get("pvcUid")
        lost = self.status.get("lostClaim") or None
        if lost is not None and spec.storage.accept_lost_claim == lost.get("uid"):
            self.status["lostClaim"] = None
            self.status.pop("pvcUid", None)
            self._condition(ConditionType.VOLUME_LOST, False, "Accepted",
                            f"the loss of claim {lost.get('uid')} was accepted; "
                            "continuing on a new, empty volume")
            self._event("Normal", "VolumeReplaced", f"continuing on a new, empty volume "
                        f"(the loss of claim {lost.get('uid')} was accepted)")
            return False
        if pvc is not None and not pvc.deleting and not known and pvc.uid:
            self.status["pvcUid"] = known = pvc.uid
        gone = known and (pvc is None or pvc.deleting or pvc.uid != known)
        if gone and lost is None:
            lost = {"name": builders.pvc_name(self.rental.name), "uid": known,
                    "noticedAt": self.now}
            self.status["lostClaim"] = lost
            self._event("Warning", "VolumeLost", self._volume_lost_message())
        if lost is None:
            return False
        if pvc is None or pvc.uid != known:
            meter.close_storage(self.status, self.ctx.now)  # no claim, nothing stored
        self._condition(ConditionType.VOLUME_LOST, True, "ClaimDeleted",
                        self._volume_lost_message())
        return True

    def _volume_lost_message(self) -> str:
        lost = self.status.get("lostClaim") or {}
        return (f"the volume claim {lost.get('name')} (uid {lost.get('uid')}) was deleted "
                f"outside the operator (noticed {lost.get('noticedAt')}); its data is gone. "
                f"To continue on a new, empty volume set spec.storage.acceptLostClaim: "
                f"\"{lost.get('uid')}\"")

    def _ensure_volume(self, spec: RentalSpec, offer: OfferSpec | None) -> None:
        pvc = self.children.pvc
        if self.status.get("lostClaim"):
            pass  # the running pod keeps the lost claim until it stops; never replace it
        elif pvc is None:
            body = builders.make_pvc(self.rental.namespace, self.rental.name, self.rental.uid, spec)
            self._act(ActionKind.CREATE_PVC, body["metadata"]["name"], body)
        self.status["pvcName"] = builders.pvc_name(self.rental.name)
        if offer is not None and "storageRatePerHour" not in self.status:
            rate = meter.storage_rate(spec.storage.gib, offer.storage_price_per_gib_hour)
            if rate is not None:
                self.status["storageRatePerHour"] = str(rate)
        if (self.status.get("storageRatePerHour") and not self.status.get("storageSince")
                and not self.status.get("lostClaim")):
            self.status["storageSince"] = self.now

    def _ensure_keys(self, spec: RentalSpec) -> None:
        secret = self.children.secret
        self.status["secretName"] = builders.secret_name(self.rental.name)
        if secret is None or secret.keys_digest != builders.secret_digest(spec):
            body = builders.make_ssh_secret(
                self.rental.namespace, self.rental.name, self.rental.uid, spec
            )
            self._act(ActionKind.APPLY_SECRET, body["metadata"]["name"], body)

    def _ensure_service(self, spec: RentalSpec, offer: OfferSpec | None) -> None:
        """One Service for the ports, of the offer's type. A Service that no longer matches
        (the offer's exposure or the rental's ports changed) is replaced, so a rental is never
        more exposed than its offer allows now."""
        if offer is None:
            return
        body = builders.make_service(
            self.rental.namespace, self.rental.name, self.rental.uid, spec, offer)
        service = self.children.service
        if service is not None and not service.deleting and (
                body is None or not _service_matches(service, body)):
            self._act(ActionKind.DELETE_SERVICE, service.name)
            self.plan.requeue_after = 1.0
        elif service is None and body is not None:
            self._act(ActionKind.CREATE_SERVICE, body["metadata"]["name"], body)

    def _ensure_ingress(self, spec: RentalSpec, offer: OfferSpec | None) -> None:
        """The offer's host-named routes to the web ports, replaced when they no longer
        match (like the Service)."""
        if offer is None:
            return
        body = builders.make_ingress(
            self.rental.namespace, self.rental.name, self.rental.uid, spec, offer)
        ingress = self.children.ingress
        if ingress is not None and not ingress.deleting and (
                body is None or IngressView.from_dict(body) != ingress):
            self._act(ActionKind.DELETE_INGRESS, ingress.name)
            self.plan.requeue_after = 1.0
        elif ingress is None and body is not None:
            self._act(ActionKind.CREATE_INGRESS, body["metadata"]["name"], body)

    def _endpoints(self, spec: RentalSpec, offer: OfferSpec | None, pod: PodView | None) -> None:
        """status.endpoints from the Service as Kubernetes reports it, while the pod runs."""
        ports = access.exposed_ports(spec, offer)
        service = self.children.service
        if not ports or pod is None or not pod.running:
            return self._set_endpoints([])
        user = offer.access.ssh.user if offer is not None else "gpu"
        if service is not None and service.deleting:
            service = None
        self._set_endpoints(access.endpoints(ports, service, pod.host_ip, user,
                                             self.children.ingress))

    def _set_endpoints(self, entries: list[dict[str, Any]]) -> None:
        ssh = access.ssh_summary(entries)
        for key, value in (("endpoints", entries or None), ("ssh", ssh)):
            if value is None:
                self.status.pop(key, None)
            else:
                self.status[key] = value

    def _paused_endpoints(self) -> None:
        try:
            ports = access.exposed_ports(self.rental.parsed_spec(), self.ctx.offer)
        except SpecError:
            ports = ()
        self._set_endpoints(access.paused_endpoints(ports, self.rental.name))

    def _delete_service(self) -> None:
        """The Service and the Ingress routing to it: a port nobody pays for goes."""
        service, ingress = self.children.service, self.children.ingress
        if service is not None and not service.deleting:
            self._act(ActionKind.DELETE_SERVICE, service.name)
        if ingress is not None and not ingress.deleting:
            self._act(ActionKind.DELETE_INGRESS, ingress.name)

    def _create_pod(self, spec: RentalSpec, offer: OfferSpec | None) -> None:
        if meter.is_open(self.status):
            # The pod vanished behind the operator's back while billed: its last state (the
            # final watch event), or else its Events (`_close_segment` asks for them), say
            # when its container stopped; the meter stops there.
            gone = self._segment_pod()
            self._disrupted(*self._vanished_cause(gone), gone)
            self._close_segment(None)
        if self._interrupted(spec):
            return
        if offer is None:  # only reachable when a running pod exists; see _run
            return
        body = builders.make_pod(
            self.rental.namespace, self.rental.name, self.rental.uid, spec, offer,
            priority_class=self.ctx.priority_class, sshd_image=self.ctx.sshd_image,
        )
        self._act(ActionKind.CREATE_POD, body["metadata"]["name"], body)
        self._provisioning_phase()

    def _replace_pod(self, pod: PodView, spec: RentalSpec) -> None:
        """The pod ended, or someone else is deleting it: bill its container to its real end,
        then a new pod on the same volume."""
        running_on = (pod.deleting and pod.finished_at is None and not pod.ended
                      and pod.deletion_deadline is not None
                      and pod.deletion_deadline > self.ctx.now)
        if meter.is_open(self.status):
            self._disrupted(*disruptions.pod_removed(pod), pod)
            if running_on:
                # Its container runs (and holds the GPU) until the kubelet stops it.
                deadline = pod.deletion_deadline
                assert deadline is not None
                self.plan.requeue_after = max((deadline - self.ctx.now).total_seconds(), 0.5)
            else:
                self._close_segment(pod.finished_at or pod.deletion_deadline)
        if not running_on and self._interrupted(spec):
            return
        if pod.ended and not pod.deleting:
            self._act(ActionKind.DELETE_POD, pod.name)
        self._provisioning_phase()
        self.plan.requeue_after = min(self.plan.requeue_after or 1.0, 1.0)

    def _vanished_cause(self, gone: PodView | None) -> tuple[str, str]:
        if gone is not None:
            return disruptions.pod_removed(gone)
        if self.ctx.pod_end_preempted is not None:  # the scheduler's Event says it
            return disruptions.PREEMPTED, (f"the rental's pod was preempted by the scheduler: "
                                           f"{self.ctx.pod_end_preempted}")
        return disruptions.POD_DELETED, "the rental's pod disappeared"

    def _interrupted(self, spec: RentalSpec) -> bool:
        """The scheduler took an interruptible rental's GPUs back (its pod's container has
        stopped): say so, then follow spec.onInterruption. True when that ends the pass
        (Pause, Stop); Resume goes on to a new pod that waits for capacity."""
        disruption = self.status.get("disruption") or {}
        if disruption.get("reason") != disruptions.PREEMPTED or not disruption.get("recovering"):
            return False
        message = str(disruption.get("message") or "preempted by the scheduler")
        self._condition(ConditionType.INTERRUPTED, True, "Preempted", message)
        action = spec.on_interruption
        if action is InterruptAction.RESUME:
            return False
        self.status["disruption"] = {**disruption, "recovering": False}
        if action is InterruptAction.STOP:
            self._stop("Preempted", message)
            return True
        self.status["heldGeneration"] = self.rental.generation
        self._pause("Preempted", message)
        return True

    def _node_lost(self, pod: PodView, loss: NodeLoss) -> None:
        """The pod's node stopped reporting: its GPUs are unreachable from the last heartbeat
        on, so billing ends there (`_close_segment` caps every close at it). The pod is left
        to Kubernetes' own eviction (the pod's unreachable toleration, 300 s unless the offer
        says otherwise: a partitioned node may still run it), and once evicted it is removed
        with grace 0, because no kubelet is left to confirm its end."""
        if meter.is_open(self.status) or not self.status.get("disruption"):
            self._disrupted(*disruptions.node_lost(loss.node, loss.since, format_ts(loss.since)),
                            pod, at=loss.since)
        self._close_segment(None)
        if pod.deleting:
            self._act(ActionKind.DELETE_POD, pod.name, FORCE)
        self._provisioning_phase()
        self.plan.requeue_after = 2.0

    def _waiting_for_capacity(self) -> bool:
        disruption = self.status.get("disruption") or {}
        return bool(disruption.get("recovering")) and disruption.get(
            "reason") == disruptions.PREEMPTED

    def _volume_unavailable(self, node: str) -> None:
        """The rental's volume lives on a lost node (a local volume cannot move): Paused until
        the node is back, then it resumes by itself on the same data."""
        message = (f"the volume claim {builders.pvc_name(self.rental.name)} is bound to node "
                   f"{node}, which was lost; a volume pinned to a node cannot move. The rental "
                   "resumes when the node is back")
        if meter.is_open(self.status):
            self._close_segment(None)
        self._delete_service()  # nothing listens on a port nobody pays for
        self._paused_endpoints()
        self._set_phase(Phase.PAUSED, "VolumeUnavailable", message, warning=True)
        self.status["message"] = message
        self._condition(ConditionType.READY, False, "VolumeUnavailable", message)
        self._condition(ConditionType.PAUSED, True, "VolumeUnavailable", message)
        self.plan.requeue_after = 30.0

    def _disrupted(self, reason: str, message: str, pod: PodView | None,
                   at: datetime | None = None) -> None:
        """Record, once per pod, that it was taken away: an Event, a restart, the reason."""
        pod_uid = pod.uid if pod is not None else str(self.status.get("segmentPodUid") or "")
        current = self.status.get("disruption") or {}
        if current.get("podUid") == pod_uid and current.get("recovering"):
            return
        self.status["restarts"] = int(self.status.get("restarts") or 0) + 1
        if reason == disruptions.PREEMPTED:
            self.status["interruptions"] = int(self.status.get("interruptions") or 0) + 1
        ends_by = pod.deletion_deadline if pod is not None else None
        self.status["disruption"] = {
            "reason": reason, "message": message, "podUid": pod_uid,
            "at": format_ts(at or self.ctx.now), "recovering": True,
            "endsBy": format_ts(ends_by) if ends_by else None}
        self._event("Warning", reason, f"{message}; replacing it")

    def _segment_pod(self) -> PodView | None:
        """The pod the open segment meters, as cached or as its final watch event left it."""
        uid = self.status.get("segmentPodUid")
        for pod in (self.children.pod, self.children.gone_pod):
            if pod is not None and pod.uid == uid:
                return pod
        return None

    def _ends_by(self) -> datetime | None:
        ends_by = (self.status.get("disruption") or {}).get("endsBy")
        return parse_ts(ends_by) if ends_by else None


    def _running(self, pod: PodView, spec: RentalSpec, offer: OfferSpec | None) -> None:
        self.status["podName"] = pod.name
        if "ratePerHour" not in self.status and offer is not None:
            rate = billing.rate_per_hour(offer.price_per_gpu_hour, spec.gpus)
            self.status["ratePerHour"] = str(rate)
        if not meter.is_open(self.status) and not meter.reopen_segment(self.status, pod.uid):
            started = pod.started_at or self.ctx.now
            meter.open_segment(self.status, started, pod.uid)
        self.status.pop("provisioningSince", None)
        self.status.setdefault("firstStartedAt", format_ts(pod.started_at or self.ctx.now))
        if (self.status.get("disruption") or {}).get("recovering"):
            self._recovered(pod)
        message = f"pod {pod.name} is running"
        if self.status.get("lostClaim"):
            message += ", but its volume claim was deleted: " + self._volume_lost_message()
        self._set_phase(Phase.RUNNING, "Running", message)
        self._condition(ConditionType.READY, True, "Running", message)

    def _recovered(self, pod: PodView) -> None:
        """A replacement pod runs: the disruption is over; a preemption's gap is counted."""
        disruption = self.status["disruption"]
        self.status["disruption"] = {**disruption, "recovering": False}
        if disruption.get("reason") != disruptions.PREEMPTED:
            return
        last = (self.status.get("lastSegment") or {}).get("end")
        if last and pod.started_at is not None:
            gap = max(int((pod.started_at - parse_ts(last)).total_seconds()), 0)
            self.status["interruptedSeconds"] = int(self.status.get("interruptedSeconds")
                                                    or 0) + gap
        self._condition(ConditionType.INTERRUPTED, False, "Running",
                        f"pod {pod.name} runs again")

    def _provisioning(self, pod: PodView) -> None:
        self.status["podName"] = pod.name
        self._provisioning_phase()
        if self._waiting_for_capacity():
            # The provisioning timeout is for first provisioning: a preempted rental waits
            # for GPUs to free up, accruing nothing but storage.
            self.plan.requeue_after = 30.0
            return
        started = parse_ts(self.status["provisioningSince"])
        timeout = self._provisioning_timeout()
        waited = (self.ctx.now - started).total_seconds()
        if waited < timeout:
            self.plan.requeue_after = max(timeout - waited, 0.5)
            return
        if self.ctx.diagnosis is None:
            self.plan.needs_diagnosis = True
        self._provisioning_failed(_provisioning_error(pod, self.ctx.diagnosis))

    def _provisioning_timeout(self) -> int:
        offer = self.ctx.offer
        if offer is not None and offer.provisioning_timeout:
            return offer.provisioning_timeout
        return self.ctx.provisioning_timeout

    def _provisioning_phase(self) -> None:
        reason, message = "Provisioning", "waiting for the pod to be scheduled and started"
        disruption = self.status.get("disruption") or {}
        if disruption.get("recovering"):
            reason = str(disruption.get("reason"))
            message = f"{disruption.get('message')}; replacing the pod"
        if reason == disruptions.PREEMPTED:
            reason = "WaitingForCapacity"
            message = f"{disruption.get('message')}; waiting for capacity on the same volume"
        self.status.setdefault("provisioningSince", self.now)
        self.status["podName"] = builders.pod_name(self.rental.name)
        self._set_phase(Phase.PROVISIONING, "Provisioning", message)
        self._condition(ConditionType.READY, False, reason, message)

    def _provisioning_failed(self, message: str) -> None:
        """First provisioning failed: Failed, children removed, nothing billed. A resume that
        fails returns to Paused instead, keeping the user's data."""
        self._delete_children(keep_volume=bool(self.status.get("firstStartedAt")))
        if self.status.get("firstStartedAt"):
            # What ran before stays billed: Paused keeps the data, Failed would refund it.
            recovering = (self.status.get("disruption") or {}).get("recovering")
            reason = "NoCapacity" if recovering else "ResumeFailed"
            if recovering:
                self.status["disruption"] = {**self.status["disruption"], "recovering": False}
            self.status.pop("provisioningSince", None)
            # Held until the spec changes: retrying every timeout would flap Paused and
            # Provisioning forever on a full pool.
            self.status["heldGeneration"] = self.rental.generation
            self._set_phase(Phase.PAUSED, reason, message, warning=True)
            self._condition(ConditionType.READY, False, reason, message)
            self._condition(ConditionType.PAUSED, True, reason, message)
            return
        self._close_all_meters()
        self.status["refundedCents"] = meter.refund_all(self.status, self.ctx.now)
        self.status["message"] = message
        self._set_phase(Phase.FAILED, "ProvisioningFailed", message, warning=True)
        self._condition(ConditionType.READY, False, "ProvisioningFailed", message)

    # --- desired Paused / Stopped ----------------------------------------------------------

    def _pause(self, reason: str, message: str) -> None:
        self._close_segment(None)
        pod, lost = self.children.pod, self.children.node_loss is not None
        if pod is not None and (not pod.deleting or lost):
            self._act(ActionKind.DELETE_POD, pod.name, FORCE if lost else None)
        self._delete_service()  # nothing listens on a port nobody pays for
        self._paused_endpoints()
        self.status.pop("provisioningSince", None)
        self._set_phase(Phase.PAUSED, "Paused", message)
        self._condition(ConditionType.PAUSED, True, reason, message)
        self._condition(ConditionType.READY, False, "Paused", message)

    def _stop(self, reason: str, message: str) -> None:
        if reason == "UserRequested":
            message = "stopped by the user"
        self._close_all_meters()
        self._delete_children(keep_volume=False)
        self.status.pop("provisioningSince", None)
        self.status.setdefault("settledAt", self.now)
        self._set_phase(Phase.STOPPED, "Stopped", message)
        self._condition(ConditionType.READY, False, "Stopped", message)
        self._condition(ConditionType.SETTLED, True, reason, "final charge settled")

    def _stay_stopped(self) -> None:
        """Stopped is permanent: heal leftovers, refuse to run again."""
        self._delete_children(keep_volume=False)
        if self.rental.spec.get("state", "Running") != DesiredState.STOPPED:
            self._refuse_restart("StoppedIsPermanent", "a stopped rental never runs again; "
                                 "create a new GpuRental")

    def _stay_failed(self) -> None:
        self._delete_children(keep_volume=False)
        if self.rental.spec.get("state", "Running") == DesiredState.RUNNING:
            self._refuse_restart("FailedIsPermanent", "a failed rental does not retry; "
                                 "create a new GpuRental")

    def _refuse_restart(self, reason: str, message: str) -> None:
        current = get_condition(self.status.get("conditions") or [], ConditionType.ACCEPTED)
        if current is None or current.get("reason") != reason:
            self._event("Warning", reason, message)
        self._condition(ConditionType.ACCEPTED, False, reason, message)

    # --- deletion --------------------------------------------------------------------------

    def _delete(self) -> None:
        """kubectl delete: the same as Stop, then settle into the wallet and let go."""
        if not self.phase.terminal:
            self._close_all_meters()
            self.status.pop("provisioningSince", None)
            self.status.setdefault("settledAt", self.now)
            self._set_phase(Phase.STOPPED, "Deleted", "deleted by the user; settling the bill")
            self._condition(ConditionType.READY, False, "Deleted", "the rental is being deleted")
        self._delete_children(keep_volume=False)
        children = self.children
        if (children.pod or children.pvc or children.secret or children.service
                or children.ingress):
            self.plan.requeue_after = 1.0
            return
        wallet = self.ctx.wallet
        if wallet is not None and self.rental.uid not in wallet.settled_uids:
            self._act(ActionKind.SETTLE, wallet.name)
            charge = billing.dollars(meter.billable_cents(self.status, self.ctx.now))
            self._event("Normal", "Settled", f"final charge {charge} moved to wallet {wallet.name}")
        if FINALIZER in self.rental.finalizers:
            self._act(ActionKind.REMOVE_FINALIZER)

    # --- helpers ---------------------------------------------------------------------------

    def _delete_children(self, keep_volume: bool) -> None:
        pod, pvc, secret = self.children.pod, self.children.pvc, self.children.secret
        lost = self.children.node_loss is not None
        if pod is not None and (not pod.deleting or lost):
            if self.phase is not Phase.FAILED:
                self._close_segment(None)  # bills a pod that outlived its closed segment
            self._act(ActionKind.DELETE_POD, pod.name, FORCE if lost else None)
        self._delete_service()
        self._set_endpoints([])
        if keep_volume:
            return
        if pvc is not None and not pvc.deleting:
            self._act(ActionKind.DELETE_PVC, pvc.name)
        if secret is not None:
            self._act(ActionKind.DELETE_SECRET, secret.name)

    def _close_segment(self, end: datetime | None) -> None:
        loss = self.children.node_loss
        if loss is not None:  # the GPUs were unreachable from the node's last heartbeat
            end = min(end or loss.since, loss.since)
            if self.children.pod is not None:  # a close made before the loss was declared
                meter.shorten_segment(self.status, self.children.pod.uid, loss.since)
        if meter.is_open(self.status):
            # Never past the end of the segment's pod, when Kubernetes says when that was.
            segment_pod = self._segment_pod()
            cap = disruptions.segment_end(segment_pod, self._ends_by(), self.ctx.now)
            if segment_pod is None and self.children.pod is None:
                # The pod vanished unseen (the operator was down): its Events tell its end.
                if not self.ctx.pod_end_looked_up:
                    self.plan.needs_pod_end = str(self.status.get("segmentPodUid") or "")
                cap = min(cap, self.ctx.pod_end or cap)
            meter.close_segment(self.status, min(end or cap, cap))
            return
        pod = self.children.pod
        if end is not None or pod is None or not pod.running:
            return
        if (self.status.get("lastSegment") or {}).get("podUid") == pod.uid:
            meter.reclose_segment(self.status, pod.uid, self.ctx.now)
            return
        # The pod started where no pass saw it run (the operator was down, or the user paused
        # it between the kubelet's start and the next pass). It held its GPUs from its start:
        # billing follows the pod's life, so this segment is billed like any other.
        self._lock_rate()
        meter.open_segment(self.status, pod.started_at or self.ctx.now, pod.uid)
        meter.close_segment(self.status, self.ctx.now)
        self.status.setdefault("firstStartedAt", format_ts(pod.started_at or self.ctx.now))

    def _lock_rate(self) -> None:
        if "ratePerHour" in self.status or self.ctx.offer is None:
            return
        try:
            spec = self.rental.parsed_spec()
        except SpecError:
            return
        self.status["ratePerHour"] = str(
            billing.rate_per_hour(self.ctx.offer.price_per_gpu_hour, spec.gpus))

    def _close_all_meters(self) -> None:
        self._close_segment(None)
        meter.close_storage(self.status, self.ctx.now)

    def _reject(self, reason: str, message: str) -> None:
        """The spec cannot be acted on: say so where the user looks, start nothing."""
        current = get_condition(self.status.get("conditions") or [], ConditionType.ACCEPTED)
        if current is None or current.get("reason") != reason:
            self._event("Warning", reason, message)
        self._condition(ConditionType.ACCEPTED, False, reason, message)
        self._condition(ConditionType.READY, False, reason, message)
        if reason == "BudgetExhausted":
            self._condition(ConditionType.BUDGET_EXHAUSTED, True, reason, message)
        if self.phase in (Phase.PENDING, Phase.PROVISIONING):
            self.status.pop("provisioningSince", None)
            self._set_phase(Phase.PENDING, reason, message)
        self.status["message"] = message

    def _accept(self) -> None:
        self._condition(ConditionType.ACCEPTED, True, "Accepted", "the rental can run")
        if self.ctx.hold is None or self.ctx.hold.reason != "BudgetExhausted":
            self._clear(ConditionType.BUDGET_EXHAUSTED, "BudgetAvailable",
                        "the wallet has budget")

    def _clear(self, type_: ConditionType, reason: str, message: str) -> None:
        if get_condition(self.status.get("conditions") or [], type_) is not None:
            self._condition(type_, False, reason, message)

    def _set_phase(self, phase: Phase, reason: str, message: str, warning: bool = False) -> None:
        self.status["phase"] = phase.value
        if phase is not self.phase:
            self._event("Warning" if warning else "Normal", reason,
                        f"{self.phase.value} -> {phase.value}: {message}")
            self.phase = phase
            self.status["message"] = message

    def _condition(self, type_: ConditionType, value: bool, reason: str, message: str) -> None:
        self.status["conditions"] = set_condition(
            self.status.get("conditions") or [], type_.value, value, reason, message, self.now,
            self.rental.generation,
        )

    def _act(self, kind: ActionKind, name: str = "", body: dict[str, Any] | None = None) -> None:
        self.plan.actions.append(Action(kind, name, body))

    def _event(self, type_: str, reason: str, message: str) -> None:
        self.plan.events.append(Event(type_, reason, message))

    def _finish(self) -> None:
        """Refresh the meter at every transition, or when the heartbeat is due."""
        changed = _without_meter(self.status) != _without_meter(self.old)
        if changed or self.ctx.heartbeat:
            meter.refresh(self.status, self.ctx.now, self.ctx.prepaid_seconds)


# Delete options for a pod on a lost node: no kubelet will ever confirm a graceful delete.
FORCE: dict[str, Any] = {"gracePeriodSeconds": 0}

_RANK = {DesiredState.RUNNING: 0, DesiredState.PAUSED: 1, DesiredState.STOPPED: 2}


def _rank(state: DesiredState) -> int:
    return _RANK[state]


def _without_meter(status: dict[str, Any]) -> dict[str, Any]:
    # Nulls count as absent: a merge patch stores a null as a missing field.
    return {
        k: v for k, v in status.items() if k not in meter.REFRESHED_FIELDS and v is not None
    }


def _service_matches(service: ServiceView, body: dict[str, Any]) -> bool:
    spec = body["spec"]
    wanted = tuple((str(p["name"]), int(p["port"])) for p in spec["ports"])
    return service.type == spec["type"] and service.ports == wanted


def _provisioning_error(pod: PodView, diagnosis: str | None) -> str:
    """The scheduler's or kubelet's reason, as the seed's Failed cards show it."""
    if pod.unschedulable:
        return f"Unschedulable: {pod.unschedulable}"
    if pod.waiting_reason in IMAGE_PULL_REASONS:
        return f"{pod.waiting_reason}: {pod.waiting_message or 'image could not be pulled'}"
    if diagnosis:
        return diagnosis
    if pod.waiting_reason:
        detail = f": {pod.waiting_message}" if pod.waiting_message else ""
        return f"{pod.waiting_reason}{detail}"
    return "the pod did not start in time"
