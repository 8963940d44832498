"""The Argo CD health checks (charts/gpu-rental-operator/health/*.lua) in a real Lua 5.1 (lupa),
sandboxed like Argo CD's: the object in the global `obj`, no os/io/require."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
HEALTH = REPO / "charts" / "gpu-rental-operator" / "health"
ARGOCD_CM_PATCH = REPO / "examples" / "gitops" / "argocd-cm-patch.yaml"
ARGO_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


def to_lua(lua, value: Any) -> Any:
    """JSON-like Python -> Lua tables; nulls are absent fields, as in Argo CD."""
    if isinstance(value, dict):
        return lua.table_from({k: to_lua(lua, v) for k, v in value.items() if v is not None})
    if isinstance(value, list):
        return lua.table_from([to_lua(lua, v) for v in value])
    return value


@pytest.fixture
def health(lua51):
    def run(kind: str, obj: dict) -> tuple[str, str]:
        lua = lua51.LuaRuntime(unpack_returned_tuples=True)
        assert lua.eval("_VERSION") == "Lua 5.1"
        g = lua.globals()
        for name in ("os", "io", "require", "dofile", "loadfile", "package", "debug"):
            g[name] = None
        g.obj = to_lua(lua, obj)
        hs = lua.execute((HEALTH / f"{kind}.lua").read_text())
        assert hs is not None, f"{kind}.lua returned nothing"
        status, message = hs["status"], hs["message"]
        assert status in ARGO_STATUSES
        assert isinstance(message, str) and message
        return status, message

    return run


def rental(phase=None, generation=3, observed=3, state=None, conditions=(), **status_fields):
    obj: dict[str, Any] = {
        "apiVersion": "gpurental.dev/v1alpha1",
        "kind": "GpuRental",
        "metadata": {"name": "finetune", "namespace": "team-a", "generation": generation},
        "spec": {"offer": "rtx4090", "image": "pytorch/pytorch:2.4.0", "gpus": 1},
    }
    if state:
        obj["spec"]["state"] = state
    if phase is not None:
        obj["status"] = {"phase": phase, "observedGeneration": observed,
                         "conditions": list(conditions), **status_fields}
    return obj


def cond(type_, status="True", reason="", message=""):
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": "2026-06-07T08:42:11Z"}


RENTAL_CASES = [
    ("no status yet", rental(None, generation=1),
     "Progressing", "Waiting for the operator to observe generation 1"),
    ("status from an older generation", rental("Running", generation=4, observed=3),
     "Progressing", "Waiting for the operator to observe generation 4"),
    ("status without observedGeneration", rental("Running", observed=None),
     "Progressing", "Waiting for the operator to observe generation 3"),
    ("running", rental("Running", ratePerHour="0.69", conditions=[cond("Ready", reason="Running")]),
     "Healthy", "Running at $0.69/h"),
    ("pending", rental("Pending"), "Progressing", "Pending"),
    ("provisioning", rental("Provisioning", message="pulling image"),
     "Progressing", "Provisioning: pulling image"),
    ("pending, accepted", rental("Pending", conditions=[cond("Accepted", "True", "Accepted")]),
     "Progressing", "Pending"),
    ("pending, offer missing",
     rental("Pending", conditions=[cond("Accepted", "False", "OfferNotFound",
                                        'GpuOffer "a100" not found')]),
     "Degraded", 'Not accepted: OfferNotFound: GpuOffer "a100" not found'),
    ("paused by the user",
     rental("Paused", state="Paused", conditions=[cond("Paused", reason="Requested",
                                                       message="spec.state is Paused")]),
     "Suspended", "Paused at the user's request"),
    ("paused by the user, no condition yet", rental("Paused", state="Paused"),
     "Suspended", "Paused at the user's request"),
    ("paused at expiry",
     rental("Paused", conditions=[cond("Paused", reason="Expired", message="4h used up"),
                                  cond("Expired", message="4h used up")]),
     "Suspended", "Paused because its duration expired: 4h used up"),
    ("paused by budget",
     rental("Paused", conditions=[cond("Paused", reason="BudgetExhausted",
                                       message="wallet default is at $0")]),
     "Suspended", "Paused because its wallet is exhausted: wallet default is at $0"),
    ("paused by budget although the user asked to pause too",
     rental("Paused", state="Paused", conditions=[cond("Paused", reason="BudgetExhausted")]),
     "Suspended", "Paused because its wallet is exhausted"),
    ("paused when idle", rental("Paused", hold="Idle"), "Suspended", "Paused because it was idle"),
    ("stopped by the user", rental("Stopped", state="Stopped"),
     "Healthy", "Stopped at the user's request"),
    ("stopped at expiry",
     rental("Stopped", conditions=[cond("Expired", message="onExpiry: Stop")]),
     "Degraded", "Stopped because its duration expired: onExpiry: Stop"),
    ("stopped by budget",
     rental("Stopped", conditions=[cond("Expired", "False"),
                                   cond("BudgetExhausted", message="wallet default is at $0")]),
     "Degraded", "Stopped because its wallet is exhausted: wallet default is at $0"),
    ("stopped, reason only in status.hold", rental("Stopped", hold="BudgetExhausted"),
     "Degraded", "Stopped because its wallet is exhausted"),
    ("failed", rental("Failed", message="0/3 nodes are available: 3 Insufficient nvidia.com/gpu"),
     "Degraded", "0/3 nodes are available: 3 Insufficient nvidia.com/gpu"),
    ("failed without a message", rental("Failed"), "Degraded", "Failed to provision"),
    ("a phase from a newer operator", rental("Hibernating"),
     "Unknown", "Unknown phase Hibernating"),
]


@pytest.mark.parametrize(("obj", "status", "message"),
                         [c[1:] for c in RENTAL_CASES], ids=[c[0] for c in RENTAL_CASES])
def test_gpurental_health(health, obj, status, message):
    assert health("gpurental", obj) == (status, message)


def wallet(status=None, generation=2):
    obj = {"apiVersion": "gpurental.dev/v1alpha1", "kind": "Wallet",
           "metadata": {"name": "default", "namespace": "team-a", "generation": generation},
           "spec": {"budget": "500.00", "onExhausted": "Pause"}}
    if status is not None:
        obj["status"] = status
    return obj


WALLET_CASES = [
    ("no status", wallet(), "Progressing", "Waiting for the operator to observe generation 2"),
    ("top-up not yet observed", wallet({"observedGeneration": 1, "exhausted": True}),
     "Progressing", "Waiting for the operator to observe generation 2"),
    ("healthy", wallet({"observedGeneration": 2, "exhausted": False, "remaining": "376.55",
                        "burnPerHour": "2.76"}),
     "Healthy", "$376.55 remaining, burning $2.76/h"),
    ("healthy, no display fields", wallet({"observedGeneration": 2}),
     "Healthy", "Budget available"),
    ("exhausted", wallet({"observedGeneration": 2, "exhausted": True, "spent": "500.00"}),
     "Degraded", "Exhausted ($500.00 spent): raise spec.budget to resume its rentals"),
]


@pytest.mark.parametrize(("obj", "status", "message"),
                         [c[1:] for c in WALLET_CASES], ids=[c[0] for c in WALLET_CASES])
def test_wallet_health(health, obj, status, message):
    assert health("wallet", obj) == (status, message)


def offer(status=None, generation=1):
    obj = {"apiVersion": "gpurental.dev/v1alpha1", "kind": "GpuOffer",
           "metadata": {"name": "rtx4090", "generation": generation},
           "spec": {"gpu": {"product": "NVIDIA-GeForce-RTX-4090"}, "pricePerGpuHour": "0.69"}}
    if status is not None:
        obj["status"] = status
    return obj


OFFER_CASES = [
    ("no status", offer(), "Progressing", "Waiting for the operator to observe generation 1"),
    ("price change not yet observed", offer({"observedGeneration": 1}, generation=2),
     "Progressing", "Waiting for the operator to observe generation 2"),
    ("observed", offer({"observedGeneration": 1}), "Healthy", "Offered"),
    ("rejected", offer({"observedGeneration": 1, "conditions": [
        cond("Accepted", "False", "InvalidPrice", "pricePerGpuHour must be positive")]}),
     "Degraded", "Not accepted: pricePerGpuHour must be positive"),
]


@pytest.mark.parametrize(("obj", "status", "message"),
                         [c[1:] for c in OFFER_CASES], ids=[c[0] for c in OFFER_CASES])
def test_gpuoffer_health(health, obj, status, message):
    assert health("gpuoffer", obj) == (status, message)


def test_argocd_cm_patch_carries_the_scripts_verbatim():
    """The example argocd-cm patch embeds each health.lua unchanged (one source)."""
    cm = yaml.safe_load(ARGOCD_CM_PATCH.read_text())
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["name"] == "argocd-cm"
    scripts = {"GpuRental": "gpurental", "Wallet": "wallet", "GpuOffer": "gpuoffer"}
    for kind, script in scripts.items():
        key = f"resource.customizations.health.gpurental.dev_{kind}"
        assert cm["data"][key] == (HEALTH / f"{script}.lua").read_text(), (
            f"{key} differs from health/{script}.lua: run python scripts/sync_gitops_example.py"
        )
