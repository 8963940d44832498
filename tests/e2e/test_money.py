"""Money through the API: expiry, extend, auto-renew, storage, wallets running out."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from e2e_support import GROUP, VERSION, Rentals, eventually, eventually_found

from gpurental.clock import parse_ts

PRICEY_CENTS_PER_SECOND = 10  # offer "pricey": $360.00 per GPU-hour


def wallet(rentals: Rentals, budget: str, name: str = "team",
           on_exhausted: str = "Pause") -> None:
    rentals.custom.create_namespaced_custom_object(GROUP, VERSION, rentals.namespace, "wallets", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Wallet", "metadata": {"name": name},
        "spec": {"budget": budget, "onExhausted": on_exhausted}})


def wallet_status(rentals: Rentals, name: str = "team") -> dict[str, Any]:
    body = rentals.custom.get_namespaced_custom_object(GROUP, VERSION, rentals.namespace,
                                                       "wallets", name)
    return dict(body.get("status") or {})


def top_up(rentals: Rentals, budget: str, name: str = "team") -> None:
    rentals.custom.patch_namespaced_custom_object(
        GROUP, VERSION, rentals.namespace, "wallets", name, {"spec": {"budget": budget}},
        _content_type="application/merge-patch+json")


def cents(seconds: int, rate: str) -> int:
    exact = Decimal(seconds) * Decimal(rate) * 100 / 3600
    return int(exact.quantize(Decimal(1), ROUND_HALF_UP))


def test_expiry_pauses_exactly_at_the_prepaid_time_and_extend_resumes(rentals: Rentals) -> None:
    rentals.create("short", duration="3s")
    running = rentals.wait_phase("short", "Running")
    assert parse_ts(running["expiresAt"]) == parse_ts(running["runningSince"]) + \
        (parse_ts("2026-01-01T00:00:03Z") - parse_ts("2026-01-01T00:00:00Z"))
    paused = rentals.wait_phase("short", "Paused", timeout=30)
    assert paused["secondsBilled"] == 3
    assert rentals.condition("short", "Expired")["status"] == "True"
    assert rentals.condition("short", "Paused")["reason"] == "Expired"
    eventually(lambda: rentals.pods() == [])

    rentals.patch("short", duration="5s")  # extend by two seconds
    rentals.wait_phase("short", "Running")
    assert rentals.condition("short", "Expired")["status"] == "False"
    final = rentals.wait_phase("short", "Paused", timeout=30)
    assert final["secondsBilled"] == 5


def test_on_expiry_stop(rentals: Rentals) -> None:
    rentals.create("oneshot", duration="2s", onExpiry="Stop")
    stopped = rentals.wait_phase("oneshot", "Stopped", timeout=30)
    assert stopped["secondsBilled"] == 2
    eventually(lambda: rentals.pods() == [] and rentals.pvcs() == [])


def test_the_offers_max_duration_caps_what_a_tenant_asks(rentals: Rentals) -> None:
    rentals.create("greedy", offer="capped", duration="10h")
    paused = rentals.wait_phase("greedy", "Paused", timeout=30)
    assert paused["secondsBilled"] == 3


def test_auto_renew_while_the_wallet_covers_it(rentals: Rentals) -> None:
    wallet(rentals, "100.00")
    rentals.create("renewing", duration="2s", autoRenew=True, wallet="team")
    rentals.wait_phase("renewing", "Running")
    eventually(lambda: rentals.status("renewing").get("renewals", 0) >= 2, timeout=30)
    assert rentals.status("renewing")["phase"] == "Running"
    rentals.await_events("renewing", "Renewed")


def test_auto_renew_refused_when_the_wallet_cannot_cover_it(rentals: Rentals) -> None:
    wallet(rentals, "0.30")  # after 2 s of "pricey" 10 cents are left, a renewal costs 20
    rentals.create("poor", offer="pricey", duration="2s", autoRenew=True, wallet="team")
    paused = rentals.wait_phase("poor", "Paused", timeout=30)
    assert paused.get("renewals", 0) == 0
    assert paused["secondsBilled"] == 2


def test_storage_is_billed_while_paused(rentals: Rentals) -> None:
    """A paused rental gets no heartbeat writes; its volume accrues all the same, visible in
    the wallet at once and in the rental's own status at its next transition."""
    wallet(rentals, "100.00")
    rentals.create("stored", offer="storagey", storage={"size": "1Gi"}, wallet="team")
    rentals.wait_phase("stored", "Running")
    rentals.patch("stored", state="Paused")
    paused = rentals.wait_phase("stored", "Paused")
    assert paused["storageRatePerHour"] == "36.00" and paused["storageSince"]
    spent = eventually_found(lambda: wallet_status(rentals).get("spentCents"))
    eventually(lambda: wallet_status(rentals)["spentCents"] >= spent + 2, timeout=30)
    rentals.patch("stored", state="Stopped")
    stopped = rentals.wait_phase("stored", "Stopped")
    assert stopped["currentChargeCents"] == paused["currentChargeCents"]
    assert stopped["storageSecondsBilled"] > stopped["secondsBilled"]
    assert stopped["storageChargeCents"] == cents(stopped["storageSecondsBilled"], "36.00")
    assert stopped["totalChargeCents"] == (stopped["currentChargeCents"]
                                           + stopped["storageChargeCents"])


def test_wallet_exhaustion_pauses_on_time_and_a_top_up_resumes(rentals: Rentals) -> None:
    wallet(rentals, "1.00")
    rentals.create("a", offer="pricey", wallet="team")
    rentals.create("b", offer="pricey", wallet="team")
    for name in ("a", "b"):
        rentals.wait_phase(name, "Running")
    # The prediction once both meters run (2 x 36,000 cents an hour).
    exhausts_at = eventually(
        lambda: wallet_status(rentals).get("burnCentsPerHour") == 72000
        and wallet_status(rentals)["exhaustsAt"], timeout=30)
    for name in ("a", "b"):
        rentals.wait_phase(name, "Paused", timeout=30)
        assert rentals.condition(name, "Paused")["reason"] == "BudgetExhausted"
        assert rentals.condition(name, "BudgetExhausted")["status"] == "True"
    status = eventually(lambda: wallet_status(rentals) if wallet_status(rentals).get(
        "exhausted") else False, timeout=30)
    overshoot = status["spentCents"] - 100
    print(f"wallet exhaustion: overshoot {overshoot} cents for 2 rentals burning "
          f"{PRICEY_CENTS_PER_SECOND} cents/s each")
    assert 0 <= overshoot <= 2 * PRICEY_CENTS_PER_SECOND, status
    # Each rental's billing ended within a second of the predicted moment.
    predicted = parse_ts(exhausts_at)
    for name in ("a", "b"):
        s = rentals.status(name)
        ended = parse_ts(s["runningSince"]) if s.get("runningSince") else None
        assert ended is None
        assert abs(_billing_end(s) - predicted.timestamp()) <= 1.5, (s, exhausts_at)

    rentals.create("late", offer="pricey", wallet="team")
    eventually(lambda: (rentals.condition("late", "Accepted") or {}).get("reason")
               == "BudgetExhausted", timeout=30)
    assert rentals.status("late")["phase"] == "Pending"
    assert {p.metadata.name for p in rentals.pods()} == set()

    top_up(rentals, "100.00")
    for name in ("a", "b", "late"):
        rentals.wait_phase(name, "Running", timeout=30)


def _billing_end(status: dict[str, Any]) -> float:
    """When the last running segment closed: the first start plus the billed seconds, for a
    rental that ran in one segment."""
    started: datetime = parse_ts(status["firstStartedAt"])
    return started.timestamp() + status["accruedSeconds"]


def test_stop_with_on_exhausted_stop(rentals: Rentals) -> None:
    wallet(rentals, "0.30", on_exhausted="Stop")
    rentals.create("burner", offer="pricey", wallet="team")
    stopped = rentals.wait_phase("burner", "Stopped", timeout=30)
    assert rentals.condition("burner", "Settled")["reason"] == "BudgetExhausted"
    assert stopped["currentChargeCents"] == cents(stopped["secondsBilled"], "360.00")
    eventually(lambda: rentals.pods() == [] and rentals.pvcs() == [])


def test_deleted_rentals_charges_stay_in_the_wallet(rentals: Rentals) -> None:
    wallet(rentals, "100.00")
    rentals.create("x", offer="pricey", wallet="team")
    rentals.wait_phase("x", "Running")
    rentals.patch("x", state="Stopped")
    stopped = rentals.wait_phase("x", "Stopped")
    eventually(lambda: wallet_status(rentals).get("spentCents") == stopped["totalChargeCents"])
    rentals.delete("x")
    eventually(lambda: wallet_status(rentals).get("settledCents") == stopped["totalChargeCents"])
    eventually(lambda: wallet_status(rentals).get("spentCents") == stopped["totalChargeCents"])
    ledger = wallet_status(rentals)["settlements"]
    assert [e["rental"] for e in ledger] == ["x"]


def test_failed_provisioning_is_refunded_and_never_reaches_the_wallet(rentals: Rentals) -> None:
    """The volume accrued storage while the pod could not be scheduled: all of it refunded."""
    wallet(rentals, "100.00")
    rentals.create("nogpu", offer="storagefail", storage={"size": "1Gi"}, wallet="team")
    failed = rentals.wait_phase("nogpu", "Failed", timeout=30)
    assert failed["storageChargeCents"] > 0
    assert failed["refundedCents"] == failed["totalChargeCents"]
    eventually(lambda: wallet_status(rentals).get("spentCents") == 0)
