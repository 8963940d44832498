"""``kubectl-gpurental``: the seeds' GPU-cloud consoles (gpuoutlet's Instances page, Pictor's
Managing Instances) as a kubectl plugin.

Talks to the API server with the ``kubernetes`` client and the current kubeconfig context
(``KUBECONFIG``, ``--kubeconfig``, ``--context``, ``-n``, ``-A`` as kubectl). Writes only
``spec`` (the fields users own) through merge patches of the main resource, never ``status``.
Read-modify-write patches (``sshKeys``, ``duration``) carry ``metadata.resourceVersion`` so a
concurrent edit is retried, never overwritten.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO

import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

from gpurental import billing, durations
from gpurental.clock import clock_from_env, format_ts, parse_ts
from gpurental.constants import GROUP, OFFERS, RENTALS, VERSION, WALLETS
from gpurental.plugin import connect, meter, render

MERGE = "application/merge-patch+json"
CONFLICT_RETRIES = 5

Obj = dict[str, Any]


class CliError(Exception):
    """A user-facing error: printed as ``error: <message>``, exit code 1."""


class Ctx:
    """What every command needs: the API, the namespace scope, the clock and the terminal."""

    def __init__(self, args: argparse.Namespace, stdin: TextIO, stdout: TextIO,
                 stderr: TextIO) -> None:
        self.args = args
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.api, default_ns = _load_client(args.kubeconfig, args.context)
        self.custom = client.CustomObjectsApi(self.api)
        self.namespace: str = args.namespace or default_ns
        self.all_namespaces: bool = bool(args.all_namespaces)
        self.clock = clock_from_env()

    def now(self) -> datetime:
        return self.clock.now()

    def out(self, text: str = "") -> None:
        print(text, file=self.stdout)

    def err(self, text: str) -> None:
        print(text, file=self.stderr)

    # --- API calls (the only ones the plugin makes) ---

    def get(self, name: str) -> Obj:
        return _obj(self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, RENTALS, name))

    def list(self, plural: str = RENTALS, selector: str | None = None) -> list[Obj]:
        kwargs: dict[str, Any] = {"label_selector": selector} if selector else {}
        if self.all_namespaces:
            body = _obj(self.custom.list_cluster_custom_object(GROUP, VERSION, plural,
                                                               **kwargs))
        else:
            body = _obj(self.custom.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, **kwargs))
        return [dict(item) for item in body.get("items") or []]

    def offers(self) -> dict[str, Obj]:
        try:
            body = _obj(self.custom.list_cluster_custom_object(GROUP, VERSION, OFFERS))
        except ApiException as exc:
            if exc.status in (401, 403, 404):
                return {}  # a tenant may not read the catalog; fall back to status
            raise
        return {item["metadata"]["name"]: item for item in body.get("items") or []}

    def offer(self, name: str) -> Obj | None:
        try:
            return _obj(self.custom.get_cluster_custom_object(GROUP, VERSION, OFFERS, name))
        except ApiException as exc:
            if exc.status in (401, 403, 404):
                return None
            raise

    def patch_spec(self, name: str, spec: Obj, resource_version: str | None = None,
                   namespace: str | None = None) -> Obj:
        body: Obj = {"spec": spec}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        return _obj(self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace or self.namespace, RENTALS, name, body,
            _content_type=MERGE))

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, RENTALS, name)


def _obj(value: Any) -> Obj:
    """The custom-objects API returns plain JSON dicts (typed as ``object``)."""
    if not isinstance(value, dict):
        raise CliError(f"unexpected response from the server: {type(value).__name__}")
    return value


def _load_client(kubeconfig: str | None, context: str | None) -> tuple[client.ApiClient, str]:
    try:
        api = config.new_client_from_config(config_file=kubeconfig, context=context)
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
        chosen = next((c for c in contexts if c.get("name") == context), None) if context \
            else active
        namespace = ((chosen or {}).get("context") or {}).get("namespace") or "default"
        return api, namespace
    except config.ConfigException as exc:
        if kubeconfig or context or "KUBERNETES_SERVICE_HOST" not in os.environ:
            raise CliError(f"invalid configuration: {exc}") from None
    config.load_incluster_config()
    ns_file = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    namespace = ns_file.read_text().strip() if ns_file.exists() else "default"
    return client.ApiClient(), namespace


# --- helpers -------------------------------------------------------------------------------------


def _name(obj: Obj) -> str:
    return str(obj["metadata"]["name"])


def _spec(obj: Obj) -> Obj:
    return dict(obj.get("spec") or {})


def _status(obj: Obj) -> Obj:
    return dict(obj.get("status") or {})


def _ended(obj: Obj) -> str | None:
    """Why a rental can never run again, or None."""
    phase = meter.phase_of(obj)
    if _spec(obj).get("state") == "Stopped" or phase == "Stopped":
        return "is stopped: stopped is permanent, create a new rental"
    if phase == "Failed":
        return "failed to provision and cannot run again; create a new rental"
    return None


def _confirm(ctx: Ctx, question: str, what: str) -> bool:
    if ctx.args.yes:
        return True
    if not ctx.stdin.isatty():
        raise CliError(f"refusing to {what} without confirmation: stdin is not a terminal "
                       "(pass --yes to confirm)")
    print(f"{question} [y/N] ", end="", file=ctx.stderr, flush=True)
    answer = ctx.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def _read_modify_write(ctx: Ctx, name: str, change: Callable[[Obj], Obj | None]) -> bool:
    """GET, compute a spec patch (None: nothing to change), PATCH with the resourceVersion;
    retried on 409. Returns whether anything was patched."""
    for _ in range(CONFLICT_RETRIES):
        obj = ctx.get(name)
        patch = change(obj)
        if patch is None:
            return False
        try:
            ctx.patch_spec(name, patch, obj["metadata"].get("resourceVersion"))
            return True
        except ApiException as exc:
            if exc.status != 409:
                raise
    raise CliError(f'gpurental "{name}" kept changing; try again')


def _for_each(ctx: Ctx, names: Sequence[str], action: Callable[[str], None]) -> int:
    """Run ``action`` per name like kubectl: errors go to stderr, the rest still runs."""
    rc = 0
    for name in names:
        try:
            action(name)
        except ApiException as exc:
            ctx.err(_api_error(exc, name))
            rc = 1
        except CliError as exc:
            ctx.err(f"error: {exc}")
            rc = 1
    return rc


def _api_error(exc: ApiException, name: str | None = None) -> str:
    """The server's Status, as kubectl prints it; a bare 404 (no Status body) names the rental."""
    body = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else exc.body
    if exc.status == 404 and name is not None:
        try:
            doc = json.loads(body or "")
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or not doc.get("message"):
            return render.not_found(name)
    return render.api_error(exc.status, exc.reason, body)


# --- list ----------------------------------------------------------------------------------------

LIST_HEADERS = ["NAME", "PHASE", "OFFER", "GPUS", "RATE", "RAN FOR", "TOTAL", "AGE"]
WIDE_HEADERS = ["SSH", "EXPIRES", "AUTORENEW", "WALLET", "MESSAGE"]


def gpus_text(obj: Obj, offers: dict[str, Obj]) -> str:
    spec, status = _spec(obj), _status(obj)
    count = int(spec.get("gpus") or 1)
    gpu = (((offers.get(str(spec.get("offer"))) or {}).get("spec") or {}).get("gpu") or {})
    product = status.get("offerProduct") or gpu.get("product")
    text = f"{count}x {product or spec.get('offer') or render.NONE}"
    resource = str(gpu.get("resourceName") or "nvidia.com/gpu")
    if resource != "nvidia.com/gpu":  # MIG slices, not whole GPUs
        text += f" ({resource.rpartition('/')[2]})"
    return text


def list_row(obj: Obj, offers: dict[str, Obj], now: datetime, wide: bool,
             all_namespaces: bool) -> list[str]:
    spec, status = _spec(obj), _status(obj)
    reading = meter.read(status, now)
    row = [_name(obj), meter.phase_text(obj), str(spec.get("offer") or render.NONE),
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


def _no_resources(ctx: Ctx) -> None:
    ctx.err("No resources found" if ctx.all_namespaces
            else f"No resources found in {ctx.namespace} namespace.")


def _sorted(items: list[Obj]) -> list[Obj]:
    return sorted(items, key=lambda o: (o["metadata"].get("namespace") or "", _name(o)))


def cmd_list(ctx: Ctx) -> int:
    args = ctx.args
    items = _sorted([o for o in ctx.list(selector=args.selector)
                     if meter.matches_filter(o, args.status)])
    output = args.output
    if output in ("json", "yaml"):
        doc = {"apiVersion": "v1", "items": items, "kind": "List",
               "metadata": {"resourceVersion": ""}}
        ctx.out(json.dumps(doc, indent=4) if output == "json"
                else yaml.safe_dump(doc, sort_keys=False).rstrip("\n"))
        return 0
    if not items:
        _no_resources(ctx)
        return 0
    if output == "name":
        for obj in items:
            ctx.out(render.ref(_name(obj)))
        return 0
    now, wide = ctx.now(), output == "wide"
    offers = ctx.offers()
    headers = LIST_HEADERS + (WIDE_HEADERS if wide else [])
    if ctx.all_namespaces:
        headers = ["NAMESPACE", *headers]
    rows = [list_row(o, offers, now, wide, ctx.all_namespaces) for o in items]
    ctx.out(render.table(headers, rows))
    return 0


# --- state: pause / resume / stop / delete -------------------------------------------------------


def _set_state(ctx: Ctx, name: str, target: str) -> None:
    obj = ctx.get(name)
    ended = _ended(obj)
    if target == "Stopped":
        if _spec(obj).get("state") == "Stopped":
            ctx.out(render.patched(name, changed=False))
            return
    elif ended:
        verb = "resume" if target == "Running" else "pause"
        raise CliError(f'cannot {verb} gpurental "{name}": it {ended}')
    if target == "Running" and _status(obj).get("idlePausedGeneration") is not None:
        _wake_from_idle(ctx, name, obj)
        ctx.out(render.patched(name))
    elif _spec(obj).get("state", "Running") == target:
        ctx.out(render.patched(name, changed=False))
    else:
        ctx.patch_spec(name, {"state": target})
        ctx.out(render.patched(name))
    hold = _hold(_status(obj))
    if target == "Running" and hold:
        ctx.err(f'Warning: gpurental "{name}" is held by the operator ({hold}): '
                f"{HOLD_HINTS.get(str(hold), 'see its conditions')}")


def _wake_from_idle(ctx: Ctx, name: str, obj: Obj) -> None:
    """An idle pause lifts only when the spec changes (metadata.generation moves past
    status.idlePausedGeneration): a spec already saying Running goes Paused, then Running."""
    if _spec(obj).get("state", "Running") == "Running":
        version = obj.get("metadata", {}).get("resourceVersion")
        ctx.patch_spec(name, {"state": "Paused"}, resource_version=version)
    ctx.patch_spec(name, {"state": "Running"})


def _hold(status: Obj) -> str | None:
    """Why the operator keeps the rental below its desired state: ``status.hold``, or the
    Expired / BudgetExhausted condition that explains it."""
    if status.get("hold"):
        return str(status["hold"])
    for cond in status.get("conditions") or ():
        if cond.get("type") in HOLD_HINTS and cond.get("status") == "True":
            return str(cond["type"])
    return None


HOLD_HINTS = {
    "Expired": "its prepaid time ran out; add time with `extend --hours N`",
    "BudgetExhausted": "its wallet ran out; it resumes when the wallet's budget is raised",
}


def cmd_pause(ctx: Ctx) -> int:
    return _for_each(ctx, ctx.args.names, lambda n: _set_state(ctx, n, "Paused"))


def cmd_resume(ctx: Ctx) -> int:
    return _for_each(ctx, ctx.args.names, lambda n: _set_state(ctx, n, "Running"))


def stop_question(name: str) -> str:
    return (f"Stop rental {name}? This deletes its pod and volume and cannot be undone")


def cmd_stop(ctx: Ctx) -> int:
    def stop(name: str) -> None:
        obj = ctx.get(name)
        if _spec(obj).get("state") == "Stopped":
            ctx.out(render.patched(name, changed=False))
            return
        if not _confirm(ctx, stop_question(name), f'stop gpurental "{name}"'):
            raise CliError(f'gpurental "{name}" not stopped')
        _set_state(ctx, name, "Stopped")
    return _for_each(ctx, ctx.args.names, stop)


def cmd_delete(ctx: Ctx) -> int:
    def delete(name: str) -> None:
        ctx.get(name)
        question = (f"Delete rental {name}? This deletes its pod and volume and cannot be "
                    "undone")
        if not _confirm(ctx, question, f'delete gpurental "{name}"'):
            raise CliError(f'gpurental "{name}" not deleted')
        ctx.delete(name)
        ctx.out(f'{render.KIND_REF} "{name}" deleted')
        if ctx.args.wait:
            _wait_gone(ctx, name, ctx.args.timeout)
    return _for_each(ctx, ctx.args.names, delete)


def _wait_gone(ctx: Ctx, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            ctx.get(name)
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        time.sleep(0.2)
    raise CliError(f'timed out waiting for gpurental "{name}" to be deleted')


# --- extend / autorenew --------------------------------------------------------------------------


def _max_duration(offer: Obj | None) -> int | None:
    text = ((offer or {}).get("spec") or {}).get("maxDuration")
    try:
        return durations.parse_duration(text) if text else None
    except ValueError:
        return None


def cmd_extend(ctx: Ctx) -> int:
    name = ctx.args.name
    try:
        hours = Decimal(ctx.args.hours)
    except InvalidOperation:
        raise CliError(f"--hours must be a number, got {ctx.args.hours!r}") from None
    result: dict[str, Any] = {}

    def change(obj: Obj) -> Obj | None:
        if _ended(obj):
            raise CliError(f'cannot extend gpurental "{name}": it {_ended(obj)}')
        status = _status(obj)
        billed = meter.live_seconds(status, ctx.now())
        try:
            ext = meter.extend(_spec(obj).get("duration"), hours, billed,
                               from_now=ctx.args.from_now)
        except meter.ExtendError as exc:
            raise CliError(f'cannot extend gpurental "{name}": {exc}') from None
        result.update(ext=ext, obj=obj)
        return {"duration": ext.new_duration}

    _read_modify_write(ctx, name, change)
    ext: meter.Extension = result["ext"]
    obj: Obj = result["obj"]
    status = _status(obj)
    ctx.out(render.patched(name))
    ctx.out(f"duration: {ext.old_duration or render.NONE} -> {ext.new_duration}")
    offer = ctx.offer(str(_spec(obj).get("offer")))
    cap = _max_duration(offer)
    renewed = int(status.get("renewedSeconds") or 0)
    prepaid = billing.effective_duration(durations.parse_duration(ext.new_duration), renewed,
                                         cap)
    if cap is not None and prepaid == cap:
        ctx.err(f"Warning: offer {_spec(obj).get('offer')} caps a rental's running time at "
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
    return 0


def cmd_autorenew(ctx: Ctx) -> int:
    name, want = ctx.args.name, ctx.args.value == "on"
    obj = ctx.get(name)
    if _ended(obj):
        raise CliError(f'cannot change auto-renew of gpurental "{name}": it {_ended(obj)}')
    if bool(_spec(obj).get("autoRenew")) == want:
        ctx.out(render.patched(name, changed=False))
        return 0
    ctx.patch_spec(name, {"autoRenew": want})
    ctx.out(render.patched(name))
    if want and not _spec(obj).get("duration"):
        ctx.err(f'Warning: gpurental "{name}" has no spec.duration; auto-renew has nothing '
                "to renew until one is set")
    return 0


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


def cmd_ssh_keys(ctx: Ctx) -> int:
    args = ctx.args
    name = args.name
    if args.action == "list":
        keys = list(_spec(ctx.get(name)).get("sshKeys") or [])
        if args.output == "json":
            ctx.out(json.dumps(keys, indent=4))
        elif not keys:
            ctx.err(f'No SSH keys on gpurental "{name}".')
        else:
            rows = []
            for key in keys:
                kind, _, comment = meter.key_parts(key)
                rows.append([kind, meter.fingerprint(key), comment or render.NONE])
            ctx.out(render.table(["TYPE", "FINGERPRINT", "COMMENT"], rows))
        return 0
    if not args.keys:
        raise CliError(f"ssh-keys {args.action} needs at least one key")
    if args.action == "add":
        new = _key_args(args.keys)

        def add(obj: Obj) -> Obj | None:
            existing = list(_spec(obj).get("sshKeys") or [])
            keys = meter.add_keys(existing, new)
            return None if keys == existing else {"sshKeys": keys}
        changed = _read_modify_write(ctx, name, add)
    else:
        def remove(obj: Obj) -> Obj | None:
            existing = list(_spec(obj).get("sshKeys") or [])
            kept, unmatched = meter.remove_keys(existing, args.keys)
            if unmatched:
                raise CliError(f'no SSH key on gpurental "{name}" matches '
                               + ", ".join(repr(t) for t in unmatched))
            return None if kept == existing else {"sshKeys": kept}
        changed = _read_modify_write(ctx, name, remove)
    ctx.out(render.patched(name, changed=changed))
    return 0


# --- ssh / open ------------------------------------------------------------------------------


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
        plan = plan_for(ctx.get(ctx.args.name), local_port)
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


# --- meter / summary -----------------------------------------------------------------------------


def cmd_meter(ctx: Ctx) -> int:
    obj = ctx.get(ctx.args.name)
    ctx.out(meter.meter_json(meter.meter_document(obj, ctx.now(), live=not ctx.args.no_live)))
    return 0


SUMMARY_HEADERS = ["ACTIVE INSTANCES", "HOURLY BURN", "SPEND"]


def _summary_row(part: meter.Summary) -> list[str]:
    return [str(part.active_instances), render.rate(part.hourly_burn),
            billing.dollars(part.spend_cents)]


def cmd_summary(ctx: Ctx) -> int:
    rentals = ctx.list(selector=ctx.args.selector)
    try:
        wallets = [] if ctx.args.selector else ctx.list(WALLETS)
    except ApiException as exc:
        if exc.status not in (401, 403):
            raise
        ctx.err("Warning: cannot read wallets; spend leaves out deleted rentals")
        wallets = []
    result = meter.summarize(rentals, wallets, ctx.now())
    if ctx.args.output == "json":
        doc: dict[str, Any]
        if ctx.all_namespaces:
            doc = {**result.total.document(), "namespaces": {
                ns: part.document() for ns, part in sorted(result.by_namespace.items())}}
        else:
            doc = {"namespace": ctx.namespace, **result.total.document()}
        ctx.out(meter.to_json(doc))
        return 0
    if ctx.all_namespaces:
        rows = [[ns, *_summary_row(part)] for ns, part in sorted(result.by_namespace.items())]
        rows.append(["TOTAL", *_summary_row(result.total)])
        ctx.out(render.table(["NAMESPACE", *SUMMARY_HEADERS], rows))
    else:
        ctx.out(render.table(SUMMARY_HEADERS, [_summary_row(result.total)]))
    return 0


# --- stop-all (the seed's bulk "stop everything that's running") ---------------------------------


def cmd_stop_all(ctx: Ctx) -> int:
    args = ctx.args
    if not args.selector and not args.all:
        raise CliError("stop-all needs a label selector (-l/--selector) or --all")
    targets = _sorted([o for o in ctx.list(selector=args.selector)
                       if meter.matches_filter(o, args.status) and not _ended(o)])
    if not targets:
        _no_resources(ctx)
        return 0
    if args.dry_run:
        for obj in targets:
            ctx.out(render.patched(_name(obj), dry_run=True))
        return 0
    names = ", ".join(_name(o) for o in targets)
    noun = "rental" if len(targets) == 1 else "rentals"
    question = (f"Stop {len(targets)} {noun} ({names})? This deletes their pods and volumes "
                "and cannot be undone")
    if not _confirm(ctx, question, f"stop {len(targets)} {noun}"):
        raise CliError("nothing stopped")
    rc = 0
    for obj in targets:
        name, ns = _name(obj), obj["metadata"].get("namespace")
        try:
            ctx.patch_spec(name, {"state": "Stopped"}, namespace=ns)
            ctx.out(render.patched(name))
        except ApiException as exc:
            ctx.err(_api_error(exc, name))
            rc = 1
    return rc


# --- the parser ----------------------------------------------------------------------------------


def _add_globals(parser: argparse.ArgumentParser, suppress: bool) -> None:
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument("--kubeconfig", default=default,
                        help="path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    parser.add_argument("--context", default=default, help="the kubeconfig context to use")
    parser.add_argument("-n", "--namespace", default=default,
                        help="namespace (default: the context's)")
    parser.add_argument("-A", "--all-namespaces", action="store_true",
                        default=argparse.SUPPRESS if suppress else False,
                        help="across all namespaces")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl gpurental",
        description="Manage GpuRentals like a GPU cloud console: list, pause, resume, stop, "
                    "extend, auto-renew, SSH keys, the meter and the KPI summary.")
    _add_globals(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func: Callable[[Ctx], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        _add_globals(p, suppress=True)
        p.set_defaults(func=func)
        return p

    p = command("list", cmd_list, "List rentals with the seed's status filter.")
    p.add_argument("--status", choices=list(meter.STATUS_FILTERS), default="all",
                   help="all | running | in-progress (Pending, Provisioning) | paused | "
                        "stopped | failed | disrupted (a pod or volume taken away: node "
                        "lost, pod deleted or evicted, volume lost, no capacity) | "
                        "interrupted (preempted for an on-demand rental, not running again "
                        "yet)")
    p.add_argument("-l", "--selector", help="label selector, e.g. team=ml")
    p.add_argument("-o", "--output", choices=["wide", "json", "yaml", "name"])

    for name, func, what in (("pause", cmd_pause, "Pause rentals: the pod goes, the volume "
                              "stays, GPU billing stops."),
                             ("resume", cmd_resume, "Resume paused rentals on their volume.")):
        p = command(name, func, what)
        p.add_argument("names", nargs="+", metavar="NAME")

    p = command("stop", cmd_stop, "Stop rentals for good: pod and volume deleted, bill "
                "settled.")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    p = command("delete", cmd_delete, "Delete rentals (settles their bill into the wallet).")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--wait", action=argparse.BooleanOptionalAction, default=True,
                   help="wait until the rental is gone (default: yes)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait")

    p = command("extend", cmd_extend, "Add hours of prepaid running time (spec.duration).")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--hours", required=True, help="hours to add, e.g. 2 or 0.5")
    p.add_argument("--from-now", action="store_true",
                   help="for a rental without a duration: set one (time already run, rounded "
                        "up to the hour, plus --hours)")

    p = command("autorenew", cmd_autorenew, "Turn auto-renew on or off.")
    p.add_argument("name", metavar="NAME")
    p.add_argument("value", choices=["on", "off"])

    p = command("ssh-keys", cmd_ssh_keys, "Add, remove or list a rental's SSH keys.")
    p.add_argument("action", choices=["add", "remove", "list"])
    p.add_argument("name", metavar="NAME")
    p.add_argument("keys", nargs="*", metavar="KEY",
                   help="add: key lines or .pub files; remove: key, fingerprint or comment")
    p.add_argument("-o", "--output", choices=["json"])

    for name, func, what in (
            ("ssh", cmd_ssh, "SSH into a running rental (directly when its Service is exposed "
             "outside the cluster, else through kubectl port-forward)."),
            ("open", cmd_open, "Print the URL of a rental's web port, keeping a kubectl "
             "port-forward open when the port is not exposed outside the cluster.")):
        p = command(name, func, what)
        p.add_argument("name", metavar="NAME")
        if name == "ssh":
            p.set_defaults(remote=[])  # what follows `--` (split off in main)
        else:
            p.add_argument("port", metavar="PORT", help="a port name or number of spec.ports")
        p.add_argument("--port-forward", action="store_true",
                       help="go through kubectl port-forward even if an address is exposed")
        p.add_argument("--local-port", type=int, default=0,
                       help="local end of the port-forward (default: a free port)")
        p.add_argument("--print", action="store_true",
                       help="print the commands instead of running them")

    p = command("meter", cmd_meter, "Print the rental's meter as the seed's meter API does.")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--no-live", action="store_true",
                   help="the meter as the operator last wrote it, not computed for now")

    p = command("summary", cmd_summary, "Active instances, hourly burn and spend.")
    p.add_argument("-l", "--selector", help="label selector (wallets are then left out)")
    p.add_argument("-o", "--output", choices=["json"])

    p = command("stop-all", cmd_stop_all, "Stop every rental matching a selector (default: "
                "the running ones).")
    p.add_argument("-l", "--selector", help="label selector, e.g. experiment=sweep-3")
    p.add_argument("--all", action="store_true", help="every rental in scope, no selector")
    p.add_argument("--status", choices=["running", "in-progress", "paused", "all"],
                   default="running")
    p.add_argument("--dry-run", action="store_true", help="only print what would be stopped")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    return parser


def main(argv: Sequence[str] | None = None, stdin: TextIO | None = None,
         stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # argparse's subcommands mishandle `--`: split the remote command (of ssh) off first.
    remote: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, remote = argv[:cut], argv[cut + 1:]
    args = build_parser().parse_args(argv)
    if remote:
        args.remote = remote
    out, err = stdout or sys.stdout, stderr or sys.stderr
    try:
        ctx = Ctx(args, stdin or sys.stdin, out, err)
        return int(args.func(ctx))
    except CliError as exc:
        print(f"error: {exc}", file=err)
    except ApiException as exc:
        print(_api_error(exc, getattr(args, "name", None)), file=err)
    except Urllib3Error as exc:
        print(f"Unable to connect to the server: {exc}", file=err)
    except KeyboardInterrupt:
        print("", file=err)
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
