"""The bench's reading of the operator's histograms (/metrics text, Prometheus' format)."""

from __future__ import annotations

import math

from gpurental_bench.figures import bucket_percentile, histogram

TEXT = """\
# HELP gpurental_stop_latency_seconds From observing a stop or pause request ...
# TYPE gpurental_stop_latency_seconds histogram
gpurental_stop_latency_seconds_bucket{action="stopped",le="0.01"} 3.0
gpurental_stop_latency_seconds_bucket{action="stopped",le="0.1"} 9.0
gpurental_stop_latency_seconds_bucket{action="stopped",le="+Inf"} 10.0
gpurental_stop_latency_seconds_count{action="stopped"} 10.0
gpurental_stop_latency_seconds_bucket{action="paused",le="0.01"} 1.0
gpurental_stop_latency_seconds_bucket{action="paused",le="0.1"} 1.0
gpurental_stop_latency_seconds_bucket{action="paused",le="+Inf"} 2.0
gpurental_stop_latency_seconds_created{action="paused"} 1.7e+09
gpurental_gc_pause_seconds_bucket{generation="2",le="0.05"} 4.0
"""


def test_series_are_split_by_a_label_or_summed() -> None:
    by_action = histogram(TEXT, "gpurental_stop_latency_seconds", by="action")
    assert by_action == {"stopped": {"0.01": 3, "0.1": 9, "+Inf": 10},
                         "paused": {"0.01": 1, "0.1": 1, "+Inf": 2}}
    assert histogram(TEXT, "gpurental_stop_latency_seconds") == {
        "": {"0.01": 4, "0.1": 10, "+Inf": 12}}
    assert histogram(TEXT, "gpurental_missing") == {}


def test_percentile_of_what_was_observed_between_two_readings() -> None:
    before = {"0.01": 4, "0.1": 10, "+Inf": 12}
    after = {"0.01": 104, "0.1": 110, "+Inf": 112}  # 100 more, all under 10 ms
    assert bucket_percentile(before, after, 99) == 10.0
    after = {"0.01": 54, "0.1": 109, "+Inf": 112}  # 50 under 10 ms, 49 more under 100 ms
    assert bucket_percentile(before, after, 50) == 10.0
    assert bucket_percentile(before, after, 99) == 100.0
    assert bucket_percentile(before, after, 99.9) == math.inf  # one beyond the last bucket
    assert math.isnan(bucket_percentile(after, after, 99))  # nothing observed
