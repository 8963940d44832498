"""What every command gets: its arguments, the API, the clock and the terminal; and the
terminal conventions commands share with kubectl (confirmation, per-name errors, the empty
result line)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TextIO

from kubernetes.client.rest import ApiException

from gpurental.clock import clock_from_env
from gpurental.plugin.api import RentalApi
from gpurental.plugin.errors import CliError, api_error


class Ctx:
    """What every command needs: the API, the namespace scope, the clock and the terminal."""

    def __init__(self, args: argparse.Namespace, stdin: TextIO, stdout: TextIO,
                 stderr: TextIO) -> None:
        self.args = args
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.api = RentalApi.connect(args.kubeconfig, args.context, args.namespace,
                                     bool(args.all_namespaces))
        self.clock = clock_from_env()

    @property
    def namespace(self) -> str:
        return self.api.namespace

    @property
    def all_namespaces(self) -> bool:
        return self.api.all_namespaces

    def now(self) -> datetime:
        return self.clock.now()

    def out(self, text: str = "") -> None:
        print(text, file=self.stdout)

    def err(self, text: str) -> None:
        print(text, file=self.stderr)


def confirm(ctx: Ctx, question: str, what: str) -> bool:
    """``--yes``, or a y/yes typed at a terminal; without a terminal, refuse (``what`` says
    what was refused) rather than read an answer nobody typed."""
    if ctx.args.yes:
        return True
    if not ctx.stdin.isatty():
        raise CliError(f"refusing to {what} without confirmation: stdin is not a terminal "
                       "(pass --yes to confirm)")
    print(f"{question} [y/N] ", end="", file=ctx.stderr, flush=True)
    answer = ctx.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def for_each(ctx: Ctx, names: Sequence[str], action: Callable[[str], None]) -> int:
    """Run ``action`` per name like kubectl: errors go to stderr, the rest still runs."""
    rc = 0
    for name in names:
        try:
            action(name)
        except ApiException as exc:
            ctx.err(api_error(exc, name))
            rc = 1
        except CliError as exc:
            ctx.err(f"error: {exc}")
            rc = 1
    return rc


def no_resources(ctx: Ctx) -> None:
    ctx.err("No resources found" if ctx.all_namespaces
            else f"No resources found in {ctx.namespace} namespace.")
