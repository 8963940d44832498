"""What the operator sees of the world, reduced to the facts its decisions need.

Pure: turns raw pod / PVC / rental dicts (as the API returns them) into small frozen views.
Keeping only these facts is what lets one operator cache ten thousand rentals' children.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gpurental.clock import parse_ts
from gpurental.constants import WORKLOAD_CONTAINER
from gpurental.models import RentalSpec, SpecError, parse_spec

Key = tuple[str, str]  # (namespace, name) of a namespaced object: a rental's, a wallet's


def _ts(value: Any) -> datetime | None:
    return parse_ts(value) if value else None


def controller_uid(obj: dict[str, Any]) -> str | None:
    """The uid of the object's controlling owner, which ties a child to its rental."""
    for ref in obj.get("metadata", {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


@dataclass(frozen=True)
class PodView:
    name: str
    uid: str
    phase: str
    deleting: bool
    started_at: datetime | None = None  # the workload container's running.startedAt
    finished_at: datetime | None = None  # its terminated.finishedAt, when the kubelet said so
    unschedulable: str | None = None  # the scheduler's message
    waiting_reason: str | None = None  # e.g. ErrImagePull, ContainerCreating
    waiting_message: str | None = None
    node_name: str | None = None
    # The kubelet kills the container by this moment at the latest (deletionTimestamp is the
    # end of the grace period, not the moment the delete was asked for).
    deletion_deadline: datetime | None = None
    # Who or what removed the pod, when Kubernetes says (the DisruptionTarget condition's
    # reason: EvictionByEvictionAPI, PreemptionByScheduler, DeletionByTaintManager, ...).
    disruption: str | None = None
    disruption_message: str | None = None
    host_ip: str | None = None  # the node's address, for a NodePort endpoint

    @property
    def running(self) -> bool:
        return self.phase == "Running" and self.started_at is not None and not self.deleting

    @property
    def ended(self) -> bool:
        return self.phase in ("Succeeded", "Failed")

    @classmethod
    def from_dict(cls, pod: dict[str, Any]) -> PodView:
        meta, status = pod.get("metadata", {}), pod.get("status") or {}
        container = _workload_status(status)
        state = container.get("state") or {}
        running = state.get("running") or {}
        terminated = state.get("terminated") or {}
        waiting = state.get("waiting") or {}
        return cls(
            name=meta.get("name", ""),
            uid=meta.get("uid", ""),
            phase=status.get("phase") or "Pending",
            deleting=bool(meta.get("deletionTimestamp")),
            started_at=_ts(running.get("startedAt")),
            finished_at=_ts(terminated.get("finishedAt")),
            unschedulable=_unschedulable(status),
            waiting_reason=waiting.get("reason"),
            waiting_message=waiting.get("message"),
            node_name=(pod.get("spec") or {}).get("nodeName") or None,
            deletion_deadline=_ts(meta.get("deletionTimestamp")),
            **_disruption(status),
            host_ip=status.get("hostIP"),
        )


def _workload_status(status: dict[str, Any]) -> dict[str, Any]:
    statuses = status.get("containerStatuses") or []
    for container in statuses:
        if container.get("name") == WORKLOAD_CONTAINER:
            return dict(container)
    return dict(statuses[0]) if statuses else {}


def _disruption(status: dict[str, Any]) -> dict[str, str | None]:
    for cond in status.get("conditions") or ():
        if cond.get("type") == "DisruptionTarget" and cond.get("status") == "True":
            return {"disruption": str(cond.get("reason") or "DisruptionTarget"),
                    "disruption_message": cond.get("message")}
    return {}


def _unschedulable(status: dict[str, Any]) -> str | None:
    for cond in status.get("conditions") or ():
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return str(cond.get("message") or cond.get("reason") or "Unschedulable")
    return None


@dataclass(frozen=True)
class PvcView:
    name: str
    phase: str
    deleting: bool
    uid: str = ""
    volume_name: str | None = None

    @classmethod
    def from_dict(cls, pvc: dict[str, Any]) -> PvcView:
        meta = pvc.get("metadata", {})
        return cls(
            name=meta.get("name", ""),
            phase=(pvc.get("status") or {}).get("phase") or "Pending",
            deleting=bool(meta.get("deletionTimestamp")),
            uid=meta.get("uid", ""),
            volume_name=(pvc.get("spec") or {}).get("volumeName") or None,
        )


def pinned_node(volume: dict[str, Any]) -> str | None:
    """The one node a PersistentVolume can be used on, if its node affinity names exactly one
    (a local or host-path volume); None for a volume that can move (network storage)."""
    required = (((volume.get("spec") or {}).get("nodeAffinity") or {}).get("required") or {})
    nodes: set[str] = set()
    for term in required.get("nodeSelectorTerms") or ():
        for expression in term.get("matchExpressions") or ():
            if (expression.get("key") == "kubernetes.io/hostname"
                    and expression.get("operator") == "In"):
                nodes.update(expression.get("values") or ())
    return nodes.pop() if len(nodes) == 1 else None


@dataclass(frozen=True)
class NodeLoss:
    """A node the node-lifecycle controller declared lost (Ready not True, and tainted
    unreachable or not-ready), with the moment its GPUs were last known to be there: the
    kubelet's last heartbeat (its Lease's renewTime), never later than the controller's
    taint. A container on a lost node cannot be reached; billing ends at `since`."""

    node: str
    since: datetime


@dataclass(frozen=True)
class NodeView:
    name: str
    ready: str  # the Ready condition's status: True | False | Unknown ("" when absent)
    # When the node-lifecycle controller declared it lost: the Ready condition's turn to
    # Unknown (the kubelet stopped reporting), or the unreachable / not-ready NoExecute taint.
    lost_at: datetime | None
    heartbeat: datetime | None  # the Ready condition's lastHeartbeatTime

    @property
    def lost(self) -> bool:
        return self.ready not in ("True", "") and self.lost_at is not None

    @classmethod
    def from_dict(cls, node: dict[str, Any]) -> NodeView:
        conditions = (node.get("status") or {}).get("conditions") or ()
        ready: dict[str, Any] = next((c for c in conditions if c.get("type") == "Ready"), {})
        # The controller sets Unknown whatever its eviction mode; it stops adding NoExecute
        # taints when most of a zone's nodes are down (partial disruption), so the taint
        # alone would miss a mass outage.
        declared = [_ts(ready.get("lastTransitionTime"))] if ready.get("status") == "Unknown" \
            else []
        for taint in (node.get("spec") or {}).get("taints") or ():
            if taint.get("key") in NODE_LOST_TAINTS and taint.get("effect") == "NoExecute":
                declared.append(_ts(taint.get("timeAdded")))
        known = [moment for moment in declared if moment is not None]
        return cls(name=node.get("metadata", {}).get("name", ""),
                   ready=str(ready.get("status") or ""), lost_at=min(known) if known else None,
                   heartbeat=_ts(ready.get("lastHeartbeatTime")))


NODE_LOST_TAINTS = ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")


@dataclass(frozen=True)
class SecretView:
    name: str
    keys_digest: str  # annotation the operator writes, to skip rewriting unchanged keys


@dataclass(frozen=True)
class ServiceView:
    """The rental's Service as Kubernetes reports it: the addresses it was given."""

    name: str
    type: str
    deleting: bool
    cluster_ip: str | None = None
    ports: tuple[tuple[str, int], ...] = ()  # (name, port) as created
    node_ports: dict[str, int] = field(default_factory=dict)  # by port name, once allocated
    ingress: tuple[str, ...] = ()  # load-balancer IPs or hostnames, once a controller set them

    @classmethod
    def from_dict(cls, service: dict[str, Any]) -> ServiceView:
        meta, spec = service.get("metadata", {}), service.get("spec") or {}
        ports = spec.get("ports") or []
        ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        return cls(
            name=meta.get("name", ""),
            type=spec.get("type") or "ClusterIP",
            deleting=bool(meta.get("deletionTimestamp")),
            cluster_ip=spec.get("clusterIP"),
            ports=tuple((str(p.get("name", "")), int(p.get("port", 0))) for p in ports),
            node_ports={str(p.get("name", "")): int(p["nodePort"]) for p in ports
                        if p.get("nodePort")},
            ingress=tuple(str(i.get("ip") or i.get("hostname")) for i in ingress
                          if i.get("ip") or i.get("hostname")),
        )


@dataclass(frozen=True)
class IngressView:
    """The rental's Ingress: the host routed to each http port, by port name."""

    name: str
    deleting: bool
    class_name: str | None = None
    hosts: dict[str, str] = field(default_factory=dict)
    tls_hosts: frozenset[str] = frozenset()

    @classmethod
    def from_dict(cls, ingress: dict[str, Any]) -> IngressView:
        meta, spec = ingress.get("metadata", {}), ingress.get("spec") or {}
        hosts = {}
        for rule in spec.get("rules") or []:
            for path in (rule.get("http") or {}).get("paths") or []:
                port = ((path.get("backend") or {}).get("service") or {}).get("port") or {}
                if port.get("name") and rule.get("host"):
                    hosts[str(port["name"])] = str(rule["host"])
        return cls(
            name=meta.get("name", ""),
            deleting=bool(meta.get("deletionTimestamp")),
            class_name=spec.get("ingressClassName"),
            hosts=hosts,
            tls_hosts=frozenset(h for t in spec.get("tls") or [] for h in t.get("hosts") or []),
        )


@dataclass(frozen=True)
class Children:
    """A rental's owned objects as currently cached."""

    pod: PodView | None = None
    pvc: PvcView | None = None
    secret: SecretView | None = None
    # The rental's last pod as its final watch event showed it, kept until a new pod
    # replaces it: the kubelet's terminated.finishedAt there is when billing really ended.
    gone_pod: PodView | None = None
    node_loss: NodeLoss | None = None  # the node of the rental's pod was declared lost
    volume_lost_with: str | None = None  # the lost node the rental's volume is pinned to
    service: ServiceView | None = None
    ingress: IngressView | None = None


@dataclass(frozen=True)
class RentalView:
    namespace: str
    name: str
    uid: str
    generation: int
    deleting: bool
    finalizers: tuple[str, ...]
    spec: dict[str, Any]
    status: dict[str, Any] = field(default_factory=dict)
    # The validated spec (or its SpecError), parsed on first use and handed on to the next
    # version of the rental while the spec is unchanged: every heartbeat brings a new
    # version, and validating the spec on each pass was a tenth of the operator's CPU.
    _parsed: list[RentalSpec | SpecError] = field(default_factory=list, compare=False,
                                                   repr=False)

    @property
    def key(self) -> Key:
        return (self.namespace, self.name)

    def parsed_spec(self) -> RentalSpec:
        """The spec as a model; raises SpecError naming the bad field."""
        if not self._parsed:
            try:
                self._parsed.append(parse_spec(RentalSpec, self.spec))
            except SpecError as exc:
                self._parsed.append(exc)
        result = self._parsed[0]
        if isinstance(result, SpecError):
            raise result
        return result

    def inherit_parsed(self, previous: RentalView) -> None:
        """Reuse the previous version's parsed spec if the spec did not change."""
        if previous.uid == self.uid and previous.spec == self.spec and previous._parsed:
            self._parsed[:] = previous._parsed

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> RentalView:
        meta = body.get("metadata", {})
        return cls(
            namespace=meta.get("namespace", ""),
            name=meta.get("name", ""),
            uid=meta.get("uid", ""),
            generation=int(meta.get("generation") or 0),
            deleting=bool(meta.get("deletionTimestamp")),
            finalizers=tuple(meta.get("finalizers") or ()),
            spec=dict(body.get("spec") or {}),
            status=dict(body.get("status") or {}),
        )
