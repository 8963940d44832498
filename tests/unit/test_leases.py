"""Leader election's rules (client-go's): when a replica may take the Lease, what it writes."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from gpurental.leases import Observed, lease_body, may_take, released

NOW = datetime(2026, 12, 2, 4, 0, 0, 123456, tzinfo=UTC)


def lease(holder: str, renewed: str = "2026-12-02T04:00:00.000000Z", duration: int = 15,
          version: str = "7", transitions: int = 0) -> dict:
    return {"metadata": {"name": "op", "namespace": "gpu-system", "resourceVersion": version},
            "spec": {"holderIdentity": holder, "renewTime": renewed,
                     "leaseDurationSeconds": duration, "leaseTransitions": transitions,
                     "acquireTime": "2026-12-02T03:00:00.000000Z"}}


def test_nobody_holds_it_or_i_do_so_i_may_take_it_at_once() -> None:
    assert may_take(Observed.of(None, 100.0, None), "a", 100.0)
    assert may_take(Observed.of(lease(""), 100.0, None), "a", 100.0)
    assert may_take(Observed.of(lease("a"), 100.0, None), "a", 100.0)


@given(st.floats(min_value=0, max_value=14.99))
def test_another_holder_is_waited_out_for_a_whole_duration_of_my_own_clock(waited) -> None:
    seen = Observed.of(lease("b"), 100.0, None)
    assert not may_take(seen, "a", 100.0 + waited)
    # The same record read again later keeps the moment it was first seen.
    again = Observed.of(lease("b"), 100.0 + waited, seen)
    assert again.seen_at == 100.0
    assert may_take(again, "a", 115.0)


def test_a_renewal_restarts_the_wait() -> None:
    seen = Observed.of(lease("b"), 100.0, None)
    renewed = Observed.of(lease("b", renewed="2026-12-02T04:00:02.000000Z"), 110.0, seen)
    assert renewed.seen_at == 110.0
    assert not may_take(renewed, "a", 120.0)
    assert may_take(renewed, "a", 125.0)


def test_taking_it_over_counts_a_transition_and_stamps_the_acquisition() -> None:
    body = lease_body("op", "gpu-system", "a", 15, NOW, lease("b", transitions=2))
    spec = body["spec"]
    assert spec["holderIdentity"] == "a" and spec["leaseTransitions"] == 3
    assert spec["acquireTime"] == spec["renewTime"] == "2026-12-02T04:00:00.123456Z"
    assert spec["leaseDurationSeconds"] == 15
    # Conditional on the version read: two replicas taking it at once cannot both succeed.
    assert body["metadata"] == {"name": "op", "namespace": "gpu-system", "resourceVersion": "7"}


def test_renewing_keeps_the_acquisition_and_the_transitions() -> None:
    spec = lease_body("op", "gpu-system", "a", 15, NOW, lease("a", transitions=2))["spec"]
    assert spec["acquireTime"] == "2026-12-02T03:00:00.000000Z"
    assert spec["leaseTransitions"] == 2 and spec["renewTime"] == "2026-12-02T04:00:00.123456Z"


def test_the_first_lease_is_created_without_a_version() -> None:
    body = lease_body("op", "gpu-system", "a", 15, NOW, None)
    assert "resourceVersion" not in body["metadata"]
    assert body["spec"]["holderIdentity"] == "a" and "leaseTransitions" not in body["spec"]


def test_a_released_lease_is_free_for_the_next_try() -> None:
    given_up = released(lease("a"))
    assert given_up["spec"]["holderIdentity"] == ""
    assert given_up["metadata"]["resourceVersion"] == "7"
    assert may_take(Observed.of(given_up, 100.0, None), "b", 100.0)
