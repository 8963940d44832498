"""The one place that calls the Kubernetes API.

Every call is idempotent from the caller's view: creating what exists and deleting what is gone
are successes, because a level-based reconciler replays its actions after any crash or stale
read. The official client is synchronous, so each of its calls runs in this module's thread
pool and the async reconciler awaits it; nothing here ever blocks the event loop. The status
PATCH every heartbeat makes goes over `rest.RestClient` on the loop instead, at half the CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import kubernetes
from kubernetes.client.exceptions import ApiException

from gpurental import metrics
from gpurental.constants import GROUP, RENTALS, VERSION, WALLETS
from gpurental.observed import pinned_node
from gpurental.rest import RestClient

log = logging.getLogger(__name__)
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


class Conflict(Exception):
    """The object changed since it was read (409) or a JSON-patch test failed (422)."""


def load_config() -> kubernetes.client.Configuration:
    """In-cluster config inside a pod, else the kubeconfig (KUBECONFIG honoured)."""
    config = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=config)
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(client_configuration=config)
    return config


_URGENT = contextvars.ContextVar("gpurental_urgent_calls", default=False)
URGENT_THREADS = 4
STREAM_CONNECTIONS = 64  # idle connections kept for the informers (one per stream in use)


async def _timed(verb: str, call: Awaitable[Any]) -> Any:
    """Await one API call, timing it and counting its errors by verb and status code."""
    started = time.monotonic()
    try:
        return await call
    except ApiException as exc:
        metrics.API_ERRORS.labels(verb=verb, code=str(exc.status)).inc()
        raise
    finally:
        metrics.API_LATENCY.labels(verb=verb).observe(time.monotonic() - started)


class Kube:
    """Async facade over the synchronous client, with its own bounded thread pools."""

    def __init__(self, config: kubernetes.client.Configuration, threads: int = 16) -> None:
        # urllib3 keeps one connection per thread in flight; a pool smaller than the thread
        # count would make threads queue for sockets and show up as stop latency.
        config.connection_pool_maxsize = threads + URGENT_THREADS
        self.api = kubernetes.client.ApiClient(config)
        # The informers' lists and watch streams have a client of their own: a watch holds
        # its connection for minutes, and in the calls' pool it would push the calls' idle
        # connections out, to be opened (TLS and all) again on the next call.
        streams = copy.copy(config)
        streams.connection_pool_maxsize = STREAM_CONNECTIONS
        self.streams = kubernetes.client.ApiClient(streams)
        self.core = kubernetes.client.CoreV1Api(self.api)
        self.custom = kubernetes.client.CustomObjectsApi(self.api)
        self.networking = kubernetes.client.NetworkingV1Api(self.api)
        self._coordination = kubernetes.client.CoordinationV1Api(self.api)
        self.rest = RestClient(config, connections=threads + URGENT_THREADS)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="k8s")
        # Stops and pauses get threads of their own: the executor's queue is FIFO, and a wave
        # of heartbeat writes (a thousand rentals started together tick together) would
        # otherwise hold a user's stop behind it.
        self._urgent_pool = ThreadPoolExecutor(max_workers=URGENT_THREADS,
                                               thread_name_prefix="k8s-urgent")

    @staticmethod
    @contextlib.contextmanager
    def urgent_calls(urgent: bool = True) -> Iterator[None]:
        """Calls made inside (by this task) use the stop-and-pause threads."""
        token = _URGENT.set(urgent)
        try:
            yield
        finally:
            _URGENT.reset(token)

    async def _run(self, verb: str, fn: Callable[[], Any]) -> Any:
        loop = asyncio.get_running_loop()
        pool = self._urgent_pool if _URGENT.get() else self._pool
        return await _timed(verb, loop.run_in_executor(pool, fn))

    async def _raw(self, verb: str, fn: Callable[..., Any], *args: Any,
                   **kwargs: Any) -> dict[str, Any]:
        """Call a typed CoreV1Api method and return the JSON body as a dict. Skipping the
        client's model classes matters at scale: turning a Pod into a V1Pod and back costs
        milliseconds of CPU under the GIL per call, which at a thousand creates queued behind
        it as stop latency and provisioning time."""
        response = await self._run(verb, functools.partial(
            fn, *args, _preload_content=False, **kwargs))
        return cast(dict[str, Any], json.loads(response.data or b"{}"))

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._urgent_pool.shutdown(wait=False, cancel_futures=True)
        self.api.close()
        self.streams.close()
        await self.rest.close()

    # --- streams (called from an informer's own thread, never from the event loop) -----------

    def get_path(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        """GET a collection by its URL path (a list), blocking; JSON as a dict."""
        response = self.open_path(path, query, timeout=(10, 120))
        try:
            return cast(dict[str, Any], json.loads(response.data or b"{}"))
        finally:
            response.release_conn()

    def open_path(self, path: str, query: dict[str, str],
                  timeout: tuple[float, float]) -> Any:
        """GET by URL path, blocking, the body left unread (a watch's stream: urllib3's
        response). Raises ApiException on an error status, as the typed methods do."""
        request = self.streams.param_serialize(
            "GET", path, query_params=list(query.items()),
            header_params={"Accept": "application/json"}, auth_settings=["BearerToken"])
        response = self.streams.call_api(*request, _request_timeout=timeout)
        if not 200 <= response.status <= 299:
            response.read()
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        return response.response

    # --- events and leases -------------------------------------------------------------------

    async def post_event(self, body: dict[str, Any]) -> None:
        await self._raw("create", self.core.create_namespaced_event,
                        body["metadata"]["namespace"], body)

    async def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await self._raw("get", self._coordination.read_namespaced_lease,
                                   name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def write_lease(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create the Lease, or replace it conditionally on the resourceVersion it carries:
        Conflict if another replica wrote it first (409, or 409 on create: it exists)."""
        name = body["metadata"]["name"]
        try:
            if body["metadata"].get("resourceVersion"):
                return await self._raw("update", self._coordination.replace_namespaced_lease,
                                       name, namespace, body)
            return await self._raw("create", self._coordination.create_namespaced_lease,
                                   namespace, body)
        except ApiException as exc:
            if exc.status == 409:
                raise Conflict(f"lease {namespace}/{name} was written by another") from None
            raise

    # --- rentals ---------------------------------------------------------------------------

    async def get_rental(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return cast(dict[str, Any], await self._run(
                "get", lambda: self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, RENTALS, name)))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def patch_status(
        self, plural: str, namespace: str | None, name: str, status_patch: dict[str, Any],
        resource_version: str | None,
    ) -> dict[str, Any]:
        """Merge-patch status. With a resourceVersion the write is conditional: a stale read
        raises Conflict instead of overwriting a newer meter."""
        body: dict[str, Any] = {"status": status_patch}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        scope = f"namespaces/{namespace}/" if namespace is not None else ""
        path = f"/apis/{GROUP}/{VERSION}/{scope}{plural}/{name}/status"
        try:
            return await _timed("patch_status", self.rest.request(
                "PATCH", path, body=body, content_type=MERGE_PATCH))
        except ApiException as exc:
            if exc.status == 409:
                raise Conflict(f"{plural} {namespace}/{name} changed") from None
            raise

    async def add_finalizer(self, namespace: str, name: str, finalizer: str,
                            existing: tuple[str, ...]) -> dict[str, Any] | None:
        # Appending with JSON patch leaves other controllers' finalizers alone.
        ops: list[dict[str, Any]]
        if existing:
            ops = [{"op": "add", "path": "/metadata/finalizers/-", "value": finalizer}]
        else:
            ops = [{"op": "add", "path": "/metadata/finalizers", "value": [finalizer]}]
        return await self._json_patch_rental(namespace, name, ops)

    async def remove_finalizer(self, namespace: str, name: str, finalizer: str,
                               existing: tuple[str, ...]) -> dict[str, Any] | None:
        if finalizer not in existing:
            return None
        index = existing.index(finalizer)
        # The test op makes the removal exact even if the list changed since it was read.
        ops = [
            {"op": "test", "path": f"/metadata/finalizers/{index}", "value": finalizer},
            {"op": "remove", "path": f"/metadata/finalizers/{index}"},
        ]
        return await self._json_patch_rental(namespace, name, ops)

    async def _json_patch_rental(self, namespace: str, name: str,
                                 ops: list[dict[str, Any]]) -> dict[str, Any] | None:
        def call() -> Any:
            return self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, RENTALS, name, ops, _content_type=JSON_PATCH)

        try:
            result: dict[str, Any] = await self._run("patch", call)
            return result
        except ApiException as exc:
            if exc.status == 404:
                return None
            if exc.status in (409, 422):
                raise Conflict(f"gpurental {namespace}/{name}: {exc.reason}") from None
            raise

    # --- children --------------------------------------------------------------------------

    async def create(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """Create a pod, PVC, Secret or Service; None if it already exists."""
        kind, namespace = body["kind"], body["metadata"]["namespace"]
        calls: dict[str, Callable[..., Any]] = {
            "Pod": self.core.create_namespaced_pod,
            "PersistentVolumeClaim": self.core.create_namespaced_persistent_volume_claim,
            "Secret": self.core.create_namespaced_secret,
            "Service": self.core.create_namespaced_service,
            "Ingress": self.networking.create_namespaced_ingress,
        }
        try:
            return await self._raw("create", calls[kind], namespace, body)
        except ApiException as exc:
            if exc.status == 409:
                return None
            raise

    async def apply_secret(self, body: dict[str, Any]) -> None:
        """Create the SSH-keys Secret, or update its keys in place so the kubelet refreshes
        the mounted file without restarting the pod."""
        if await self.create(body) is not None:
            return
        meta = body["metadata"]
        patch = {"metadata": {"annotations": meta["annotations"]},
                 "stringData": body["stringData"]}
        await self._raw("patch", self.core.patch_namespaced_secret, meta["name"],
                        meta["namespace"], patch, _content_type=STRATEGIC_MERGE_PATCH)

    async def delete(self, kind: str, namespace: str, name: str,
                     grace_period_seconds: int | None = None) -> bool:
        """Delete a pod, PVC, Secret or Service; False if it was already gone."""
        calls: dict[str, Callable[..., Any]] = {
            "Pod": self.core.delete_namespaced_pod,
            "PersistentVolumeClaim": self.core.delete_namespaced_persistent_volume_claim,
            "Secret": self.core.delete_namespaced_secret,
            "Service": self.core.delete_namespaced_service,
            "Ingress": self.networking.delete_namespaced_ingress,
        }
        grace = {} if grace_period_seconds is None else {
            "grace_period_seconds": grace_period_seconds}
        try:
            await self._raw("delete", calls[kind], name, namespace,
                            propagation_policy="Background", **grace)
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise

    async def warning_events(self, namespace: str, names: list[str]) -> list[dict[str, Any]]:
        """Warning events about the named objects, newest last (for Failed messages)."""
        found: list[dict[str, Any]] = []
        for name in names:
            selector = f"involvedObject.name={name},type=Warning"
            result = await self._raw("list", self.core.list_namespaced_event, namespace,
                                     field_selector=selector)
            found.extend(result.get("items") or [])
        found.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
        return found

    async def pod_end(self, namespace: str, pod_uid: str) -> tuple[str | None, str | None]:
        """What the Events of a vanished pod tell: when the kubelet began stopping its
        containers (the first Killing Event), and the scheduler's Preempted message if any."""
        if not pod_uid:
            return None, None
        result = await self._raw("list", self.core.list_namespaced_event, namespace,
                                 field_selector=f"involvedObject.uid={pod_uid}")
        events = result.get("items") or []
        stamps = sorted(str(e.get("firstTimestamp") or e.get("eventTime")) for e in events
                        if e.get("reason") == "Killing"
                        and (e.get("firstTimestamp") or e.get("eventTime")))
        preempted = next((str(e.get("message") or "") for e in events
                          if e.get("reason") == "Preempted"), None)
        return (stamps[0] if stamps else None), preempted

    # --- nodes -----------------------------------------------------------------------------

    async def node_heartbeat(self, node: str) -> str | None:
        """The renewTime of a node's Lease (the kubelet's heartbeat), if readable."""
        try:
            lease = await self._raw(
                "get", self._coordination.read_namespaced_lease, node, "kube-node-lease")
        except ApiException as exc:
            if exc.status in (403, 404):
                return None
            raise
        return (lease.get("spec") or {}).get("renewTime")

    async def volume_node(self, volume: str) -> str | None:
        """The one node a PersistentVolume is pinned to, None if it can move (or is gone)."""
        try:
            body = await self._raw("get", self.core.read_persistent_volume, volume)
        except ApiException as exc:
            if exc.status in (403, 404):
                return None
            raise
        return pinned_node(body)

    # --- wallets ---------------------------------------------------------------------------

    async def get_wallet(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return cast(dict[str, Any], await self._run(
                "get", lambda: self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, WALLETS, name)))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
