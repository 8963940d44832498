"""The four measurements of issue 6, each against the API server's request record.

Times come from the API server (`timestamp` = when a request reached it: kubesim's record, or
kube-apiserver's audit log), so the operator's latency is measured where it matters - when its
DELETE reaches the API server - and the client's own overhead is not charged to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import psutil

from gpurental_dev.substrate import NODES_USER, Kubernetes, Kubesim, Substrate

from .api import Api, ApiError
from .report import Figure, Report, percentile

OFFERS = """
apiVersion: gpurental.dev/v1alpha1
kind: GpuOffer
metadata: {name: bench}
spec:
  gpu: {product: NVIDIA-GeForce-RTX-4090}
  pricePerGpuHour: "0.69"
---
apiVersion: gpurental.dev/v1alpha1
kind: GpuOffer
metadata: {name: bench-pricey}
spec:
  gpu: {product: NVIDIA-GeForce-RTX-4090}
  pricePerGpuHour: "360.00"
"""
PRICEY_CENTS_PER_HOUR = Decimal(36000)
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass
class Scale:
    provision: int = 1000  # rentals created at once; then the running set for stop latency
    stops: int = 200  # half Stopped, half Paused
    exhaust: int = 100  # rentals on small wallets, two per wallet
    steady: int = 10_000  # running rentals for the steady-state window
    window: float = 90.0  # seconds of steady state measured (three metering intervals)
    interval: float = 30.0  # the operator's --metering-interval
    concurrency: int = 32  # requests in flight, for the bulk creates and the baseline
    patience: float = 1800.0  # longest wait for any convergence

    @property
    def nodes(self) -> list[str]:
        gpus = self.provision + self.exhaust + self.steady
        count = max(gpus // 80 + 2, 2)
        return [f"bench-{i:03d}=NVIDIA-GeForce-RTX-4090:80" for i in range(count)]


SMOKE = Scale(provision=20, stops=20, exhaust=10, steady=40, window=9.0, interval=3.0,
              concurrency=8, patience=120.0)


async def until(check: Callable[[], Awaitable[bool]], patience: float, what: str,
                every: float = 1.0) -> float:
    """Poll check until true; seconds waited. Raises TimeoutError naming what never came."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > patience:
            raise TimeoutError(f"gave up waiting for {what} after {patience:.0f}s")
        await asyncio.sleep(every)
    return time.monotonic() - started


def phases(rentals: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in rentals:
        phase = (r.get("status") or {}).get("phase") or "None"
        counts[phase] = counts.get(phase, 0) + 1
    return counts


class Sampler:
    """The operator process's RSS, sampled every second for the whole run (peak kept)."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return

    def cpu_seconds(self) -> float:
        times = self.process.cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        self._stop.set()


def _first_ts(requests: list[dict[str, Any]], method: str, path: str) -> float | None:
    for req in requests:
        if req["method"] == method and req["path"] == path and req["status"] < 300:
            return float(req["timestamp"])
    return None


def operator_pod_deletes(requests: list[dict[str, Any]], namespace: str) -> dict[str, float]:
    """First successful pod DELETE per pod the operator sent (it asks for Background
    propagation; the kubelet's grace-0 DELETE of a terminating pod does not)."""
    prefix = f"/api/v1/namespaces/{namespace}/pods/"
    found: dict[str, float] = {}
    for req in requests:
        if (req["method"] == "DELETE" and req["path"].startswith(prefix)
                and req["status"] == 200 and "propagationPolicy" in (req.get("query") or "")):
            found.setdefault(req["path"][len(prefix):], float(req["timestamp"]))
    return found


# --- 2. provisioning throughput -------------------------------------------------------------

async def provisioning(api: Api, report: Report, scale: Scale) -> list[str]:
    ns, n = "bench-provision", scale.provision
    names = [f"p{i:05d}" for i in range(n)]
    await api.namespace(ns)
    await api.record()
    await api.each(names, lambda name: api.create_rental(ns, name, offer="bench"))
    # Polled every 3 s (each poll lists every pod and PVC); the end time comes from the
    # record, so the polling period does not blur the figure.
    await until(lambda: _children_exist(api, ns, n), scale.patience, f"{n} pods and PVCs",
                every=3.0)
    requests = await api.recorded()
    start = min(r["timestamp"] for r in requests if r["method"] == "POST"
                and r["path"] == api.rentals_path(ns))
    end = max(r["timestamp"] + r["duration"] for r in requests if r["method"] == "POST"
              and r["status"] == 201 and r["path"] in (f"/api/v1/namespaces/{ns}/pods",
                                                       f"/api/v1/namespaces/{ns}/"
                                                       "persistentvolumeclaims"))
    baseline = await _plain_client_creates(api, n)
    report.add(Figure(f"provision_{n}_rentals_pods_and_pvcs", end - start, "s", baseline,
                      measured_limit=True,
                      note=f"limit: {n} pod+PVC creates by a plain client, "
                           f"concurrency {scale.concurrency}"))
    report.note(f"emulator create limit: {2 * n / baseline:.0f} creates/s "
                f"(plain client, concurrency {scale.concurrency})")
    waited = await until(lambda: _all_running(api, ns, n), scale.patience, f"{n} Running")
    report.add(Figure(f"provision_{n}_rentals_until_running", end - start + waited, "s", None,
                      note="includes the node sim starting the pods"))
    return names


async def _children_exist(api: Api, ns: str, n: int) -> bool:
    return (await api.count(ns, "pods") >= n
            and await api.count(ns, "persistentvolumeclaims") >= n)


async def _all_running(api: Api, ns: str, n: int) -> bool:
    return phases(await api.rentals(ns)).get("Running", 0) >= n


async def _plain_client_creates(api: Api, n: int) -> float:
    """The same number of PVC + pod creates straight to the emulator (bound to a node that
    does not exist, so the node sim leaves them alone): the emulator's own limit."""
    ns = "bench-baseline"
    await api.namespace(ns)

    async def create(i: int) -> None:
        await api.call("POST", f"/api/v1/namespaces/{ns}/persistentvolumeclaims", {
            "metadata": {"name": f"b{i:05d}-storage"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "bench-none",
                     "resources": {"requests": {"storage": "1Gi"}}}})
        await api.call("POST", f"/api/v1/namespaces/{ns}/pods", {
            "metadata": {"name": f"b{i:05d}", "labels": {"app": "bench"}},
            "spec": {"nodeName": "bench-nowhere", "containers": [{
                "name": "workload", "image": "busybox:1.36",
                "resources": {"limits": {"nvidia.com/gpu": "1"}},
                "volumeMounts": [{"name": "storage", "mountPath": "/workspace"}]}],
                "volumes": [{"name": "storage",
                             "persistentVolumeClaim": {"claimName": f"b{i:05d}-storage"}}]}})
    started = time.perf_counter()
    await api.each(range(n), create)
    elapsed = time.perf_counter() - started
    await api.call("DELETE", f"/api/v1/namespaces/{ns}", ok=(200, 202))
    # The emulator drains the namespace (2,000 objects and their events) in the background;
    # measuring stop latency while it does would charge the emulator's cleanup to the operator.
    await until(lambda: _gone(api, f"/api/v1/namespaces/{ns}"), 300, f"namespace {ns} gone")
    return elapsed


async def _gone(api: Api, path: str) -> bool:
    try:
        await api.call("GET", path)
    except ApiError as exc:
        if exc.status == 404:
            return True
        raise
    return False


# --- 1. stop latency ------------------------------------------------------------------------

async def stop_latency(api: Api, report: Report, scale: Scale, names: list[str]) -> None:
    ns = "bench-provision"
    chosen = names[: scale.stops]
    states = {name: ("Stopped" if i % 2 == 0 else "Paused") for i, name in enumerate(chosen)}
    await api.record()
    for name, state in states.items():
        await api.set_state(ns, name, state)
        await asyncio.sleep(0.02)  # one user at a time: latency, not a burst's queueing

    async def all_deleted() -> bool:
        return len(operator_pod_deletes(await api.recorded(), ns)) >= len(chosen)
    # The whole record is fetched at each poll: polling it often would load the emulator
    # and show up as the very latency being measured.
    await asyncio.sleep(5)
    await until(all_deleted, 300, "the operator's pod DELETEs", every=5.0)
    requests = await api.recorded()
    deletes = operator_pod_deletes(requests, ns)
    for state in ("Stopped", "Paused"):
        latencies = []
        for name in (n for n, s in states.items() if s == state):
            patched = _first_ts(requests, "PATCH", api.rentals_path(ns, name))
            if patched is not None and name in deletes:
                latencies.append((deletes[name] - patched) * 1000)
        for p in (50, 99):
            report.add(Figure(f"stop_latency_{state.lower()}_p{p}", percentile(latencies, p),
                              "ms", 100.0, note=f"over {len(latencies)} stops with "
                              f"{scale.provision - len(chosen) // 2} running"))


# --- 4. wallet exhaustion accuracy ----------------------------------------------------------

def _cents(seconds: int) -> int:
    return int((Decimal(seconds) * PRICEY_CENTS_PER_HOUR / 3600).quantize(
        Decimal(1), ROUND_HALF_UP))


def money_out_at(budget_cents: int, starts: list[float]) -> float:
    """The first whole second at which the wallet's rentals, each billed per whole second
    from its start, have spent the budget (startedAt is whole seconds, so cents only change
    at whole seconds)."""
    moment = int(min(starts))
    while sum(_cents(max(moment - int(s), 0)) for s in starts) < budget_cents:
        moment += 1
    return float(moment)


async def exhaustion(api: Api, report: Report, scale: Scale) -> None:
    ns, rng = "bench-wallets", random.Random(6)
    await api.namespace(ns)
    wallets = {f"w{i:03d}": rng.randint(150, 400) for i in range(max(scale.exhaust // 2, 1))}
    for wallet, cents in wallets.items():
        await api.wallet(ns, wallet, f"{cents / 100:.2f}")
    owners = {f"x{i:04d}": f"w{i // 2:03d}" for i in range(len(wallets) * 2)}
    await api.record()
    await api.each(owners.items(), lambda item: api.create_rental(
        ns, item[0], offer="bench-pricey", wallet=item[1]))

    async def all_paused() -> bool:
        path = f"/apis/gpurental.dev/v1alpha1/namespaces/{ns}/wallets"
        exhausted = all((w.get("status") or {}).get("exhausted") for w in await api.items(path))
        busy = {"Running", "Provisioning", None}
        rentals = await api.rentals(ns)
        return exhausted and not any((r.get("status") or {}).get("phase") in busy
                                     for r in rentals)
    await asyncio.sleep(2)
    await until(all_paused, scale.patience, "every wallet to run out", every=1.0)
    deletes = operator_pod_deletes(await api.recorded(), ns)
    rentals = {r["metadata"]["name"]: r.get("status") or {} for r in await api.rentals(ns)}
    errors, never_ran = [], 0
    for wallet, budget in wallets.items():
        starts = {n: _ts(s["firstStartedAt"]) for n, s in rentals.items()
                  if owners[n] == wallet and s.get("firstStartedAt")}
        never_ran += 2 - len(starts)
        if not starts:
            continue
        out = money_out_at(budget, list(starts.values()))
        errors += [abs(deletes[n] - out) for n in starts if n in deletes]
    spent = await _spent(api, ns, wallets)
    overshoot = max(spent[w] - wallets[w] for w in wallets)
    report.add(Figure("wallet_exhaustion_pause_error_p99", percentile(errors, 99), "s", 1.0,
                      note=f"{len(errors)} rentals, {len(wallets)} wallets"))
    report.add(Figure("wallet_exhaustion_worst_overshoot", overshoot, "cents", None,
                      note="spentCents - budget at 10 cents/s per rental"))
    if never_ran:
        report.note(f"{never_ran} exhaustion rentals never started (their wallet ran out first)")


async def _spent(api: Api, ns: str, wallets: dict[str, int]) -> dict[str, int]:
    path = f"/apis/gpurental.dev/v1alpha1/namespaces/{ns}/wallets"
    return {w["metadata"]["name"]: int((w.get("status") or {}).get("spentCents") or 0)
            for w in await api.items(path) if w["metadata"]["name"] in wallets}


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _simulated_cluster(request: dict[str, Any]) -> bool:
    """Writes the simulated kubelet and PV provisioner make, never the operator (and on a real
    control plane, its controllers' and the simulated nodes' own identities)."""
    user = str(request.get("user") or "")
    return (request.get("resource") in ("persistentvolumes", "nodes", "leases")
            or (request.get("resource") == "pods" and request.get("subresource") == "status")
            or user == NODES_USER or user.startswith("system:"))


# --- 3. steady state ------------------------------------------------------------------------

async def running_everywhere(api: Api) -> list[dict[str, Any]]:
    rentals = await api.items("/apis/gpurental.dev/v1alpha1/gpurentals")
    return [r for r in rentals if (r.get("status") or {}).get("phase") == "Running"]


async def steady_state(api: Api, report: Report, scale: Scale, sampler: Sampler) -> None:
    ns = "bench-steady"
    await api.namespace(ns)
    missing = scale.steady - len(await running_everywhere(api))
    names = [f"s{i:05d}" for i in range(max(missing, 0))]
    await api.each(names, lambda name: api.create_rental(ns, name, offer="bench"))

    async def enough() -> bool:
        return len(await running_everywhere(api)) >= scale.steady
    ramp = await until(enough, scale.patience, f"{scale.steady} Running", every=5.0)
    report.note(f"ramp to {scale.steady} running took {ramp:.0f}s")
    await asyncio.sleep(scale.interval)  # let the ramp's transition writes drain
    await api.record()
    server_cpu0 = server_cpu(api.substrate)
    cpu0, t0 = sampler.cpu_seconds(), time.time()
    staleness: list[float] = []
    samples = 3
    for _ in range(samples):
        await asyncio.sleep(scale.window / samples)
        now = time.time()
        staleness += [now - _ts(r["status"]["lastHeartbeatAt"])
                      for r in await running_everywhere(api)
                      if r["status"].get("lastHeartbeatAt")]
    elapsed = time.time() - t0
    cpu = (sampler.cpu_seconds() - cpu0) / elapsed
    requests = [r for r in await api.recorded() if t0 <= r["timestamp"] <= t0 + elapsed]
    report.note(f"all writes in the window, the node sim's included: "
                f"{sum(r['method'] in WRITES for r in requests) / elapsed:.1f}/s")
    writes = [r for r in requests if r["method"] in WRITES and not _simulated_cluster(r)]
    running = len(await running_everywhere(api))
    report.add(Figure("steady_operator_peak_rss", sampler.peak / 2**20, "MiB", 500.0,
                      note=f"whole run, {running} running at the end"))
    report.add(Figure("steady_operator_cpu", cpu, "cores", 0.5,
                      note=f"over {elapsed:.0f}s"))
    report.add(Figure("steady_api_writes_per_s", len(writes) / elapsed, "1/s",
                      running / scale.interval * 1.05,
                      note="the operator's writes (the node sim's PV, node and pod-status "
                           "writes are not its)"))
    report.add(Figure("steady_heartbeat_staleness_p99", percentile(staleness, 99), "s",
                      scale.interval + 5, note=f"{len(staleness)} samples"))
    by_kind: dict[str, int] = {}
    for r in writes:
        sub = f"/{r['subresource']}" if r.get("subresource") else ""
        key = f"{r['method']} {r.get('resource')}{sub}"
        by_kind[key] = by_kind.get(key, 0) + 1
    report.note(f"writes in the window by kind: {by_kind}")
    report.note(await asyncio.to_thread(server_figures, api.substrate, server_cpu0, elapsed))


def server_cpu(substrate: Substrate) -> dict[str, float]:
    """CPU seconds so far of each control-plane process (none for kubesim: see its stats)."""
    if not isinstance(substrate, Kubernetes):
        return {}
    seconds = {}
    for name, pid in substrate.control_plane.pids().items():
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            seconds[name] = float(times.user + times.system)
    return seconds


def server_figures(substrate: Substrate, cpu0: dict[str, float], elapsed: float) -> str:
    """What the API server side costs over the window: kubesim's stats, or the CPU (cores)
    and RSS of kube-apiserver, etcd, the controller manager and the scheduler."""
    if isinstance(substrate, Kubesim):
        body = substrate.admin("stats", "GET")
        return f"emulator: {body['objects']} objects, RSS {body['rssBytes'] / 2**20:.0f} MiB"
    assert isinstance(substrate, Kubernetes)
    cpu1, parts = server_cpu(substrate), []
    for name, pid in substrate.control_plane.pids().items():
        with contextlib.suppress(psutil.Error):
            rss = psutil.Process(pid).memory_info().rss / 2**20
            cores = (cpu1.get(name, 0.0) - cpu0.get(name, 0.0)) / elapsed
            parts.append(f"{name} {cores:.2f} cores, RSS {rss:.0f} MiB")
    return "control plane over the window: " + "; ".join(parts)
