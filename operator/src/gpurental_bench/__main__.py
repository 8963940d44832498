"""`python -m gpurental_bench [--smoke]`: start an emulated cluster and print the figures."""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from gpurental_dev import substrate as substrates
from gpurental_dev.cluster import Cluster

from . import figures, preemption, profile
from .api import Api
from .report import Report


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gpurental_bench")
    parser.add_argument("--smoke", action="store_true", help="tiny scale, for the test suite")
    parser.add_argument("--steady", type=int,
                        help="running rentals of the largest level (default 10000; the "
                             "table's smaller levels are 1000 and 3000 where below it)")
    parser.add_argument("--stops", type=int, help="stops per level (default 500)")
    parser.add_argument("--profile", action="store_true",
                        help="run the operator under py-spy (raw stacks in the "
                             "workdir, a summary in the report); on kubernetes, also "
                             "kube-apiserver's CPU profile over the largest level's window")
    parser.add_argument("--provision", type=int, help="rentals created at once")
    parser.add_argument("--workdir", type=Path, help="keep logs here (default: a temp dir)")
    parser.add_argument("--substrate", choices=substrates.NAMES, default=substrates.KUBESIM,
                        help="the API server: kubesim (default) or kubernetes (the real "
                             "control plane; its audit log is the request record)")
    parser.add_argument("--preemption", action="store_true",
                        help="only the preemption figure (interruptible offers): needs "
                             "--substrate kubernetes, whose kube-scheduler preempts")
    args = parser.parse_args(argv)
    if args.preemption and args.substrate != substrates.KUBERNETES:
        parser.error("--preemption needs --substrate kubernetes (kubesim does not preempt)")
    return args


def scale_from(args: argparse.Namespace) -> figures.Scale:
    scale = figures.SMOKE if args.smoke else figures.Scale()
    if args.steady:
        scale.levels = (*(level for level in (1000, 3000) if level < args.steady), args.steady)
    if args.provision:
        scale.provision = args.provision
    if args.stops:
        scale.stops = args.stops
    scale.stops = min(scale.stops, *scale.levels)
    return scale


async def measure(cluster: Cluster, scale: figures.Scale, report: Report,
                  workdir: Path) -> None:
    operator = cluster.start_operator(
        "--metering-interval", str(scale.interval), profile=scale.profile)
    sampler = figures.Sampler(operator.pid)
    api = Api(cluster.substrate, workdir, scale.concurrency)
    try:
        await figures.provisioning(api, report, scale)
        await figures.exhaustion(api, report, scale)
        await figures.steady_state(api, report, scale, sampler, operator.metrics_url)
    finally:
        sampler.stop()
        await api.close()
    if operator.process is not None and operator.process.poll() is not None:
        report.note(f"the operator exited with {operator.process.returncode}!")


async def measure_preemption(cluster: Cluster, report: Report, workdir: Path,
                             rounds: int) -> None:
    cluster.start_operator("--metering-interval", "30", *preemption.OPERATOR_ARGS)
    api = Api(cluster.substrate, workdir)
    try:
        await preemption.measure(api, report, rounds)
    finally:
        await api.close()


def run_preemption(args: argparse.Namespace, report: Report) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        with Cluster(workdir / "cluster", nodes=preemption.NODES,
                     substrate=args.substrate) as cluster:
            cluster.kubectl("apply", "-f", "-", input=preemption.PRIORITY_CLASSES)
            cluster.kubectl("apply", "-f", "-", input=preemption.OFFERS)
            asyncio.run(measure_preemption(cluster, report, workdir, 1 if args.smoke else 5))


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.preemption:
        report = Report()
        started = time.monotonic()
        run_preemption(args, report)
        report.note(f"bench took {time.monotonic() - started:.0f}s")
        print(report.summary())
        return
    scale = scale_from(args)
    report = Report()
    load = os.getloadavg()
    report.note(f"{os.cpu_count()} cores, load average {load[0]:.1f} at start; scale {scale}")
    report.note(f"host speed at start: {host_speed():.2f}s for a fixed Python loop")
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        if args.profile:
            scale.profile = workdir / "operator-profile.txt"
        report.note(f"substrate: {args.substrate}")
        with Cluster(workdir / "cluster", nodes=scale.nodes,
                     substrate=args.substrate) as cluster:
            cluster.kubectl("apply", "-f", "-", input=figures.OFFERS)
            asyncio.run(measure(cluster, scale, report, workdir))
        if scale.profile is not None:  # written when the cluster stopped the operator
            for line in profile.summary(scale.profile):
                report.note(line)
    report.note(f"host speed at the end: {host_speed():.2f}s for the same loop")
    report.note(f"bench took {time.monotonic() - started:.0f}s")
    print(report.summary())


def host_speed(adds: int = 10_000_000) -> float:
    """CPU seconds for a fixed loop: this machine is a VM whose speed varied by 1.6x between
    two runs an hour apart (operator cores at 1,000 running 0.087 vs 0.053), so a run's
    figures are compared with another's only at a similar speed."""
    started, total = time.process_time(), 0
    for i in range(adds):
        total += i
    return time.process_time() - started


if __name__ == "__main__":
    main()
