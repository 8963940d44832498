"""The four measurements of issue 6, each against the API server's request record.

Times come from the API server (`timestamp` = when a request reached it: kubesim's record, or
kube-apiserver's audit log), so the operator's latency is measured where it matters - when its
DELETE reaches the API server - and the client's own overhead is not charged to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import psutil

from gpurental import builders
from gpurental.models import OfferSpec, RentalSpec, parse_spec
from gpurental_dev.substrate import NODES_USER, Kubernetes, Kubesim, Substrate

from . import server_profile
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
BENCH_OFFER = parse_spec(OfferSpec, {"gpu": {"product": "NVIDIA-GeForce-RTX-4090"},
                                     "pricePerGpuHour": "0.69"})
PRICEY_CENTS_PER_HOUR = Decimal(36000)
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass
class Scale:
    provision: int = 1000  # rentals created at once, against the same pods created directly
    stops: int = 500  # stops per level, half Stopped, half Paused, the heartbeats going on
    exhaust: int = 100  # rentals on small wallets, two per wallet
    levels: tuple[int, ...] = (1000, 3000, 10_000)  # running rentals: the cost table's rows
    window: float = 90.0  # seconds of steady state measured per level (three intervals)
    interval: float = 30.0  # the operator's --metering-interval
    concurrency: int = 32  # requests in flight, for the bulk creates and the baseline
    patience: float = 3600.0  # longest wait for any convergence
    profile: Path | None = None  # the operator runs under py-spy, its stacks written here

    @property
    def steady(self) -> int:
        return self.levels[-1]

    @property
    def nodes(self) -> list[str]:
        gpus = self.provision + self.exhaust + self.steady
        count = max(gpus // 80 + 2, 2)
        return [f"bench-{i:03d}=NVIDIA-GeForce-RTX-4090:80" for i in range(count)]


SMOKE = Scale(provision=20, stops=20, exhaust=10, levels=(40,), window=9.0, interval=3.0,
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


def _first(requests: list[dict[str, Any]], method: str, path: str,
           after: float = float("-inf")) -> dict[str, Any] | None:
    """The earliest-arriving successful request (an audit log is in completion order)."""
    found = [req for req in requests
             if req["method"] == method and req["path"] == path and req["status"] < 300
             and float(req["timestamp"]) >= after]
    return min(found, key=lambda req: float(req["timestamp"]), default=None)


def _answered(req: dict[str, Any]) -> float:
    """When the server was done with a request (both records keep its duration)."""
    return float(req["timestamp"]) + float(req["duration"])


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

async def provisioning(api: Api, report: Report, scale: Scale) -> None:
    """N rentals created at once until all N pods run, against the same N pods, claims and
    Secrets (the operator's own manifests) created directly by a plain client until they
    run: the scheduler, the PV binder and the node simulation are the floor both share."""
    n = scale.provision
    baseline = await _plain_client_until_running(api, n, scale)
    ns = "bench-provision"
    await api.namespace(ns)
    started = time.monotonic()
    await api.each([f"p{i:05d}" for i in range(n)],
                   lambda name: api.create_rental(ns, name, offer="bench"))
    await until(lambda: _pods_running(api, ns, n), scale.patience, f"{n} pods Running",
                every=1.0)
    elapsed = time.monotonic() - started
    report.add(Figure(f"provision_{n}_rentals_until_running", elapsed, "s", baseline,
                      measured_limit=True,
                      note=f"limit: {n} of the same pods + PVCs + Secrets created directly "
                           f"until Running, concurrency {scale.concurrency}"))
    report.note(f"plain client: {n} pods Running in {baseline:.1f}s")


async def _pods_running(api: Api, ns: str, n: int) -> bool:
    pods = await api.items(f"/api/v1/namespaces/{ns}/pods")
    return sum((p.get("status") or {}).get("phase") == "Running" for p in pods) >= n


def _direct_objects(ns: str, name: str) -> list[tuple[str, dict[str, Any]]]:
    """What the operator would create for a rental of the bench offer, made by hand."""
    spec = parse_spec(RentalSpec, {"offer": "bench", "image": "busybox:1.36",
                                   "storage": {"size": "1Gi"}})
    uid = f"direct-{name}"
    core = f"/api/v1/namespaces/{ns}"
    objects = [(f"{core}/persistentvolumeclaims", builders.make_pvc(ns, name, uid, spec)),
               (f"{core}/secrets", builders.make_ssh_secret(ns, name, uid, spec)),
               (f"{core}/pods", builders.make_pod(ns, name, uid, spec, BENCH_OFFER))]
    for _, body in objects:
        body["metadata"].pop("ownerReferences", None)  # no rental owns them
        # Not the operator's: its label selector must not cache them as a rental's children.
        body["metadata"]["labels"] = {"app": "bench-direct"}
    return objects


async def _plain_client_until_running(api: Api, n: int, scale: Scale) -> float:
    ns = "bench-direct"
    await api.namespace(ns)

    async def create(i: int) -> None:
        for path, body in _direct_objects(ns, f"d{i:05d}"):
            await api.call("POST", path, body)
    started = time.monotonic()
    await api.each(range(n), create)
    await until(lambda: _pods_running(api, ns, n), scale.patience, f"{n} direct pods Running",
                every=1.0)
    elapsed = time.monotonic() - started
    await api.call("DELETE", f"/api/v1/namespaces/{ns}", ok=(200, 202))
    # The namespace drains in the background (its pods' graceful deletion, its volumes);
    # measuring anything while it does would charge that cleanup to the operator.
    await until(lambda: _gone(api, f"/api/v1/namespaces/{ns}"), scale.patience,
                f"namespace {ns} gone")
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

@dataclass(frozen=True)
class StopLegs:
    """One stop cut where it changes hands, at the server's clock (ms). The user's PATCH and
    the meter's write are the server's: no operator can go below their sum while the meter is
    closed before the pod's DELETE is sent. The other two are the watch's and the operator's."""

    user_write: float  # the user's PATCH inside the server: the watch sends it once saved
    reaction: float  # that PATCH done -> the meter's status write arriving
    meter_write: float  # the meter's write inside the server
    turnaround: float  # that write answered -> the pod's DELETE arriving

    @property
    def server(self) -> float:
        return self.user_write + self.meter_write

    @property
    def total(self) -> float:
        """The whole stop, the user's PATCH in to the pod's DELETE in."""
        return self.user_write + self.reaction + self.meter_write + self.turnaround


@dataclass
class StopLatencies:
    stopped: list[float]  # ms, from the user's PATCH reaching the server to the pod's DELETE
    paused: list[float]
    legs: list[StopLegs] = field(default_factory=list)

    def split(self) -> str:
        if not self.legs:
            return "no status write between a stop's PATCH and its DELETE in the record"
        names = ("user_write", "reaction", "meter_write", "turnaround")
        cells = []
        for name in names:
            values = [getattr(leg, name) for leg in self.legs]
            cells.append(f"{name} {percentile(values, 50):.1f} / {percentile(values, 99):.1f}")
        return (f"each stop cut where it changes hands (p50 / p99 ms, server's clock): "
                f"{', '.join(cells)}; the two writes in the server together "
                f"{percentile(self.server, 50):.1f} / {percentile(self.server, 99):.1f}")

    def slowest(self, n: int = 3) -> str:
        """The tail stop by stop, so a stall's leg is named (a p99.9 is one or two stops)."""
        worst = sorted(self.legs, key=lambda leg: leg.total, reverse=True)[:n]
        cells = [f"{leg.total:.0f} ({leg.user_write:.1f} / {leg.reaction:.1f} / "
                 f"{leg.meter_write:.1f} / {leg.turnaround:.1f})" for leg in worst]
        return (f"slowest stops, ms (user_write / reaction / meter_write / turnaround): "
                f"{', '.join(cells) or 'none'}; {len(self.all) - len(self.legs)} of "
                f"{len(self.all)} without a meter write between PATCH and DELETE in the record")

    @property
    def server(self) -> list[float]:
        return [leg.server for leg in self.legs]

    @property
    def all(self) -> list[float]:
        return self.stopped + self.paused


def stop_legs(patched: dict[str, Any], written: dict[str, Any], deleted: float) -> StopLegs:
    """The legs of one stop from its user PATCH, the meter's write after it, and when the
    pod's DELETE arrived (records as `recorded()` gives them: seconds, time.time())."""
    ms = 1000.0
    return StopLegs(
        user_write=float(patched["duration"]) * ms,
        reaction=(float(written["timestamp"]) - _answered(patched)) * ms,
        meter_write=float(written["duration"]) * ms,
        turnaround=(deleted - _answered(written)) * ms)


async def stop_latency(api: Api, scale: Scale) -> StopLatencies:
    """Stop or pause `scale.stops` running rentals one user at a time, the heartbeats of all
    the others going on; each latency is read from the server's own request record."""
    running = await running_everywhere(api)
    chosen = [(r["metadata"]["namespace"], r["metadata"]["name"])
              for r in running[: scale.stops]]
    states = {key: ("Stopped" if i % 2 == 0 else "Paused") for i, key in enumerate(chosen)}
    await api.record()
    for (ns, name), state in states.items():
        await api.set_state(ns, name, state)
        await asyncio.sleep(0.02)  # one user at a time: latency, not a burst's queueing
    namespaces = {ns for ns, _ in chosen}

    async def all_deleted() -> bool:
        requests = await api.recorded()
        return sum(len(operator_pod_deletes(requests, ns)) for ns in namespaces) >= len(chosen)
    # The whole record is fetched at each poll: polling it often would load the server and
    # show up as the very latency being measured.
    await asyncio.sleep(5)
    await until(all_deleted, 300, "the operator's pod DELETEs", every=5.0)
    requests = await api.recorded()
    deletes = {ns: operator_pod_deletes(requests, ns) for ns in namespaces}
    found = StopLatencies([], [])
    for (ns, name), state in states.items():
        patched = _first(requests, "PATCH", api.rentals_path(ns, name))
        if patched is not None and name in deletes[ns]:
            deleted = deletes[ns][name]
            target = found.stopped if state == "Stopped" else found.paused
            target.append((deleted - float(patched["timestamp"])) * 1000)
            written = _first(requests, "PATCH", api.rentals_path(ns, name) + "/status",
                             after=float(patched["timestamp"]))
            if written is not None and float(written["timestamp"]) <= deleted:
                found.legs.append(stop_legs(patched, written, deleted))
    return found


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
    burn_per_second = 2 * PRICEY_CENTS_PER_HOUR / 3600  # a wallet pays for two rentals
    report.add(Figure("wallet_exhaustion_worst_overshoot", overshoot, "cents",
                      float(burn_per_second),
                      note="spentCents - budget; limit: one second of the wallet's burn"))
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


# --- 3. steady state, and how cost grows ---------------------------------------------------

async def running_everywhere(api: Api) -> list[dict[str, Any]]:
    rentals = await api.items("/apis/gpurental.dev/v1alpha1/gpurentals")
    return [r for r in rentals if (r.get("status") or {}).get("phase") == "Running"]


def scrape(metrics_url: str) -> str:
    return str(urllib.request.urlopen(metrics_url, timeout=10).read().decode())


def histogram(text: str, name: str, by: str | None = None) -> dict[str, dict[str, int]]:
    """One histogram of a /metrics text: its cumulative bucket counts (le -> count), per
    value of the label `by` (or all series summed under "")."""
    found: dict[str, dict[str, int]] = {}
    for match in re.finditer(rf'^{name}_bucket\{{([^}}]*)\}} ([0-9.e+]+)$', text, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        series = found.setdefault(labels.get(by, "") if by else "", {})
        le = labels["le"]
        series[le] = series.get(le, 0) + int(float(match.group(2)))
    return found


@dataclass(frozen=True)
class OperatorReading:
    """One scrape of the operator's /metrics: the histograms the bench reads around a level
    (cumulative counts, so two readings give what happened between them)."""

    gc: dict[str, tuple[int, int]]  # generation -> (collections, how many over 50 ms)
    stops: dict[str, int]  # le -> count: seeing a stop request to issuing the pod's DELETE
    loop_lag: dict[str, int]  # le -> count: how late the event loop ran a due timer


def read_operator(metrics_url: str) -> OperatorReading:
    text = scrape(metrics_url)
    gc = {g: (b.get("+Inf", 0), b.get("+Inf", 0) - b.get("0.05", 0)) for g, b in
          histogram(text, "gpurental_gc_pause_seconds", by="generation").items()}
    return OperatorReading(
        gc, histogram(text, "gpurental_stop_latency_seconds").get("", {}),
        histogram(text, "gpurental_event_loop_lag_seconds").get("", {}))


def bucket_percentile(before: dict[str, int], after: dict[str, int], p: float) -> float:
    """The upper bound (ms) of the bucket holding the p-th percentile of what was observed
    between two readings; inf if it lies beyond the last finite bucket, nan if none."""
    counts = {le: after.get(le, 0) - before.get(le, 0) for le in after}
    total = counts.get("+Inf", 0)
    if total <= 0:
        return float("nan")
    for le in sorted((le for le in counts if le != "+Inf"), key=float):
        if counts[le] >= total * p / 100:
            return float(le) * 1000
    return float("inf")


def _gc_note(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> str:
    parts = []
    for generation in sorted(after):
        n0, slow0 = before.get(generation, (0, 0))
        n1, slow1 = after[generation]
        parts.append(f"gen{generation} {n1 - n0} ({slow1 - slow0} over 50 ms)")
    return "collections in the window and its stops: " + ", ".join(parts)


@dataclass
class Level:
    """One row of the cost table: what `running` rentals cost the operator and the server."""

    running: int
    cpu: float  # operator cores over the window
    peak_rss_mib: float  # the operator's, over the whole run so far
    writes_per_s: float  # the operator's API writes
    staleness_p99: float  # seconds since each running rental's last heartbeat
    server: dict[str, float]  # control-plane process -> cores over the window
    stops: StopLatencies
    operator_stop_p99: float  # ms, bucket bound: the operator's own share of those stops
    loop_lag_p99: float  # ms, bucket bound: how late its event loop ran timers meanwhile
    gc: str  # the operator's collector pauses meanwhile
    server_profile: Path | None = None  # kube-apiserver's CPU profile over the window
    operator_stop_p99_9: float = float("nan")  # ms, bucket bound (inf: over a second)

    @property
    def server_ms_per_write(self) -> float:
        """The API server's CPU per operator write (its other clients' load included): what
        each heartbeat costs the control plane, for sizing it."""
        cores = self.server.get("kube-apiserver", self.server.get("kubesim", 0.0))
        return 1000 * cores / self.writes_per_s if self.writes_per_s else float("nan")


async def ramp(api: Api, scale: Scale, level: int, created: int) -> int:
    """Create rentals until `level` run; returns how many the steady namespace now holds."""
    ns = "bench-steady"
    await api.namespace(ns)
    missing = level - len(await running_everywhere(api))
    names = [f"s{i:05d}" for i in range(created, created + max(missing, 0))]
    await api.each(names, lambda name: api.create_rental(ns, name, offer="bench"))

    async def enough() -> bool:
        return len(await running_everywhere(api)) >= level
    await until(enough, scale.patience, f"{level} Running", every=5.0)
    return created + len(names)


async def steady_level(api: Api, scale: Scale, sampler: Sampler, level: int,
                       metrics_url: str) -> Level:
    await asyncio.sleep(scale.interval)  # let the ramp's transition writes drain
    at_start = await asyncio.to_thread(read_operator, metrics_url)
    await api.record()
    cpu_before = server_cpu(api.substrate)
    cpu0, t0 = sampler.cpu_seconds(), time.time()
    profiling = _profile_server(api, scale, level)
    staleness: list[float] = []
    samples = 3
    for _ in range(samples):
        await asyncio.sleep(scale.window / samples)
        now = time.time()
        staleness += [now - _ts(r["status"]["lastHeartbeatAt"])
                      for r in await running_everywhere(api)
                      if r["status"].get("lastHeartbeatAt")]
    elapsed = time.time() - t0
    profile = await profiling if profiling is not None else None
    cpu = (sampler.cpu_seconds() - cpu0) / elapsed
    cpu_after = server_cpu(api.substrate)
    requests = [r for r in await api.recorded() if t0 <= r["timestamp"] <= t0 + elapsed]
    writes = [r for r in requests if r["method"] in WRITES and not _simulated_cluster(r)]
    running = len(await running_everywhere(api))
    server = {name: (cpu_after.get(name, 0.0) - cpu_before.get(name, 0.0)) / elapsed
              for name in cpu_after}
    before = await asyncio.to_thread(read_operator, metrics_url)
    stops = await stop_latency(api, scale)
    after = await asyncio.to_thread(read_operator, metrics_url)
    return Level(running, cpu, sampler.peak / 2**20, len(writes) / elapsed,
                 percentile(staleness, 99), server, stops,
                 bucket_percentile(before.stops, after.stops, 99),
                 bucket_percentile(before.loop_lag, after.loop_lag, 99),
                 _gc_note(at_start.gc, after.gc), profile,
                 bucket_percentile(before.stops, after.stops, 99.9))


def _profile_server(api: Api, scale: Scale, level: int) -> asyncio.Task[Path] | None:
    """With --profile on the real control plane, kube-apiserver's CPU profile over the
    largest level's window (py-spy profiles the operator meanwhile)."""
    if scale.profile is None or level != scale.steady or not isinstance(api.substrate,
                                                                         Kubernetes):
        return None
    dest = scale.profile.with_name("kube-apiserver-profile.pb.gz")
    return asyncio.create_task(server_profile.capture(api, scale.window, dest))


async def steady_state(api: Api, report: Report, scale: Scale, sampler: Sampler,
                       metrics_url: str) -> None:
    rows, created = [], 0
    for level in scale.levels:
        started = time.monotonic()
        created = await ramp(api, scale, level, created)
        report.note(f"ramp to {level} running took {time.monotonic() - started:.0f}s")
        rows.append(await steady_level(api, scale, sampler, level, metrics_url))
        report.note(f"{level} running: {rows[-1].gc}")
        report.note(f"{level} running: {rows[-1].stops.split()}")
        # The operator's own p99.9 tells a stall inside it from one in the watch's delivery.
        report.note(f"{level} running: {rows[-1].stops.slowest()}; the operator's share "
                    f"p99.9 <= {rows[-1].operator_stop_p99_9:g} ms (bucket; inf: over 1 s)")
    top = rows[-1]
    report_top(report, scale, top)
    for line in cost_table(rows):
        report.note(line)
    report.note(_projection(scale, top))
    if top.server_profile is not None:
        for line in server_profile.summary(top.server_profile, top.writes_per_s):
            report.note(line)
    report.note(await asyncio.to_thread(server_figures, api.substrate))


def report_top(report: Report, scale: Scale, top: Level) -> None:
    """The targets, judged at the largest level."""
    during = f"over {{}} stops with {top.running - len(top.stops.all)}-{top.running} running"
    for state, latencies in (("stopped", top.stops.stopped), ("paused", top.stops.paused)):
        for p in (50, 99):
            report.add(Figure(f"stop_latency_{state}_p{p}", percentile(latencies, p), "ms",
                              100.0, note=during.format(len(latencies))))
    report.add(Figure("stop_latency_p99_9", percentile(top.stops.all, 99.9), "ms", None,
                      note=during.format(len(top.stops.all))))
    # The rest of each stop is the server's and the watch's: PATCH in, event out, decoded.
    report.add(Figure("stop_latency_operator_share_p99", top.operator_stop_p99, "ms", None,
                      note="from the operator seeing the request to its DELETE issued "
                           "(upper bound of a gpurental_stop_latency_seconds bucket)"))
    report.add(Figure("stop_latency_server_writes_p99", percentile(top.stops.server, 99), "ms",
                      None, note="the user's PATCH and the meter's write inside the server, "
                                 "per stop: what an operator taking no time would reach"))
    report.add(Figure("steady_operator_peak_rss", top.peak_rss_mib, "MiB", 400.0,
                      note=f"whole run, {top.running} running"))
    report.add(Figure("steady_operator_cpu", top.cpu, "cores", 0.4,
                      note=f"{top.running} running, {scale.window:.0f}s window"))
    report.add(Figure("steady_api_writes_per_s", top.writes_per_s, "1/s",
                      top.running / scale.interval * 1.05,
                      note="the operator's writes (the node sim's PV, node and pod-status "
                           "writes are not its)"))
    report.add(Figure("steady_heartbeat_staleness_p99", top.staleness_p99, "s",
                      scale.interval + 5, note=f"interval {scale.interval:.0f}s"))


def cost_table(rows: list[Level]) -> list[str]:
    """How cost grows with the running rentals, for sizing a shard."""
    names = sorted({name for row in rows for name in row.server})
    head = ["running", "stop p99 ms", "stop p99.9 ms", "operator's share p99 ms (bucket)",
            "server's writes p99 ms", "loop lag p99 ms (bucket)", "operator cores",
            "peak RSS MiB", "writes/s", "API server CPU ms per write",
            *[f"{name} cores" for name in names]]
    lines = ["cost table: | " + " | ".join(head) + " |"]
    for row in rows:
        cells = [f"{row.running}", f"{percentile(row.stops.all, 99):.1f}",
                 f"{percentile(row.stops.all, 99.9):.1f}", f"<= {row.operator_stop_p99:g}",
                 f"{percentile(row.stops.server, 99):.1f}", f"<= {row.loop_lag_p99:g}",
                 f"{row.cpu:.3f}",
                 f"{row.peak_rss_mib:.0f}", f"{row.writes_per_s:.1f}",
                 f"{row.server_ms_per_write:.1f}",
                 *[f"{row.server.get(name, 0.0):.3f}" for name in names]]
        lines.append("cost table: | " + " | ".join(cells) + " |")
    return lines


def _projection(scale: Scale, top: Level, target: int = 10_000) -> str:
    """What the API server process alone would need at `target` running rentals, one write
    per rental per interval at the largest level's cost per write: past the machine's cores,
    no operator design meets the targets there."""
    writes = target / scale.interval
    cores = writes * top.server_ms_per_write / 1000
    return (f"at {target} running ({writes:.0f} heartbeats/s) the API server would need "
            f"{cores:.2f} cores at {top.server_ms_per_write:.1f} ms a write "
            f"(this machine has {os.cpu_count()})")


def server_cpu(substrate: Substrate) -> dict[str, float]:
    """CPU seconds so far of each API-server-side process: the control plane's, or the
    emulator's (which shares the machine's cores with the operator: at ten thousand
    rentals its own latency is in every figure)."""
    if isinstance(substrate, Kubesim):
        pids = {"kubesim": substrate.emulator.process.pid}
    else:
        assert isinstance(substrate, Kubernetes)
        pids = substrate.control_plane.pids()
    seconds = {}
    for name, pid in pids.items():
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            seconds[name] = float(times.user + times.system)
    return seconds


def server_figures(substrate: Substrate) -> str:
    """What the API server side holds at the end: kubesim's stats, or the RSS of
    kube-apiserver, etcd, the controller manager and the scheduler."""
    if isinstance(substrate, Kubesim):
        body = substrate.admin("stats", "GET")
        return f"emulator: {body['objects']} objects, RSS {body['rssBytes'] / 2**20:.0f} MiB"
    assert isinstance(substrate, Kubernetes)
    parts = []
    for name, pid in substrate.control_plane.pids().items():
        with contextlib.suppress(psutil.Error):
            parts.append(f"{name} RSS {psutil.Process(pid).memory_info().rss / 2**20:.0f} MiB")
    return "control plane at the end: " + "; ".join(parts)
