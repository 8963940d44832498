"""``extend``, ``autorenew``, ``meter`` and ``summary``: a rental's prepaid time
(``spec.duration``, ``spec.autoRenew``) and what it and the namespace cost."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from kubernetes.client.rest import ApiException

from gpurental import billing, durations
from gpurental.clock import format_ts, parse_ts
from gpurental.constants import WALLETS
from gpurental.plugin import meter, render
from gpurental.plugin.api import Obj
from gpurental.plugin.context import Ctx
from gpurental.plugin.errors import CliError
from gpurental.plugin.rental import ended, spec_of, status_of

SUMMARY_HEADERS = ["ACTIVE INSTANCES", "HOURLY BURN", "SPEND"]
WALLETS_REFUSED = (401, 403)


# --- extend / autorenew --------------------------------------------------------------------------


def _max_duration(offer: Obj | None) -> int | None:
    text = ((offer or {}).get("spec") or {}).get("maxDuration")
    try:
        return durations.parse_duration(text) if text else None
    except ValueError:
        return None


def _hours(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise CliError(f"--hours must be a number, got {text!r}") from None


def _extend_duration(ctx: Ctx, name: str, hours: Decimal) -> tuple[meter.Extension, Obj]:
    """Patch ``spec.duration`` (read-modify-write); the extension and the rental it was
    computed from (the last read, when a conflict made it start over)."""
    result: dict[str, Any] = {}

    def change(obj: Obj) -> Obj | None:
        why_ended = ended(obj)
        if why_ended:
            raise CliError(f'cannot extend gpurental "{name}": it {why_ended}')
        billed = meter.live_seconds(status_of(obj), ctx.now())
        try:
            ext = meter.extend(spec_of(obj).get("duration"), hours, billed,
                               from_now=ctx.args.from_now)
        except meter.ExtendError as exc:
            raise CliError(f'cannot extend gpurental "{name}": {exc}') from None
        result.update(ext=ext, obj=obj)
        return {"duration": ext.new_duration}

    ctx.api.read_modify_write(name, change)
    return result["ext"], result["obj"]


def _report_expiry(ctx: Ctx, obj: Obj, ext: meter.Extension) -> None:
    """When the new prepaid time runs out: the offer's cap, the moment, or the time left."""
    status, offer_name = status_of(obj), spec_of(obj).get("offer")
    cap = _max_duration(ctx.api.offer(str(offer_name)))
    renewed = int(status.get("renewedSeconds") or 0)
    prepaid = billing.effective_duration(durations.parse_duration(ext.new_duration), renewed,
                                         cap)
    if cap is not None and prepaid == cap:
        ctx.err(f"Warning: offer {offer_name} caps a rental's running time at "
                f"{durations.format_duration_exact(cap)}; it expires at the cap")
    since = status.get("runningSince")
    if status.get("expiresAt") and since and prepaid is not None:
        moment = billing.expiry_moment(
            billing.Meter(accrued_seconds=int(status.get("accruedSeconds") or 0),
                          running_since=parse_ts(since)), prepaid)
        if moment is not None:
            ctx.out(f"expires at: {format_ts(moment)} (was {status['expiresAt']})")
    elif prepaid is not None:
        left = max(prepaid - meter.live_seconds(status, ctx.now()), 0)
        ctx.out(f"remaining: {durations.format_duration_exact(left)} "
                "(the prepaid time runs only while the rental is Running)")


def cmd_extend(ctx: Ctx) -> int:
    name = ctx.args.name
    ext, obj = _extend_duration(ctx, name, _hours(ctx.args.hours))
    ctx.out(render.patched(name))
    ctx.out(f"duration: {ext.old_duration or render.NONE} -> {ext.new_duration}")
    _report_expiry(ctx, obj, ext)
    return 0


def cmd_autorenew(ctx: Ctx) -> int:
    name, want = ctx.args.name, ctx.args.value == "on"
    obj = ctx.api.get(name)
    why_ended = ended(obj)
    if why_ended:
        raise CliError(f'cannot change auto-renew of gpurental "{name}": it {why_ended}')
    if bool(spec_of(obj).get("autoRenew")) == want:
        ctx.out(render.patched(name, changed=False))
        return 0
    ctx.api.patch_spec(name, {"autoRenew": want})
    ctx.out(render.patched(name))
    if want and not spec_of(obj).get("duration"):
        ctx.err(f'Warning: gpurental "{name}" has no spec.duration; auto-renew has nothing '
                "to renew until one is set")
    return 0


# --- meter / summary -----------------------------------------------------------------------------


def cmd_meter(ctx: Ctx) -> int:
    obj = ctx.api.get(ctx.args.name)
    ctx.out(meter.meter_json(meter.meter_document(obj, ctx.now(), live=not ctx.args.no_live)))
    return 0


def _summary_row(part: meter.Summary) -> list[str]:
    return [str(part.active_instances), render.rate(part.hourly_burn),
            billing.dollars(part.spend_cents)]


def _wallets(ctx: Ctx) -> list[Obj]:
    """The wallets in scope: their spend includes rentals already deleted. A selector picks
    rentals, not wallets, so with one they are left out; a caller refused them is warned."""
    if ctx.args.selector:
        return []
    try:
        return ctx.api.list(WALLETS)
    except ApiException as exc:
        if exc.status not in WALLETS_REFUSED:
            raise
        ctx.err("Warning: cannot read wallets; spend leaves out deleted rentals")
        return []


def _summary_json(ctx: Ctx, result: meter.Summaries) -> dict[str, Any]:
    if ctx.all_namespaces:
        return {**result.total.document(), "namespaces": {
            ns: part.document() for ns, part in sorted(result.by_namespace.items())}}
    return {"namespace": ctx.namespace, **result.total.document()}


def cmd_summary(ctx: Ctx) -> int:
    rentals = ctx.api.list(selector=ctx.args.selector)
    result = meter.summarize(rentals, _wallets(ctx), ctx.now())
    if ctx.args.output == "json":
        ctx.out(meter.to_json(_summary_json(ctx, result)))
    elif ctx.all_namespaces:
        rows = [[ns, *_summary_row(part)] for ns, part in sorted(result.by_namespace.items())]
        rows.append(["TOTAL", *_summary_row(result.total)])
        ctx.out(render.table(["NAMESPACE", *SUMMARY_HEADERS], rows))
    else:
        ctx.out(render.table(SUMMARY_HEADERS, [_summary_row(result.total)]))
    return 0
