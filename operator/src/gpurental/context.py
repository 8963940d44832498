"""What one rental's pass knows: the `lifecycle.Context` built from the cache.

Pure over the `World` cache: the rental's offer, its wallet's live reading (from the cache,
never from the wallet's status, which may lag by a write: a budget pause must not wait for a
round trip), the money layer's assessment, an idle finding turned hold, and the operator's
options. The rental reconciler adds what only the API can tell (a diagnosis, a vanished pod's
end) to it when the plan asks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gpurental import deadlines, idle, money
from gpurental.holds import Hold
from gpurental.lifecycle import Context
from gpurental.models import OfferSpec, SpecError, WalletSpec, parse_spec
from gpurental.observed import Key, RentalView
from gpurental.options import Options
from gpurental.world import ParsedOffer, WalletReading, World

IdleFindings = dict[Key, idle.Finding]  # the idle watch's latest IDLE findings


def offer_of(world: World, name: str) -> ParsedOffer:
    """The offer's parsed spec, or why it is unusable; (None, None) when there is none.
    Parsed once per version of the offer (`World.parsed_offers`)."""
    parsed = world.parsed_offers.get(name)
    if parsed is None:
        parsed = world.parsed_offers[name] = _parse_offer(world, name)
    return parsed


def _parse_offer(world: World, name: str) -> ParsedOffer:
    body = world.offers.get(name)
    if body is None:
        return None, None
    try:
        return parse_spec(OfferSpec, body.get("spec")), None
    except SpecError as exc:
        return None, f'GpuOffer "{name}" is invalid: {exc}'


def wallet_of(world: World, namespace: str, name: Any, now: datetime) -> money.Wallet | None:
    """A wallet's spec and live reading over every rental it pays for, from the cache.

    Every pass of each of the wallet's rentals asks for it, and reading it is linear in its
    rentals (42 ms at 1,000): the last reading is reused while it is exact
    (`WalletReading.holds`)."""
    if not name:
        return None
    key = (namespace, str(name))
    version = world.wallet_version(key)
    last = world.readings.get(key)
    if last is not None and last.holds(version, now):
        return last.wallet
    wallet = _read_wallet(world, key, now)
    if wallet is not None:
        world.readings[key] = WalletReading(version, now, wallet)
    return wallet


def _read_wallet(world: World, key: Key, now: datetime) -> money.Wallet | None:
    body = world.wallets.get(key)
    if body is None:
        return None
    try:
        spec = parse_spec(WalletSpec, body.get("spec"))
    except SpecError:
        return None
    rentals = [r for k in world.rentals_of_wallet(key) if (r := world.rental(k)) is not None]
    status = body.get("status") or {}
    return money.Wallet(key[1], spec, money.read_wallet(spec, status, rentals, now),
                        money.settled_uids(status))


def build(view: RentalView, world: World, options: Options, findings: IdleFindings,
          now: datetime, cadence: deadlines.Cadence) -> Context:
    """The pass's context; `cadence` is the rental's heartbeat slots (the reconciler keeps
    the same object to schedule the next one)."""
    offer, offer_error = offer_of(world, str(view.spec.get("offer", "")))
    wallet = wallet_of(world, view.namespace, view.spec.get("wallet"), now)
    assessment = _assess(view, offer, wallet, now)
    return Context(
        now=now,
        offer=offer,
        offer_error=offer_error,
        wallet=wallet,
        provisioning_timeout=options.provisioning_timeout,
        heartbeat=cadence.due(view.status, now),
        hold=assessment.hold or _idle_hold(view, offer, findings),
        renew_seconds=assessment.renew_seconds,
        prepaid_seconds=assessment.prepaid_seconds,
        priority_class=options.priority_class(offer),
        sshd_image=options.sshd_image,
    )


def _assess(view: RentalView, offer: OfferSpec | None, wallet: money.Wallet | None,
            now: datetime) -> money.Assessment:
    try:
        spec = view.parsed_spec()
    except SpecError:
        return money.Assessment()  # lifecycle reports the bad spec itself
    return money.assess(spec, view.status, offer, wallet, now)


def _idle_hold(view: RentalView, offer: OfferSpec | None, findings: IdleFindings
               ) -> Hold | None:
    """An idle pause, recorded in status or just found; money's holds take precedence."""
    try:
        policy = idle.effective_policy(view.parsed_spec(), offer)
    except SpecError:
        policy = None
    return idle.hold(policy, view.generation, view.status, findings.get(view.key))
