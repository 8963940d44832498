"""``ssh-keys``, ``ssh`` and ``open``: who may log in to a rental (``spec.sshKeys``) and the
way in (the exact invocations are planned by :mod:`gpurental.plugin.connect`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from gpurental.plugin import connect, meter, render
from gpurental.plugin.api import Obj
from gpurental.plugin.context import Ctx
from gpurental.plugin.errors import CliError
from gpurental.plugin.rental import spec_of

# --- ssh-keys ------------------------------------------------------------------------------------


def _key_args(values: Sequence[str]) -> list[str]:
    """Keys given on the command line; an argument naming a file (e.g. ~/.ssh/id_ed25519.pub)
    contributes every key line in it."""
    keys: list[str] = []
    for value in values:
        path = Path(value).expanduser()
        if " " not in value and path.is_file():
            keys += [line.strip() for line in path.read_text().splitlines()
                     if line.strip() and not line.lstrip().startswith("#")]
        else:
            keys.append(value.strip())
    return keys


def _list_keys(ctx: Ctx, name: str) -> None:
    keys = list(spec_of(ctx.api.get(name)).get("sshKeys") or [])
    if ctx.args.output == "json":
        ctx.out(json.dumps(keys, indent=4))
    elif not keys:
        ctx.err(f'No SSH keys on gpurental "{name}".')
    else:
        rows = []
        for key in keys:
            kind, _, comment = meter.key_parts(key)
            rows.append([kind, meter.fingerprint(key), comment or render.NONE])
        ctx.out(render.table(["TYPE", "FINGERPRINT", "COMMENT"], rows))


def _keys_change(name: str, action: str, keys: Sequence[str]) -> Callable[[Obj], Obj | None]:
    """The read-modify-write step of ``add`` / ``remove``: the new ``spec.sshKeys``, or None
    when the keys already are as asked."""
    if action == "add":
        new = _key_args(keys)

        def add(obj: Obj) -> Obj | None:
            existing = list(spec_of(obj).get("sshKeys") or [])
            merged = meter.add_keys(existing, new)
            return None if merged == existing else {"sshKeys": merged}
        return add

    def remove(obj: Obj) -> Obj | None:
        existing = list(spec_of(obj).get("sshKeys") or [])
        kept, unmatched = meter.remove_keys(existing, keys)
        if unmatched:
            raise CliError(f'no SSH key on gpurental "{name}" matches '
                           + ", ".join(repr(t) for t in unmatched))
        return None if kept == existing else {"sshKeys": kept}
    return remove


def cmd_ssh_keys(ctx: Ctx) -> int:
    args = ctx.args
    if args.action == "list":
        _list_keys(ctx, args.name)
        return 0
    if not args.keys:
        raise CliError(f"ssh-keys {args.action} needs at least one key")
    changed = ctx.api.read_modify_write(args.name,
                                        _keys_change(args.name, args.action, args.keys))
    ctx.out(render.patched(args.name, changed=changed))
    return 0


# --- ssh / open ----------------------------------------------------------------------------------


def _kubectl_argv(ctx: Ctx) -> list[str]:
    """kubectl with the plugin's own kubeconfig and context, for the port-forward."""
    argv = ["kubectl"]
    if ctx.args.kubeconfig:
        argv += ["--kubeconfig", ctx.args.kubeconfig]
    if ctx.args.context:
        argv += ["--context", ctx.args.context]
    return argv


def _connect(ctx: Ctx, plan_for: Callable[[Obj, int], connect.Plan]) -> int:
    local_port = ctx.args.local_port or connect.free_port()
    try:
        plan = plan_for(ctx.api.get(ctx.args.name), local_port)
        if ctx.args.print:
            for line in plan.lines():
                ctx.out(line)
            return 0
        return connect.run(plan, wait=True)
    except connect.ConnectError as exc:
        raise CliError(str(exc)) from None


def cmd_ssh(ctx: Ctx) -> int:
    remote = list(ctx.args.remote)
    return _connect(ctx, lambda obj, port: connect.ssh_plan(
        obj, remote, port, _kubectl_argv(ctx), forward=ctx.args.port_forward))


def cmd_open(ctx: Ctx) -> int:
    return _connect(ctx, lambda obj, port: connect.open_plan(
        obj, ctx.args.port, port, _kubectl_argv(ctx), forward=ctx.args.port_forward))
