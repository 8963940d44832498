"""A rental's pass reads its offer parsed once per version of the offer: a changed, dropped
or newly created offer is read afresh, and an invalid one keeps saying why."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from gpurental.context import offer_of
from gpurental.world import World


def offer(price: Any) -> dict[str, Any]:
    return {"metadata": {"name": "h100"},
            "spec": {"gpu": {"product": "NVIDIA-H100"}, "pricePerGpuHour": price}}


def price(world: World) -> Decimal | None:
    spec, error = offer_of(world, "h100")
    assert error is None
    return spec.price_per_gpu_hour if spec is not None else None


def test_an_offer_is_read_afresh_whenever_its_body_changes() -> None:
    world = World()
    assert offer_of(world, "h100") == (None, None)  # not created yet
    world.put_offer("h100", offer("2.00"))
    assert price(world) == Decimal("2.00")
    assert offer_of(world, "h100")[0] is offer_of(world, "h100")[0]  # parsed once
    world.put_offer("h100", offer("3.50"))
    assert price(world) == Decimal("3.50")
    world.drop_offer("h100")
    assert offer_of(world, "h100") == (None, None)


def test_an_invalid_offer_says_why_until_it_is_fixed() -> None:
    world = World()
    world.put_offer("h100", offer("free"))
    spec, error = offer_of(world, "h100")
    assert spec is None and error is not None and 'GpuOffer "h100" is invalid' in error
    assert offer_of(world, "h100") == (spec, error)
    world.put_offer("h100", offer("1.00"))
    assert price(world) == Decimal("1.00")
