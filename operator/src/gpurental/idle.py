"""Idle GPU auto-pause: the policy, the PromQL that measures it, and the verdict.

Owns: which idle policy applies to a rental (its `spec.idle`, filled in from the offer's
`idle.default`, the window raised to the offer's `idle.minWindow`), which DCGM metric measures
its GPUs (the MIG-safe `DCGM_FI_PROF_GR_ENGINE_ACTIVE` on MIG slices), the queries that fetch
a window of samples, the verdict idle / busy / unknown, and the sticky hold an idle pause puts
on the rental until its spec changes.

Pure: never talks to Prometheus or Kubernetes (idle_watch does), never reads a clock (`now` is
passed in). The one rule it must never break: missing data is not idleness. A window that has
not fully elapsed since the rental last started running, a GPU without samples, or a scrape gap
anywhere in the window all give UNKNOWN, and UNKNOWN never pauses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from gpurental import durations
from gpurental.clock import parse_ts
from gpurental.holds import Hold
from gpurental.models import ConditionType, DesiredState, ExhaustAction, OfferSpec, RentalSpec

GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"  # percent, whole GPUs
ENGINE_ACTIVE = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"  # ratio 0-1, the one that works on MIG slices

DEFAULT_BELOW = 5
DEFAULT_WINDOW = 30 * 60
# Presence is checked at this many evenly spaced instants per window (a subquery step of
# window/120, at least 1s): a scrape gap longer than one step is always seen.
STEPS_PER_WINDOW = 120

_ACTION_STATE = {ExhaustAction.PAUSE: DesiredState.PAUSED, ExhaustAction.STOP: DesiredState.STOPPED}


@dataclass(frozen=True)
class Policy:
    below: int  # percent
    window: int  # seconds
    action: ExhaustAction

    @property
    def step(self) -> int:
        return max(1, self.window // STEPS_PER_WINDOW)

    @property
    def expected_points(self) -> int:
        """Subquery instants a gap-free series has in the window (the range is closed on
        Prometheus 2.x and left-open on 3.x: at least window/step either way)."""
        return self.window // self.step


def effective_policy(spec: RentalSpec, offer: OfferSpec | None) -> Policy | None:
    """The rental's own fields, else the offer's default, else the built-in defaults; None
    when neither the rental nor its offer asks for idle pauses, or the threshold is 0."""
    offer_idle = offer.idle if offer is not None else None
    default = offer_idle.default if offer_idle is not None else None
    own = spec.idle
    if own is None and default is None:
        return None
    layers = [p for p in (own, default) if p is not None]
    below = next((p.below for p in layers if p.below is not None), DEFAULT_BELOW)
    window = next((p.for_seconds for p in layers if p.for_seconds is not None), DEFAULT_WINDOW)
    action = next((p.action for p in layers if p.action is not None), ExhaustAction.PAUSE)
    floor = offer_idle.min_window if offer_idle is not None and offer_idle.min_window else 0
    if below <= 0:
        return None
    return Policy(below=below, window=max(window, floor, 1), action=action)


@dataclass(frozen=True)
class Metric:
    name: str
    percent_per_unit: Decimal  # 100 for a 0-1 ratio, 1 for a percentage


def metric_for(offer: OfferSpec | None) -> Metric:
    if offer is not None and offer.gpu.is_mig:
        return Metric(ENGINE_ACTIVE, Decimal(100))
    return Metric(GPU_UTIL, Decimal(1))


# --- queries -------------------------------------------------------------------------------

Pod = tuple[str, str]  # (namespace, pod name)


def _alternatives(names: Iterable[str]) -> str:
    """An RE2 alternation of exact names, inside a PromQL string (which unescapes once)."""
    return "|".join(re.escape(n).replace("\\", "\\\\") for n in sorted(set(names)))


def selector(metric: Metric, pods: Iterable[Pod]) -> str:
    """The metric's series of these pods, by the labels dcgm-exporter sets with pod mapping.
    Namespace and pod regexes are matched separately; the caller keeps only its own pairs."""
    pods = list(pods)
    namespaces = _alternatives(ns for ns, _ in pods)
    names = _alternatives(name for _, name in pods)
    return f'{metric.name}{{namespace=~"{namespaces}",pod=~"{names}"}}'


def peak_query(metric: Metric, policy: Policy, pods: Iterable[Pod]) -> str:
    """The highest raw sample of each GPU series in the window: a short burst counts."""
    return f"max_over_time({selector(metric, pods)}[{policy.window}s])"


def presence_query(metric: Metric, policy: Policy, pods: Iterable[Pod]) -> str:
    """At how many step instants of the window each GPU series had a live sample. Prometheus
    writes staleness markers when a scrape fails or a series vanishes, so a gap longer than a
    step lowers this count below `expected_points`."""
    return (f"count_over_time({selector(metric, pods)}"
            f"[{policy.window}s:{policy.step}s])")


@dataclass(frozen=True)
class GpuWindow:
    """One GPU series of a pod over the window."""

    peak: Decimal | None  # the highest raw sample, in the metric's unit
    points: int  # step instants with a live sample


def gpu_windows(peaks: list[dict[str, Any]], presence: list[dict[str, Any]]
                ) -> dict[Pod, list[GpuWindow]]:
    """Join the two queries' vector results per series, grouped by pod."""
    def key(item: dict[str, Any]) -> tuple[tuple[str, str], ...]:
        labels = item.get("metric") or {}
        return tuple(sorted((k, str(v)) for k, v in labels.items() if k != "__name__"))

    peak_by_series = {key(item): _number(item) for item in peaks}
    points_by_series = {key(item): _number(item) for item in presence}
    found: dict[Pod, list[GpuWindow]] = {}
    for series in peak_by_series.keys() | points_by_series.keys():
        labels = dict(series)
        pod = (labels.get("namespace", ""), labels.get("pod", ""))
        points = points_by_series.get(series)
        found.setdefault(pod, []).append(
            GpuWindow(peak=peak_by_series.get(series), points=int(points or 0)))
    return found


def _number(item: dict[str, Any]) -> Decimal | None:
    value = item.get("value") or [None, None]
    try:
        number = Decimal(str(value[1]))
    except (InvalidOperation, IndexError):
        return None
    return number if number.is_finite() else None


# --- the verdict ---------------------------------------------------------------------------

class Verdict(StrEnum):
    IDLE = "Idle"
    BUSY = "Busy"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class Finding:
    verdict: Verdict
    message: str
    running_since: str | None = None  # the run it was measured on; a later run ignores it


def due(policy: Policy, running_since: str | None, now: datetime) -> bool:
    """Has the whole window elapsed since the rental last (re)started running?"""
    if not running_since:
        return False
    return (now - parse_ts(running_since)).total_seconds() >= policy.window


def judge(policy: Policy, metric: Metric, gpus: int, windows: list[GpuWindow],
          running_since: str | None, now: datetime) -> Finding:
    """Idle only when every one of the pod's GPUs has gap-free samples over the whole
    window since it last started, all below the threshold."""
    window = durations.format_duration_exact(policy.window)

    def unknown(why: str) -> Finding:
        return Finding(Verdict.UNKNOWN, why, running_since)

    if not due(policy, running_since, now):
        return unknown(f"running for less than the idle window ({window})")
    if len(windows) < gpus:
        return unknown(f"{metric.name} has {len(windows)} of {gpus} GPU series")
    if any(w.peak is None or w.points < policy.expected_points for w in windows):
        return unknown(f"a scrape gap in the last {window} of {metric.name}")
    peak = max(w.peak * metric.percent_per_unit for w in windows if w.peak is not None)
    shown = f"{peak.quantize(Decimal('0.1'))}%"
    if peak < policy.below:
        return Finding(Verdict.IDLE, f"GPU utilisation stayed below {policy.below}% for "
                       f"{window} (peak {shown}, {metric.name})", running_since)
    return Finding(Verdict.BUSY, f"GPU utilisation peaked at {shown} in the last {window}",
                   running_since)


# --- the sticky hold -----------------------------------------------------------------------

def hold(policy: Policy | None, generation: int, status: Mapping[str, Any],
         finding: Finding | None) -> Hold | None:
    """The hold an idle pause puts on the rental.

    Sticky: once `status.idlePausedGeneration` is recorded the hold stays until the spec
    changes (metadata.generation moves past it), whatever the GPUs do - there is no pod left
    to measure. A fresh IDLE finding holds only for the run it was measured on.
    """
    paused_at = status.get("idlePausedGeneration")
    action = policy.action if policy is not None else ExhaustAction.PAUSE
    if paused_at is not None and generation <= int(paused_at):
        message = _idle_message(status) or "the GPU was idle"
        if status.get("phase") == "Stopped":
            action = ExhaustAction.STOP
        return Hold(_ACTION_STATE[action], "Idle", message)
    if (policy is not None and finding is not None and finding.verdict is Verdict.IDLE
            and finding.running_since == status.get("runningSince")):
        return Hold(_ACTION_STATE[action], "Idle", finding.message)
    return None


def _idle_message(status: Mapping[str, Any]) -> str | None:
    for cond in status.get("conditions") or ():
        if cond.get("type") == ConditionType.IDLE and cond.get("status") == "True":
            return str(cond.get("message") or "")
    return None
