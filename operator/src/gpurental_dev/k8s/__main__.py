"""`python -m gpurental_dev.k8s {build,serve}`: the real control plane from the command line.

    build                       build (or find in the cache) the control plane's binary
    serve --workdir DIR [--node NAME=PRODUCT:COUNT[:RESOURCE]]...
                                start etcd, kube-apiserver, kube-controller-manager,
                                kube-scheduler and the simulated GPU nodes; print one JSON line
                                {"kubeconfig", "url", "version", "nodes"} when ready; stop
                                everything on SIGTERM or SIGINT
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path

from . import binary
from .controlplane import ControlPlane


def _build(_: argparse.Namespace) -> int:
    built = binary.ensure_binary()
    size = built.path.stat().st_size / 2**20
    how = "cached" if built.cached else f"built in {built.seconds:.0f} s"
    print(json.dumps({"binary": str(built.path), "version": binary.KUBERNETES_VERSION,
                      "cached": built.cached, "seconds": round(built.seconds, 1),
                      "sizeMiB": round(size, 1)}))
    print(f"k8s: {built.path.name} {binary.KUBERNETES_VERSION} {how}, {size:.0f} MiB",
          file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from gpurental_dev.cluster import DEFAULT_NODES, GpuNodes
    from gpurental_dev.substrate import Kubernetes

    from .controlplane import Timings

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    workdir = Path(args.workdir)
    timings = Timings(node_monitor_grace_period=args.node_monitor_grace_period)
    plane = ControlPlane(workdir, timings=timings)
    nodes: GpuNodes | None = None
    try:
        plane.start()
        specs = args.nodes or list(DEFAULT_NODES)
        substrate = Kubernetes(plane)
        nodes = GpuNodes(substrate.nodes_kubeconfig(), workdir, specs,
                         substrate.node_args()).start()
        _wait_nodes(plane, len(specs))
        print(json.dumps({"kubeconfig": str(plane.kubeconfig), "url": plane.url,
                          "version": plane.version,
                          "nodes": [s.split("=", 1)[0] for s in specs]}), flush=True)
        while not stop.is_set():
            if nodes.process is not None and nodes.process.poll() is not None:
                print("k8s: the simulated nodes exited; see nodes.log", file=sys.stderr)
                return 1
            time.sleep(0.2)
    finally:
        if nodes is not None:
            nodes.stop()
        plane.stop()
    return 0


def _wait_nodes(plane: ControlPlane, count: int, timeout: float = 60.0) -> None:
    """Ready means schedulable: every simulated Node registered."""
    deadline = time.monotonic() + timeout
    while len(plane.kubectl("get", "nodes", "-o", "name").stdout.split()) < count:
        if time.monotonic() > deadline:
            raise TimeoutError("the simulated nodes did not register; see nodes.log")
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpurental_dev.k8s",
                                     description="A real Kubernetes control plane for tests.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="build or reuse the cached control-plane binary")
    serve = commands.add_parser("serve", help="run the control plane and simulated GPU nodes")
    serve.add_argument("--workdir", required=True, help="certificates, logs, etcd data")
    serve.add_argument("--node", action="append", dest="nodes", default=[],
                       metavar="NAME=PRODUCT:COUNT[:RESOURCE]",
                       help="a simulated GPU node (repeatable; default: the demo's four)")
    serve.add_argument("--node-monitor-grace-period", type=int, default=50, metavar="SECONDS",
                       help="how long a node may miss heartbeats before it is NotReady")
    args = parser.parse_args(argv)
    return _build(args) if args.command == "build" else _serve(args)


if __name__ == "__main__":
    sys.exit(main())
