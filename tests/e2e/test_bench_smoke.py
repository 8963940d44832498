"""`make bench` at tiny scale: every figure is printed as a BENCH line with a sane value.

The numbers of a smoke run on a shared machine are not judged against the targets (the full
bench is); this proves the benchmark itself works end to end on each substrate: its own API
server, nodes and operator, every figure measured, and the operator alive at the end.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from gpurental_dev import substrate as substrates
from gpurental_dev.cluster import ROOT, _env

pytestmark = pytest.mark.e2e

FIGURES = {
    "provision_20_rentals_until_running": "s",
    "stop_latency_stopped_p50": "ms", "stop_latency_stopped_p99": "ms",
    "stop_latency_p99_9": "ms", "stop_latency_operator_share_p99": "ms",
    "stop_latency_server_writes_p99": "ms",
    "stop_latency_paused_p50": "ms", "stop_latency_paused_p99": "ms",
    "wallet_exhaustion_pause_error_p99": "s", "wallet_exhaustion_worst_overshoot": "cents",
    "steady_operator_peak_rss": "MiB", "steady_operator_cpu": "cores",
    "steady_api_writes_per_s": "1/s", "steady_heartbeat_staleness_p99": "s",
}


@pytest.mark.timeout(280)
def test_bench_smoke_prints_every_figure(tmp_path: Path, substrate: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gpurental_bench", "--smoke", "--workdir", str(tmp_path),
         "--substrate", substrate],
        capture_output=True, text=True, timeout=260, cwd=ROOT, env=_env())
    print(result.stdout[-4000:], result.stderr[-4000:])
    assert result.returncode == 0
    lines = [json.loads(line[len("BENCH "):]) for line in result.stdout.splitlines()
             if line.startswith("BENCH ")]
    figures = {f["name"]: f for f in lines}
    assert set(figures) == set(FIGURES)
    for name, unit in FIGURES.items():
        figure = figures[name]
        assert figure["unit"] == unit
        assert isinstance(figure["value"], int | float) and math.isfinite(figure["value"])
        if figure["limit"] is not None:
            assert figure["ratio"] == pytest.approx(figure["value"] / figure["limit"], rel=0.02)
    assert figures["steady_operator_peak_rss"]["value"] > 10  # a real process was sampled
    assert 0 < figures["stop_latency_stopped_p50"]["value"] < 10_000
    # the operator's own share, read from its histogram: every stop was observed there
    assert 0 < figures["stop_latency_operator_share_p99"]["value"] <= 1000
    # the two writes each stop waits on, read from the server's record of every stop
    assert 0 < figures["stop_latency_server_writes_p99"]["value"] < 10_000
    assert 0 < figures["steady_heartbeat_staleness_p99"]["value"] < 3 * 3.0 + 5
    assert figures["wallet_exhaustion_worst_overshoot"]["value"] >= 0
    # The exhausted wallets must not be rewritten every second (the bug the bench found).
    assert figures["steady_api_writes_per_s"]["ratio"] <= 1.3
    assert "the operator exited" not in result.stdout
    assert "Summary" in result.stdout
    assert "host speed at start" in result.stdout and "host speed at the end" in result.stdout


@pytest.mark.timeout(280)
@pytest.mark.parametrize("real", [s for s in substrates.selected() if s == substrates.KUBERNETES])
def test_preemption_bench_prints_its_figures(tmp_path: Path, real: str) -> None:
    """`make bench-preemption` at one round: kube-scheduler preempts for both the rental and
    the direct pod (only the real control plane's scheduler preempts)."""
    result = subprocess.run(
        [sys.executable, "-m", "gpurental_bench", "--preemption", "--smoke", "--workdir",
         str(tmp_path), "--substrate", real],
        capture_output=True, text=True, timeout=260, cwd=ROOT, env=_env())
    print(result.stdout[-4000:], result.stderr[-4000:])
    assert result.returncode == 0
    figures = {f["name"]: f for f in (json.loads(line[len("BENCH "):])
                                      for line in result.stdout.splitlines()
                                      if line.startswith("BENCH "))}
    assert set(figures) == {"preemption_on_demand_rental_until_running",
                            "preemption_direct_pod_until_running"}
    rental = figures["preemption_on_demand_rental_until_running"]
    direct = figures["preemption_direct_pod_until_running"]
    assert 0 < direct["value"] < 120 and 0 < rental["value"] < 120
    assert rental["limit"] == direct["value"]
