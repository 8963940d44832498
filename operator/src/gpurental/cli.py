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
        epilog="Reads the kubeconfig ($KUBECONFIG, ~/.kube/config) or, in a pod, its "
               "ServiceAccount. Example: gpurental-operator --all-namespaces "
               "--metrics-port 8080 --metering-interval 30 --provisioning-timeout 600",
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--namespace", "-n", action="append", dest="namespaces", default=[],
                       metavar="NS", help="watch this namespace (repeatable)")
    scope.add_argument("--all-namespaces", "-A", action="store_true",
                       help="watch every namespace (the default)")
    parser.add_argument("--metrics-port", type=int, default=8080, metavar="PORT",
                        help="port for /metrics and /healthz (default 8080)")
    parser.add_argument("--metering-interval", type=float, default=30.0, metavar="SECONDS",
                        help="how often running rentals' status is refreshed (default 30)")
    parser.add_argument("--provisioning-timeout", type=int, default=600, metavar="SECONDS",
                        help="how long a rental may stay unprovisioned before Failed (default 600)")
    parser.add_argument("--on-demand-priority-class", default=None, metavar="NAME",
                        help="PriorityClass of on-demand rentals' pods (the chart's "
                             "gpurental-on-demand); unset: none")
    parser.add_argument("--interruptible-priority-class", default=None, metavar="NAME",
                        help="PriorityClass of interruptible offers' pods, lower than the "
                             "on-demand one so those preempt them (the chart's "
                             "gpurental-interruptible); unset: none, and nothing is preempted")
    parser.add_argument("--api-threads", type=int, default=16, metavar="N",
                        help="threads for Kubernetes API calls (default 16)")
    parser.add_argument("--peering", metavar="NAME", default=None,
                        help="kopf peering object for HA (default: standalone)")
    parser.add_argument("--priority", type=int, default=0, metavar="N",
                        help="peering priority (the highest-priority peer is active)")
    webhook = parser.add_argument_group(
        "validating webhook",
        "off unless --webhook-port is given; a ValidatingWebhookConfiguration (the chart's) "
        "must point at it")
    webhook.add_argument("--webhook-port", type=int, default=None, metavar="PORT",
                         help="serve the GpuRental validating webhook over HTTPS on PORT")
    webhook.add_argument("--webhook-cert-dir", default=None, metavar="DIR",
                         help="directory with tls.crt and tls.key (a mounted kubernetes.io/tls "
                              "Secret); re-read when they change")
    webhook.add_argument("--webhook-address", default="0.0.0.0", metavar="ADDR",
                         help="address to listen on (default: all interfaces)")
    idle = parser.add_argument_group(
        "idle auto-pause", "off unless --prometheus-url is given (needs the DCGM exporter with "
        "pod mapping); rentals opt in with spec.idle or their offer's idle.default")
    idle.add_argument("--prometheus-url", default=None, metavar="URL",
                      help="Prometheus to read DCGM GPU utilisation from, e.g. "
                           "http://prometheus:9090")
    idle.add_argument("--idle-check-interval", type=float, default=60.0, metavar="SECONDS",
                      help="how often running rentals are checked for idle GPUs (default 60)")
    parser.add_argument("--sshd-image", default=None, metavar="IMAGE",
                        help="the sshd sidecar's image for offers with access.ssh.enabled that "
                             "name none")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="log every handler call (kopf's own INFO lines)")
    return parser


def operator_main(argv: Sequence[str] | None = None) -> None:
    args = operator_parser().parse_args(argv)
    if args.metering_interval <= 0 or args.provisioning_timeout <= 0:
        sys.exit("gpurental-operator: intervals and timeouts must be positive")
    if args.idle_check_interval <= 0:
        sys.exit("gpurental-operator: --idle-check-interval must be positive")
    if (args.webhook_port is None) != (args.webhook_cert_dir is None):
        sys.exit("gpurental-operator: --webhook-port and --webhook-cert-dir go together")
    import gpurental.main  # registers the handlers

    if args.webhook_port is not None:
        # Registered only now: kopf refuses to run admission handlers without a server.
        import gpurental.handlers.admission  # noqa: F401

    memo = kopf.Memo(options={
        "metrics_port": args.metrics_port,
        "metering_interval": args.metering_interval,
        "provisioning_timeout": args.provisioning_timeout,
        "api_threads": args.api_threads,
        "on_demand_priority_class": args.on_demand_priority_class,
        "interruptible_priority_class": args.interruptible_priority_class,
        "webhook_port": args.webhook_port,
        "webhook_cert_dir": args.webhook_cert_dir,
        "webhook_address": args.webhook_address,
        "prometheus_url": args.prometheus_url,
        "idle_check_interval": args.idle_check_interval,
        "sshd_image": args.sshd_image,
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
