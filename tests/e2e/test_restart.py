"""The operator killed (SIGKILL) and restarted mid-lifecycle: no duplicate, orphan or lost work."""

from __future__ import annotations

import time

from e2e_support import Rentals, eventually

from gpurental import disruptions
from gpurental_dev.cluster import OperatorProcess

NAMES = [f"r{i}" for i in range(6)]


def owned_by_rentals(rentals: Rentals) -> tuple[list[str], list[str]]:
    uids = {rentals.get(n)["metadata"]["uid"] for n in NAMES}
    pods = [p for p in rentals.pods() if p.metadata.owner_references[0].uid in uids]
    pvcs = [p for p in rentals.pvcs() if p.metadata.owner_references[0].uid in uids]
    assert len(pods) == len(rentals.pods()), "a pod without a live rental (orphan)"
    assert len(pvcs) == len(rentals.pvcs()), "a PVC without a live rental (orphan)"
    return sorted(p.metadata.name for p in pods), sorted(p.metadata.name for p in pvcs)


def test_killed_while_provisioning_then_restarted(rentals: Rentals,
                                                  operator: OperatorProcess) -> None:
    for name in NAMES:
        rentals.create(name)
    eventually(lambda: len(rentals.pods()) >= 2, timeout=30, interval=0.02)
    operator.kill()
    try:
        rentals.patch("r0", state="Paused")  # a change the operator must not miss
    finally:
        operator.start()
    for name in NAMES[1:]:
        rentals.wait_phase(name, "Running")
    rentals.wait_phase("r0", "Paused")
    # The pod's DELETE follows the Paused status write, and its deletion is graceful.
    eventually(lambda: owned_by_rentals(rentals) == (NAMES[1:], [f"{n}-storage" for n in NAMES]),
               timeout=60)


def test_restart_while_running_keeps_the_meter(rentals: Rentals,
                                               operator: OperatorProcess) -> None:
    rentals.create("meter")
    running = rentals.wait_phase("meter", "Running")
    pod_uid = rentals.core.read_namespaced_pod("meter", rentals.namespace).metadata.uid
    operator.kill()
    down_since = time.monotonic()
    time.sleep(3)
    operator.start()

    def caught_up() -> dict[str, object]:
        status = rentals.status("meter")
        assert status["secondsBilled"] >= int(time.monotonic() - down_since), status
        return status
    status = eventually(caught_up, timeout=30)
    assert status["runningSince"] == running["runningSince"]
    assert rentals.core.read_namespaced_pod("meter", rentals.namespace).metadata.uid == pod_uid
    # A restart is not a disruption: no reason of one was posted.
    assert not {*disruptions.REASONS, disruptions.POD_ENDED} & set(rentals.event_reasons("meter"))


def test_stop_requested_while_the_operator_is_down(rentals: Rentals,
                                                    operator: OperatorProcess) -> None:
    rentals.create("later")
    rentals.wait_phase("later", "Running")
    operator.kill()
    try:
        rentals.patch("later", state="Stopped")
    finally:
        operator.start()
    stopped = rentals.wait_phase("later", "Stopped")
    assert stopped.get("runningSince") is None and stopped["accruedSeconds"] >= 0
    eventually(lambda: rentals.pods() == [] and rentals.pvcs() == [])
