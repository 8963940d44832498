"""Simulated GPU nodes: a kubelet and a kube-scheduler that talk to the API server over HTTP.

This module owns everything a real cluster's node side would do for the operator's pods:

* registers ``Node`` objects with GPU capacity and the GPU feature discovery labels;
* schedules pending pods onto those nodes (node selector / affinity, taints, resource fit) through
  the ``pods/binding`` subresource, or reports ``PodScheduled=False`` with kube-scheduler's message
  and a ``FailedScheduling`` Event;
* runs bound pods: waits for their PVCs, fails image pulls on request, marks them Running with the
  container start time, and terminates them when they get a ``deletionTimestamp``;
* evicts pods that do not tolerate a ``NoExecute`` taint put on a node (the taint-eviction
  controller's job, honouring ``tolerationSeconds``);
* runs a tiny PVC provisioner (:mod:`kubesim.provisioner`).

It never imports the API server: it reads a kubeconfig and uses HTTP, like the real components.

The scheduler places pods only on the nodes of its own simulator (run one simulator per cluster,
or give each its own ``namespace``); it follows ``kubectl cordon`` / ``taint`` / ``label`` on them.

Driving pods by hand: the simulator leaves alone every pod whose ``spec.schedulerName`` is not
``default-scheduler`` and every pod bound (``spec.nodeName``) to a node it does not simulate, so a
test can create such a pod and write its status itself (``PATCH .../pods/NAME/status``). A pod
bound by hand to a simulated node is run by its kubelet, or rejected (``Failed``,
``OutOf<resource>``) when the node is full, as a real kubelet does.

Command line (``python -m kubesim node``; ``--taint`` applies to the ``--node`` before it)::

    --kubeconfig PATH --node gpu-1=NVIDIA-A100-SXM4-80GB:8 --taint nvidia.com/gpu=present:NoSchedule
    --node mig-1=NVIDIA-A100-SXM4-80GB:7:nvidia.com/mig-1g.10gb [--start-delay 2]
    [--pull-fail-images REGEX] [--fail-storage-class NAME] [--namespace NS] [--keep-nodes]
    [--warning-events-only]   (thousands of pods: skip routine Normal Events)

Library use::

    async with SimulatedNodes(kubeconfig, nodes=["gpu-1=NVIDIA-A100:8"]):
        ...

or, from synchronous code, ``with SimulatedNodesThread(kubeconfig, nodes=[...]): ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import logging
import os
import re
import signal
import ssl
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiohttp
import yaml

from kubesim.provisioner import Provisioner

log = logging.getLogger("kubesim.node")

try:  # orjson parses watch streams several times faster; the stdlib is the fallback
    import orjson

    def _loads(raw: bytes | str) -> Any:
        return orjson.loads(raw)

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)
except ImportError:  # pragma: no cover
    def _loads(raw: bytes | str) -> Any:
        return json.loads(raw)

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj).encode()

Obj = dict[str, Any]
Handler = Callable[[str, Obj, Obj | None], None]

GPU_RESOURCE = "nvidia.com/gpu"
DEFAULT_SCHEDULER = "default-scheduler"
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})
KUBELET_VERSION = "v1.37.0"


# --------------------------------------------------------------------------------------------
# Small helpers: time, quantities
# --------------------------------------------------------------------------------------------


def rfc3339(ts: float | None = None) -> str:
    """Whole-second RFC 3339 UTC time, the format kubelet writes (``2026-06-07T08:42:11Z``)."""
    moment = datetime.fromtimestamp(time.time() if ts is None else ts, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
            "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
            "P": Decimal("1e15"), "E": Decimal("1e18")}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]{0,2})$")


def parse_quantity(value: object) -> Decimal:
    """Parse a Kubernetes resource quantity (``500m``, ``2Gi``, ``1e3``, ``8``) into a Decimal."""
    match = _QUANTITY.match(str(value).strip())
    if not match:
        raise ValueError(f"invalid quantity {value!r}")
    number, suffix = Decimal(match.group(1)), match.group(2)
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    raise ValueError(f"invalid quantity suffix in {value!r}")


def _is_checked_resource(name: str) -> bool:
    """Resources the NodeResourcesFit filter compares: the basic ones and extended resources."""
    return name in ("cpu", "memory", "ephemeral-storage") or (
        "/" in name and not name.startswith(("kubernetes.io/", "requests.", "hugepages-"))
    )


def pod_requests(pod: Obj) -> dict[str, Decimal]:
    """Effective requests of a pod, as the scheduler computes them.

    A resource given only in ``limits`` counts as requested at its limit (the API server defaults
    requests to limits, and extended resources such as GPUs may only be given as limits).
    Init containers run one at a time, so they count with their maximum, not their sum.
    """
    spec = pod.get("spec") or {}
    total: dict[str, Decimal] = {}
    for container in spec.get("containers") or []:
        for name, amount in _container_requests(container).items():
            total[name] = total.get(name, Decimal(0)) + amount
    for container in spec.get("initContainers") or []:
        for name, amount in _container_requests(container).items():
            total[name] = max(total.get(name, Decimal(0)), amount)
    return total


def _container_requests(container: Obj) -> dict[str, Decimal]:
    resources = container.get("resources") or {}
    merged = dict(resources.get("limits") or {})
    merged.update(resources.get("requests") or {})
    out: dict[str, Decimal] = {}
    for name, value in merged.items():
        if _is_checked_resource(name):
            with contextlib.suppress(ValueError):
                out[name] = parse_quantity(value)
    return out


# --------------------------------------------------------------------------------------------
# Node specifications
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Taint:
    """A node taint; ``parse("nvidia.com/gpu=present:NoSchedule")``."""

    key: str
    value: str
    effect: str

    @classmethod
    def parse(cls, text: str) -> Taint:
        """Parse ``KEY[=VALUE]:EFFECT`` (the ``kubectl taint`` syntax)."""
        keyval, sep, effect = text.rpartition(":")
        if not sep or effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            raise ValueError(f"taint {text!r} must look like KEY[=VALUE]:NoSchedule|NoExecute|...")
        key, _, value = keyval.partition("=")
        if not key:
            raise ValueError(f"taint {text!r} has no key")
        return cls(key, value, effect)

    def to_api(self) -> Obj:
        out: Obj = {"key": self.key, "effect": self.effect}
        if self.value:
            out["value"] = self.value
        return out


@dataclass
class NodeSpec:
    """One simulated node: ``NodeSpec.parse("gpu-1=NVIDIA-A100-SXM4-80GB:8[:RESOURCE]")``."""

    name: str
    product: str
    count: int
    resource: str = GPU_RESOURCE
    taints: list[Taint] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    cpu: str = "64"
    memory: str = "512Gi"
    pods: int = 110

    @classmethod
    def parse(cls, text: str) -> NodeSpec:
        """Parse the ``--node NAME=PRODUCT:COUNT[:RESOURCE]`` syntax."""
        name, sep, rest = text.partition("=")
        parts = rest.split(":")
        if not name or not sep or len(parts) not in (2, 3) or not parts[0]:
            raise ValueError(f"node {text!r} must look like NAME=PRODUCT:COUNT[:RESOURCE]")
        try:
            count = int(parts[1])
        except ValueError:
            raise ValueError(f"node {text!r}: COUNT must be an integer") from None
        resource = parts[2] if len(parts) == 3 and parts[2] else GPU_RESOURCE
        return cls(name=name, product=parts[0], count=count, resource=resource)

    def allocatable(self) -> dict[str, Decimal]:
        return {
            "cpu": parse_quantity(self.cpu),
            "memory": parse_quantity(self.memory),
            "ephemeral-storage": parse_quantity("1Ti"),
            "pods": Decimal(self.pods),
            self.resource: Decimal(self.count),
        }

    def node_labels(self) -> dict[str, str]:
        labels = {
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "nvidia.com/gpu.present": "true",
            "nvidia.com/gpu.product": self.product,
            "nvidia.com/gpu.count": str(self.count),
        }
        if self.resource.startswith("nvidia.com/mig-"):
            labels["nvidia.com/mig.strategy"] = "mixed"
            labels[f"{self.resource}.count"] = str(self.count)
        labels.update(self.labels)
        return labels


def _as_specs(nodes: Iterable[NodeSpec | str]) -> list[NodeSpec]:
    specs = [n if isinstance(n, NodeSpec) else NodeSpec.parse(n) for n in nodes]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate node names in {names}")
    return specs


# --------------------------------------------------------------------------------------------
# HTTP client: kubeconfig, requests, watch streams
# --------------------------------------------------------------------------------------------


class ApiError(Exception):
    """A non-2xx answer from the API server, carrying its Status body."""

    def __init__(self, status: int, body: Obj):
        super().__init__(f"HTTP {status}: {body.get('message') or body}")
        self.status = status
        self.body = body


@dataclass
class ClusterConfig:
    """What we need from a kubeconfig's current context."""

    server: str
    ssl: ssl.SSLContext | bool
    headers: dict[str, str]


def _named(entries: list[Obj] | None, name: str | None) -> Obj:
    for entry in entries or []:
        if entry.get("name") == name:
            return entry
    return {}


def load_kubeconfig(path: str | os.PathLike[str]) -> ClusterConfig:
    """Read the current context of a kubeconfig: server URL, TLS settings and credentials."""
    with open(path, encoding="utf-8") as fh:
        config = yaml.safe_load(fh) or {}
    context = _named(config.get("contexts"), config.get("current-context")).get("context") or {}
    contexts = config.get("contexts") or []
    if not context and contexts:
        context = contexts[0].get("context") or {}
    cluster = _named(config.get("clusters"), context.get("cluster")).get("cluster") or {}
    if not cluster and config.get("clusters"):
        cluster = config["clusters"][0].get("cluster") or {}
    user = _named(config.get("users"), context.get("user")).get("user") or {}
    server = str(cluster.get("server", "")).rstrip("/")
    if not server:
        raise ValueError(f"kubeconfig {path} has no server")
    headers = {"Authorization": f"Bearer {user['token']}"} if user.get("token") else {}
    tls: ssl.SSLContext | bool = False
    if server.startswith("https://"):
        tls = _ssl_context(cluster, user)
    return ClusterConfig(server=server, ssl=tls, headers=headers)


def _ssl_context(cluster: Obj, user: Obj) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if cluster.get("certificate-authority-data"):
        ctx.load_verify_locations(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    elif cluster.get("certificate-authority"):
        ctx.load_verify_locations(cafile=cluster["certificate-authority"])
    if cluster.get("insecure-skip-tls-verify"):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    cert, key = user.get("client-certificate-data"), user.get("client-key-data")
    if cert and key:
        # ssl only loads client certificates from files: write them out for the call.
        with tempfile.TemporaryDirectory() as tmp:
            cert_path, key_path = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
            for target, data in ((cert_path, cert), (key_path, key)):
                with open(target, "wb") as fh:
                    fh.write(base64.b64decode(data))
            ctx.load_cert_chain(cert_path, key_path)
    elif user.get("client-certificate") and user.get("client-key"):
        ctx.load_cert_chain(user["client-certificate"], user["client-key"])
    return ctx


class KubeClient:
    """A minimal asynchronous Kubernetes REST client (JSON in, JSON out) over aiohttp."""

    def __init__(self, config: ClusterConfig, *, max_connections: int = 32, retries: int = 6):
        self.config = config
        self.retries = retries
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=self.config.ssl)
        self._session = aiohttp.ClientSession(
            connector=connector, headers={"Accept": "application/json", **self.config.headers})

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("KubeClient is not open")
        return self._session

    async def request(self, method: str, path: str, body: Obj | None = None, *,
                      params: dict[str, str] | None = None,
                      content_type: str = "application/json") -> Obj:
        """Send one request; return the decoded JSON body or raise :class:`ApiError`.

        Transient failures (429, 5xx, dropped connections) are retried with backoff, honouring
        Retry-After, as client-go does: a kubelet must not give up a status write on a blip.
        """
        data = None if body is None else _dumps(body)
        headers = {"Content-Type": content_type} if data is not None else None
        for attempt in range(self.retries + 1):
            delay = min(0.1 * 2**attempt, 2.0)
            try:
                async with self.session.request(
                        method, self.config.server + path, data=data, params=params,
                        headers=headers, timeout=aiohttp.ClientTimeout(total=60)) as resp:
                    decoded = _decode(await resp.read())
                    if resp.status < 400:
                        return decoded
                    error = ApiError(resp.status, decoded)
                    if resp.status not in RETRIABLE or attempt == self.retries:
                        raise error
                    delay = max(delay, _retry_after(resp.headers.get("Retry-After")))
            except (aiohttp.ClientConnectionError, TimeoutError):
                if attempt == self.retries:
                    raise
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def watch(self, path: str, params: dict[str, str],
                    read_timeout: float) -> AsyncIterator[Obj]:
        """Yield the events of one watch request until the server ends the stream."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=read_timeout)
        async with self.session.get(self.config.server + path, params=params,
                                    timeout=timeout) as resp:
            if resp.status >= 400:
                raise ApiError(resp.status, _decode(await resp.read()))
            buffer = b""
            async for chunk in resp.content.iter_any():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield _loads(line)
            if buffer.strip():
                yield _loads(buffer)


RETRIABLE = frozenset({429, 500, 502, 503, 504})


def _retry_after(value: str | None) -> float:
    try:
        return min(float(value or 0), 5.0)
    except ValueError:
        return 0.0


def _decode(raw: bytes) -> Obj:
    if not raw:
        return {}
    try:
        decoded = _loads(raw)
    except ValueError:
        return {"message": raw.decode(errors="replace")}
    return decoded if isinstance(decoded, dict) else {"items": decoded}


# --------------------------------------------------------------------------------------------
# Informer: list + watch into a cache, surviving disconnects and 410 Gone
# --------------------------------------------------------------------------------------------


def object_key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta.get('name')}" if namespace else str(meta.get("name"))


class Informer:
    """Keeps ``cache`` equal to a collection and calls ``handler(type, obj, old)`` on changes.

    Watches resume from the last seen resourceVersion (bookmarks included); a ``410 Gone``
    answer or ERROR event triggers a relist whose differences are replayed as synthetic
    ADDED / MODIFIED / DELETED events, so the handler never misses a transition.
    """

    def __init__(self, client: KubeClient, path: str, handler: Handler, *,
                 watch_timeout: int = 240, page_size: int = 500):
        self.client = client
        self.path = path
        self.handler = handler
        self.cache: dict[str, Obj] = {}
        self.synced = asyncio.Event()
        self._rv = ""
        self._watch_timeout = watch_timeout
        self._page_size = page_size

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                await self._relist()
                failures = 0
                await self._watch_until_gone()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                log.warning("informer %s: %s; relisting", self.path, exc)
                await asyncio.sleep(min(0.1 * 2**failures, 5.0))

    async def _list_all(self) -> tuple[list[Obj], str]:
        items: list[Obj] = []
        params = {"limit": str(self._page_size)}
        while True:
            body = await self.client.request("GET", self.path, params=params)
            items.extend(body.get("items") or [])
            meta = body.get("metadata") or {}
            if not meta.get("continue"):
                return items, str(meta.get("resourceVersion", ""))
            params = {"limit": str(self._page_size), "continue": meta["continue"]}

    async def _relist(self) -> None:
        items, self._rv = await self._list_all()
        old_cache = dict(self.cache)
        # Mutated in place: the scheduler and kubelet hold references to this dict.
        self.cache.clear()
        self.cache.update((object_key(o), o) for o in items)
        for key, old in old_cache.items():
            if key not in self.cache:
                self._emit("DELETED", old, old)
        for key, obj in self.cache.items():
            previous = old_cache.get(key)
            if previous is None:
                self._emit("ADDED", obj, None)
            elif _rv_of(previous) != _rv_of(obj):
                self._emit("MODIFIED", obj, previous)
        self.synced.set()

    async def _watch_until_gone(self) -> None:
        """Watch from the last resourceVersion; return when a relist is needed (410)."""
        while True:
            params = {"watch": "true", "resourceVersion": self._rv,
                      "allowWatchBookmarks": "true", "timeoutSeconds": str(self._watch_timeout)}
            try:
                async for event in self.client.watch(self.path, params,
                                                     read_timeout=self._watch_timeout + 30):
                    if not self._apply(event):
                        return
            except ApiError as exc:
                if exc.status == 410:
                    return
                raise
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.debug("watch %s interrupted (%s); resuming from %s", self.path, exc, self._rv)
                await asyncio.sleep(0.2)

    def _apply(self, event: Obj) -> bool:
        """Apply one watch event; False when the server says our resourceVersion is gone."""
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                return False
            raise ApiError(int(obj.get("code") or 500), obj)
        self._rv = _rv_of(obj) or self._rv
        if kind == "BOOKMARK":
            return True
        key = object_key(obj)
        old = self.cache.get(key)
        if kind == "DELETED":
            self.cache.pop(key, None)
        else:
            self.cache[key] = obj
        self._emit(str(kind), obj, old)
        return True

    def _emit(self, kind: str, obj: Obj, old: Obj | None) -> None:
        try:
            self.handler(kind, obj, old)
        except Exception:
            log.exception("handler for %s failed on %s %s", self.path, kind, object_key(obj))


def _rv_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


# --------------------------------------------------------------------------------------------
# Events and background work
# --------------------------------------------------------------------------------------------


class Background:
    """Runs fire-and-forget coroutines with bounded concurrency, keeping references to them."""

    def __init__(self, concurrency: int = 16):
        self._sem = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Any, name: str = "") -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._guarded(coro, name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guarded(self, coro: Any, name: str) -> None:
        try:
            async with self._sem:
                await coro
        except asyncio.CancelledError:
            raise
        except ApiError as exc:
            if exc.status not in (404, 409):
                log.warning("%s: %s", name, exc)
        except Exception:
            log.exception("%s failed", name)

    async def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class EventRecorder:
    """Posts core/v1 Events the way kubelet and kube-scheduler record them."""

    def __init__(self, client: KubeClient, background: Background, *,
                 warnings_only: bool = False):
        self.client = client
        self.background = background
        self.warnings_only = warnings_only  # benchmarks: skip the routine Normal events
        self._seq = itertools.count()

    def emit(self, obj: Obj, kind: str, reason: str, message: str, *, component: str,
             host: str | None = None, field_path: str | None = None) -> None:
        if self.warnings_only and kind == "Normal":
            return
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        now = rfc3339()
        involved: Obj = {"apiVersion": obj.get("apiVersion", "v1"), "kind": obj.get("kind", "Pod"),
                         "name": meta.get("name"), "namespace": meta.get("namespace"),
                         "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")}
        if field_path:
            involved["fieldPath"] = field_path
        # Real event names are "<object>.<hex nanoseconds>"; a counter keeps them unique.
        name = f"{meta.get('name')}.{time.time_ns() + next(self._seq):x}"
        event: Obj = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {k: v for k, v in involved.items() if v is not None},
            "reason": reason, "message": message, "type": kind,
            "source": {"component": component, **({"host": host} if host else {})},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": component, "reportingInstance": host or component,
        }
        path = f"/api/v1/namespaces/{namespace}/events"
        self.background.spawn(self.client.request("POST", path, event), f"event {reason}")


def pod_path(pod: Obj, sub: str = "") -> str:
    meta = pod["metadata"]
    return f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}{sub}"


MERGE_PATCH = "application/merge-patch+json"


def _with_condition(conditions: list[Obj], new: Obj) -> list[Obj]:
    """Replace the condition of ``new['type']``, keeping lastTransitionTime if status is same."""
    out = []
    for cond in conditions:
        if cond.get("type") == new["type"]:
            if cond.get("status") == new["status"] and cond.get("lastTransitionTime"):
                new = {**new, "lastTransitionTime": cond["lastTransitionTime"]}
            continue
        out.append(cond)
    out.append(new)
    return out


# --------------------------------------------------------------------------------------------
# Scheduler
# --------------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Usage:
    """The requests of a set of pods (by uid) and their running sum."""

    pods: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    used: dict[str, Decimal] = field(default_factory=dict)

    def add(self, uid: str, requests: dict[str, Decimal]) -> None:
        if uid in self.pods:
            return
        self.pods[uid] = requests
        for name, amount in requests.items():
            self.used[name] = self.used.get(name, Decimal(0)) + amount

    def remove(self, uid: str) -> bool:
        requests = self.pods.pop(uid, None)
        if requests is None:
            return False
        for name, amount in requests.items():
            self.used[name] = self.used.get(name, Decimal(0)) - amount
        return True


@dataclass
class NodeState(Usage):
    """The scheduler's view of one simulated node: allocatable and what bound pods use."""

    spec: NodeSpec
    index: int
    allocatable: dict[str, Decimal]
    next_ip: int = 2
    # What the scheduler filters on; starts from the spec and follows the live Node object,
    # so `kubectl cordon`, `kubectl taint` and `kubectl label` take effect.
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[Taint] = field(default_factory=list)
    unschedulable: bool = False

    def __post_init__(self) -> None:
        self.labels = self.labels or self.spec.node_labels()
        self.taints = self.taints or list(self.spec.taints)

    def observe(self, node: Obj) -> bool:
        """Take labels, taints and cordon from the live Node; True when any changed."""
        spec = node.get("spec") or {}
        labels = dict((node.get("metadata") or {}).get("labels") or {})
        taints = [Taint(t.get("key", ""), t.get("value") or "", t.get("effect", ""))
                  for t in spec.get("taints") or []]
        unschedulable = bool(spec.get("unschedulable"))
        changed = (labels, taints, unschedulable) != (self.labels, self.taints,
                                                      self.unschedulable)
        self.labels, self.taints, self.unschedulable = labels, taints, unschedulable
        return changed

    @property
    def host_ip(self) -> str:
        return f"192.168.{self.index // 250}.{self.index % 250 + 2}"

    def allocate_pod_ip(self) -> str:
        ip = f"10.{244 + self.index // 256}.{self.index % 256}.{self.next_ip}"
        self.next_ip = self.next_ip + 1 if self.next_ip < 254 else 2
        return ip


@dataclass
class FilterResult:
    reasons: list[str]
    unresolvable: bool


def untolerated_taint(taints: list[Taint], tolerations: list[Obj]) -> Taint | None:
    """First NoSchedule/NoExecute taint no toleration tolerates (as TaintToleration filters)."""
    for taint in taints:
        if taint.effect not in ("NoSchedule", "NoExecute"):
            continue
        if not any(_tolerates(tol, taint) for tol in tolerations):
            return taint
    return None


def _tolerates(tol: Obj, taint: Taint) -> bool:
    if tol.get("effect") and tol["effect"] != taint.effect:
        return False
    key, operator = tol.get("key") or "", tol.get("operator") or "Equal"
    if key and key != taint.key:
        return False
    if operator == "Exists":
        return True
    return bool(key) and (tol.get("value") or "") == taint.value


def matches_node_selector(pod: Obj, labels: dict[str, str], node_name: str) -> bool:
    """nodeSelector plus required node affinity, as the NodeAffinity filter checks them."""
    spec = pod.get("spec") or {}
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    affinity = ((spec.get("affinity") or {}).get("nodeAffinity") or {})
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = required.get("nodeSelectorTerms")
    if not terms:
        return True
    fields = {"metadata.name": node_name}
    return any(_term_matches(term, labels, fields) for term in terms)


def _term_matches(term: Obj, labels: dict[str, str], fields: dict[str, str]) -> bool:
    exprs = term.get("matchExpressions") or []
    field_exprs = term.get("matchFields") or []
    if not exprs and not field_exprs:
        return False  # an empty term matches no objects
    return (all(_expr_matches(e, labels) for e in exprs)
            and all(_expr_matches(e, fields) for e in field_exprs))


def _expr_matches(expr: Obj, labels: dict[str, str]) -> bool:
    key, op, values = expr.get("key", ""), expr.get("operator"), expr.get("values") or []
    present, value = key in labels, labels.get(key)
    if op == "In":
        return present and value in values
    if op == "NotIn":
        return not present or value not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and values:
        try:
            number, bound = int(str(value)), int(values[0])
        except ValueError:
            return False
        return number > bound if op == "Gt" else number < bound
    return False


CORDONED = Taint("node.kubernetes.io/unschedulable", "", "NoSchedule")


def _eviction_delay(taints: list[Taint], tolerations: list[Obj]) -> float | None:
    """Seconds before NoExecute ``taints`` evict a pod, None for never (taint-eviction rules).

    An untolerated taint evicts at once; otherwise the smallest ``tolerationSeconds`` among the
    tolerations in use applies, and without any the pod stays.
    """
    used: list[Obj] = []
    for taint in taints:
        matching = [t for t in tolerations if _tolerates(t, taint)]
        if not matching:
            return 0.0
        used.extend(matching)
    bounded = [float(t["tolerationSeconds"]) for t in used
               if t.get("tolerationSeconds") is not None]
    return max(0.0, min(bounded)) if bounded else None


def filter_node(pod: Obj, requests: dict[str, Decimal], node: NodeState) -> FilterResult:
    """Run kube-scheduler's default filters in its order; stop at the first failing plugin."""
    spec = pod.get("spec") or {}
    tolerations = spec.get("tolerations") or []
    if node.unschedulable and untolerated_taint([CORDONED], tolerations):
        return FilterResult(["node(s) were unschedulable"], True)
    taint = untolerated_taint(node.taints, tolerations)
    if taint is not None:
        # kube-scheduler 1.37 no longer names the taint.
        return FilterResult(["node(s) had untolerated taint(s)"], True)
    if not matches_node_selector(pod, node.labels, node.spec.name):
        return FilterResult(["node(s) didn't match Pod's node affinity/selector"], True)
    return _fit_resources(requests, node)


def _fit_resources(requests: dict[str, Decimal], node: NodeState) -> FilterResult:
    reasons: list[str] = []
    unresolvable = False
    if len(node.pods) + 1 > node.allocatable["pods"]:
        reasons.append("Too many pods")
    for name in sorted(requests):
        wanted = requests[name]
        if wanted <= 0:
            continue
        allocatable = node.allocatable.get(name, Decimal(0))
        if wanted > allocatable - node.used.get(name, Decimal(0)):
            reasons.append(f"Insufficient {name}")
            # More than the whole node has: evicting pods could never help.
            unresolvable = unresolvable or wanted > allocatable
    return FilterResult(reasons, unresolvable)


def unschedulable_message(results: Sequence[FilterResult]) -> str:
    """kube-scheduler's FitError text, preemption (PostFilter) part included."""
    if not results:
        return "no nodes available to schedule pods"
    total = len(results)
    histogram: dict[str, int] = {}
    preemption: dict[str, int] = {}
    for result in results:
        for reason in result.reasons:
            histogram[reason] = histogram.get(reason, 0) + 1
        verdict = ("Preemption is not helpful for scheduling" if result.unresolvable
                   else "No preemption victims found for incoming pod")
        preemption[verdict] = preemption.get(verdict, 0) + 1

    def joined(counts: dict[str, int]) -> str:
        return ", ".join(sorted(f"{n} {reason}" for reason, n in counts.items()))

    return (f"0/{total} nodes are available: {joined(histogram)}. "
            f"preemption: 0/{total} nodes are available: {joined(preemption)}.")


def _spec_changed(old: Obj, new: Obj) -> bool:
    return bool(old.get("spec") != new.get("spec")
                or (old.get("metadata") or {}).get("labels")
                != (new.get("metadata") or {}).get("labels"))


class Scheduler:
    """Binds pending pods to simulated nodes, or reports why none fits.

    Pods are tried in arrival order. A pod that fits nowhere waits in ``_unschedulable``
    until capacity frees up (a pod on our nodes ends), like kube-scheduler's unschedulable
    queue; its condition and Event are written only when the message changes.
    """

    def __init__(self, client: KubeClient, nodes: dict[str, NodeState], recorder: EventRecorder,
                 pods: dict[str, Obj], background: Background):
        self.client = client
        self.nodes = nodes
        self.recorder = recorder
        self.pods = pods  # the pod informer's cache, keyed "namespace/name"
        self.background = background
        self._active: dict[str, str] = {}  # uid -> key, in arrival order
        self._unschedulable: dict[str, str] = {}
        self._reported: dict[str, str] = {}  # uid -> last Unschedulable message
        self._requests: dict[str, dict[str, Decimal]] = {}
        self._assumed: dict[str, str] = {}  # uid -> node, bound but not yet seen bound
        self._wake = asyncio.Event()

    # -- informer side ------------------------------------------------------------------------

    def on_pod(self, kind: str, pod: Obj, old: Obj | None) -> None:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        uid = str(meta.get("uid"))
        if kind == "DELETED":
            self._forget(uid)
            self._release(uid)
            return
        node_name = spec.get("nodeName")
        if node_name:
            self._forget(uid)
            self._assumed.pop(uid, None)
            self._account(uid, pod, node_name)
        elif uid not in self._assumed and self._wants_scheduling(pod):
            if uid in self._unschedulable and old is not None and _spec_changed(old, pod):
                del self._unschedulable[uid]  # e.g. a toleration added: try again now
            if uid not in self._unschedulable and uid not in self._active:
                self._active[uid] = object_key(pod)
                self._wake.set()
        elif uid not in self._assumed:
            self._forget(uid)

    @staticmethod
    def _wants_scheduling(pod: Obj) -> bool:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        status = pod.get("status") or {}
        return (not meta.get("deletionTimestamp")
                and spec.get("schedulerName", DEFAULT_SCHEDULER) in ("", DEFAULT_SCHEDULER)
                and status.get("phase", "Pending") == "Pending"
                and not spec.get("schedulingGates"))

    def on_node(self, kind: str, node: Obj, old: Obj | None) -> None:
        state = self.nodes.get(str((node.get("metadata") or {}).get("name")))
        if state is not None and kind != "DELETED" and state.observe(node):
            self._retry_unschedulable()
            self._evict_untolerated(state)

    def _evict_untolerated(self, node: NodeState) -> None:
        """The taint-eviction controller: a NoExecute taint evicts pods that do not tolerate it.

        A matching toleration with ``tolerationSeconds`` delays the eviction by that long.
        """
        no_execute = [t for t in node.taints if t.effect == "NoExecute"]
        if not no_execute:
            return
        for pod in list(self.pods.values()):
            spec, meta = pod.get("spec") or {}, pod.get("metadata") or {}
            if (spec.get("nodeName") != node.spec.name or meta.get("deletionTimestamp")
                    or (pod.get("status") or {}).get("phase") in TERMINAL_PHASES):
                continue
            delay = _eviction_delay(no_execute, spec.get("tolerations") or [])
            if delay is not None:
                self.background.spawn(self._evict(pod, delay), f"evict {object_key(pod)}")

    async def _evict(self, pod: Obj, delay: float) -> None:
        await asyncio.sleep(delay)
        meta = pod["metadata"]
        current = self.pods.get(object_key(pod))
        if current is None or current["metadata"].get("uid") != meta["uid"]:
            return
        self.recorder.emit(pod, "Normal", "TaintManagerEviction",
                           f"Marking for deletion Pod {meta['namespace']}/{meta['name']}",
                           component="taint-eviction-controller")
        await self.client.request("DELETE", pod_path(pod),
                                  {"apiVersion": "v1", "kind": "DeleteOptions",
                                   "preconditions": {"uid": meta["uid"]}})

    def _retry_unschedulable(self) -> None:
        if self._unschedulable:
            self._active.update(self._unschedulable)
            self._unschedulable.clear()
            self._wake.set()

    def _account(self, uid: str, pod: Obj, node_name: str) -> None:
        node = self.nodes.get(node_name)
        if node is None:
            return
        if (pod.get("status") or {}).get("phase") in TERMINAL_PHASES:
            self._release(uid)
        else:
            node.add(uid, pod_requests(pod))

    def _release(self, uid: str) -> None:
        """A pod left a node: retry every unschedulable pod (kube-scheduler's move request)."""
        self._assumed.pop(uid, None)
        if any(node.remove(uid) for node in self.nodes.values()):
            self._retry_unschedulable()

    def release(self, uid: str) -> None:
        """Called by the kubelet once a pod's containers are terminated."""
        self._release(uid)

    def _forget(self, uid: str) -> None:
        self._active.pop(uid, None)
        self._unschedulable.pop(uid, None)
        self._reported.pop(uid, None)
        self._requests.pop(uid, None)

    # -- scheduling loop ----------------------------------------------------------------------

    async def run(self, flush_interval: float = 30.0) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), flush_interval)
            except TimeoutError:
                # Like kube-scheduler's periodic flush: retry pods nothing has woken up.
                self._active.update(self._unschedulable)
                self._unschedulable.clear()
            self._wake.clear()
            while self._active:
                uid, key = next(iter(self._active.items()))
                del self._active[uid]
                pod = self.pods.get(key)
                if pod is None or str(pod["metadata"].get("uid")) != uid:
                    continue
                if pod.get("spec", {}).get("nodeName") or not self._wants_scheduling(pod):
                    continue
                try:
                    await self._schedule_one(uid, pod)
                except Exception:  # one bad pod must not stop the scheduler
                    log.exception("scheduling %s failed; retrying later", key)
                    self._unschedulable[uid] = key

    async def _schedule_one(self, uid: str, pod: Obj) -> None:
        # A pending pod's requests cannot change: parse them once, not on every retry.
        requests = self._requests.get(uid)
        if requests is None:
            requests = self._requests[uid] = pod_requests(pod)
        results: list[FilterResult] = []
        feasible: list[NodeState] = []
        for node in self.nodes.values():
            result = filter_node(pod, requests, node)
            results.append(result)
            if not result.reasons:
                feasible.append(node)
        if not feasible:
            self._unschedulable[uid] = object_key(pod)
            await self._report_unschedulable(uid, pod, unschedulable_message(results))
            return
        best = min(feasible, key=lambda n: (self._score(n, requests), n.spec.name))
        # Like kube-scheduler's binding cycle: the pod is assumed on the node at once and bound
        # asynchronously, so the next pod is placed without waiting for this round trip.
        best.add(uid, requests)
        self._assumed[uid] = best.spec.name
        self.background.spawn(self._bind(uid, pod, best), f"bind {object_key(pod)}")

    @staticmethod
    def _score(node: NodeState, requests: dict[str, Decimal]) -> Decimal:
        """Lower is better: the most free GPUs left after placing the pod (spread out)."""
        resource = node.spec.resource
        free = node.allocatable[resource] - node.used.get(resource, Decimal(0))
        return -(free - requests.get(resource, Decimal(0)))

    async def _bind(self, uid: str, pod: Obj, node: NodeState) -> None:
        meta = pod["metadata"]
        binding = {"apiVersion": "v1", "kind": "Binding",
                   "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": uid},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": node.spec.name}}
        try:
            await self.client.request("POST", pod_path(pod, "/binding"), binding)
        except Exception as exc:
            self._forget_assumption(uid, node, object_key(pod))
            if getattr(exc, "status", None) not in (404, 409):  # gone / bound by someone else
                log.warning("binding %s to %s failed: %s", object_key(pod), node.spec.name, exc)
                await asyncio.sleep(0.5)
                self._active[uid] = object_key(pod)
                self._wake.set()
            return
        self._reported.pop(uid, None)
        self.recorder.emit(
            pod, "Normal", "Scheduled",
            f"Successfully assigned {meta['namespace']}/{meta['name']} to {node.spec.name}",
            component=DEFAULT_SCHEDULER)

    def _forget_assumption(self, uid: str, node: NodeState, key: str) -> None:
        """Undo an assumed placement; keep what the cache says if the pod is bound anyway."""
        node.remove(uid)
        self._assumed.pop(uid, None)
        current = self.pods.get(key)
        bound_to = ((current or {}).get("spec") or {}).get("nodeName")
        if current is not None and bound_to:
            self._account(uid, current, bound_to)

    async def _report_unschedulable(self, uid: str, pod: Obj, message: str) -> None:
        if self._reported.get(uid) == message:
            return
        condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                     "message": message, "lastProbeTime": None,
                     "lastTransitionTime": rfc3339()}
        conditions = _with_condition((pod.get("status") or {}).get("conditions") or [],
                                     condition)
        try:
            await self.client.request("PATCH", pod_path(pod, "/status"),
                                      {"status": {"conditions": conditions}},
                                      content_type=MERGE_PATCH)
        except ApiError as exc:
            if exc.status != 404:
                log.warning("reporting %s unschedulable failed: %s", object_key(pod), exc)
            return
        self._reported[uid] = message
        self.recorder.emit(pod, "Warning", "FailedScheduling", message,
                           component=DEFAULT_SCHEDULER)


# --------------------------------------------------------------------------------------------
# Kubelet
# --------------------------------------------------------------------------------------------


# distribution/reference's grammar, simplified: [domain[:port]/]path[:tag][@digest], with
# lower-case path components.
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*"
_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_REFERENCE = re.compile(
    rf"^(?:{_DOMAIN}(?::[0-9]+)?/)?{_PATH}(?:/{_PATH})*(?::[\w][\w.-]{{0,127}})?"
    r"(?:@sha256:[0-9a-f]{64})?$")


def _reference_error(image: str) -> str:
    """distribution/reference's parse error; upper case gets its own message."""
    first, slash, rest = image.partition("/")
    docker_hub = not slash or ("." not in first and ":" not in first and first != "localhost"
                               and first.lower() == first)
    remote = (image if docker_hub else rest).split("@")[0]
    remote = remote.rsplit(":", 1)[0] if ":" in remote.rsplit("/", 1)[-1] else remote
    if docker_hub and "/" not in remote:
        remote = f"library/{remote}"
    if remote.lower() != remote and IMAGE_REFERENCE.match(image.lower()):
        return f"invalid reference format: repository name ({remote}) must be lowercase"
    return "invalid reference format"


def full_image_ref(image: str) -> str:
    """Normalise an image name as containerd reports it (``docker.io/library/x:latest``)."""
    name, digest = image, ""
    if "@" in name:
        name, digest = name.split("@", 1)
    first = name.split("/", 1)[0]
    if "/" not in name or ("." not in first and ":" not in first and first != "localhost"):
        name = f"docker.io/{name}" if "/" in name else f"docker.io/library/{name}"
    if digest:
        return f"{name}@{digest}"
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _qos_class(pod: Obj) -> str:
    """The pod's QoS class; like the kubelet, only cpu and memory count (GPUs do not)."""
    containers = (pod.get("spec") or {}).get("containers") or []
    limits_all, any_set = True, False
    for container in containers:
        res = container.get("resources") or {}
        requests, limits = res.get("requests") or {}, res.get("limits") or {}
        any_set = any_set or any(k in ("cpu", "memory") for k in [*requests, *limits])
        for name in ("cpu", "memory"):
            if name not in limits or requests.get(name, limits[name]) != limits[name]:
                limits_all = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if limits_all else "Burstable"


def _admission_failure(requests: dict[str, Decimal], admitted: Usage,
                       allocatable: dict[str, Decimal]) -> tuple[str, str] | None:
    """(reason, message) when the pod does not fit next to the admitted pods, as kubelet says."""
    def refuse(name: str, wanted: Decimal, used: Decimal, capacity: Decimal) -> tuple[str, str]:
        scale = 1000 if name == "cpu" else 1  # kubelet reports cpu in millicores
        return (f"OutOf{name}", f"Node didn't have enough resource: {name}, requested: "
                f"{int(wanted * scale)}, used: {int(used * scale)}, capacity: "
                f"{int(capacity * scale)}")

    if len(admitted.pods) + 1 > allocatable["pods"]:
        return refuse("pods", Decimal(1), Decimal(len(admitted.pods)), allocatable["pods"])
    basic = [n for n in ("cpu", "memory", "ephemeral-storage") if n in requests]
    for name in basic + sorted(set(requests) - set(basic)):
        used = admitted.used.get(name, Decimal(0))
        capacity = allocatable.get(name, Decimal(0))
        if requests[name] > 0 and requests[name] + used > capacity:
            return refuse(name, requests[name], used, capacity)
    return None


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
        self._busy: set[str] = set()  # uids with a sync in flight
        self._done: set[str] = set()  # uids that reached Running or a pull failure
        self._terminated: set[str] = set()
        self._start_times: dict[str, str] = {}
        self._volume_waiters: dict[str, set[str]] = {}  # "ns/claim" -> pod keys
        self._reported_mounts: dict[str, str] = {}
        self._admitted: dict[str, Usage] = {}  # node -> pods the kubelet accepted
        self._admitted_on: dict[str, str] = {}  # uid -> node

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
            self._unadmit(uid)
            return
        if uid in self._done or uid in self._busy:
            return
        if phase == "Running" and self._already_running(pod):
            self._done.add(uid)  # started by an earlier simulator: keep its start times
            self._admit(pod, force=True)
            return
        rejection = self._admit(pod)
        if rejection is not None:
            self._done.add(uid)
            self.background.spawn(self._reject(pod, *rejection), f"reject {object_key(pod)}")
            return
        self._sync(pod)

    # -- admission ----------------------------------------------------------------------------

    def _admit(self, pod: Obj, *, force: bool = False) -> tuple[str, str] | None:
        """The kubelet's own resource check (GeneralPredicates) against the pods it runs.

        Scheduled pods always fit; this matters for pods bound by hand (``spec.nodeName``),
        which a real kubelet rejects with ``OutOf<resource>`` when the node is full.
        """
        uid, node = str(pod["metadata"]["uid"]), self.nodes[pod["spec"]["nodeName"]]
        admitted = self._admitted.setdefault(node.spec.name, Usage())
        if uid in admitted.pods:
            return None
        requests = pod_requests(pod)
        if not force:
            rejection = _admission_failure(requests, admitted, node.allocatable)
            if rejection is not None:
                return rejection
        admitted.add(uid, requests)
        self._admitted_on[uid] = node.spec.name
        return None

    def _unadmit(self, uid: str) -> None:
        node = self._admitted_on.pop(uid, None)
        if node is not None:
            self._admitted[node].remove(uid)

    async def _reject(self, pod: Obj, reason: str, message: str) -> None:
        self.recorder.emit(pod, "Warning", reason, message, component="kubelet",
                           host=pod["spec"]["nodeName"])
        await self._patch_status(pod, {"phase": "Failed", "reason": reason,
                                       "message": f"Pod was rejected: {message}",
                                       "qosClass": _qos_class(pod)})

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
        for store in (self._busy, self._done, self._terminated):
            store.discard(uid)
        self._unadmit(uid)
        self._start_times.pop(uid, None)
        self._reported_mounts.pop(uid, None)

    def _sync(self, pod: Obj) -> None:
        uid = str(pod["metadata"]["uid"])
        self._busy.add(uid)
        self._start_times.setdefault(uid, rfc3339())
        self.background.spawn(self._start(object_key(pod), uid), f"start {object_key(pod)}")

    # -- pod start ----------------------------------------------------------------------------

    async def _start(self, key: str, uid: str) -> None:
        try:
            outcome = await self._start_once(key, uid)
        finally:
            self._busy.discard(uid)
        if outcome == "volumes":
            # A claim may have become Bound while we were reporting: look again.
            pod = self.pods.get(key)
            if pod is not None and not self._unready_claims(pod):
                self.on_pod("MODIFIED", pod, None)

    async def _start_once(self, key: str, uid: str) -> str:
        """Try to start one pod; return what happened ("gone", "volumes", "started")."""
        pod = self._live(key, uid)
        if pod is not None and self.start_delay:
            # What `kubectl get pods` shows while a real node pulls the image.
            await self._patch_status(pod, self._pending_status(
                pod, {"reason": "ContainerCreating"}, ready_to_start=False))
            await asyncio.sleep(self.start_delay)
            pod = self._live(key, uid)
        if pod is None:
            return "gone"
        missing = await self._confirm_unready(pod, self._unready_claims(pod))
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

    async def _confirm_unready(self, pod: Obj,
                               missing: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
        """Ask the server about claims the cache lacks: its PVC watch may just lag behind."""
        confirmed = []
        namespace = pod["metadata"]["namespace"]
        for volume, claim, problem in missing:
            try:
                pvc = await self.client.request(
                    "GET", f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}")
            except ApiError as exc:
                if exc.status != 404:
                    raise
                confirmed.append((volume, claim, problem))
                continue
            if (pvc.get("status") or {}).get("phase") != "Bound":
                confirmed.append((volume, claim, f'persistentvolumeclaim "{claim}" is not bound'))
        return confirmed

    def _unready_claims(self, pod: Obj) -> list[tuple[str, str, str]]:
        """(volume, claim, problem) for each PVC volume that is missing or not Bound."""
        namespace = pod["metadata"]["namespace"]
        missing = []
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if not claim:
                continue
            pvc = self.pvcs.get(f"{namespace}/{claim}")
            if pvc is None:
                missing.append((volume["name"], claim,
                                f'persistentvolumeclaim "{claim}" not found'))
            elif (pvc.get("status") or {}).get("phase") != "Bound":
                missing.append((volume["name"], claim,
                                f'persistentvolumeclaim "{claim}" is not bound'))
        return missing

    async def _wait_for_volumes(self, pod: Obj, missing: list[tuple[str, str, str]]) -> None:
        namespace, uid = pod["metadata"]["namespace"], str(pod["metadata"]["uid"])
        for _, claim, _ in missing:
            self._volume_waiters.setdefault(f"{namespace}/{claim}", set()).add(object_key(pod))
        volumes = " ".join(sorted(v for v, _, _ in missing))
        problems = "; ".join(p for _, _, p in missing)
        message = (f"Unable to attach or mount volumes: unmounted volumes=[{volumes}], "
                   f"unattached volumes=[{volumes}]: error processing PVC "
                   f"{namespace}/{missing[0][1]}: {problems}")
        if self._reported_mounts.get(uid) == message:
            return
        self._reported_mounts[uid] = message
        waiting = {"reason": "ContainerCreating"}
        await self._patch_status(pod, self._pending_status(pod, waiting, ready_to_start=False))
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
        image = container.get("image", "")
        error = (f'Failed to apply default image tag "{image}": couldn\'t parse image name '
                 f'"{image}": {_reference_error(image)}')
        await self._patch_status(pod, self._pending_status(
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
        await self._patch_status(pod, self._pending_status(
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
        await self._patch_status(current, self._pending_status(
            current, {"reason": "ImagePullBackOff", "message": backoff}, only=container["name"]))
        emit(pod, "Normal", "BackOff", f'Back-off pulling image "{image}"', component="kubelet",
             host=host, field_path=path)
        emit(pod, "Warning", "Failed", "Error: ImagePullBackOff", component="kubelet",
             host=host, field_path=path)

    def _pending_status(self, pod: Obj, waiting: Obj, *, only: str | None = None,
                        ready_to_start: bool = True) -> Obj:
        """A Pending status whose containers wait (``only`` one with ``waiting``)."""
        uid = str(pod["metadata"]["uid"])
        node = self.nodes[pod["spec"]["nodeName"]]
        statuses = []
        for container in pod["spec"].get("containers") or []:
            reason = waiting if only in (None, container["name"]) else {
                "reason": "ContainerCreating"}
            statuses.append({"name": container["name"], "image": container.get("image", ""),
                             "imageID": "", "ready": False, "restartCount": 0,
                             "started": False, "lastState": {}, "state": {"waiting": reason}})
        not_ready = {"status": "False", "reason": "ContainersNotReady",
                     "message": "containers with unready status: ["
                     + " ".join(s["name"] for s in statuses) + "]"}
        conditions = self._conditions(pod, ready=False, not_ready=not_ready,
                                      ready_to_start=ready_to_start)
        status: Obj = {"phase": "Pending", "conditions": conditions, "hostIP": node.host_ip,
                       "hostIPs": [{"ip": node.host_ip}], "startTime": self._start_times[uid],
                       "containerStatuses": statuses, "qosClass": _qos_class(pod)}
        return status

    def _conditions(self, pod: Obj, *, ready: bool, not_ready: Obj | None = None,
                    ready_to_start: bool = True) -> list[Obj]:
        now = rfc3339()
        existing = {c.get("type"): c for c in (pod.get("status") or {}).get("conditions") or []}

        def cond(kind: str, ok: bool, extra: Obj | None = None) -> Obj:
            status = "True" if ok else "False"
            old = existing.get(kind) or {}
            since = old.get("lastTransitionTime") if old.get("status") == status else None
            out: Obj = {"type": kind, "status": status, "lastProbeTime": None,
                        "lastTransitionTime": since or now}
            if not ok and extra:
                out.update(reason=extra["reason"], message=extra["message"])
            return out

        return [cond("PodReadyToStartContainers", ready_to_start),
                cond("Initialized", True),
                cond("Ready", ready, not_ready),
                cond("ContainersReady", ready, not_ready),
                cond("PodScheduled", True)]

    async def _run(self, pod: Obj) -> None:
        uid, host = str(pod["metadata"]["uid"]), pod["spec"]["nodeName"]
        node = self.nodes[host]
        pod_ip = node.allocate_pod_ip()
        started = rfc3339()
        containers = pod["spec"].get("containers") or []
        statuses = [self._running_status(uid, c, started) for c in containers]
        status: Obj = {
            "phase": "Running", "conditions": self._conditions(pod, ready=True),
            "hostIP": node.host_ip, "hostIPs": [{"ip": node.host_ip}],
            "podIP": pod_ip, "podIPs": [{"ip": pod_ip}], "startTime": self._start_times[uid],
            "containerStatuses": statuses, "qosClass": _qos_class(pod),
        }
        inits = pod["spec"].get("initContainers") or []
        if inits:
            status["initContainerStatuses"] = [self._init_done(c, started) for c in inits]
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

    @staticmethod
    def _running_status(uid: str, container: Obj, started: str) -> Obj:
        image = container.get("image", "")
        ref = full_image_ref(image)
        return {"name": container["name"], "image": ref,
                "imageID": f"{ref.split('@')[0].rsplit(':', 1)[0]}@sha256:{_sha(ref)}",
                "containerID": f"containerd://{_sha(uid + container['name'])}",
                "ready": True, "started": True, "restartCount": 0, "lastState": {},
                "state": {"running": {"startedAt": started}}}

    @staticmethod
    def _init_done(container: Obj, started: str) -> Obj:
        ref = full_image_ref(container.get("image", ""))
        return {"name": container["name"], "image": ref, "imageID": f"{ref}@sha256:{_sha(ref)}",
                "ready": True, "started": False, "restartCount": 0, "lastState": {},
                "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                         "startedAt": started, "finishedAt": started}}}

    async def _patch_status(self, pod: Obj, status: Obj) -> None:
        try:
            await self.client.request("PATCH", pod_path(pod, "/status"), {"status": status},
                                      content_type=MERGE_PATCH)
        except ApiError as exc:
            if exc.status != 404:
                raise

    # -- termination --------------------------------------------------------------------------

    async def _terminate(self, pod: Obj) -> None:
        """Stop the containers, report them terminated, then remove the pod (grace period 0)."""
        host, finished = pod["spec"]["nodeName"], rfc3339()
        statuses = []
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            running = (cs.get("state") or {}).get("running") or {}
            self.recorder.emit(pod, "Normal", "Killing", f"Stopping container {cs.get('name')}",
                               component="kubelet", host=host,
                               field_path=f"spec.containers{{{cs.get('name')}}}")
            terminated = {"exitCode": 0, "reason": "Completed", "finishedAt": finished,
                          "startedAt": running.get("startedAt", finished)}
            if cs.get("containerID"):
                terminated["containerID"] = cs["containerID"]
            statuses.append({**cs, "ready": False, "started": False,
                             "state": {"terminated": terminated}})
        not_ready = {"reason": "PodCompleted", "message": ""}
        status: Obj = {"phase": "Succeeded", "containerStatuses": statuses,
                       "conditions": self._conditions(pod, ready=False, not_ready=not_ready,
                                                      ready_to_start=False)}
        await self._patch_status(pod, status)
        self._unadmit(str(pod["metadata"]["uid"]))
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


# --------------------------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------------------------


class SimulatedNodes:
    """Simulated GPU nodes (kubelet + scheduler + PVC provisioner) for one API server.

    ``start()`` registers the nodes and returns once the caches are synced; ``stop()`` ends
    every loop and, unless ``keep_nodes``, deletes the Node objects. With ``namespace`` only the
    pods and claims of that namespace are handled (tests use it to stay out of each other's way).
    """

    def __init__(self, kubeconfig: str | os.PathLike[str], nodes: Iterable[NodeSpec | str], *,
                 start_delay: float = 0.0, pull_fail_images: str | None = None,
                 pull_backoff: float = 1.0, fail_storage_classes: Iterable[str] = (),
                 provisioner: bool = True, keep_nodes: bool = False,
                 namespace: str | None = None, warning_events_only: bool = False,
                 scheduler: bool = True, lease_interval: float = 0.0,
                 external_provisioner: bool = False):
        self.kubeconfig = os.fspath(kubeconfig)
        # On a real control plane kube-scheduler binds, the node-lifecycle controller watches
        # the node Leases, and the PersistentVolume controller binds the volumes we provision.
        self._with_scheduler = scheduler
        self._lease_interval = lease_interval
        self._external_provisioner = external_provisioner
        self.namespace = namespace
        self.warning_events_only = warning_events_only
        self.specs = _as_specs(nodes)
        self.keep_nodes = keep_nodes
        self.nodes = {s.name: NodeState(s, i, s.allocatable()) for i, s in enumerate(self.specs)}
        self._start_delay = start_delay
        self._pull_fail = re.compile(pull_fail_images) if pull_fail_images else None
        self._pull_backoff = pull_backoff
        self._fail_classes = frozenset(fail_storage_classes)
        self._with_provisioner = provisioner
        self._tasks: list[asyncio.Task[None]] = []
        self._silent: set[str] = set()  # nodes whose heartbeats are paused
        self.client: KubeClient | None = None
        self._background: Background | None = None

    async def __aenter__(self) -> SimulatedNodes:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self, timeout: float = 30.0) -> None:
        client = self.client = KubeClient(load_kubeconfig(self.kubeconfig))
        await client.open()
        background = self._background = Background()
        recorder = EventRecorder(client, background, warnings_only=self.warning_events_only)
        scope = f"/api/v1/namespaces/{self.namespace}" if self.namespace else "/api/v1"
        pods = Informer(client, f"{scope}/pods", lambda *a: None)
        pvcs = Informer(client, f"{scope}/persistentvolumeclaims", lambda *a: None)
        scheduler = Scheduler(client, self.nodes, recorder, pods.cache, background)
        kubelet = Kubelet(client, self.nodes, recorder, background, pods.cache, pvcs.cache,
                          start_delay=self._start_delay, pull_fail=self._pull_fail,
                          pull_backoff=self._pull_backoff, on_terminated=scheduler.release)
        provisioner = Provisioner(client, recorder.emit, background.spawn,
                                  fail_classes=self._fail_classes,
                                  external=self._external_provisioner)

        def on_pod(kind: str, obj: Obj, old: Obj | None) -> None:
            if self._with_scheduler:
                scheduler.on_pod(kind, obj, old)
            kubelet.on_pod(kind, obj, old)

        def on_pvc(kind: str, obj: Obj, old: Obj | None) -> None:
            if self._with_provisioner:
                provisioner.on_pvc(kind, obj, old)
            kubelet.on_pvc(kind, obj, old)

        # The scheduler and kubelet read the informers' caches, so the informers exist first and
        # get their handlers here.
        pods.handler, pvcs.handler = on_pod, on_pvc
        nodes = Informer(client, "/api/v1/nodes",
                         scheduler.on_node if self._with_scheduler else self._observe_node)
        loops = [("nodes", nodes.run()), ("pvcs", pvcs.run()), ("pods", pods.run())]
        if self._with_scheduler:
            loops.append(("scheduler", scheduler.run()))
        if self._lease_interval > 0:
            loops.append(("leases", self._renew_leases()))
        try:
            await asyncio.wait_for(self._register_nodes(), timeout)
            for name, coro in loops:
                self._tasks.append(asyncio.create_task(coro, name=f"kubesim-node-{name}"))
            await asyncio.wait_for(asyncio.gather(
                nodes.synced.wait(), pvcs.synced.wait(), pods.synced.wait()), timeout)
        except BaseException:
            await self.stop()
            raise

    def _observe_node(self, kind: str, node: Obj, old: Obj | None) -> None:
        """Without our scheduler, the kubelet still follows its nodes' labels and taints."""
        state = self.nodes.get(str((node.get("metadata") or {}).get("name")))
        if state is not None and kind != "DELETED":
            state.observe(node)

    def pause_heartbeats(self, name: str) -> None:
        """Stop renewing one node's Lease: the node-lifecycle controller then finds it lost."""
        self._silent.add(name)

    def resume_heartbeats(self, name: str) -> None:
        self._silent.discard(name)

    async def _renew_leases(self) -> None:
        """The kubelet's node heartbeat: a Lease per node in kube-node-lease, renewed often."""
        while True:
            for name in self.nodes:
                if name not in self._silent:
                    try:
                        await self._renew_lease(name)
                    except Exception:  # the API server may be busy: next round
                        log.warning("lease renewal for node %s failed", name, exc_info=True)
            await asyncio.sleep(self._lease_interval)

    async def _renew_lease(self, name: str) -> None:
        client = self.client
        assert client is not None
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"
        spec = {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now}
        try:
            await client.request("PATCH", path, {"spec": spec}, content_type=MERGE_PATCH)
        except ApiError as exc:
            if exc.status != 404:
                raise
            node = await client.request("GET", f"/api/v1/nodes/{name}")
            owner = {"apiVersion": "v1", "kind": "Node", "name": name,
                     "uid": node["metadata"]["uid"]}
            await client.request(
                "POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": name, "namespace": "kube-node-lease",
                              "ownerReferences": [owner]},
                 "spec": spec})

    async def _register_nodes(self) -> None:
        client = self.client
        assert client is not None
        for state in self.nodes.values():
            body = self._node_object(state)
            try:
                await client.request("POST", "/api/v1/nodes", body)
            except ApiError as exc:
                if exc.status != 409:
                    raise
                path = f"/api/v1/nodes/{state.spec.name}"
                await client.request("PATCH", path, {"metadata": body["metadata"],
                                                     "spec": body["spec"]},
                                     content_type=MERGE_PATCH)
            await client.request("PATCH", f"/api/v1/nodes/{state.spec.name}/status",
                                 {"status": body["status"]}, content_type=MERGE_PATCH)

    @staticmethod
    def _node_object(state: NodeState) -> Obj:
        spec, now = state.spec, rfc3339()
        resources = {"cpu": spec.cpu, "memory": spec.memory, "ephemeral-storage": "1Ti",
                     "pods": str(spec.pods), spec.resource: str(spec.count)}
        ready = {"type": "Ready", "status": "True", "reason": "KubeletReady",
                 "message": "kubelet is posting ready status",
                 "lastHeartbeatTime": now, "lastTransitionTime": now}
        return {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": spec.name, "labels": spec.node_labels(),
                         "annotations": {"kubesim.dev/simulated": "true"}},
            "spec": {"taints": [t.to_api() for t in spec.taints],
                     "podCIDR": f"10.{244 + state.index // 256}.{state.index % 256}.0/24"},
            "status": {
                "capacity": resources, "allocatable": dict(resources), "conditions": [ready],
                "addresses": [{"type": "InternalIP", "address": state.host_ip},
                              {"type": "Hostname", "address": spec.name}],
                "nodeInfo": {"kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": "",
                             "architecture": "amd64", "operatingSystem": "linux",
                             "containerRuntimeVersion": "containerd://2.1.0",
                             "osImage": "kubesim", "kernelVersion": "6.8.0",
                             "machineID": _sha(spec.name)[:32],
                             "systemUUID": _sha("uuid" + spec.name)[:32],
                             "bootID": _sha("boot" + spec.name)[:32]},
                "phase": "Running",
            },
        }

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._background is not None:
            await self._background.cancel_all()
        client, self.client = self.client, None
        if client is None:
            return
        try:
            if not self.keep_nodes:
                # Best effort, and quick: the API server may already be gone.
                client.retries = 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._delete_nodes(client), 5.0)
        finally:
            await client.close()

    async def _delete_nodes(self, client: KubeClient) -> None:
        for name in self.nodes:
            with contextlib.suppress(ApiError, aiohttp.ClientError, TimeoutError):
                await client.request("DELETE", f"/api/v1/nodes/{name}")


class SimulatedNodesThread:
    """:class:`SimulatedNodes` on an event loop in a daemon thread, for synchronous callers."""

    def __init__(self, kubeconfig: str | os.PathLike[str], nodes: Iterable[NodeSpec | str],
                 **options: Any):
        self.sim = SimulatedNodes(kubeconfig, nodes, **options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="kubesim-node")

    def start(self, timeout: float = 60.0) -> SimulatedNodesThread:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self.sim.start(), self._loop)
        try:
            future.result(timeout)
        except BaseException:
            self._shutdown()
            raise
        return self

    def stop(self, timeout: float = 30.0) -> None:
        if not self._thread.is_alive():
            return
        try:
            asyncio.run_coroutine_threadsafe(self.sim.stop(), self._loop).result(timeout)
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> SimulatedNodesThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


class _NodeAction(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        try:
            spec = NodeSpec.parse(str(values))
        except ValueError as exc:
            parser.error(str(exc))
        namespace.nodes = [*(namespace.nodes or []), spec]


class _TaintAction(argparse.Action):
    """``--taint`` applies to the ``--node`` given before it."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        if not namespace.nodes:
            parser.error("--taint must follow the --node it applies to")
        try:
            namespace.nodes[-1].taints.append(Taint.parse(str(values)))
        except ValueError as exc:
            parser.error(str(exc))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubesim node",
        description="Simulated GPU nodes (kubelet + scheduler + PVC provisioner) over HTTP.")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--node", dest="nodes", action=_NodeAction, required=True,
                        metavar="NAME=PRODUCT:COUNT[:RESOURCE]",
                        help="a node to simulate (repeatable); RESOURCE defaults to "
                             f"{GPU_RESOURCE}")
    parser.add_argument("--taint", action=_TaintAction, metavar="KEY[=VALUE]:EFFECT",
                        help="a taint for the preceding --node (repeatable)")
    parser.add_argument("--start-delay", type=float, default=0.0, metavar="SECONDS",
                        help="time between binding and Running (simulated image pull)")
    parser.add_argument("--pull-fail-images", metavar="REGEX",
                        help="containers whose image matches fail with ErrImagePull")
    parser.add_argument("--fail-storage-class", action="append", default=[], metavar="NAME",
                        help="PVCs of this storage class stay Pending (ProvisioningFailed)")
    parser.add_argument("--no-provisioner", action="store_true",
                        help="leave PVCs alone (tests bind them by hand)")
    parser.add_argument("--namespace", help="handle only the pods and PVCs of this namespace")
    parser.add_argument("--warning-events-only", action="store_true",
                        help="skip routine Normal Events (Scheduled, Pulled, Started...): "
                             "fewer requests for benchmarks with thousands of pods")
    parser.add_argument("--no-scheduler", action="store_true",
                        help="bind nothing: a real kube-scheduler does (real control plane)")
    parser.add_argument("--lease-interval", type=float, default=0.0, metavar="SECONDS",
                        help="renew each node's Lease in kube-node-lease this often, as a "
                             "kubelet does (0: no Leases; a real control plane needs them)")
    parser.add_argument("--external-provisioner", action="store_true",
                        help="provision only claims the PersistentVolume controller hands to "
                             "kubesim.dev/hostpath and let it bind them (real control plane)")
    parser.add_argument("--keep-nodes", action="store_true",
                        help="do not delete the Node objects on exit")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


async def _serve(args: argparse.Namespace) -> None:
    sim = SimulatedNodes(args.kubeconfig, args.nodes, start_delay=args.start_delay,
                         pull_fail_images=args.pull_fail_images,
                         fail_storage_classes=args.fail_storage_class,
                         provisioner=not args.no_provisioner, keep_nodes=args.keep_nodes,
                         namespace=args.namespace,
                         warning_events_only=args.warning_events_only,
                         scheduler=not args.no_scheduler, lease_interval=args.lease_interval,
                         external_provisioner=args.external_provisioner)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await sim.start()
    print(json.dumps({"nodes": [s.name for s in sim.specs]}), flush=True)
    try:
        await stop.wait()
    finally:
        await sim.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kubesim node ...``: run the simulated nodes until SIGINT/SIGTERM."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        import uvloop  # a faster event loop when installed, as the API server uses
    except ImportError:  # pragma: no cover
        asyncio.run(_serve(args))
    else:
        uvloop.run(_serve(args))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
