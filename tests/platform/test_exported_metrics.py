"""The operator's metrics module exports exactly the families of exported_metrics.py (the list
the dashboard and the alerts are checked against), with the same types and labels."""

from __future__ import annotations

from exported_metrics import EXPORTED_METRICS
from prometheus_client.metrics import MetricWrapperBase


def operator_families() -> dict[str, tuple[str, tuple[str, ...]]]:
    from gpurental import metrics

    found: dict[str, tuple[str, tuple[str, ...]]] = {}
    for obj in vars(metrics).values():
        if isinstance(obj, MetricWrapperBase):
            for family in obj.describe():
                found[family.name] = (family.type, tuple(obj._labelnames))
    # Gauges computed at scrape time; with no world they still describe themselves.
    for family in metrics.WorldCollector(lambda: None).collect():
        found[family.name] = (family.type, tuple(family._labelnames))
    return found


def expected_families() -> dict[str, tuple[str, tuple[str, ...]]]:
    # prometheus-client names a counter's family without `_total`; its samples carry it.
    return {
        (name.removesuffix("_total") if m.type == "counter" else name): (m.type, m.labels)
        for name, m in EXPORTED_METRICS.items()
    }


def test_operator_exports_exactly_the_listed_metrics():
    assert operator_families() == expected_families()


def test_names_follow_prometheus_conventions():
    for name, metric in EXPORTED_METRICS.items():
        assert name.startswith("gpurental_")
        assert name.endswith("_total") == (metric.type == "counter"), name
        if metric.type == "histogram":
            assert name.endswith("_seconds"), name
        # Bounded cardinality: no per-rental or per-pod labels.
        assert not {"rental", "name", "pod", "uid"} & set(metric.labels), name
