"""gpurental.admission: what the validating webhook rejects, and the field each message names."""

from __future__ import annotations

from typing import Any

import pytest

from gpurental.admission import check_rental

OFFERS = {
    "rtx4090": {"metadata": {"name": "rtx4090"}, "spec": {
        "gpu": {"product": "NVIDIA-GeForce-RTX-4090"}, "pricePerGpuHour": "0.69",
        "maxGpus": 8, "maxDuration": "72h"}},
    "open": {"metadata": {"name": "open"}, "spec": {
        "gpu": {"product": "NVIDIA-H100"}, "pricePerGpuHour": "2.00"}},
}
WALLETS = {
    ("team-a", "empty"): {"metadata": {"name": "empty"}, "status": {"exhausted": True}},
    ("team-a", "full"): {"metadata": {"name": "full"}, "status": {"exhausted": False}},
}


def rental(state: str = "Running", phase: str | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"name": "r", "namespace": "team-a"},
        "spec": {"offer": "rtx4090", "gpus": 1, "image": "pytorch/pytorch", "state": state,
                 **spec}}
    if phase:
        body["status"] = {"phase": phase}
    return body


def check(operation: str, new: dict[str, Any], old: dict[str, Any] | None = None) -> str | None:
    return check_rental(operation, new, old, OFFERS, WALLETS)


@pytest.mark.parametrize(("spec", "message"), [
    ({"offer": "h200"}, 'spec.offer: GpuOffer "h200" not found (offers: open, rtx4090)'),
    ({"gpus": 9}, "spec.gpus: 9 exceeds offer rtx4090's maxGpus 8"),
    ({"duration": "73h"}, "spec.duration: 73h exceeds offer rtx4090's maxDuration 72h"),
    ({"wallet": "empty"}, 'spec.wallet: Wallet "empty" is exhausted (no budget left); '
                          "top it up first"),
    ({"gpus": 0}, "spec.gpus: Input should be greater than or equal to 1"),
])
def test_create_rejections_name_the_field(spec, message):
    assert check("CREATE", rental(**spec)) == message


@pytest.mark.parametrize("spec", [
    {}, {"gpus": 8, "duration": "72h"}, {"offer": "open", "gpus": 64, "duration": "1000h"},
    {"wallet": "full"}, {"wallet": "not-yet-created"}, {"wallet": "empty", "state": "Stopped"},
])
def test_good_rentals_are_allowed(spec):
    assert check("CREATE", rental(**spec)) is None


def test_stopped_is_permanent():
    assert check("UPDATE", rental("Running"), rental("Stopped")) == (
        "spec.state: a Stopped rental cannot be set to Running; stopping is permanent, "
        "create a new rental")
    assert check("UPDATE", rental("Paused"), rental("Running", phase="Stopped")) is not None
    assert check("UPDATE", rental("Stopped", sshKeys=["ssh-ed25519 AAAA x"]),
                 rental("Stopped")) is None
    assert check("UPDATE", rental("Paused"), rental("Running", phase="Running")) is None
    # The operator's finalizer patch on a rental it stopped for budget changes no state.
    assert check("UPDATE", rental("Running", phase="Stopped"),
                 rental("Running", phase="Stopped")) is None


def test_updates_are_judged_against_the_offer_only_when_its_terms_change():
    gone = rental(offer="retired")
    assert check("UPDATE", {**gone, "spec": {**gone["spec"], "sshKeys": []}}, gone) is None
    assert check("UPDATE", rental(gpus=9), rental(gpus=1)) == \
        "spec.gpus: 9 exceeds offer rtx4090's maxGpus 8"
    # An exhausted wallet does not block pausing or other edits of an existing rental.
    assert check("UPDATE", rental("Paused", wallet="empty"), rental(wallet="empty")) is None


def test_deletes_are_never_judged():
    assert check("DELETE", rental(gpus=99), rental(gpus=99)) is None
