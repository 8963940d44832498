"""Idle auto-pause decisions: policy layering, the window floor, gaps, MIG metric, stickiness."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from gpurental import idle
from gpurental.clock import format_ts
from gpurental.constants import FINALIZER
from gpurental.lifecycle import Children, Context, plan
from gpurental.models import DesiredState, ExhaustAction, OfferSpec, RentalSpec, parse_spec
from gpurental.observed import PodView, PvcView, RentalView

T0 = datetime(2026, 6, 7, 8, 0, 0, tzinfo=UTC)
STARTED = format_ts(T0)


def offer(**kw: Any) -> OfferSpec:
    return parse_spec(OfferSpec, {"gpu": {"product": "X"}, "pricePerGpuHour": "1.00", **kw})


def spec(**kw: Any) -> RentalSpec:
    return parse_spec(RentalSpec, {"offer": "x", "image": "busybox", **kw})


POLICY = idle.Policy(below=5, window=1800, action=ExhaustAction.PAUSE)
GPU = idle.metric_for(offer())
MIG = idle.metric_for(offer(gpu={"product": "A100", "resourceName": "nvidia.com/mig-1g.10gb"}))


def full(peak: str) -> idle.GpuWindow:
    return idle.GpuWindow(peak=Decimal(peak), points=POLICY.expected_points)


def judge(windows: list[idle.GpuWindow], after: float = 1800, gpus: int = 1,
          metric: idle.Metric = GPU) -> idle.Verdict:
    now = T0 + timedelta(seconds=after)
    return idle.judge(POLICY, metric, gpus, windows, STARTED, now).verdict


# --- policy ----------------------------------------------------------------------------------

def test_no_policy_unless_the_rental_or_its_offer_asks() -> None:
    assert idle.effective_policy(spec(), offer()) is None
    assert idle.effective_policy(spec(), None) is None


def test_the_rentals_fields_win_then_the_offers_default_then_built_ins() -> None:
    shop = offer(idle={"default": {"below": 10, "for": "1h", "action": "Stop"}})
    assert idle.effective_policy(spec(), shop) == idle.Policy(10, 3600, ExhaustAction.STOP)
    own = idle.effective_policy(spec(idle={"for": "20m"}), shop)
    assert own == idle.Policy(10, 1200, ExhaustAction.STOP)
    bare = idle.effective_policy(spec(idle={}), offer())
    assert bare == idle.Policy(idle.DEFAULT_BELOW, idle.DEFAULT_WINDOW, ExhaustAction.PAUSE)


def test_the_offers_floor_raises_a_shorter_window() -> None:
    shop = offer(idle={"minWindow": "10m"})
    assert idle.effective_policy(spec(idle={"for": "1m"}), shop).window == 600  # type: ignore[union-attr]
    assert idle.effective_policy(spec(idle={"for": "15m"}), shop).window == 900  # type: ignore[union-attr]


def test_a_zero_threshold_opts_out_of_the_offers_default() -> None:
    shop = offer(idle={"default": {"below": 5}})
    assert idle.effective_policy(spec(idle={"below": 0}), shop) is None


# --- metric and queries ------------------------------------------------------------------------

def test_mig_offers_use_the_engine_activity_ratio() -> None:
    assert idle.Metric("DCGM_FI_DEV_GPU_UTIL", Decimal(1)) == GPU
    assert idle.Metric("DCGM_FI_PROF_GR_ENGINE_ACTIVE", Decimal(100)) == MIG
    # 0.5 engine activity is 50%: busy on a MIG slice, however low GPU_UTIL reads.
    assert judge([full("0.5")], metric=MIG) is idle.Verdict.BUSY
    assert judge([full("0.04")], metric=MIG) is idle.Verdict.IDLE


def test_queries_select_the_pods_by_dcgm_labels_over_the_window() -> None:
    pods = [("team-a", "nb.1"), ("team-b", "train")]
    assert idle.peak_query(GPU, POLICY, pods) == (
        r'max_over_time(DCGM_FI_DEV_GPU_UTIL{namespace=~"team\\-a|team\\-b",'
        r'pod=~"nb\\.1|train"}[1800s])')
    assert idle.presence_query(GPU, POLICY, pods).endswith("[1800s:15s])")
    assert POLICY.expected_points == 120


def test_query_results_join_per_series_and_group_per_pod() -> None:
    labels = {"__name__": "DCGM_FI_DEV_GPU_UTIL", "namespace": "a", "pod": "p", "gpu": "0"}
    other = {**labels, "gpu": "1"}
    windows = idle.gpu_windows(
        [{"metric": labels, "value": [1, "3"]}, {"metric": other, "value": [1, "7"]}],
        [{"metric": labels, "value": [1, "120"]}])
    assert sorted(windows[("a", "p")], key=lambda w: w.points) == [
        idle.GpuWindow(Decimal(7), 0), idle.GpuWindow(Decimal(3), 120)]


# --- the verdict -----------------------------------------------------------------------------

def test_idle_when_every_sample_of_every_gpu_stays_below_the_threshold() -> None:
    assert judge([full("4.9"), full("0")], gpus=2) is idle.Verdict.IDLE
    assert judge([full("5"), full("0")], gpus=2) is idle.Verdict.BUSY


def test_a_just_resumed_rental_gets_the_full_window_again() -> None:
    assert judge([full("0")], after=1799) is idle.Verdict.UNKNOWN
    assert judge([full("0")], after=1800) is idle.Verdict.IDLE


def test_missing_series_or_a_scrape_gap_is_never_idle() -> None:
    assert judge([]) is idle.Verdict.UNKNOWN
    assert judge([full("0")], gpus=2) is idle.Verdict.UNKNOWN
    gap = dataclasses.replace(full("0"), points=POLICY.expected_points - 1)
    assert judge([gap]) is idle.Verdict.UNKNOWN
    assert judge([idle.GpuWindow(None, POLICY.expected_points)]) is idle.Verdict.UNKNOWN


# --- the sticky hold -------------------------------------------------------------------------

FOUND = idle.Finding(idle.Verdict.IDLE, "GPU utilisation stayed below 5% for 30m", STARTED)


def test_a_finding_holds_only_the_run_it_was_measured_on() -> None:
    running = {"phase": "Running", "runningSince": STARTED}
    hold = idle.hold(POLICY, 1, running, FOUND)
    assert hold is not None and (hold.state, hold.reason) == (DesiredState.PAUSED, "Idle")
    later = {"phase": "Running", "runningSince": format_ts(T0 + timedelta(hours=1))}
    assert idle.hold(POLICY, 1, later, FOUND) is None
    stop = dataclasses.replace(POLICY, action=ExhaustAction.STOP)
    assert idle.hold(stop, 1, running, FOUND).state is DesiredState.STOPPED  # type: ignore[union-attr]


def test_the_recorded_pause_sticks_until_the_spec_changes() -> None:
    paused = {"phase": "Paused", "idlePausedGeneration": 3}
    assert idle.hold(POLICY, 3, paused, None) is not None
    assert idle.hold(None, 3, paused, None) is not None  # even if the policy was removed
    assert idle.hold(POLICY, 4, paused, None) is None


def test_the_state_machine_records_the_idle_pause_and_lifts_it_on_a_spec_change() -> None:
    status = {"phase": "Running", "runningSince": STARTED, "ratePerHour": "1.00",
              "accruedSeconds": 0, "firstStartedAt": STARTED, "podName": "r1"}
    view = RentalView("ns", "r1", "uid-1", 2, False, (FINALIZER,),
                      {"offer": "x", "image": "busybox"}, status)
    pod = PodView(name="r1", uid="p1", phase="Running", deleting=False, started_at=T0)
    pvc = PvcView(name="r1-storage", phase="Bound", deleting=False)
    now = T0 + timedelta(seconds=1800)
    hold = idle.hold(POLICY, 2, status, FOUND)
    paused = plan(view, Children(pod=pod, pvc=pvc), Context(now=now, offer=offer(), hold=hold))
    assert paused.status["phase"] == "Paused" and paused.status["idlePausedGeneration"] == 2
    conds = {c["type"]: c for c in paused.status["conditions"]}
    assert conds["Paused"]["reason"] == "Idle" and conds["Idle"]["status"] == "True"
    assert "Idle" in [e.reason for e in paused.events]
    bumped = dataclasses.replace(view, generation=3, status=paused.status)
    resumed = plan(bumped, Children(pvc=pvc), Context(
        now=now, offer=offer(), hold=idle.hold(POLICY, 3, paused.status, FOUND)))
    assert "idlePausedGeneration" not in resumed.status
    conds = {c["type"]: c for c in resumed.status["conditions"]}
    assert conds["Idle"]["status"] == "False" and resumed.status["phase"] == "Provisioning"
