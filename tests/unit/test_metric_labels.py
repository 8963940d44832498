"""Label values the operator derives from free text stay within a small, fixed shape, and a
series looked up through the cache is the registry's own."""

from __future__ import annotations

import pytest

from gpurental import metrics
from gpurental.metrics import failure_reason


@pytest.mark.parametrize(("message", "reason"), [
    ("Unschedulable: 0/4 nodes are available: 4 Insufficient nvidia.com/gpu.", "Unschedulable"),
    ("ErrImagePull: registry.invalid/x: not found", "ErrImagePull"),
    ("ProvisioningFailed: storageclass broken cannot provision", "ProvisioningFailed"),
    ("the pod did not start in time", "Other"),
    ("", "Other"),
    ("0/4 nodes: busy", "Other"),
    ("A" * 80 + ": too long to be a reason", "Other"),
])
def test_failure_reason_is_a_bounded_label(message: str, reason: str) -> None:
    assert failure_reason(message) == reason


def test_a_labelled_series_is_the_registrys_own_child() -> None:
    series = metrics.labelled(metrics.API_LATENCY, "get_unit_test")
    assert series is metrics.API_LATENCY.labels(verb="get_unit_test")
    assert metrics.labelled(metrics.API_LATENCY, "get_unit_test") is series
