"""Stop and delete settle exactly once even when the operator is SIGKILLed mid-settlement.

The reference is independent of the operator's own bookkeeping: each rental's running time is
taken from what the API server saw - the container's start as the kubelet reported it, and the
moment the operator's pod DELETE reached the API server - and priced with a plain Decimal
formula. The wallet must match it to within one second of burn per rental (the operator closes
the meter when it decides to stop, a few milliseconds before the DELETE lands, and whole
seconds are floored), and no rental may be settled twice or lost.
"""

from __future__ import annotations

import random
import time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from e2e_support import GROUP, VERSION, Rentals, eventually
from kubernetes import client

from gpurental_dev.cluster import Cluster, OperatorProcess

RATE = Decimal("360.00")  # offer "pricey": 10 cents a second
RENTALS = 12


def _cents(seconds: int) -> int:
    return int((Decimal(seconds) * RATE * 100 / 3600).quantize(Decimal(1), ROUND_HALF_UP))


def _wallet(rentals: Rentals) -> dict[str, Any]:
    body = rentals.custom.get_namespaced_custom_object(GROUP, VERSION, rentals.namespace,
                                                       "wallets", "team")
    return dict(body.get("status") or {})


def test_settlement_survives_sigkill_at_random_points(
    rentals: Rentals, operator: OperatorProcess, cluster: Cluster
) -> None:
    rng = random.Random(20261123)
    rentals.custom.create_namespaced_custom_object(GROUP, VERSION, rentals.namespace, "wallets", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Wallet", "metadata": {"name": "team"},
        "spec": {"budget": "100000.00"}})
    names = [f"c{i}" for i in range(RENTALS)]
    for name in names:
        rentals.create(name, offer="pricey", wallet="team")
    started = {}
    for name in names:
        rentals.wait_phase(name, "Running")
        pod = rentals.core.read_namespaced_pod(name, rentals.namespace)
        started[name] = pod.status.container_statuses[0].state.running.started_at
    since = cluster.substrate.start_recording()
    for i, name in enumerate(names):
        if i % 2:
            rentals.delete(name)
        else:
            rentals.patch(name, state="Stopped")
        time.sleep(rng.uniform(0.0, 0.15))
        operator.kill()
        operator.start()
    for name in names[::2]:
        rentals.wait_phase(name, "Stopped")
    for name in names[1::2]:
        eventually(lambda n=name: _gone(rentals, n))
    requests = cluster.substrate.recorded(since)

    deletes = {}
    for req in requests:
        path = req["path"]
        prefix = f"/api/v1/namespaces/{rentals.namespace}/pods/"
        # A DELETE cut short by the SIGKILL (the real server records 504) deleted nothing.
        if req["method"] == "DELETE" and path.startswith(prefix) and req["status"] == 200:
            deletes.setdefault(path[len(prefix):], req["timestamp"])
    assert set(deletes) == set(names), "every pod deleted by the operator"
    reference = {n: _cents(int(deletes[n] - started[n].timestamp())) for n in names}

    def settled() -> dict[str, Any]:
        status = _wallet(rentals)
        assert status.get("spentCents") is not None
        return status
    status = eventually(settled)
    stopped_cents = {n: rentals.status(n)["totalChargeCents"] for n in names[::2]}
    # The wallet counts stopped rentals live and deleted ones through settledCents.
    deleted_cents = status["settledCents"]
    expected_deleted = sum(reference[n] for n in names[1::2])
    errors = [stopped_cents[n] - reference[n] for n in names[::2]]
    errors.append(deleted_cents - expected_deleted)
    one_second = _cents(1) + 1
    print(f"settlement crash test: worst error {max(map(abs, errors))} cents "
          f"over {RENTALS} rentals, {operator.starts} operator starts")
    assert all(abs(e) <= one_second for e in errors[:-1]), errors
    assert abs(errors[-1]) <= one_second * (RENTALS // 2), errors
    ledger = [e["rentalUid"] for e in status.get("settlements") or []]
    assert len(ledger) == len(set(ledger)), "a rental settled twice"
    eventually(lambda: _wallet(rentals)["spentCents"] == deleted_cents + sum(
        stopped_cents.values()))


def _gone(rentals: Rentals, name: str) -> bool:
    try:
        rentals.get(name)
    except client.ApiException as exc:
        return exc.status == 404
    return False
