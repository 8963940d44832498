"""The operator's cache of the world: rentals, their children, offers and wallets.

Fed by watch events (the informers) and by the responses of the operator's own writes; read by
the reconciler. No I/O. Children are keyed by their controlling rental's uid, so a pod seen
before its rental (both are listed at startup, in any order) is matched as soon as the rental
arrives, and a pod of a deleted-and-recreated rental of the same name is never mistaken for the
new one's.

Staleness rule: an update older than what is cached (by resourceVersion) is ignored, so the
response of the operator's own status write is never overwritten by a lagging watch event.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gpurental import meter, money
from gpurental.constants import ANNOTATION_KEYS_DIGEST
from gpurental.models import OfferSpec
from gpurental.observed import (
    Children,
    IngressView,
    Key,
    NodeLoss,
    NodeView,
    PodView,
    PvcView,
    RentalView,
    SecretView,
    ServiceView,
    controller_uid,
)

# An offer's spec as parsed, or why it is unusable (None, None: there is no such offer).
ParsedOffer = tuple[OfferSpec | None, str | None]


@dataclass(frozen=True)
class WalletReading:
    """A wallet's reading over its rentals, and the wallet version it was read at."""

    version: int
    at: datetime
    wallet: money.Wallet

    def holds(self, version: int, now: datetime) -> bool:
        """Is this reading exact at `now`? Nothing it was read from changed, no meter ticked
        since, and the wallet is not exhausted (whose reading says "now", not a moment)."""
        reading = self.wallet.reading
        return (version == self.version and self.at <= now and not reading.exhausted
                and (reading.holds_until is None or now < reading.holds_until))


def _billed_differently(old: RentalView, new: RentalView) -> bool:
    """Would a wallet read `new` differently from `old`: another rental (a recreated name),
    another wallet, or a meter that changed?"""
    return (old.uid != new.uid or old.spec.get("wallet") != new.spec.get("wallet")
            or meter.billing_inputs(old.status) != meter.billing_inputs(new.status))


def _newer(candidate: str | None, cached: str | None) -> bool:
    """Is `candidate` at least as new as `cached`? resourceVersions are opaque strings, but
    every real API server (etcd revisions) and the emulator issue increasing integers; when
    either is not numeric the update wins, which is the safe default for a watch stream."""
    if not candidate or not cached or not (candidate.isdigit() and cached.isdigit()):
        return True
    return int(candidate) >= int(cached)


class EchoFilter:
    """Recognises the watch echo of the operator's own writes.

    A write's response carries the new resourceVersion; the watch event for that version
    comes back later with nothing in it that the writer did not already act on, so it is
    not queued: at steady state every heartbeat write would otherwise cost a second pass."""

    def __init__(self) -> None:
        self._written: dict[Key, str] = {}  # key -> version of our latest write

    def wrote(self, key: Key, body: dict[str, Any]) -> None:
        version = body.get("metadata", {}).get("resourceVersion")
        if version is not None:
            self._written[key] = str(version)

    def is_echo(self, body: dict[str, Any]) -> bool:
        """True (once) for the event of our latest write; False for anything else."""
        meta = body.get("metadata", {})
        key: Key = (meta.get("namespace", ""), meta.get("name", ""))
        version = meta.get("resourceVersion")
        if version is not None and self._written.get(key) == str(version):
            del self._written[key]
            return True
        return False

    def forget(self, key: Key) -> None:
        self._written.pop(key, None)


@dataclass
class _Entry:
    view: Any
    resource_version: str | None


@dataclass
class World:
    rentals: dict[Key, _Entry] = field(default_factory=dict)
    rental_keys_by_uid: dict[str, Key] = field(default_factory=dict)
    pods: dict[str, _Entry] = field(default_factory=dict)
    pvcs: dict[str, _Entry] = field(default_factory=dict)
    secrets: dict[str, _Entry] = field(default_factory=dict)
    gone_pods: dict[str, PodView] = field(default_factory=dict)  # by rental uid
    nodes: dict[str, NodeView] = field(default_factory=dict)
    # When a lost node's GPUs were last known there (see NodeLoss), found once per loss.
    node_losses: dict[str, NodeLoss] = field(default_factory=dict)
    # The node a claim's volume is pinned to (None: it can move), by claim uid; looked up once
    # when the claim's rental loses its node.
    volume_nodes: dict[str, str | None] = field(default_factory=dict)
    services: dict[str, _Entry] = field(default_factory=dict)
    ingresses: dict[str, _Entry] = field(default_factory=dict)
    offers: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Each offer's spec as parsed (or why it is unusable), by name (context.offer_of): every
    # pass of every rental reads its offer, and validating it was 2.4 % of the operator's CPU
    # at ten thousand running. Dropped whenever the offer's body changes.
    parsed_offers: dict[str, ParsedOffer] = field(default_factory=dict)
    wallets: dict[Key, dict[str, Any]] = field(default_factory=dict)
    _by_offer: dict[str, set[Key]] = field(default_factory=lambda: defaultdict(set))
    _by_wallet: dict[Key, set[Key]] = field(default_factory=lambda: defaultdict(set))
    # Bumped whenever anything a wallet's reading is read from changes: its body, the set of
    # its rentals, or one of their meters (not a heartbeat: see meter.BILLING_FIELDS).
    _wallet_versions: dict[Key, int] = field(default_factory=dict)
    # The last reading of each wallet, with the version it was read at (context.wallet_of):
    # a wallet paying for n running rentals is read once per meter tick, not on every one of
    # their n passes (n x n per interval).
    readings: dict[Key, WalletReading] = field(default_factory=dict)

    # --- rentals ---------------------------------------------------------------------------

    def put_rental(self, body: dict[str, Any]) -> RentalView | None:
        """Cache a rental body; returns its view, or None if the body was stale (the watch
        echo of a write whose response is cached already, at every heartbeat)."""
        meta = body.get("metadata", {})
        rv = meta.get("resourceVersion")
        cached = self.rentals.get((meta.get("namespace", ""), meta.get("name", "")))
        if cached is not None and cached.view.uid == meta.get("uid", "") and not _newer(
            rv, cached.resource_version
        ):
            return None
        view = RentalView.from_dict(body)
        if cached is not None:
            view.inherit_parsed(cached.view)
            self._unindex(cached.view)
        if cached is None or _billed_differently(cached.view, view):
            self._touch_wallet(cached.view if cached is not None else None)
            self._touch_wallet(view)
        self.rentals[view.key] = _Entry(view, rv)
        self.rental_keys_by_uid[view.uid] = view.key
        self._index(view)
        return view

    def drop_rental(self, key: Key) -> None:
        entry = self.rentals.pop(key, None)
        if entry is not None:
            self._touch_wallet(entry.view)
            self._unindex(entry.view)
            self.rental_keys_by_uid.pop(entry.view.uid, None)
            self.gone_pods.pop(entry.view.uid, None)

    # --- offers and wallets ------------------------------------------------------------

    def put_offer(self, name: str, body: dict[str, Any]) -> None:
        self.offers[name] = body
        self.parsed_offers.pop(name, None)

    def drop_offer(self, name: str) -> None:
        self.offers.pop(name, None)
        self.parsed_offers.pop(name, None)

    def put_wallet(self, key: Key, body: dict[str, Any]) -> None:
        self.wallets[key] = body
        self._bump(key)

    def drop_wallet(self, key: Key) -> None:
        self.wallets.pop(key, None)
        self.readings.pop(key, None)
        self._bump(key)

    def wallet_version(self, key: Key) -> int:
        return self._wallet_versions.get(key, 0)

    def _touch_wallet(self, view: RentalView | None) -> None:
        if view is not None and view.spec.get("wallet"):
            self._bump((view.namespace, str(view.spec["wallet"])))

    def _bump(self, key: Key) -> None:
        self._wallet_versions[key] = self._wallet_versions.get(key, 0) + 1

    def rental(self, key: Key) -> RentalView | None:
        entry = self.rentals.get(key)
        return entry.view if entry else None

    def rental_version(self, key: Key) -> str | None:
        entry = self.rentals.get(key)
        return entry.resource_version if entry else None

    def _index(self, view: RentalView) -> None:
        offer, wallet = view.spec.get("offer"), view.spec.get("wallet")
        if offer:
            self._by_offer[str(offer)].add(view.key)
        if wallet:
            self._by_wallet[(view.namespace, str(wallet))].add(view.key)

    def _unindex(self, view: RentalView) -> None:
        offer, wallet = view.spec.get("offer"), view.spec.get("wallet")
        if offer:
            self._by_offer[str(offer)].discard(view.key)
        if wallet:
            self._by_wallet[(view.namespace, str(wallet))].discard(view.key)

    def rentals_of_offer(self, offer: str) -> Iterable[Key]:
        return tuple(self._by_offer.get(offer, ()))

    def rentals_of_wallet(self, key: Key) -> Iterable[Key]:
        return tuple(self._by_wallet.get(key, ()))

    # --- children --------------------------------------------------------------------------

    def put_child(self, kind: str, body: dict[str, Any], deleted: bool = False,
                  final: bool = True) -> Key | None:
        """Cache (or forget) a pod / PVC / Secret / Service; returns its rental's key if known.
        A deleted pod's `final` body (its watch event's) is kept as its last state; one a
        relisting found gone has none, and its end is read from its Events instead."""
        owner = controller_uid(body)
        if owner is None:
            return None
        table = self._table(kind)
        rv = body.get("metadata", {}).get("resourceVersion")
        if deleted:
            cached = table.get(owner)
            if cached is not None and cached.view.name == body["metadata"].get("name"):
                table.pop(owner, None)
                if kind == "Pod" and final:
                    self.gone_pods[owner] = PodView.from_dict(body)
        else:
            cached = table.get(owner)
            if cached is None or _newer(rv, cached.resource_version):
                view = _still_deleting(cached, _child_view(kind, body))
                table[owner] = _Entry(view, rv)
                gone = self.gone_pods.get(owner)
                if kind == "Pod" and gone is not None and gone.uid != view.uid:
                    del self.gone_pods[owner]
        return self.rental_keys_by_uid.get(owner)

    # --- nodes -----------------------------------------------------------------------------

    def put_node(self, body: dict[str, Any], deleted: bool = False) -> list[Key]:
        """Cache a node; returns the rentals whose pods run on it when its health changed."""
        name = body.get("metadata", {}).get("name", "")
        old = self.nodes.get(name)
        if deleted:
            self.nodes.pop(name, None)
            self.node_losses.pop(name, None)
            return []
        view = NodeView.from_dict(body)
        self.nodes[name] = view
        if not view.lost:
            self.node_losses.pop(name, None)
        if old is not None and old.lost == view.lost:
            return []
        return self.rentals_on_node(name)

    def rentals_on_node(self, node: str) -> list[Key]:
        """Rentals whose pod runs on the node, or whose volume is pinned to it."""
        pods = [uid for uid, entry in self.pods.items() if entry.view.node_name == node]
        volumes = [uid for uid, entry in self.pvcs.items()
                   if self.volume_nodes.get(entry.view.uid) == node]
        return [key for uid in (*pods, *volumes) if (key := self.rental_keys_by_uid.get(uid))]

    def mark_deleting(self, kind: str, rental_uid: str) -> None:
        """Note a delete the operator just issued, until the watch confirms it, so the next
        pass neither deletes it again nor counts it as live."""
        entry = self._table(kind).get(rental_uid)
        if entry is not None and hasattr(entry.view, "deleting"):
            entry.view = dataclasses.replace(entry.view, deleting=True)
        elif entry is not None:
            self._table(kind).pop(rental_uid, None)

    def children(self, rental_uid: str) -> Children:
        def view(table: dict[str, _Entry]) -> Any:
            entry = table.get(rental_uid)
            return entry.view if entry else None

        pod, pvc = view(self.pods), view(self.pvcs)
        node = self.nodes.get(pod.node_name) if pod is not None and pod.node_name else None
        loss = self.node_losses.get(node.name) if node is not None and node.lost else None
        pinned = self.volume_nodes.get(pvc.uid) if pvc is not None else None
        pinned_node = self.nodes.get(pinned) if pinned else None
        return Children(pod=pod, pvc=pvc, secret=view(self.secrets),
                        service=view(self.services), ingress=view(self.ingresses),
                        gone_pod=self.gone_pods.get(rental_uid), node_loss=loss,
                        volume_lost_with=pinned if pinned_node and pinned_node.lost else None)

    def unknown_volume_of(self, rental_uid: str) -> str | None:
        """The rental's bound volume's name, if where it may be used is not yet known."""
        entry = self.pvcs.get(rental_uid)
        pvc = entry.view if entry is not None else None
        if pvc is None or not pvc.volume_name or pvc.uid in self.volume_nodes:
            return None
        return str(pvc.volume_name)

    def lost_node_of(self, rental_uid: str) -> NodeView | None:
        """The rental's pod's node, if it was declared lost and its loss is not yet timed."""
        entry = self.pods.get(rental_uid)
        node_name = entry.view.node_name if entry is not None else None
        node = self.nodes.get(node_name) if node_name else None
        if node is None or not node.lost or node.name in self.node_losses:
            return None
        return node

    def _table(self, kind: str) -> dict[str, _Entry]:
        return {"Pod": self.pods, "PersistentVolumeClaim": self.pvcs, "Secret": self.secrets,
                "Service": self.services, "Ingress": self.ingresses}[kind]


def _still_deleting(cached: _Entry | None, view: Any) -> Any:
    """Keep the operator's own delete mark over an event written before its DELETE landed
    (the kubelet's status patch can be newer than the cached version yet older than the
    delete): a pod the operator deleted is never seen as running again, so no pass bills
    it past its DELETE even when the watch that carried the deletion was dropped."""
    old = cached.view if cached is not None else None
    if (old is not None and getattr(old, "deleting", False) and hasattr(view, "deleting")
            and not view.deleting and old.name == view.name
            and getattr(old, "uid", None) == getattr(view, "uid", None)):
        return dataclasses.replace(view, deleting=True)
    return view


def _child_view(kind: str, body: dict[str, Any]) -> Any:
    if kind == "Pod":
        return PodView.from_dict(body)
    if kind == "PersistentVolumeClaim":
        return PvcView.from_dict(body)
    if kind == "Service":
        return ServiceView.from_dict(body)
    if kind == "Ingress":
        return IngressView.from_dict(body)
    annotations = body.get("metadata", {}).get("annotations") or {}
    return SecretView(name=body["metadata"]["name"],
                      keys_digest=annotations.get(ANNOTATION_KEYS_DIGEST, ""))
