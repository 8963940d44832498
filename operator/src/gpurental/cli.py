"""Console scripts: `gpurental-operator` runs the operator."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import kopf


def operator_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpurental-operator",
        description="Turn GpuRentals into GPU pods, metered to the second.",
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--namespace", "-n", action="append", dest="namespaces", default=[],
                       metavar="NS", help="watch this namespace (repeatable)")
    scope.add_argument("--all-namespaces", "-A", action="store_true",
                       help="watch every namespace (the default)")
    parser.add_argument("--metrics-port", type=int, default=8080,
                        help="port for /metrics and /healthz (default 8080)")
    parser.add_argument("--metering-interval", type=float, default=30.0, metavar="SECONDS",
                        help="how often running rentals' status is refreshed (default 30)")
    parser.add_argument("--provisioning-timeout", type=int, default=600, metavar="SECONDS",
                        help="how long a rental may stay unprovisioned before Failed (default 600)")
    parser.add_argument("--api-threads", type=int, default=16,
                        help="threads for Kubernetes API calls (default 16)")
    parser.add_argument("--peering", metavar="NAME", default=None,
                        help="kopf peering object for HA (default: standalone)")
    parser.add_argument("--priority", type=int, default=0, help="peering priority")
    parser.add_argument("--verbose", "-v", action="store_true")
    return parser


def operator_main(argv: Sequence[str] | None = None) -> None:
    args = operator_parser().parse_args(argv)
    if args.metering_interval <= 0 or args.provisioning_timeout <= 0:
        sys.exit("gpurental-operator: intervals and timeouts must be positive")
    import gpurental.main  # noqa: F401  (registers the handlers)

    memo = kopf.Memo(options={
        "metrics_port": args.metrics_port,
        "metering_interval": args.metering_interval,
        "provisioning_timeout": args.provisioning_timeout,
        "api_threads": args.api_threads,
    })
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.PLAIN)
    if not args.verbose:
        # kopf logs every handler invocation at INFO; at thousands of rentals that is noise
        # that hides the operator's own transition lines.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    kopf.run(
        clusterwide=not args.namespaces,
        namespaces=args.namespaces,
        standalone=args.peering is None,
        peering_name=args.peering,
        priority=args.priority,
        memo=memo,
    )
