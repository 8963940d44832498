"""Prometheus metrics: the contract's business gauges and the operator's own health.

Gauges that describe the world (active rentals, burn, wallets) are computed at scrape time from
the operator's cache by a custom collector, so they can never drift from the rentals' status
and cost nothing between scrapes. Counters and histograms are updated where things happen.
Label sets are bounded: namespaces, offers, wallets, phases, verbs, codes, work queues and
collector generations; never a rental.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, TypeVar

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gpurental import disruptions
from gpurental.models import Phase
from gpurental.observed import RentalView
from gpurental.world import World

T = TypeVar("T", Counter, Histogram)


@functools.cache
def labelled(metric: T, *values: str) -> T:
    """`metric.labels(*values)`, looked up once: prometheus_client's labels() takes about
    3 us (a lock, a validation, a tuple, a dict), and the API calls, the passes and the
    charge counter ask for theirs hundreds of times a second at ten thousand rentals. A
    series is never removed, so the cached child stays the registry's."""
    return metric.labels(*values)


_FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

CHARGED_CENTS = Counter(
    "gpurental_charged_cents",
    "Cents charged since the operator started (the seed's session spend).",
    ["namespace", "offer"],
)
PROVISIONING_FAILURES = Counter(
    "gpurental_provisioning_failures", "Rentals that failed to provision.",
    ["namespace", "offer", "reason"],
)
TRANSITIONS = Counter(
    "gpurental_transitions", "Phase transitions of rentals.",
    ["namespace", "from_phase", "to_phase"],
)
RECONCILE_DURATION = Histogram(
    "gpurental_reconcile_duration_seconds", "Time to reconcile one rental.", ["result"],
    buckets=_FAST,
)
RECONCILE_ERRORS = Counter("gpurental_reconcile_errors", "Reconcile passes that raised.")
GC_PAUSE = Histogram(
    "gpurental_gc_pause_seconds",
    "Garbage collector pauses of the operator's event loop, per generation collected.",
    ["generation"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
LOOP_LAG = Histogram(
    "gpurental_event_loop_lag_seconds",
    "How much later than due the operator's event loop ran a timer (a probe every 100 ms).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0),
)
WORK_RETRIES = Counter(
    "gpurental_work_retries", "Keys re-queued with backoff after a failed pass, per work queue.",
    ["queue"],
)
API_ERRORS = Counter(
    "gpurental_api_errors", "Kubernetes API calls that failed.", ["verb", "code"],
)
API_LATENCY = Histogram(
    "gpurental_api_request_duration_seconds", "Kubernetes API call latency.", ["verb"],
    buckets=_FAST,
)
STOP_LATENCY = Histogram(
    "gpurental_stop_latency_seconds",
    "From observing a stop or pause request to issuing the pod's deletion.", ["action"],
    # Fine around the 100 ms promise, where a p99 read from the buckets has to tell a miss.
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0),
)

DISRUPTIONS = Counter(
    "gpurental_disruptions",
    "Rentals whose pod or volume was taken away without the user asking, by reason "
    "(NodeLost, VolumeLost, PodDeleted, Evicted, Preempted).",
    ["namespace", "offer", "reason"],
)
INTERRUPTIONS = Counter(
    "gpurental_interruptions",
    "Times the scheduler preempted an interruptible rental's pod for an on-demand one.",
    ["namespace", "offer"],
)
IDLE_PAUSES = Counter(
    "gpurental_idle_pauses", "Rentals the operator paused (or stopped) because the GPU sat idle.",
    ["namespace", "offer"],
)

# A Failed rental's message starts with the scheduler's or kubelet's reason ("Unschedulable:
# ...", "ErrImagePull: ..."): a CamelCase word from a small set, so it can be a label. Any
# other message (free text) is folded into one value, to keep the label set bounded.
_REASON = re.compile(r"[A-Z][A-Za-z]{0,39}")


def failure_reason(message: str) -> str:
    """The bounded `reason` label of a provisioning failure."""
    head = message.split(":", 1)[0].strip()
    return head if _REASON.fullmatch(head) else "Other"


class WorldCollector(Collector):
    """Business gauges computed from the cache at scrape time."""

    def __init__(self, world: Callable[[], World | None]) -> None:
        self._world = world

    def collect(self) -> Iterator[GaugeMetricFamily]:
        world = self._world()
        active = GaugeMetricFamily(
            "gpurental_active_rentals", "Rentals in phase Running.", labels=["namespace", "offer"])
        phases = GaugeMetricFamily(
            "gpurental_rentals", "Rentals by phase.", labels=["namespace", "phase"])
        burn = GaugeMetricFamily(
            "gpurental_hourly_burn_dollars", "Sum of ratePerHour of Running rentals.",
            labels=["namespace", "offer"])
        # What idle pauses save: the hourly rate the idle-paused rentals would burn if they
        # ran; integrated over time (sum_over_time / 60 at a 1m step) it is dollars saved.
        idle_burn = GaugeMetricFamily(
            "gpurental_idle_paused_burn_dollars",
            "Sum of ratePerHour of rentals paused because their GPU sat idle.",
            labels=["namespace", "offer"])
        if world is not None:
            self._rentals(world, active, phases, burn, idle_burn)
        yield active
        yield phases
        yield burn
        yield idle_burn
        yield from self._wallets(world)

    @staticmethod
    def _rentals(world: World, active: GaugeMetricFamily, phases: GaugeMetricFamily,
                 burn: GaugeMetricFamily, idle_burn: GaugeMetricFamily) -> None:
        running: dict[tuple[str, str], int] = defaultdict(int)
        by_phase: dict[tuple[str, str], int] = defaultdict(int)
        dollars: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        idle_dollars: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        for entry in world.rentals.values():
            view = entry.view
            phase = view.status.get("phase") or "Pending"
            by_phase[(view.namespace, phase)] += 1
            if phase == "Paused" and view.status.get("idlePausedGeneration") is not None:
                idle_key = (view.namespace, str(view.spec.get("offer", "")))
                idle_dollars[idle_key] += Decimal(view.status.get("ratePerHour") or 0)
            if phase == "Running":
                key = (view.namespace, str(view.spec.get("offer", "")))
                running[key] += 1
                dollars[key] += Decimal(view.status.get("ratePerHour") or 0)
        for labels, count in running.items():
            active.add_metric(list(labels), count)
            burn.add_metric(list(labels), float(dollars[labels]))
        for labels, count in by_phase.items():
            phases.add_metric(list(labels), count)
        for labels, rate in idle_dollars.items():
            idle_burn.add_metric(list(labels), float(rate))

    @staticmethod
    def _wallets(world: World | None) -> Iterator[GaugeMetricFamily]:
        remaining = GaugeMetricFamily(
            "gpurental_wallet_remaining_cents", "Wallet budget left.",
            labels=["namespace", "wallet"])
        burn = GaugeMetricFamily(
            "gpurental_wallet_burn_cents_per_hour", "Current burn of a wallet's rentals.",
            labels=["namespace", "wallet"])
        horizon = GaugeMetricFamily(
            "gpurental_wallet_seconds_to_exhaustion",
            "Seconds until the wallet runs out at the current burn.",
            labels=["namespace", "wallet"])
        for (namespace, name), body in (world.wallets.items() if world else ()):
            status = body.get("status") or {}
            if "remainingCents" not in status:
                continue
            labels = [namespace, name]
            remaining.add_metric(labels, status["remainingCents"])
            per_hour = int(status.get("burnCentsPerHour") or 0)
            burn.add_metric(labels, per_hour)
            if per_hour > 0:
                horizon.add_metric(labels, status["remainingCents"] * 3600 / per_hour)
        yield remaining
        yield burn
        yield horizon


class ChargeTracker:
    """Feeds gpurental_charged_cents_total from successive meter readings of each rental.

    The first reading of a rental after the operator starts is the baseline, so a restart
    never counts old charges as new session spend.
    """

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def observe_status(self, rental_uid: str, namespace: str, offer: str,
                       status: dict[str, Any]) -> None:
        """Count what a just-written status says was charged. The written reading, not one
        taken after the write: the counter then never runs ahead of the rentals' status."""
        if "totalChargeCents" not in status:
            return
        cents = int(status["totalChargeCents"]) - int(status.get("refundedCents") or 0)
        self.observe(rental_uid, namespace, offer, max(cents, 0))

    def observe(self, rental_uid: str, namespace: str, offer: str, cents: int) -> None:
        last = self._last.get(rental_uid)
        self._last[rental_uid] = cents
        series = labelled(CHARGED_CENTS, namespace, offer)
        # The baseline exports the series at its current value (0 when new): a counter that
        # first appeared at its first charge would hide that charge from increase() and rate().
        if last is not None and cents > last:
            series.inc(cents - last)

    def forget(self, rental_uid: str) -> None:
        self._last.pop(rental_uid, None)


def register_world(world: Callable[[], World | None]) -> None:
    REGISTRY.register(WorldCollector(world))


def observe_transition(charges: ChargeTracker, view: RentalView, status: dict[str, Any]
                       ) -> None:
    """Count what a rental's status write changed: its phase, an idle pause, a disruption,
    and the cents charged since the last reading."""
    old, new = view.status.get("phase") or "Pending", status.get("phase") or "Pending"
    offer = str(view.spec.get("offer", ""))
    if old != new:
        TRANSITIONS.labels(namespace=view.namespace, from_phase=old, to_phase=new).inc()
        if new == Phase.FAILED:
            PROVISIONING_FAILURES.labels(
                namespace=view.namespace, offer=offer,
                reason=failure_reason(str(status.get("message", "")))).inc()
    if (status.get("idlePausedGeneration") is not None
            and view.status.get("idlePausedGeneration") is None):
        IDLE_PAUSES.labels(namespace=view.namespace, offer=offer).inc()
    _observe_disruption(view, offer, status)
    charges.observe_status(view.uid, view.namespace, offer, status)


def _observe_disruption(view: RentalView, offer: str, status: dict[str, Any]) -> None:
    new, old = status.get("disruption") or {}, view.status.get("disruption") or {}
    reason = new.get("reason")
    if reason in disruptions.REASONS and new.get("podUid") != old.get("podUid"):
        DISRUPTIONS.labels(namespace=view.namespace, offer=offer, reason=reason).inc()
        if reason == disruptions.PREEMPTED:
            INTERRUPTIONS.labels(namespace=view.namespace, offer=offer).inc()
    if status.get("lostClaim") and not view.status.get("lostClaim"):
        DISRUPTIONS.labels(namespace=view.namespace, offer=offer,
                           reason=disruptions.VOLUME_LOST).inc()
