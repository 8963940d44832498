"""An offer's status: observed generation, and Ready saying whether rentals can use it."""

from __future__ import annotations

from gpurental.offers import offer_status

NOW = "2026-06-07T08:00:00Z"


def body(spec: dict[str, object], generation: int = 3) -> dict[str, object]:
    return {"metadata": {"name": "o", "generation": generation}, "spec": spec}


def test_a_valid_offer_is_ready_and_observed() -> None:
    status = offer_status(body({"gpu": {"product": "X"}, "pricePerGpuHour": "0.69"}), NOW)
    assert status["observedGeneration"] == 3
    (ready,) = status["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "True", "Valid")


def test_an_unusable_offer_says_which_field() -> None:
    status = offer_status(body({"gpu": {"product": "X"}, "pricePerGpuHour": "1e3"}), NOW)
    (ready,) = status["conditions"]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "pricePerGpuHour" in ready["message"]
