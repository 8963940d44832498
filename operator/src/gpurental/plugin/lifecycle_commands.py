"""``pause``, ``resume``, ``stop``, ``delete`` and ``stop-all``: what a rental should be doing
(``spec.state``), and its end. Stopped is final, so ``stop`` and ``delete`` ask first."""

from __future__ import annotations

from kubernetes.client.rest import ApiException

from gpurental.plugin import meter, render
from gpurental.plugin.api import Obj
from gpurental.plugin.context import Ctx, confirm, for_each, no_resources
from gpurental.plugin.errors import CliError, api_error
from gpurental.plugin.rental import ended, name_of, sorted_rentals, spec_of, status_of

HOLD_HINTS = {
    "Expired": "its prepaid time ran out; add time with `extend --hours N`",
    "BudgetExhausted": "its wallet ran out; it resumes when the wallet's budget is raised",
}


def _hold(status: Obj) -> str | None:
    """Why the operator keeps the rental below its desired state: ``status.hold``, or the
    Expired / BudgetExhausted condition that explains it."""
    if status.get("hold"):
        return str(status["hold"])
    for cond in status.get("conditions") or ():
        if cond.get("type") in HOLD_HINTS and cond.get("status") == "True":
            return str(cond["type"])
    return None


def _set_state(ctx: Ctx, name: str, target: str) -> None:
    obj = ctx.api.get(name)
    why_ended = ended(obj)
    if target == "Stopped":
        if spec_of(obj).get("state") == "Stopped":
            ctx.out(render.patched(name, changed=False))
            return
    elif why_ended:
        verb = "resume" if target == "Running" else "pause"
        raise CliError(f'cannot {verb} gpurental "{name}": it {why_ended}')
    if target == "Running" and status_of(obj).get("idlePausedGeneration") is not None:
        _wake_from_idle(ctx, name, obj)
        ctx.out(render.patched(name))
    elif spec_of(obj).get("state", "Running") == target:
        ctx.out(render.patched(name, changed=False))
    else:
        ctx.api.patch_spec(name, {"state": target})
        ctx.out(render.patched(name))
    hold = _hold(status_of(obj))
    if target == "Running" and hold:
        ctx.err(f'Warning: gpurental "{name}" is held by the operator ({hold}): '
                f"{HOLD_HINTS.get(str(hold), 'see its conditions')}")


def _wake_from_idle(ctx: Ctx, name: str, obj: Obj) -> None:
    """An idle pause lifts only when the spec changes (metadata.generation moves past
    status.idlePausedGeneration): a spec already saying Running goes Paused, then Running."""
    if spec_of(obj).get("state", "Running") == "Running":
        version = obj.get("metadata", {}).get("resourceVersion")
        ctx.api.patch_spec(name, {"state": "Paused"}, resource_version=version)
    ctx.api.patch_spec(name, {"state": "Running"})


def cmd_pause(ctx: Ctx) -> int:
    return for_each(ctx, ctx.args.names, lambda n: _set_state(ctx, n, "Paused"))


def cmd_resume(ctx: Ctx) -> int:
    return for_each(ctx, ctx.args.names, lambda n: _set_state(ctx, n, "Running"))


def stop_question(name: str) -> str:
    return (f"Stop rental {name}? This deletes its pod and volume and cannot be undone")


def cmd_stop(ctx: Ctx) -> int:
    def stop(name: str) -> None:
        obj = ctx.api.get(name)
        if spec_of(obj).get("state") == "Stopped":
            ctx.out(render.patched(name, changed=False))
            return
        if not confirm(ctx, stop_question(name), f'stop gpurental "{name}"'):
            raise CliError(f'gpurental "{name}" not stopped')
        _set_state(ctx, name, "Stopped")
    return for_each(ctx, ctx.args.names, stop)


def cmd_delete(ctx: Ctx) -> int:
    def delete(name: str) -> None:
        ctx.api.get(name)
        question = (f"Delete rental {name}? This deletes its pod and volume and cannot be "
                    "undone")
        if not confirm(ctx, question, f'delete gpurental "{name}"'):
            raise CliError(f'gpurental "{name}" not deleted')
        ctx.api.delete(name)
        ctx.out(f'{render.KIND_REF} "{name}" deleted')
        if ctx.args.wait:
            ctx.api.wait_gone(name, ctx.args.timeout)
    return for_each(ctx, ctx.args.names, delete)


# --- stop-all (the seed's bulk "stop everything that's running") ---------------------------------


def _stop_all_targets(ctx: Ctx) -> list[Obj]:
    args = ctx.args
    if not args.selector and not args.all:
        raise CliError("stop-all needs a label selector (-l/--selector) or --all")
    return sorted_rentals([o for o in ctx.api.list(selector=args.selector)
                           if meter.matches_filter(o, args.status) and not ended(o)])


def cmd_stop_all(ctx: Ctx) -> int:
    targets = _stop_all_targets(ctx)
    if not targets:
        no_resources(ctx)
        return 0
    if ctx.args.dry_run:
        for obj in targets:
            ctx.out(render.patched(name_of(obj), dry_run=True))
        return 0
    names = ", ".join(name_of(o) for o in targets)
    noun = "rental" if len(targets) == 1 else "rentals"
    question = (f"Stop {len(targets)} {noun} ({names})? This deletes their pods and volumes "
                "and cannot be undone")
    if not confirm(ctx, question, f"stop {len(targets)} {noun}"):
        raise CliError("nothing stopped")
    rc = 0
    for obj in targets:
        name, ns = name_of(obj), obj["metadata"].get("namespace")
        try:
            ctx.api.patch_spec(name, {"state": "Stopped"}, namespace=ns)
            ctx.out(render.patched(name))
        except ApiException as exc:
            ctx.err(api_error(exc, name))
            rc = 1
    return rc
