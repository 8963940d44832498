"""``kubectl-gpurental``: the seeds' GPU-cloud consoles (gpuoutlet's Instances page, Pictor's
Managing Instances) as a kubectl plugin.

The console script's entry point: parse the command line (:mod:`.parser`), run the command
against the API server (:mod:`.api`, with the current kubeconfig context as kubectl: ``KUBECONFIG``,
``--kubeconfig``, ``--context``, ``-n``, ``-A``) and turn every failure into kubectl's error line
and exit code 1 (130 on Ctrl-C; argparse's usage errors exit 2).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from kubernetes.client.rest import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

from gpurental.plugin.context import Ctx
from gpurental.plugin.errors import CliError, api_error
from gpurental.plugin.parser import build_parser


def _split_remote(argv: list[str]) -> tuple[list[str], list[str]]:
    """The arguments before ``--`` and the remote command (of ``ssh``) after it: argparse's
    subcommands mishandle ``--``, so it never sees it."""
    if "--" not in argv:
        return argv, []
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1:]


def main(argv: Sequence[str] | None = None, stdin: TextIO | None = None,
         stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    argv, remote = _split_remote(list(sys.argv[1:] if argv is None else argv))
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
        print(api_error(exc, getattr(args, "name", None)), file=err)
    except Urllib3Error as exc:
        print(f"Unable to connect to the server: {exc}", file=err)
    except KeyboardInterrupt:
        print("", file=err)
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
