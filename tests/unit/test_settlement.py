"""Settling a deleted rental into its wallet: once, idempotent on replay, safe under conflicts.

Runs settlement.settle_deleted_rental against an in-memory wallet store with the API server's
optimistic concurrency: a status patch carrying a stale resourceVersion raises Conflict.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpurental import meter, settlement
from gpurental.clock import format_ts
from gpurental.constants import WALLETS
from gpurental.k8s import Conflict
from gpurental.observed import RentalView
from gpurental.world import World

NS = "team-a"
NOW = datetime(2026, 6, 7, 9, 0, 0, tzinfo=UTC)


class FakeWallets:
    """Wallet objects by (namespace, name), each with a resourceVersion bumped on every write.

    ``before_patch`` runs before a patch is applied, to model a writer racing the settlement."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.patches: list[dict[str, Any]] = []
        self.conflicts = 0
        self.before_patch: Callable[[], None] | None = None
        self._rv = 0

    def _bump(self, key: tuple[str, str]) -> None:
        self._rv += 1
        self.objects[key]["metadata"]["resourceVersion"] = str(self._rv)

    def add(self, name: str, status: dict[str, Any] | None = None) -> None:
        key = (NS, name)
        self.objects[key] = {"metadata": {"namespace": NS, "name": name},
                             "status": copy.deepcopy(status or {})}
        self._bump(key)

    def write_status(self, name: str, patch: dict[str, Any]) -> None:
        """Another writer (the wallet reconciler, another rental's settlement)."""
        key = (NS, name)
        self.objects[key]["status"].update(copy.deepcopy(patch))
        self._bump(key)

    def status(self, name: str) -> dict[str, Any]:
        return self.objects[(NS, name)]["status"]

    async def get_wallet(self, namespace: str, name: str) -> dict[str, Any] | None:
        body = self.objects.get((namespace, name))
        return copy.deepcopy(body) if body is not None else None

    async def patch_status(
        self, plural: str, namespace: str | None, name: str, status_patch: dict[str, Any],
        resource_version: str | None,
    ) -> dict[str, Any]:
        assert plural == WALLETS and namespace is not None
        if self.before_patch is not None:
            self.before_patch()
        key = (namespace, name)
        current = self.objects[key]
        if resource_version is not None and resource_version != (
                current["metadata"]["resourceVersion"]):
            self.conflicts += 1
            raise Conflict(f"{name}: stale resourceVersion {resource_version}")
        current["status"].update(copy.deepcopy(status_patch))  # a merge patch: lists replace
        self._bump(key)
        self.patches.append(copy.deepcopy(status_patch))
        return copy.deepcopy(current)


def rental(world: World, name: str, uid: str, **status: Any) -> RentalView:
    """A rental the world knows (deleted, its finalizer still holding it)."""
    view = world.put_rental({
        "metadata": {"namespace": NS, "name": name, "uid": uid, "generation": 1,
                     "resourceVersion": "1", "deletionTimestamp": format_ts(NOW),
                     "finalizers": ["gpurental.io/settle"]},
        "spec": {"offer": "x", "image": "busybox", "wallet": "team"},
        "status": status,
    })
    assert view is not None
    return view


def stopped(accrued: int, rate: str = "3.60", **kw: Any) -> dict[str, Any]:
    return {"phase": "Stopped", "ratePerHour": rate, "accruedSeconds": accrued, **kw}


def settle(store: settlement.WalletStore, world: World, view: RentalView,
           now: datetime = NOW) -> None:
    asyncio.run(settlement.settle_deleted_rental(store, world, view, "team", now))


def race_once(store: FakeWallets) -> Callable[[], None]:
    """Another write to the wallet, once, between the settlement's read and its patch."""
    fired = False

    def hook() -> None:
        nonlocal fired
        if not fired:
            fired = True
            store.write_status("team", {"lastUpdatedAt": format_ts(NOW)})

    return hook


def test_settles_the_billable_charge_once_with_its_proof() -> None:
    store, world = FakeWallets(), World()
    store.add("team", {"settledCents": 40})
    view = rental(world, "r1", "uid-1", **stopped(3600))  # 1h at $3.60 = 360 cents
    settle(store, world, view)
    status = store.status("team")
    assert status["settledCents"] == 40 + 360
    assert status["settlements"] == [{"rentalUid": "uid-1", "rental": "r1", "cents": 360,
                                      "settledAt": format_ts(NOW)}]
    assert len(store.patches) == 1
    assert world.wallets[(NS, "team")]["status"] == status  # the cache sees the write


def test_the_debit_is_what_the_wallet_counted_for_the_living_rental() -> None:
    store, world = FakeWallets(), World()
    store.add("team")
    status = stopped(100, rate="3.60", storageRatePerHour="36", storageAccruedSeconds=10,
                     refundedCents=5)
    view = rental(world, "r1", "uid-1", **status)
    settle(store, world, view)
    assert store.status("team")["settledCents"] == meter.billable_cents(status, NOW) == 15


def test_a_failed_rental_settles_nothing_but_still_records_the_proof() -> None:
    store, world = FakeWallets(), World()
    store.add("team", {"settledCents": 7})
    status = stopped(3600, phase="Failed")
    status["refundedCents"] = meter.refund_all(status, NOW)
    view = rental(world, "r1", "uid-1", **status)
    settle(store, world, view)
    assert store.status("team")["settledCents"] == 7
    assert [e["rentalUid"] for e in store.status("team")["settlements"]] == ["uid-1"]


def test_a_replay_after_a_crash_is_a_no_op() -> None:
    """The patch landed, then the operator died before removing the finalizer: the restarted
    operator (an empty cache, a later clock, a rental that would now bill more) settles again
    and the wallet is not debited twice."""
    store, world = FakeWallets(), World()
    store.add("team")
    view = rental(world, "r1", "uid-1", **stopped(3600))
    settle(store, world, view)
    once = copy.deepcopy(store.status("team"))
    restarted = World()
    again = rental(restarted, "r1", "uid-1", **stopped(7200))
    settle(store, restarted, again, NOW + timedelta(hours=1))
    assert store.status("team") == once
    assert len(store.patches) == 1
    assert (NS, "team") not in restarted.wallets


def test_a_conflict_rereads_and_keeps_the_other_writers_change() -> None:
    """Another rental settled into the same wallet between our read and our write: ours
    conflicts, re-reads and adds to the new total; neither debit is lost."""
    store, world = FakeWallets(), World()
    store.add("team", {"settledCents": 0, "settlements": []})
    other = rental(world, "r2", "uid-2", **stopped(1800))
    view = rental(world, "r1", "uid-1", **stopped(3600))
    raced = False

    def race() -> None:
        nonlocal raced
        if not raced:
            raced = True
            store.write_status("team", {"settledCents": 180, "settlements": [
                {"rentalUid": other.uid, "rental": other.name, "cents": 180,
                 "settledAt": format_ts(NOW)}]})

    store.before_patch = race
    settle(store, world, view)
    assert store.conflicts == 1
    status = store.status("team")
    assert status["settledCents"] == 180 + 360
    assert [e["rentalUid"] for e in status["settlements"]] == ["uid-2", "uid-1"]


def test_a_wallet_that_keeps_changing_gives_up_with_conflict() -> None:
    store, world = FakeWallets(), World()
    store.add("team")
    view = rental(world, "r1", "uid-1", **stopped(3600))
    store.before_patch = lambda: store.write_status("team", {"spentCents": 1})
    with pytest.raises(Conflict):
        settle(store, world, view)
    assert store.conflicts == settlement.ATTEMPTS
    assert "settlements" not in store.status("team")


def test_the_ledger_prunes_rentals_no_longer_known() -> None:
    store, world = FakeWallets(), World()
    alive = rental(world, "r2", "uid-alive", **stopped(0))
    store.add("team", {"settledCents": 500, "settlements": [
        {"rentalUid": "uid-gone", "rental": "old", "cents": 400, "settledAt": format_ts(NOW)},
        {"rentalUid": alive.uid, "rental": alive.name, "cents": 100,
         "settledAt": format_ts(NOW)},
    ]})
    view = rental(world, "r1", "uid-1", **stopped(3600))
    settle(store, world, view)
    status = store.status("team")
    assert [e["rentalUid"] for e in status["settlements"]] == ["uid-alive", "uid-1"]
    assert status["settledCents"] == 500 + 360  # pruning forgets the proof, never the money


def test_a_wallet_that_is_gone_settles_nothing() -> None:
    store, world = FakeWallets(), World()
    view = rental(world, "r1", "uid-1", **stopped(3600))
    settle(store, world, view)
    assert store.patches == [] and world.wallets == {}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=6), st.data())
def test_any_order_of_settlements_and_replays_debits_each_rental_once(
    accrued: list[int], data: st.DataObject
) -> None:
    store, world = FakeWallets(), World()
    store.add("team")
    views = [rental(world, f"r{i}", f"uid-{i}", **stopped(s)) for i, s in enumerate(accrued)]
    order = data.draw(st.lists(st.sampled_from(range(len(views))), min_size=len(views)))
    order += list(range(len(views)))  # every rental is settled at least once
    racing = data.draw(st.lists(st.booleans(), min_size=len(order), max_size=len(order)))
    for i, race in zip(order, racing, strict=True):
        store.before_patch = race_once(store) if race else None
        settle(store, world, views[i])
    status = store.status("team")
    assert status["settledCents"] == sum(meter.billable_cents(v.status, NOW) for v in views)
    assert sorted(e["rentalUid"] for e in status["settlements"]) == sorted(v.uid for v in views)
