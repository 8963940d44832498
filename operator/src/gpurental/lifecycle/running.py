"""A rental that should run: admitted, its children ensured, its pod converged."""

from __future__ import annotations

from gpurental import access, conditions
from gpurental.lifecycle import children, halting, pods, provisioning
from gpurental.lifecycle.draft import Draft
from gpurental.lifecycle.plans import Context
from gpurental.models import RentalSpec


def run(d: Draft, spec: RentalSpec) -> None:
    pod = d.children.pod
    problem = admission(spec, d.ctx)
    if problem is not None and (pod is None or not pod.running):
        return halting.reject(d, *problem)  # a running pod is never stopped for it
    conditions.accepted(d.conditions, d.ctx.hold)
    offer = d.ctx.offer
    assert offer is not None or pod is not None
    children.ensure_volume(d, spec, offer)
    children.ensure_keys(d, spec)
    children.ensure_service(d, spec, offer)
    children.ensure_ingress(d, spec, offer)
    children.endpoints(d, spec, offer, pod)
    if pod is None and d.children.volume_lost_with:
        return pods.volume_unavailable(d, d.children.volume_lost_with)
    if pod is None:
        return pods.create(d, spec, offer)
    if d.children.node_loss is not None:
        return pods.node_lost(d, pod, d.children.node_loss)
    if pod.deleting or pod.ended:
        return pods.replace(d, pod, spec)
    if pod.running:
        return pods.running(d, pod, spec, offer)
    return provisioning.wait(d, pod)


def admission(spec: RentalSpec, ctx: Context) -> tuple[str, str] | None:
    """Why the rental may not start now (a reason and a message), if it may not."""
    if ctx.offer is None:
        detail = ctx.offer_error or (f'GpuOffer "{spec.offer}" not found; '
                                     "`kubectl get gpuoffers` lists the offers")
        return ("OfferNotFound" if ctx.offer_error is None else "InvalidOffer", detail)
    if ctx.offer.max_gpus is not None and spec.gpus > ctx.offer.max_gpus:
        return (
            "TooManyGpus",
            f"spec.gpus: {spec.gpus} exceeds the offer {spec.offer}'s maxGpus "
            f"{ctx.offer.max_gpus}",
        )
    if spec.wallet and ctx.wallet is None:
        return ("WalletNotFound", f'Wallet "{spec.wallet}" not found in this namespace')
    if ctx.wallet is not None and ctx.wallet.exhausted:
        return ("BudgetExhausted", f'Wallet "{ctx.wallet.name}" has no budget left')
    conflict = access.port_conflict(spec, ctx.offer)
    if conflict is not None:
        return ("InvalidPorts", conflict)
    return None
