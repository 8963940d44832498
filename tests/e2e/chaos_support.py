"""Chaos workload and the invariants it must leave behind, shared by the crash and fault tests.

Owns three things, all driven only through the API:
- `PodLedger`: every pod incarnation the emulator held (uid, name, container startedAt), from a
  watch the test keeps alive itself (relisting after errors, as the faults hit it too);
- `Workload`: a seeded random walk of create / pause / resume / stop / extend / delete over
  rentals on a few wallets, remembering what each rental's spec asks for;
- the invariants: children owned by live rentals in the right state, phases matching specs, and
  each wallet's spentCents equal to a reference priced with a plain Decimal formula from the
  pods' running intervals as the emulator recorded them (start = the kubelet's startedAt,
  end = the operator's pod DELETE in the emulator's request record).

The operator closes a meter when it decides to stop a pod, a pass before its DELETE lands (and
re-closes it at a restart if it died in between). That gap is milliseconds, but it can cross a
whole-second boundary, so the reference for each segment is the set of whole seconds the
segment can honestly have: floor(end - start) or, when a second boundary falls within `gap`
before the DELETE, one second less. A wallet must land inside that range, to the cent.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from e2e_support import GROUP, VERSION, Rentals, eventually
from kubernetes import client, watch

from gpurental_dev.cluster import Cluster
from gpurental_dev.substrate import Kubesim

PRICE = Decimal("360.00")  # per GPU hour: 10 cents a second, so every second shows in cents
OFFER = f"""
apiVersion: gpurental.dev/v1alpha1
kind: GpuOffer
metadata: {{name: chaos}}
spec:
  gpu: {{product: NVIDIA-GeForce-RTX-4090}}
  pricePerGpuHour: "{PRICE}"
"""
NODES = [f"gpu-{i}=NVIDIA-GeForce-RTX-4090:8" for i in range(32)]


def admin(cluster: Cluster, what: str, method: str, body: Any = None) -> Any:
    """Call one of kubesim's `/_kubesim/` admin endpoints (fault injection is kubesim's)."""
    assert isinstance(cluster.substrate, Kubesim), "fault injection needs kubesim"
    return cluster.substrate.admin(what, method, body)


def retrying(call: Any, *args: Any, attempts: int = 50, **kwargs: Any) -> Any:
    """The test's own API calls ride out injected faults too (404/409/422 are answers)."""
    for attempt in range(attempts):
        try:
            return call(*args, **kwargs)
        except client.ApiException as exc:
            # A merge patch without a resourceVersion never conflicts: a 409 that is not
            # AlreadyExists is an injected fault, like a 500.
            answer = exc.status in (404, 422) or (
                exc.status == 409 and "AlreadyExists" in (exc.body or ""))
            if answer or attempt == attempts - 1:
                raise
            time.sleep(0.05)
    raise AssertionError("unreachable")


def created(call: Any, *args: Any, **kwargs: Any) -> None:
    """A create that got through before a fault hid its answer is a success on retry."""
    try:
        retrying(call, *args, **kwargs)
    except client.ApiException as exc:
        if exc.status != 409:
            raise


@dataclass
class Incarnation:
    uid: str
    name: str
    seen_at: float  # local time.time() the watch first saw it (same clock as the emulator)
    started_at: datetime | None = None
    finished_at: datetime | None = None  # the kubelet's terminated.finishedAt, once it said


class PodLedger:
    """Every pod incarnation of a namespace, kept by a watch that survives dropped streams."""

    def __init__(self, core: client.CoreV1Api, namespace: str) -> None:
        self.core, self.namespace = core, namespace
        self.pods: dict[str, Incarnation] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> PodLedger:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _note(self, pod: client.V1Pod) -> None:
        uid = pod.metadata.uid
        inc = self.pods.setdefault(uid, Incarnation(uid, pod.metadata.name, time.time()))
        for status in (pod.status.container_statuses or []) if pod.status else []:
            state = status.state
            running = state.running if state else None
            terminated = state.terminated if state else None
            started = (running.started_at if running else None) or (
                terminated.started_at if terminated else None)
            if started is not None and inc.started_at is None:
                inc.started_at = started
            if terminated is not None and terminated.finished_at is not None:
                inc.finished_at = terminated.finished_at

    def _run(self) -> None:
        # Each watch resumes where the last one ended; the namespace is listed again only
        # when that version has expired. A listing between two watches would miss a pod
        # that was terminated and deleted in between (the CI saw one: started, deleted by
        # the workload, terminated and gone within 30 ms of a watch's timeout), and with
        # it the finishedAt its bill is checked against.
        version: str | None = None
        while not self._stop.is_set():
            try:
                if version is None:
                    listing = self.core.list_namespaced_pod(self.namespace)
                    for pod in listing.items:
                        self._note(pod)
                    version = listing.metadata.resource_version
                watcher = watch.Watch()
                for event in watcher.stream(self.core.list_namespaced_pod, self.namespace,
                                            resource_version=version, timeout_seconds=5):
                    if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        self._note(event["object"])
                    version = watcher.resource_version or version
                    if self._stop.is_set():
                        break
            except client.ApiException as exc:
                if exc.status == 410:
                    version = None  # expired: only now can a listing leave a gap
                time.sleep(0.05)
            except Exception:  # injected faults: the stream broke; resume from `version`
                time.sleep(0.05)


@dataclass
class Intent:
    """What the workload last asked of one rental."""

    name: str
    wallet: str
    gpus: int
    state: str = "Running"
    deleted: bool = False
    duration_hours: int = 10


@dataclass
class Workload:
    """A seeded random walk over rentals; every step is one API write a user would make."""

    rentals: Rentals
    wallets: list[str]
    rng: random.Random
    size: int
    intents: dict[str, Intent] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    faults: bool = False  # also delete pods and claims behind the operator's back
    deleted_pods: set[str] = field(default_factory=set)  # uids the workload deleted

    def create_wallets(self) -> None:
        for wallet in self.wallets:
            created(self.rentals.custom.create_namespaced_custom_object,
                     GROUP, VERSION, self.rentals.namespace, "wallets", {
                         "apiVersion": f"{GROUP}/{VERSION}", "kind": "Wallet",
                         "metadata": {"name": wallet}, "spec": {"budget": "1000000.00"}})

    def step(self) -> None:
        live = [i for i in self.intents.values() if not i.deleted]
        if len(self.intents) < self.size and (not live or self.rng.random() < 0.35):
            self._create()
            return
        intent = self.rng.choice(live)
        actions = {"pause": 4, "resume": 4, "stop": 1, "extend": 2, "delete": 1}
        if self.faults:
            actions.update(kill_pod=1, lose_claim=1)
        action = self.rng.choices(list(actions), list(actions.values()))[0]
        if intent.state == "Stopped" and action not in ("stop", "delete"):
            action = "delete"  # Stopped is permanent: the only thing left is to delete it
        getattr(self, f"_{action}")(intent)
        self.counts[action] += 1

    def _create(self) -> None:
        name = f"r{len(self.intents):03d}"
        intent = Intent(name, self.rng.choice(self.wallets), self.rng.choice([1, 1, 2]))
        spec: dict[str, Any] = {"offer": "chaos", "gpus": intent.gpus, "wallet": intent.wallet,
                                "duration": f"{intent.duration_hours}h",
                                "storage": {"size": "1Gi"}}
        if self.rng.random() < 0.3:
            spec["sshKeys"] = [f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA{name} chaos@test"]
        if self.rng.random() < 0.15:
            spec["state"] = intent.state = "Paused"
        self.intents[name] = intent
        created(self.rentals.create, name, **spec)
        self.counts["create"] += 1

    def _patch(self, intent: Intent, **spec: Any) -> None:
        try:
            retrying(self.rentals.patch, intent.name, **spec)
        except client.ApiException as exc:
            if exc.status != 404:
                raise

    def _pause(self, intent: Intent) -> None:
        intent.state = "Paused"
        self._patch(intent, state="Paused")

    def _resume(self, intent: Intent) -> None:
        intent.state = "Running"
        self._patch(intent, state="Running")

    def _stop(self, intent: Intent) -> None:
        intent.state = "Stopped"
        self._patch(intent, state="Stopped")

    def _extend(self, intent: Intent) -> None:
        intent.duration_hours += 1
        self._patch(intent, duration=f"{intent.duration_hours}h")

    def _delete(self, intent: Intent) -> None:
        intent.deleted = True
        try:
            retrying(self.rentals.delete, intent.name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise

    def _kill_pod(self, intent: Intent) -> None:
        """`kubectl delete pod`: someone else removes the rental's pod."""
        core, ns = self.rentals.core, self.rentals.namespace
        try:
            pod = retrying(core.read_namespaced_pod, intent.name, ns)
            if pod.metadata.deletion_timestamp is not None:
                return
            retrying(core.delete_namespaced_pod, intent.name, ns,
                     body=client.V1DeleteOptions(
                         preconditions=client.V1Preconditions(uid=pod.metadata.uid)))
        except client.ApiException as exc:
            if exc.status not in (404, 409):
                raise
            return
        self.deleted_pods.add(pod.metadata.uid)

    def _lose_claim(self, intent: Intent) -> None:
        """A cleanup script deletes the rental's claim; its owner accepts the loss at once."""
        core, ns = self.rentals.core, self.rentals.namespace
        try:
            pvc = retrying(core.read_namespaced_persistent_volume_claim, f"{intent.name}-storage",
                           ns)
            if pvc.metadata.deletion_timestamp is not None:
                return
            retrying(core.delete_namespaced_persistent_volume_claim, pvc.metadata.name, ns)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            return
        self._patch(intent, storage={"size": "1Gi", "acceptLostClaim": pvc.metadata.uid})

    def pause_all_running(self) -> None:
        """Freeze the meters: the wallet reference needs every segment closed."""
        for intent in self.intents.values():
            if not intent.deleted and intent.state == "Running":
                self._pause(intent)


# --- invariants -----------------------------------------------------------------------------

def live_rentals(rentals: Rentals) -> dict[str, dict[str, Any]]:
    items = retrying(rentals.custom.list_namespaced_custom_object,
                     GROUP, VERSION, rentals.namespace, "gpurentals")["items"]
    return {r["metadata"]["name"]: r for r in items}


def phases_match(workload: Workload) -> None:
    """Every rental's phase is what its spec asks; every deleted rental is gone."""
    live = live_rentals(workload.rentals)
    wrong = []
    for intent in workload.intents.values():
        body = live.get(intent.name)
        if intent.deleted:
            if body is not None:
                wrong.append(f"{intent.name}: deleted but still present")
            continue
        phase = ((body or {}).get("status") or {}).get("phase")
        if phase != intent.state:
            wrong.append(f"{intent.name}: phase {phase} != spec {intent.state} "
                         f"({pod_summary(workload.rentals, intent.name)})")
    assert not wrong, f"{len(wrong)} rentals not converged: {wrong[:10]}"


def pod_summary(rentals: Rentals, name: str) -> str:
    """What the pod of a rental that has not converged looks like, for the failure message."""
    try:
        pod = rentals.core.read_namespaced_pod(name, rentals.namespace)
    except client.ApiException as exc:
        return f"pod: {exc.status}"
    return (f"pod {pod.metadata.uid[:8]} node={pod.spec.node_name} phase={pod.status.phase} "
            f"deleting={pod.metadata.deletion_timestamp is not None}")


ALLOWED = {"Pod": {"Running"}, "PersistentVolumeClaim": {"Running", "Paused"},
           "Secret": {"Running", "Paused"}}


def no_orphans(workload: Workload) -> None:
    """Every pod, PVC and rental Secret belongs to a live rental in a state that keeps it."""
    rentals = workload.rentals
    live = live_rentals(rentals)
    states = {r["metadata"]["uid"]: (n, workload.intents[n].state) for n, r in live.items()}
    core, ns = rentals.core, rentals.namespace
    children = [("Pod", retrying(core.list_namespaced_pod, ns).items),
                ("PersistentVolumeClaim",
                 retrying(core.list_namespaced_persistent_volume_claim, ns).items),
                ("Secret", [s for s in retrying(core.list_namespaced_secret, ns).items
                            if any(o.kind == "GpuRental"
                                   for o in s.metadata.owner_references or [])])]
    wrong = []
    for kind, objects in children:
        for obj in objects:
            owners = [o.uid for o in obj.metadata.owner_references or []
                      if o.kind == "GpuRental"]
            owner = states.get(owners[0]) if owners else None
            if owner is None:
                wrong.append(f"{kind} {obj.metadata.name}: no live rental owns it")
            elif owner[1] not in ALLOWED[kind]:
                wrong.append(f"{kind} {obj.metadata.name}: owner {owner[0]} is {owner[1]}")
    assert not wrong, f"{len(wrong)} orphans: {wrong[:10]}"


def operator_pod_deletes(requests: list[dict[str, Any]], namespace: str
                         ) -> dict[str, list[float]]:
    """Successful pod DELETEs the operator sent (it asks for Background propagation; the
    kubelet's own grace-0 DELETE of a terminating pod does not), by pod name, in order."""
    prefix = f"/api/v1/namespaces/{namespace}/pods/"
    found: dict[str, list[float]] = defaultdict(list)
    for req in requests:
        # 504: the operator was SIGKILLed mid-request; the delete may or may not have taken
        # effect (running_seconds tells by the kubelet's finishedAt).
        if (req["method"] == "DELETE" and req["path"].startswith(prefix)
                and req["status"] in (200, 504)
                and "propagationPolicy" in (req.get("query") or "")):
            found[req["path"][len(prefix):]].append(req["timestamp"])
    return {name: sorted(stamps) for name, stamps in found.items()}


@dataclass
class SecondsRange:
    low: int = 0
    high: int = 0
    segments: int = 0
    ambiguous: int = 0


def running_seconds(ledger: PodLedger, deletes: dict[str, list[float]], gap: float,
                    removed: frozenset[str] = frozenset()) -> dict[str, SecondsRange]:
    """Whole running seconds per rental (pod name = rental name), as a range (see module).
    A pod someone else removed (`removed`) ran until its kubelet's terminated.finishedAt,
    unless the operator deleted it first."""
    by_name: dict[str, list[Incarnation]] = defaultdict(list)
    for inc in ledger.pods.values():
        by_name[inc.name].append(inc)
    result: dict[str, SecondsRange] = {}
    for name, incarnations in by_name.items():
        total = result.setdefault(name, SecondsRange())
        previous_end = 0.0
        ordered = sorted(incarnations, key=lambda i: i.seen_at)
        for index, inc in enumerate(ordered):
            next_seen = ordered[index + 1].seen_at if index + 1 < len(ordered) else float("inf")
            ends = [t for t in deletes.get(name, []) if t > previous_end and t > inc.seen_at - 0.5]
            if inc.uid in removed and inc.started_at is None:
                continue  # removed before it ever ran: nothing billed, no DELETE of its own
            if inc.uid in removed:
                if inc.finished_at is None:
                    raise AssertionError(f"pod {name} ({inc.uid}) was removed but never ended")
                ends = sorted([*ends[:1], inc.finished_at.timestamp()])
            if not ends:
                raise AssertionError(f"pod {name} ({inc.uid}) was never deleted by the operator")
            previous_end = _effective_delete(ends, inc, next_seen)
            if inc.started_at is None:
                continue
            exact = previous_end - inc.started_at.timestamp()
            total.segments += 1
            total.high += max(int(exact), 0)
            low = max(int(exact - gap), 0)
            total.low += low
            total.ambiguous += low != max(int(exact), 0)
    return result


def _effective_delete(ends: list[float], inc: Incarnation, next_seen: float) -> float:
    """The DELETE that ended the pod: the last one before the kubelet's (whole-second)
    finishedAt and the next pod, when an earlier one was cut short and deleted nothing."""
    if inc.finished_at is None:
        return ends[0]
    effective = [t for t in ends
                 if t <= inc.finished_at.timestamp() + 1 and t < next_seen - 0.5]
    return effective[-1] if effective else ends[0]


def cents(seconds: int, gpus: int) -> int:
    return int((Decimal(seconds) * PRICE * gpus * 100 / 3600).quantize(Decimal(1), ROUND_HALF_UP))


def wallet_matches_reference(workload: Workload, ledger: PodLedger,
                             requests: list[dict[str, Any]], gap: float = 0.5) -> str:
    """Each wallet's spentCents equals the pods' running intervals priced in Decimal."""
    ns = workload.rentals.namespace
    seconds = running_seconds(ledger, operator_pod_deletes(requests, ns), gap,
                              frozenset(workload.deleted_pods))
    low: dict[str, int] = defaultdict(int)
    high: dict[str, int] = defaultdict(int)
    ambiguous = segments = 0
    for intent in workload.intents.values():
        span = seconds.get(intent.name, SecondsRange())
        low[intent.wallet] += cents(span.low, intent.gpus)
        high[intent.wallet] += cents(span.high, intent.gpus)
        ambiguous += span.ambiguous
        segments += span.segments

    def check() -> dict[str, int]:
        spent = {}
        for wallet in workload.wallets:
            body = retrying(workload.rentals.custom.get_namespaced_custom_object,
                            GROUP, VERSION, ns, "wallets", wallet)
            spent[wallet] = int((body.get("status") or {}).get("spentCents", -1))
        off = {w: (spent[w], low[w], high[w]) for w in workload.wallets
               if not low[w] <= spent[w] <= high[w]}
        assert not off, f"wallet spentCents outside reference [low, high]: {off}"
        return spent
    try:
        spent = eventually(check, timeout=60)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n" + "\n".join(
            live_mismatches(workload, ledger, seconds))) from None
    gaps = close_to_delete_gaps(workload, requests)
    return (f"close->DELETE gap max {max(gaps, default=0):.3f}s over {len(gaps)}; "
            f"{segments} running segments ({ambiguous} straddle a second boundary); "
            f"wallets {spent} within reference "
            f"{ {w: (low[w], high[w]) for w in workload.wallets} }")


def close_to_delete_gaps(workload: Workload, requests: list[dict[str, Any]]) -> list[float]:
    """How long after closing a live rental's last segment its pod DELETE landed."""
    deletes = operator_pod_deletes(requests, workload.rentals.namespace)
    gaps = []
    for name, body in live_rentals(workload.rentals).items():
        last = (body.get("status") or {}).get("lastSegment") or {}
        if last.get("podUid") in workload.deleted_pods:
            continue  # ended by someone else's delete, not by a close and the operator's DELETE
        if last.get("end") and deletes.get(name):
            end = datetime.fromisoformat(last["end"].replace("Z", "+00:00")).timestamp()
            after = [t - end for t in deletes[name] if t >= end - 1]
            if after:
                gaps.append(after[0])
    return gaps


def live_mismatches(workload: Workload, ledger: PodLedger,
                    seconds: dict[str, SecondsRange]) -> list[str]:
    """Per live rental: its own charge against its reference, with the pods it had."""
    lines = []
    for name, body in sorted(live_rentals(workload.rentals).items()):
        intent, status = workload.intents[name], body.get("status") or {}
        span = seconds.get(name, SecondsRange())
        low, high = cents(span.low, intent.gpus), cents(span.high, intent.gpus)
        actual = int(status.get("totalChargeCents") or 0)
        if not low <= actual <= high:
            pods = [(i.uid[:8], i.started_at, round(i.seen_at, 3)) for i in ledger.pods.values()
                    if i.name == name]
            lines.append(f"{name}: charged {actual} not in [{low}, {high}] "
                         f"(seconds {status.get('secondsBilled')} vs {span.low}..{span.high}); "
                         f"pods {pods}; lastSegment {status.get('lastSegment')}")
    return lines


def converge(workload: Workload, timeout: float = 90.0) -> None:
    eventually(lambda: phases_match(workload), timeout=timeout, interval=1.0)
    eventually(lambda: no_orphans(workload), timeout=timeout, interval=1.0)


def setup_cluster(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", "-", input=OFFER)


def new_namespace(core: client.CoreV1Api, name: str) -> None:
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
