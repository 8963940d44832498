"""Console scripts: `gpurental-operator` runs the operator."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import kopf

from gpurental.options import DEFAULTS, Options


def operator_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpurental-operator",
        description="Turn GpuRentals into GPU pods, metered to the second.",
        epilog="Reads the kubeconfig ($KUBECONFIG, ~/.kube/config) or, in a pod, its "
               "ServiceAccount. Example: gpurental-operator --all-namespaces "
               "--metrics-port 8080 --metering-interval 30 --provisioning-timeout 600",
    )
    for add in (_scope, _metering, _scale, _priority_classes, _webhook, _idle, _misc):
        add(parser)
    return parser


def _scope(parser: argparse.ArgumentParser) -> None:
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--namespace", "-n", action="append", dest="namespaces", default=[],
                       metavar="NS", help="watch this namespace (repeatable)")
    scope.add_argument("--all-namespaces", "-A", action="store_true",
                       help="watch every namespace (the default)")
    parser.add_argument("--leader-election", metavar="LEASE", default=None,
                        help="elect the one acting replica through this Lease (HA; default: "
                             "standalone, the only replica)")
    parser.add_argument("--leader-election-namespace", metavar="NS", default=None,
                        help="the Lease's namespace (default: $POD_NAMESPACE, else default)")


def _metering(parser: argparse.ArgumentParser) -> None:
    d = DEFAULTS
    parser.add_argument("--metrics-port", type=int, default=d.metrics_port, metavar="PORT",
                        help=f"port for /metrics and /healthz (default {d.metrics_port})")
    parser.add_argument("--metering-interval", type=float, default=d.metering_interval,
                        metavar="SECONDS", help="how often running rentals' status is refreshed "
                                                f"(default {d.metering_interval:g})")
    parser.add_argument("--provisioning-timeout", type=int, default=d.provisioning_timeout,
                        metavar="SECONDS", help="how long a rental may stay unprovisioned before "
                                                f"Failed (default {d.provisioning_timeout})")


def _scale(parser: argparse.ArgumentParser) -> None:
    d = DEFAULTS
    parser.add_argument("--workers", type=int, default=d.workers, metavar="N",
                        help=f"rentals reconciled concurrently (default {d.workers})")
    parser.add_argument("--api-connections", type=int, default=d.api_connections, metavar="N",
                        help="Kubernetes API calls in flight at once "
                             f"(default {d.api_connections})")


def _priority_classes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--on-demand-priority-class", default=None, metavar="NAME",
                        help="PriorityClass of on-demand rentals' pods (the chart's "
                             "gpurental-on-demand); unset: none")
    parser.add_argument("--interruptible-priority-class", default=None, metavar="NAME",
                        help="PriorityClass of interruptible offers' pods, lower than the "
                             "on-demand one so those preempt them (the chart's "
                             "gpurental-interruptible); unset: none, and nothing is preempted")


def _webhook(parser: argparse.ArgumentParser) -> None:
    webhook = parser.add_argument_group(
        "validating webhook",
        "off unless --webhook-port is given; a ValidatingWebhookConfiguration (the chart's) "
        "must point at it")
    webhook.add_argument("--webhook-port", type=int, default=None, metavar="PORT",
                         help="serve the GpuRental validating webhook over HTTPS on PORT")
    webhook.add_argument("--webhook-cert-dir", default=None, metavar="DIR",
                         help="directory with tls.crt and tls.key (a mounted kubernetes.io/tls "
                              "Secret); re-read when they change")
    webhook.add_argument("--webhook-address", default=DEFAULTS.webhook_address, metavar="ADDR",
                         help="address to listen on (default: all interfaces)")


def _idle(parser: argparse.ArgumentParser) -> None:
    interval = DEFAULTS.idle_check_interval
    idle = parser.add_argument_group(
        "idle auto-pause", "off unless --prometheus-url is given (needs the DCGM exporter with "
        "pod mapping); rentals opt in with spec.idle or their offer's idle.default")
    idle.add_argument("--prometheus-url", default=None, metavar="URL",
                      help="Prometheus to read DCGM GPU utilisation from, e.g. "
                           "http://prometheus:9090")
    idle.add_argument("--idle-check-interval", type=float, default=interval,
                      metavar="SECONDS", help="how often running rentals are checked for idle "
                                              f"GPUs (default {interval:g})")


def _misc(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sshd-image", default=DEFAULTS.sshd_image, metavar="IMAGE",
                        help="the sshd sidecar's image for offers with access.ssh.enabled that "
                             "name none")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="log every handler call (kopf's own INFO lines)")


def parse_options(argv: Sequence[str] | None = None) -> Options:
    """The console script's flags as Options; exits with a message on unusable ones."""
    args = vars(operator_parser().parse_args(argv))
    args.pop("all_namespaces")
    args["namespaces"] = tuple(args["namespaces"])
    options = Options(**args)
    for problem in options.problems():
        sys.exit(f"gpurental-operator: {problem}")
    return options


def operator_main(argv: Sequence[str] | None = None) -> None:
    options = parse_options(argv)
    import gpurental.main  # registers the handlers

    if options.webhook_port is not None:
        # Registered only now: kopf refuses to run admission handlers without a server.
        import gpurental.handlers.admission  # noqa: F401

    kopf.configure(verbose=options.verbose, log_format=kopf.LogFormat.PLAIN)
    if not options.verbose:
        # kopf logs every handler invocation at INFO; at thousands of rentals that is noise
        # that hides the operator's own transition lines.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    # kopf watches nothing here (the operator's informers do, per --namespace), so it needs
    # no namespaces of its own, and one replica acts by the operator's Lease, not by peering.
    kopf.run(
        clusterwide=True,
        standalone=True,
        memo=kopf.Memo(options=options),
    )
