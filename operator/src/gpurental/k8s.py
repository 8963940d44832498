"""The one place that calls the Kubernetes API.

Every call is idempotent from the caller's view: creating what exists and deleting what is gone
are successes, because a level-based reconciler replays its actions after any crash or stale
read. The calls run on the event loop over `rest.RestClient` (aiohttp), the informers' lists
and watch streams too; the official client gives the Configuration and its ApiException.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any, TypeVar

import kubernetes
from kubernetes.client.exceptions import ApiException

from gpurental import metrics
from gpurental.constants import GROUP, RENTALS, VERSION, WALLETS
from gpurental.observed import pinned_node
from gpurental.rest import ApiUnreachable, RestClient

log = logging.getLogger(__name__)
T = TypeVar("T")
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
URGENT_CONNECTIONS = 4
LIST_TIMEOUT = 120.0  # seconds for one page of an informer's listing

CORE = "/api/v1"
COORDINATION = "/apis/coordination.k8s.io/v1"
CUSTOM = f"/apis/{GROUP}/{VERSION}"
_CHILDREN = {  # kind -> its collection under a namespace
    "Pod": f"{CORE}/namespaces/{{}}/pods",
    "PersistentVolumeClaim": f"{CORE}/namespaces/{{}}/persistentvolumeclaims",
    "Secret": f"{CORE}/namespaces/{{}}/secrets",
    "Service": f"{CORE}/namespaces/{{}}/services",
    "Ingress": "/apis/networking.k8s.io/v1/namespaces/{}/ingresses",
}


UNREACHABLE = "unreachable"  # gpurental_api_errors_total's code for a call with no answer


async def _timed(verb: str, call: Awaitable[T]) -> T:
    """Await one API call, timing it and counting its errors by verb and status code
    ("unreachable" for no answer at all: a refused or dropped connection, a timeout)."""
    started = time.monotonic()
    try:
        return await call
    except ApiException as exc:
        metrics.labelled(metrics.API_ERRORS, verb, str(exc.status)).inc()
        raise
    except ApiUnreachable:
        metrics.labelled(metrics.API_ERRORS, verb, UNREACHABLE).inc()
        raise
    finally:
        metrics.labelled(metrics.API_LATENCY, verb).observe(time.monotonic() - started)


class Kube:
    """The API calls the operator makes, its informers' lists and watches included, all on
    the event loop (`rest.RestClient`)."""

    def __init__(self, config: kubernetes.client.Configuration, connections: int = 32) -> None:
        self._calls = RestClient(config, connections=connections)
        # Stops, pauses and Lease renewals get connections of their own: a connector's queue
        # is FIFO, and a wave of heartbeat writes (a thousand rentals started together tick
        # together) would otherwise hold a user's stop behind it.
        self._urgent = RestClient(config, connections=URGENT_CONNECTIONS)
        # The informers' lists and watches: a watch holds its connection for minutes, so
        # they have connections of their own (as many as there are streams: no limit).
        self._streams = RestClient(config, connections=0, timeout=LIST_TIMEOUT)

    @staticmethod
    @contextlib.contextmanager
    def urgent_calls(urgent: bool = True) -> Iterator[None]:
        """Calls made inside (by this task) use the stop-and-pause connections."""
        token = _URGENT.set(urgent)
        try:
            yield
        finally:
            _URGENT.reset(token)

    async def _call(self, verb: str, method: str, path: str, *, body: Any = None,
                    content_type: str = "application/json",
                    query: dict[str, str] | None = None) -> dict[str, Any]:
        client = self._urgent if _URGENT.get() else self._calls
        return await _timed(verb, client.request(
            method, path, body=body, content_type=content_type, query=query))

    async def _get(self, path: str, *, missing: tuple[int, ...] = (404,)) -> dict[str, Any] | None:
        """GET one object; None if the answer is one of `missing`."""
        try:
            return await self._call("get", "GET", path)
        except ApiException as exc:
            if exc.status in missing:
                return None
            raise

    async def close(self) -> None:
        for client in (self._calls, self._urgent, self._streams):
            await client.close()

    # --- the informers' lists and watches ------------------------------------------------------

    async def list_page(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        """One page of a collection by its URL path (a list)."""
        return await _timed("list", self._streams.request("GET", path, query=query))

    def watch(self, path: str, query: dict[str, str], *,
              read_timeout: float) -> contextlib.AbstractAsyncContextManager[
                  AsyncIterator[bytes]]:
        """A watch of a collection by its URL path: its body's chunks as they arrive."""
        return self._streams.stream(path, query, read_timeout=read_timeout)

    # --- events and leases -------------------------------------------------------------------

    async def post_event(self, body: dict[str, Any]) -> None:
        namespace = body["metadata"]["namespace"]
        await self._call("create", "POST", f"{CORE}/namespaces/{namespace}/events", body=body)

    async def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get(f"{COORDINATION}/namespaces/{namespace}/leases/{name}")

    async def write_lease(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create the Lease, or replace it conditionally on the resourceVersion it carries:
        Conflict if another replica wrote it first (409, or 409 on create: it exists)."""
        name = body["metadata"]["name"]
        leases = f"{COORDINATION}/namespaces/{namespace}/leases"
        try:
            if body["metadata"].get("resourceVersion"):
                return await self._call("update", "PUT", f"{leases}/{name}", body=body)
            return await self._call("create", "POST", leases, body=body)
        except ApiException as exc:
            if exc.status == 409:
                raise Conflict(f"lease {namespace}/{name} was written by another") from None
            raise

    # --- rentals ---------------------------------------------------------------------------

    async def get_rental(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get(f"{CUSTOM}/namespaces/{namespace}/{RENTALS}/{name}")

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
        try:
            return await self._call("patch_status", "PATCH",
                                    f"{CUSTOM}/{scope}{plural}/{name}/status", body=body,
                                    content_type=MERGE_PATCH)
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
        try:
            return await self._call("patch", "PATCH",
                                    f"{CUSTOM}/namespaces/{namespace}/{RENTALS}/{name}",
                                    body=ops, content_type=JSON_PATCH)
        except ApiException as exc:
            if exc.status == 404:
                return None
            if exc.status in (409, 422):
                raise Conflict(f"gpurental {namespace}/{name}: {exc.reason}") from None
            raise

    # --- children --------------------------------------------------------------------------

    async def create(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """Create a pod, PVC, Secret, Service or Ingress; None if it already exists."""
        collection = _CHILDREN[body["kind"]].format(body["metadata"]["namespace"])
        try:
            return await self._call("create", "POST", collection, body=body)
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
        path = _CHILDREN["Secret"].format(meta["namespace"]) + "/" + meta["name"]
        await self._call("patch", "PATCH", path, body=patch,
                         content_type=STRATEGIC_MERGE_PATCH)

    async def delete(self, kind: str, namespace: str, name: str,
                     grace_period_seconds: int | None = None) -> bool:
        """Delete a pod, PVC, Secret, Service or Ingress; False if it was already gone."""
        query = {"propagationPolicy": "Background"}
        if grace_period_seconds is not None:
            query["gracePeriodSeconds"] = str(grace_period_seconds)
        try:
            await self._call("delete", "DELETE", f"{_CHILDREN[kind].format(namespace)}/{name}",
                             query=query)
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise

    async def _events(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        found = await self._call("list", "GET", f"{CORE}/namespaces/{namespace}/events",
                                 query={"fieldSelector": selector})
        return list(found.get("items") or [])

    async def warning_events(self, namespace: str, names: list[str]) -> list[dict[str, Any]]:
        """Warning events about the named objects, newest last (for Failed messages)."""
        found: list[dict[str, Any]] = []
        for name in names:
            found.extend(await self._events(
                namespace, f"involvedObject.name={name},type=Warning"))
        found.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
        return found

    async def pod_end(self, namespace: str, pod_uid: str) -> tuple[str | None, str | None]:
        """What the Events of a vanished pod tell: when the kubelet began stopping its
        containers (the first Killing Event), and the scheduler's Preempted message if any."""
        if not pod_uid:
            return None, None
        events = await self._events(namespace, f"involvedObject.uid={pod_uid}")
        stamps = sorted(str(e.get("firstTimestamp") or e.get("eventTime")) for e in events
                        if e.get("reason") == "Killing"
                        and (e.get("firstTimestamp") or e.get("eventTime")))
        preempted = next((str(e.get("message") or "") for e in events
                          if e.get("reason") == "Preempted"), None)
        return (stamps[0] if stamps else None), preempted

    # --- nodes -----------------------------------------------------------------------------

    async def node_heartbeat(self, node: str) -> str | None:
        """The renewTime of a node's Lease (the kubelet's heartbeat), if readable."""
        lease = await self._get(f"{COORDINATION}/namespaces/kube-node-lease/leases/{node}",
                                missing=(403, 404))
        return None if lease is None else (lease.get("spec") or {}).get("renewTime")

    async def volume_node(self, volume: str) -> str | None:
        """The one node a PersistentVolume is pinned to, None if it can move (or is gone)."""
        body = await self._get(f"{CORE}/persistentvolumes/{volume}", missing=(403, 404))
        return None if body is None else pinned_node(body)

    # --- wallets ---------------------------------------------------------------------------

    async def get_wallet(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get(f"{CUSTOM}/namespaces/{namespace}/{WALLETS}/{name}")
