"""`make demo`: the operator's main job on an emulated GPU cluster, no real cluster needed.

Starts the Kubernetes API emulator, simulated GPU nodes of two products and the real operator;
applies the offers, wallet and rentals from examples/; then walks the rentals through their
phases (pause one, stop one, delete one) printing what a user sees with kubectl.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import tempfile
import time
from pathlib import Path

from gpurental_dev import substrate as substrates
from gpurental_dev.cluster import ROOT, Cluster

EXAMPLES = ROOT / "examples"
NODES = (
    "gpu-4090-a=NVIDIA-GeForce-RTX-4090:4",
    "gpu-4090-b=NVIDIA-GeForce-RTX-4090:4",
    "gpu-h100-a=NVIDIA-H100-80GB-HBM3:2",
)


def say(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m", flush=True)


def show(cluster: Cluster, *args: str) -> None:
    print(f"$ kubectl {' '.join(args)}", flush=True)
    result = cluster.kubectl(*args, check=False)
    print((result.stdout or result.stderr).rstrip(), flush=True)


def wait_for(cluster: Cluster, name: str, phase: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cluster.kubectl("get", "gr", name, "-n", "team-a", "-o",
                              "jsonpath={.status.phase}", check=False).stdout
        if got == phase:
            return
        time.sleep(0.2)
    print(f"(gave up waiting for {name} to be {phase})", flush=True)


def story(cluster: Cluster, pause: float) -> None:
    say("Install the CRDs and the catalog (cluster admin)")
    show(cluster, "apply", "-f", str(EXAMPLES / "offers.yaml"))
    show(cluster, "get", "gpuoffers")
    say("A team wallet and three rentals (users)")
    show(cluster, "apply", "-f", str(EXAMPLES / "wallet.yaml"))
    show(cluster, "apply", "-f", str(EXAMPLES / "rentals.yaml"))
    show(cluster, "get", "gpurentals", "-n", "team-a")
    for name in ("finetune", "notebook", "pretrain"):
        wait_for(cluster, name, "Running")
    time.sleep(pause)
    say("Every rental runs on a GPU node, metered to the second")
    show(cluster, "get", "gpurentals", "-n", "team-a", "-o", "wide")
    show(cluster, "get", "pods,pvc", "-n", "team-a", "-o", "wide")

    say("Pause the notebook: pod gone, volume kept, billing stops")
    show(cluster, "patch", "gr", "notebook", "-n", "team-a", "--type", "merge",
         "-p", '{"spec":{"state":"Paused"}}')
    wait_for(cluster, "notebook", "Paused")
    show(cluster, "get", "gpurentals", "-n", "team-a")
    show(cluster, "get", "pods,pvc", "-n", "team-a")

    say("Stop the fine-tune: pod and volume deleted, the bill settled once")
    show(cluster, "patch", "gr", "finetune", "-n", "team-a", "--type", "merge",
         "-p", '{"spec":{"state":"Stopped"}}')
    wait_for(cluster, "finetune", "Stopped")
    show(cluster, "get", "gpurentals", "-n", "team-a")

    say("Resume the notebook on the same volume")
    show(cluster, "patch", "gr", "notebook", "-n", "team-a", "--type", "merge",
         "-p", '{"spec":{"state":"Running"}}')
    wait_for(cluster, "notebook", "Running")
    time.sleep(pause)
    show(cluster, "get", "gpurentals", "-n", "team-a")

    say("A stopped rental never runs again")
    show(cluster, "patch", "gr", "finetune", "-n", "team-a", "--type", "merge",
         "-p", '{"spec":{"state":"Running"}}')
    time.sleep(1)
    show(cluster, "get", "gr", "finetune", "-n", "team-a", "-o",
         "jsonpath={.status.conditions[?(@.type=='Accepted')].message}")
    print()

    say("Delete the pretrain rental: cleaned up through the finalizer, charge kept in the wallet")
    show(cluster, "delete", "gr", "pretrain", "-n", "team-a")
    show(cluster, "get", "gpurentals", "-n", "team-a")
    show(cluster, "get", "wallets", "-n", "team-a")
    say("What the user's timeline says")
    show(cluster, "get", "events", "-n", "team-a", "--field-selector",
         "involvedObject.kind=GpuRental", "--sort-by=.lastTimestamp")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpurental-demo", description=__doc__)
    parser.add_argument("--keep", action="store_true",
                        help="keep the cluster running afterwards until Ctrl-C")
    parser.add_argument("--pause", type=float, default=3.0,
                        help="seconds to let the meters run between steps")
    parser.add_argument("--substrate", choices=substrates.NAMES, default=substrates.KUBESIM,
                        help="the API server: kubesim (quick, the default) or kubernetes (a "
                             "real control plane built from the Kubernetes Go modules)")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="gpurental-demo-"))
    what = "emulated" if args.substrate == substrates.KUBESIM else "real Kubernetes"
    say(f"Starting the {what} cluster in {workdir}")
    with Cluster(workdir, nodes=NODES, substrate=args.substrate) as cluster:
        operator = cluster.start_operator("--metering-interval", "2")
        print(f"operator up; metrics at {operator.metrics_url}", flush=True)
        story(cluster, args.pause)
        say("Point your own kubectl at it")
        print(f"export KUBECONFIG={cluster.kubeconfig}\nkubectl get gpurentals -A")
        if args.keep or sys.stdin.isatty():
            print("\nThe cluster stays up; press Ctrl-C to stop it.", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
