"""``python -m kubesim node``: the command line of the simulated nodes."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
from collections.abc import Sequence
from typing import Any

from .nodes import SimulatedNodes
from .objects import GPU_RESOURCE
from .specs import NodeSpec, Taint


class _NodeAction(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        try:
            spec = NodeSpec.parse(str(values))
        except ValueError as exc:
            parser.error(str(exc))
        namespace.nodes = [*(namespace.nodes or []), spec]


class _TaintAction(argparse.Action):
    """``--taint`` applies to the ``--node`` given before it."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        if not namespace.nodes:
            parser.error("--taint must follow the --node it applies to")
        try:
            namespace.nodes[-1].taints.append(Taint.parse(str(values)))
        except ValueError as exc:
            parser.error(str(exc))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubesim node",
        description="Simulated GPU nodes (kubelet + scheduler + PVC provisioner) over HTTP.")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--node", dest="nodes", action=_NodeAction, required=True,
                        metavar="NAME=PRODUCT:COUNT[:RESOURCE]",
                        help="a node to simulate (repeatable); RESOURCE defaults to "
                             f"{GPU_RESOURCE}")
    parser.add_argument("--taint", action=_TaintAction, metavar="KEY[=VALUE]:EFFECT",
                        help="a taint for the preceding --node (repeatable)")
    parser.add_argument("--start-delay", type=float, default=0.0, metavar="SECONDS",
                        help="time between binding and Running (simulated image pull)")
    parser.add_argument("--pull-fail-images", metavar="REGEX",
                        help="containers whose image matches fail with ErrImagePull")
    parser.add_argument("--fail-storage-class", action="append", default=[], metavar="NAME",
                        help="PVCs of this storage class stay Pending (ProvisioningFailed)")
    parser.add_argument("--no-provisioner", action="store_true",
                        help="leave PVCs alone (tests bind them by hand)")
    parser.add_argument("--namespace", help="handle only the pods and PVCs of this namespace")
    parser.add_argument("--warning-events-only", action="store_true",
                        help="skip routine Normal Events (Scheduled, Pulled, Started...): "
                             "fewer requests for benchmarks with thousands of pods")
    parser.add_argument("--no-scheduler", action="store_true",
                        help="bind nothing: a real kube-scheduler does (real control plane)")
    parser.add_argument("--lease-interval", type=float, default=0.0, metavar="SECONDS",
                        help="renew each node's Lease in kube-node-lease this often, as a "
                             "kubelet does (0: no Leases; a real control plane needs them)")
    parser.add_argument("--external-provisioner", action="store_true",
                        help="provision only claims the PersistentVolume controller hands to "
                             "kubesim.dev/hostpath and let it bind them (real control plane)")
    parser.add_argument("--keep-nodes", action="store_true",
                        help="do not delete the Node objects on exit")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


async def _serve(args: argparse.Namespace) -> None:
    sim = SimulatedNodes(args.kubeconfig, args.nodes, start_delay=args.start_delay,
                         pull_fail_images=args.pull_fail_images,
                         fail_storage_classes=args.fail_storage_class,
                         provisioner=not args.no_provisioner, keep_nodes=args.keep_nodes,
                         namespace=args.namespace,
                         warning_events_only=args.warning_events_only,
                         scheduler=not args.no_scheduler, lease_interval=args.lease_interval,
                         external_provisioner=args.external_provisioner)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await sim.start()
    print(json.dumps({"nodes": [s.name for s in sim.specs]}), flush=True)
    try:
        await stop.wait()
    finally:
        await sim.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kubesim node ...``: run the simulated nodes until SIGINT/SIGTERM."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        import uvloop  # a faster event loop when installed, as the API server uses
    except ImportError:  # pragma: no cover
        asyncio.run(_serve(args))
    else:
        uvloop.run(_serve(args))
    return 0
