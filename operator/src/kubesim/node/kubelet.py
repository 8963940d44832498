"""The kubelet: runs the pods bound to the simulated nodes.

Volumes, image pulls, Running, and graceful termination; the statuses it writes are built in
:mod:`.podstatus`, its admission check is :mod:`.admission`, its volume checks :mod:`.volumes`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable

from .admission import Admitted
from .background import Background
from .client import ApiError, KubeClient
from .events import EventRecorder
from .images import IMAGE_REFERENCE, full_image_ref, invalid_reference_message
from .objects import STRATEGIC_MERGE_PATCH, TERMINAL_PHASES, Obj, object_key, pod_path, rfc3339
from .podstatus import pending_status, rejected_status, running_status, succeeded_status
from .state import NodeState
from .volumes import Unready, confirm_unready, mount_failure_message, unready_claims

START_PATIENCE = 30.0  # seconds a termination waits for a start in flight (a pull backoff)


class Kubelet:
    """Runs the pods bound to the simulated nodes: volumes, image pulls, Running, termination."""

    def __init__(self, client: KubeClient, nodes: dict[str, NodeState], recorder: EventRecorder,
                 background: Background, pods: dict[str, Obj], pvcs: dict[str, Obj], *,
                 start_delay: float = 0.0, pull_fail: re.Pattern[str] | None = None,
                 pull_backoff: float = 1.0, on_terminated: Callable[[str], None] | None = None):
        self.client = client
        self.nodes = nodes
        self.recorder = recorder
        self.background = background
        self.pods = pods
        self.pvcs = pvcs
        self.start_delay = start_delay
        self.pull_fail = pull_fail
        self.pull_backoff = pull_backoff
        self.on_terminated = on_terminated or (lambda uid: None)
        self._busy: dict[str, asyncio.Event] = {}  # uid -> set when its start in flight ends
        self._done: set[str] = set()  # uids that reached Running or a pull failure
        self._terminated: set[str] = set()
        self._start_times: dict[str, str] = {}
        # The last status this kubelet wrote per pod uid (its status manager's cache): a
        # pod's termination reports the containers as the kubelet last saw them, not as the
        # deletion's watch event showed them (written before a start still in flight).
        self._written: dict[str, Obj] = {}
        self._volume_waiters: dict[str, set[str]] = {}  # "ns/claim" -> pod keys
        self._reported_mounts: dict[str, str] = {}
        self._admitted = Admitted()

    # -- informer side ------------------------------------------------------------------------

    def on_pod(self, kind: str, pod: Obj, old: Obj | None) -> None:
        node_name = (pod.get("spec") or {}).get("nodeName")
        if node_name not in self.nodes:
            return
        uid = str(pod["metadata"].get("uid"))
        if kind == "DELETED":
            self._forget(uid)
            return
        phase = (pod.get("status") or {}).get("phase")
        if pod["metadata"].get("deletionTimestamp"):
            if uid not in self._terminated and phase not in TERMINAL_PHASES:
                self._terminated.add(uid)
                self.background.spawn(self._terminate(pod), f"terminate {object_key(pod)}")
            elif phase in TERMINAL_PHASES and uid not in self._terminated:
                self._terminated.add(uid)
                self.background.spawn(self._delete(pod), f"delete {object_key(pod)}")
            return
        if phase in TERMINAL_PHASES:
            self._admitted.release(uid)
            return
        if uid in self._done or uid in self._busy:
            return
        node = self.nodes[node_name]
        if phase == "Running" and self._already_running(pod):
            self._done.add(uid)  # started by an earlier simulator: keep its start times
            self._admitted.admit(pod, node, force=True)
            return
        rejection = self._admitted.admit(pod, node)
        if rejection is not None:
            self._done.add(uid)
            self.background.spawn(self._reject(pod, *rejection), f"reject {object_key(pod)}")
            return
        self._sync(pod)

    async def _reject(self, pod: Obj, reason: str, message: str) -> None:
        self.recorder.emit(pod, "Warning", reason, message, component="kubelet",
                           host=pod["spec"]["nodeName"])
        await self._patch_status(pod, rejected_status(pod, reason, message))

    def on_pvc(self, kind: str, pvc: Obj, old: Obj | None) -> None:
        if (pvc.get("status") or {}).get("phase") != "Bound" and kind != "DELETED":
            return
        for key in self._volume_waiters.pop(object_key(pvc), set()):
            pod = self.pods.get(key)
            if pod is not None:
                self.on_pod("MODIFIED", pod, None)

    @staticmethod
    def _already_running(pod: Obj) -> bool:
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        return bool(statuses) and all("running" in (s.get("state") or {}) for s in statuses)

    def _forget(self, uid: str) -> None:
        self._busy.pop(uid, None)  # its start still sets the Event a termination waits on
        for store in (self._done, self._terminated):
            store.discard(uid)
        self._written.pop(uid, None)
        self._admitted.release(uid)
        self._start_times.pop(uid, None)
        self._reported_mounts.pop(uid, None)

    def _sync(self, pod: Obj) -> None:
        uid = str(pod["metadata"]["uid"])
        finished = self._busy[uid] = asyncio.Event()
        self._start_times.setdefault(uid, rfc3339())
        self.background.spawn(self._start(object_key(pod), uid, finished),
                              f"start {object_key(pod)}")

    # -- pod start ----------------------------------------------------------------------------

    async def _start(self, key: str, uid: str, finished: asyncio.Event) -> None:
        try:
            outcome = await self._start_once(key, uid)
        finally:
            finished.set()
            if self._busy.get(uid) is finished:
                del self._busy[uid]
        if outcome == "volumes":
            # A claim may have become Bound while we were reporting: look again.
            pod = self.pods.get(key)
            if pod is not None and not unready_claims(pod, self.pvcs):
                self.on_pod("MODIFIED", pod, None)

    async def _start_once(self, key: str, uid: str) -> str:
        """Try to start one pod; return what happened ("gone", "volumes", "started")."""
        pod = self._live(key, uid)
        if pod is not None and self.start_delay:
            # What `kubectl get pods` shows while a real node pulls the image.
            await self._patch_status(pod, self._pending(
                pod, {"reason": "ContainerCreating"}, ready_to_start=False))
            await asyncio.sleep(self.start_delay)
            pod = self._live(key, uid)
        if pod is None:
            return "gone"
        missing = await confirm_unready(self.client, pod, unready_claims(pod, self.pvcs))
        if missing:
            await self._wait_for_volumes(pod, missing)
            return "volumes"
        invalid = next((c for c in pod["spec"].get("containers") or []
                        if not IMAGE_REFERENCE.match(str(c.get("image", "")))), None)
        bad = self._failing_image(pod)
        if invalid is not None:
            self._done.add(uid)
            await self._fail_invalid_image(pod, invalid)
        elif bad is not None:
            self._done.add(uid)
            await self._fail_pull(pod, bad)
        else:
            await self._run(pod)
            self._done.add(uid)
        return "started"

    def _live(self, key: str, uid: str) -> Obj | None:
        """The cached pod if it is still this uid and not being deleted."""
        pod = self.pods.get(key)
        if pod is None or pod["metadata"].get("uid") != uid or (
                pod["metadata"].get("deletionTimestamp")):
            return None
        return pod

    async def _wait_for_volumes(self, pod: Obj, missing: list[Unready]) -> None:
        """Wake the pod when its claims change; report the mount failure once per message."""
        namespace, uid = pod["metadata"]["namespace"], str(pod["metadata"]["uid"])
        for _, claim, _ in missing:
            self._volume_waiters.setdefault(f"{namespace}/{claim}", set()).add(object_key(pod))
        message = mount_failure_message(pod, missing)
        if self._reported_mounts.get(uid) == message:
            return
        self._reported_mounts[uid] = message
        waiting = {"reason": "ContainerCreating"}
        await self._patch_status(pod, self._pending(pod, waiting, ready_to_start=False))
        self.recorder.emit(pod, "Warning", "FailedMount", message, component="kubelet",
                           host=pod["spec"]["nodeName"])

    def _failing_image(self, pod: Obj) -> Obj | None:
        if self.pull_fail is None:
            return None
        for container in (pod.get("spec") or {}).get("containers") or []:
            if self.pull_fail.search(str(container.get("image", ""))):
                return container
        return None

    async def _fail_invalid_image(self, pod: Obj, container: Obj) -> None:
        """What the kubelet does with an image reference it cannot parse: no pull, no retry."""
        error = invalid_reference_message(container.get("image", ""))
        await self._patch_status(pod, self._pending(
            pod, {"reason": "InvalidImageName", "message": error}, only=container["name"]))
        for reason, message in (("InspectFailed", error), ("Failed", "Error: InvalidImageName")):
            self.recorder.emit(pod, "Warning", reason, message, component="kubelet",
                               host=pod["spec"]["nodeName"],
                               field_path=f"spec.containers{{{container['name']}}}")

    async def _fail_pull(self, pod: Obj, container: Obj) -> None:
        image, host = container.get("image", ""), pod["spec"]["nodeName"]
        ref = full_image_ref(image)
        path = f"spec.containers{{{container['name']}}}"
        error = (f'rpc error: code = NotFound desc = failed to pull and unpack image "{ref}": '
                 f'failed to resolve reference "{ref}": {ref}: not found')
        emit = self.recorder.emit
        emit(pod, "Normal", "Pulling", f'Pulling image "{image}"', component="kubelet",
             host=host, field_path=path)
        await self._patch_status(pod, self._pending(
            pod, {"reason": "ErrImagePull", "message": error}, only=container["name"]))
        emit(pod, "Warning", "Failed", f'Failed to pull image "{image}": {error}',
             component="kubelet", host=host, field_path=path)
        emit(pod, "Warning", "Failed", "Error: ErrImagePull", component="kubelet", host=host,
             field_path=path)
        await asyncio.sleep(self.pull_backoff)
        current = self.pods.get(object_key(pod))
        if current is None or current["metadata"].get("deletionTimestamp"):
            return
        backoff = f'Back-off pulling image "{image}": ErrImagePull: {error}'
        await self._patch_status(current, self._pending(
            current, {"reason": "ImagePullBackOff", "message": backoff}, only=container["name"]))
        emit(pod, "Normal", "BackOff", f'Back-off pulling image "{image}"', component="kubelet",
             host=host, field_path=path)
        emit(pod, "Warning", "Failed", "Error: ImagePullBackOff", component="kubelet",
             host=host, field_path=path)

    def _pending(self, pod: Obj, waiting: Obj, *, only: str | None = None,
                 ready_to_start: bool = True) -> Obj:
        """The Pending status of ``pod`` on its node, since the time the kubelet first saw it."""
        uid = str(pod["metadata"]["uid"])
        node = self.nodes[pod["spec"]["nodeName"]]
        return pending_status(pod, node, self._start_times[uid], waiting, only=only,
                              ready_to_start=ready_to_start)

    async def _run(self, pod: Obj) -> None:
        uid, host = str(pod["metadata"]["uid"]), pod["spec"]["nodeName"]
        node = self.nodes[host]
        pod_ip = node.allocate_pod_ip()
        started = rfc3339()
        status = running_status(pod, node, pod_ip, self._start_times[uid], started)
        for container in pod["spec"].get("containers") or []:
            path = f"spec.containers{{{container['name']}}}"
            self.recorder.emit(pod, "Normal", "Pulled",
                               f'Container image "{container.get("image", "")}" already present '
                               "on machine", component="kubelet", host=host, field_path=path)
            self.recorder.emit(pod, "Normal", "Created", f"Created container: {container['name']}",
                               component="kubelet", host=host, field_path=path)
        await self._patch_status(pod, status)
        for container in pod["spec"].get("containers") or []:
            self.recorder.emit(pod, "Normal", "Started", f"Started container {container['name']}",
                               component="kubelet", host=host,
                               field_path=f"spec.containers{{{container['name']}}}")

    async def _patch_status(self, pod: Obj, status: Obj) -> None:
        try:
            await self.client.request("PATCH", pod_path(pod, "/status"), {"status": status},
                                      content_type=STRATEGIC_MERGE_PATCH)
        except ApiError as exc:
            if exc.status != 404:
                raise
            return
        self._written[str(pod["metadata"]["uid"])] = status

    # -- termination --------------------------------------------------------------------------

    async def _terminate(self, pod: Obj) -> None:
        """Stop the containers, report them terminated, then remove the pod (grace period 0).

        A start still in flight finishes first, as a kubelet's pod worker runs one pod's
        syncs one at a time: a pod deleted a millisecond after it was bound was otherwise
        reported Running by the start and then Succeeded with no terminated container (the
        deletion event's copy had none running), so nobody could tell when it stopped."""
        uid = str(pod["metadata"]["uid"])
        in_flight = self._busy.get(uid)
        if in_flight is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(in_flight.wait(), START_PATIENCE)
        written = self._written.get(uid)
        if written is not None:
            pod = {**pod, "status": {**(pod.get("status") or {}), **written}}
        host, finished = pod["spec"]["nodeName"], rfc3339()
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            self.recorder.emit(pod, "Normal", "Killing", f"Stopping container {cs.get('name')}",
                               component="kubelet", host=host,
                               field_path=f"spec.containers{{{cs.get('name')}}}")
        # Free the pod's resources before its terminal phase is written, as a kubelet's pod
        # worker knows a pod terminated before its status manager says so: kube-scheduler
        # drops Succeeded pods at once and may bind the next pod here within milliseconds.
        self._admitted.release(str(pod["metadata"]["uid"]))
        await self._patch_status(pod, succeeded_status(pod, finished))
        self.on_terminated(str(pod["metadata"]["uid"]))
        await self._delete(pod)

    async def _delete(self, pod: Obj) -> None:
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                "preconditions": {"uid": pod["metadata"]["uid"]}}
        try:
            await self.client.request("DELETE", pod_path(pod), body)
        except ApiError as exc:
            if exc.status not in (404, 409):
                raise
