"""``list``: the seed's Instances table, with its status filter chips and kubectl's ``-o``."""

from __future__ import annotations

import json
from datetime import datetime

import yaml

from gpurental import billing, durations
from gpurental.plugin import meter, render
from gpurental.plugin.api import Obj
from gpurental.plugin.context import Ctx, no_resources
from gpurental.plugin.rental import name_of, sorted_rentals, spec_of, status_of

LIST_HEADERS = ["NAME", "PHASE", "OFFER", "GPUS", "RATE", "RAN FOR", "TOTAL", "AGE"]
WIDE_HEADERS = ["SSH", "EXPIRES", "AUTORENEW", "WALLET", "MESSAGE"]
WHOLE_GPU = "nvidia.com/gpu"


def gpus_text(obj: Obj, offers: dict[str, Obj]) -> str:
    spec, status = spec_of(obj), status_of(obj)
    count = int(spec.get("gpus") or 1)
    gpu = (((offers.get(str(spec.get("offer"))) or {}).get("spec") or {}).get("gpu") or {})
    product = status.get("offerProduct") or gpu.get("product")
    text = f"{count}x {product or spec.get('offer') or render.NONE}"
    resource = str(gpu.get("resourceName") or WHOLE_GPU)
    if resource != WHOLE_GPU:  # MIG slices, not whole GPUs
        text += f" ({resource.rpartition('/')[2]})"
    return text


def list_row(obj: Obj, offers: dict[str, Obj], now: datetime, wide: bool,
             all_namespaces: bool) -> list[str]:
    spec, status = spec_of(obj), status_of(obj)
    reading = meter.read(status, now)
    row = [name_of(obj), meter.phase_text(obj), str(spec.get("offer") or render.NONE),
           gpus_text(obj, offers), render.rate(meter.rate_of(status)),
           durations.format_duration(reading.seconds), billing.dollars(reading.charged_cents),
           render.age(obj["metadata"].get("creationTimestamp"), now)]
    if wide:
        row += [str(status.get("ssh") or render.NONE), str(status.get("expiresAt") or render.NONE),
                "on" if spec.get("autoRenew") else "off",
                str(spec.get("wallet") or render.NONE), str(status.get("message") or "")]
    if all_namespaces:
        row.insert(0, str(obj["metadata"].get("namespace") or ""))
    return row


def _print_document(ctx: Ctx, items: list[Obj], output: str) -> None:
    """kubectl's ``-o json`` / ``-o yaml`` of a list: a v1 List of the objects as stored."""
    doc = {"apiVersion": "v1", "items": items, "kind": "List",
           "metadata": {"resourceVersion": ""}}
    ctx.out(json.dumps(doc, indent=4) if output == "json"
            else yaml.safe_dump(doc, sort_keys=False).rstrip("\n"))


def cmd_list(ctx: Ctx) -> int:
    args = ctx.args
    items = sorted_rentals([o for o in ctx.api.list(selector=args.selector)
                            if meter.matches_filter(o, args.status)])
    output = args.output
    if output in ("json", "yaml"):
        _print_document(ctx, items, output)
        return 0
    if not items:
        no_resources(ctx)
        return 0
    if output == "name":
        for obj in items:
            ctx.out(render.ref(name_of(obj)))
        return 0
    now, wide = ctx.now(), output == "wide"
    offers = ctx.api.offers()
    headers = LIST_HEADERS + (WIDE_HEADERS if wide else [])
    if ctx.all_namespaces:
        headers = ["NAMESPACE", *headers]
    rows = [list_row(o, offers, now, wide, ctx.all_namespaces) for o in items]
    ctx.out(render.table(headers, rows))
    return 0
