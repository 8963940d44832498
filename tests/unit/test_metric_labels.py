"""Label values the operator derives from free text stay within a small, fixed shape."""

from __future__ import annotations

import pytest

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
