"""The bench's reading of kube-apiserver's profile (`go tool pprof -top -cum` text) and its
cost per write."""

from __future__ import annotations

import math

import pytest

from gpurental_bench.figures import Level, StopLatencies
from gpurental_bench.server_profile import _seconds, parse_top

TOP = """\
File: k8s-testbed
Type: cpu
Duration: 50.12s, Total samples = 19.16s (38.23%)
Showing nodes accounting for 4.75s, 24.79% of 19.16s total
      flat  flat%   sum%        cum   cum%
         0     0%     0%      8.25s 43.06%  k8s.io/apiserver/pkg/.../finisher.finishRequest.func1
     0.01s 0.052% 0.052%      8.01s 41.81%  customresource.(*StatusREST).Update
     2.08s 10.86% 10.91%      2.08s 10.86%  runtime.spanClass.sizeclass (inline)
    10.5ms 0.055% 10.96%     340ms  1.77%  crypto/x509.(*Certificate).Verify
"""


def test_top_text_gives_samples_duration_and_cumulative_seconds() -> None:
    total, duration, rows = parse_top(TOP)
    assert (total, duration) == (19.16, 50.12)
    assert rows[1] == ("customresource.(*StatusREST).Update", 8.01)
    assert rows[2] == ("runtime.spanClass.sizeclass (inline)", 2.08)
    assert rows[3][1] == pytest.approx(0.34)
    assert len(rows) == 4


@pytest.mark.parametrize(("text", "seconds"), [
    ("1.5s", 1.5), ("340ms", 0.34), ("12us", 12e-6), ("2mins", 120.0), ("1hrs", 3600.0),
    ("0", 0.0)])
def test_pprof_durations(text: str, seconds: float) -> None:
    assert _seconds(text) == pytest.approx(seconds)


def level(server: dict[str, float], writes_per_s: float) -> Level:
    return Level(1000, 0.07, 96.0, writes_per_s, 30.4, server, StopLatencies([], []), 10.0, 5.0, "")


def test_the_api_servers_cpu_per_write_is_its_cores_over_the_operators_writes() -> None:
    assert level({"kube-apiserver": 0.386, "etcd": 0.036}, 33.3).server_ms_per_write == (
        pytest.approx(11.59, abs=0.01))
    assert level({"kubesim": 0.1}, 20.0).server_ms_per_write == pytest.approx(5.0)
    assert math.isnan(level({"kubesim": 0.1}, 0.0).server_ms_per_write)
