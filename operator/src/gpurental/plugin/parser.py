"""The command line of ``kubectl gpurental``: one small function per command declares its
arguments; the global flags (kubectl's ``--kubeconfig``, ``--context``, ``-n``, ``-A``) go before
or after the command."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from gpurental.plugin import meter
from gpurental.plugin.access_commands import cmd_open, cmd_ssh, cmd_ssh_keys
from gpurental.plugin.billing_commands import cmd_autorenew, cmd_extend, cmd_meter, cmd_summary
from gpurental.plugin.context import Ctx
from gpurental.plugin.lifecycle_commands import (
    cmd_delete,
    cmd_pause,
    cmd_resume,
    cmd_stop,
    cmd_stop_all,
)
from gpurental.plugin.list_command import cmd_list

Subparsers = argparse._SubParsersAction  # what add_subparsers returns (no public name)
Command = Callable[[Ctx], int]

STATUS_HELP = ("all | running | in-progress (Pending, Provisioning) | paused | stopped | failed | "
               "disrupted (a pod or volume taken away: node lost, pod deleted or evicted, volume "
               "lost, no capacity) | interrupted (preempted for an on-demand rental, not running "
               "again yet)")


def _add_globals(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """On the top parser with defaults; on each command's with SUPPRESS, so a flag given after
    the command overrides one given before it and an absent one leaves it alone."""
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument("--kubeconfig", default=default,
                        help="path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    parser.add_argument("--context", default=default, help="the kubeconfig context to use")
    parser.add_argument("-n", "--namespace", default=default,
                        help="namespace (default: the context's)")
    parser.add_argument("-A", "--all-namespaces", action="store_true",
                        default=argparse.SUPPRESS if suppress else False,
                        help="across all namespaces")


def _command(sub: Subparsers, name: str, func: Command, help_: str) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_, description=help_)
    _add_globals(p, suppress=True)
    p.set_defaults(func=func)
    return p


def _add_yes(p: argparse.ArgumentParser) -> None:
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")


def _add_list(sub: Subparsers) -> None:
    p = _command(sub, "list", cmd_list, "List rentals with the seed's status filter.")
    p.add_argument("--status", choices=list(meter.STATUS_FILTERS), default="all",
                   help=STATUS_HELP)
    p.add_argument("-l", "--selector", help="label selector, e.g. team=ml")
    p.add_argument("-o", "--output", choices=["wide", "json", "yaml", "name"])


def _add_pause_resume(sub: Subparsers) -> None:
    for name, func, what in (("pause", cmd_pause, "Pause rentals: the pod goes, the volume "
                              "stays, GPU billing stops."),
                             ("resume", cmd_resume, "Resume paused rentals on their volume.")):
        p = _command(sub, name, func, what)
        p.add_argument("names", nargs="+", metavar="NAME")


def _add_stop(sub: Subparsers) -> None:
    p = _command(sub, "stop", cmd_stop, "Stop rentals for good: pod and volume deleted, bill "
                 "settled.")
    p.add_argument("names", nargs="+", metavar="NAME")
    _add_yes(p)


def _add_delete(sub: Subparsers) -> None:
    p = _command(sub, "delete", cmd_delete, "Delete rentals (settles their bill into the "
                 "wallet).")
    p.add_argument("names", nargs="+", metavar="NAME")
    _add_yes(p)
    p.add_argument("--wait", action=argparse.BooleanOptionalAction, default=True,
                   help="wait until the rental is gone (default: yes)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait")


def _add_extend(sub: Subparsers) -> None:
    p = _command(sub, "extend", cmd_extend, "Add hours of prepaid running time "
                 "(spec.duration).")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--hours", required=True, help="hours to add, e.g. 2 or 0.5")
    p.add_argument("--from-now", action="store_true",
                   help="for a rental without a duration: set one (time already run, rounded "
                        "up to the hour, plus --hours)")


def _add_autorenew(sub: Subparsers) -> None:
    p = _command(sub, "autorenew", cmd_autorenew, "Turn auto-renew on or off.")
    p.add_argument("name", metavar="NAME")
    p.add_argument("value", choices=["on", "off"])


def _add_ssh_keys(sub: Subparsers) -> None:
    p = _command(sub, "ssh-keys", cmd_ssh_keys, "Add, remove or list a rental's SSH keys.")
    p.add_argument("action", choices=["add", "remove", "list"])
    p.add_argument("name", metavar="NAME")
    p.add_argument("keys", nargs="*", metavar="KEY",
                   help="add: key lines or .pub files; remove: key, fingerprint or comment")
    p.add_argument("-o", "--output", choices=["json"])


def _add_connect_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port-forward", action="store_true",
                   help="go through kubectl port-forward even if an address is exposed")
    p.add_argument("--local-port", type=int, default=0,
                   help="local end of the port-forward (default: a free port)")
    p.add_argument("--print", action="store_true",
                   help="print the commands instead of running them")


def _add_ssh(sub: Subparsers) -> None:
    p = _command(sub, "ssh", cmd_ssh, "SSH into a running rental (directly when its Service is "
                 "exposed outside the cluster, else through kubectl port-forward).")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(remote=[])  # what follows `--` (main splits it off before parsing)
    _add_connect_flags(p)


def _add_open(sub: Subparsers) -> None:
    p = _command(sub, "open", cmd_open, "Print the URL of a rental's web port, keeping a "
                 "kubectl port-forward open when the port is not exposed outside the cluster.")
    p.add_argument("name", metavar="NAME")
    p.add_argument("port", metavar="PORT", help="a port name or number of spec.ports")
    _add_connect_flags(p)


def _add_meter(sub: Subparsers) -> None:
    p = _command(sub, "meter", cmd_meter, "Print the rental's meter as the seed's meter API "
                 "does.")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--no-live", action="store_true",
                   help="the meter as the operator last wrote it, not computed for now")


def _add_summary(sub: Subparsers) -> None:
    p = _command(sub, "summary", cmd_summary, "Active instances, hourly burn and spend.")
    p.add_argument("-l", "--selector", help="label selector (wallets are then left out)")
    p.add_argument("-o", "--output", choices=["json"])


def _add_stop_all(sub: Subparsers) -> None:
    p = _command(sub, "stop-all", cmd_stop_all, "Stop every rental matching a selector "
                 "(default: the running ones).")
    p.add_argument("-l", "--selector", help="label selector, e.g. experiment=sweep-3")
    p.add_argument("--all", action="store_true", help="every rental in scope, no selector")
    p.add_argument("--status", choices=["running", "in-progress", "paused", "all"],
                   default="running")
    p.add_argument("--dry-run", action="store_true", help="only print what would be stopped")
    _add_yes(p)


#: In the order ``--help`` lists the commands.
COMMANDS: tuple[Callable[[Subparsers], None], ...] = (
    _add_list, _add_pause_resume, _add_stop, _add_delete, _add_extend, _add_autorenew,
    _add_ssh_keys, _add_ssh, _add_open, _add_meter, _add_summary, _add_stop_all)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl gpurental",
        description="Manage GpuRentals like a GPU cloud console: list, pause, resume, stop, "
                    "extend, auto-renew, SSH keys, the meter and the KPI summary.")
    _add_globals(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser
