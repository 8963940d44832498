"""`python -m kubesim.bench`: requests/sec for GET, create, patch and list, and RSS at 30k objects.

Starts its own emulator subprocess and drives it with aiohttp clients in this process, so the
numbers include client overhead on the same (small) machine: they are a floor, not a ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from .launch import start_emulator

Op = Callable[[aiohttp.ClientSession, int], Awaitable[None]]


async def _drive(session: aiohttp.ClientSession, op: Op, total: int, workers: int) -> float:
    """Run `total` calls of op over `workers` concurrent loops; returns requests/sec."""
    counter = iter(range(total))

    async def loop() -> None:
        for i in counter:
            await op(session, i)
    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(workers)))
    return total / (time.perf_counter() - started)


async def _check(rsp: aiohttp.ClientResponse, *ok: int) -> None:
    await rsp.read()
    if rsp.status not in ok:
        raise RuntimeError(f"unexpected {rsp.status} for {rsp.method} {rsp.url}")


async def run(url: str, objects: int, workers: int, watchers: int) -> dict[str, float]:
    base = f"{url}/api/v1/namespaces/bench/configmaps"
    results: dict[str, float] = {}
    connector = aiohttp.TCPConnector(limit=workers + watchers + 4)
    async with aiohttp.ClientSession(connector=connector) as session:
        await _check(await session.post(f"{url}/api/v1/namespaces",
                                        json={"metadata": {"name": "bench"}}), 201)
        delivered = [0]
        watch_tasks = [asyncio.create_task(_watch(session, base, delivered))
                       for _ in range(watchers)]

        async def create(s: aiohttp.ClientSession, i: int) -> None:
            body = {"metadata": {"name": f"cm-{i}", "labels": {"shard": str(i % 100)}},
                    "data": {"payload": "x" * 200}}
            await _check(await s.post(base, json=body), 201)
        results["create"] = await _drive(session, create, objects, workers)

        async def get(s: aiohttp.ClientSession, i: int) -> None:
            await _check(await s.get(f"{base}/cm-{random.randrange(objects)}"), 200)
        results["get"] = await _drive(session, get, min(objects, 20_000), workers)

        async def patch(s: aiohttp.ClientSession, i: int) -> None:
            await _check(await s.patch(
                f"{base}/cm-{random.randrange(objects)}", data=json.dumps(
                    {"metadata": {"annotations": {"n": str(i)}}}),
                headers={"Content-Type": "application/merge-patch+json"}), 200)
        before = delivered[0]
        started = time.perf_counter()
        results["patch"] = await _drive(session, patch, min(objects, 10_000), workers)
        await asyncio.sleep(0.5)  # let the watchers drain what the last patches queued
        results["watch events delivered/s"] = (delivered[0] - before) / (
            time.perf_counter() - started)

        async def small_list(s: aiohttp.ClientSession, i: int) -> None:
            await _check(await s.get(f"{url}/api/v1/namespaces/default/configmaps"), 200)
        results["list small namespace"] = await _drive(session, small_list, 5_000, workers)

        started = time.perf_counter()
        await _check(await session.get(base), 200)
        results["list everything (seconds)"] = time.perf_counter() - started

        async with session.get(f"{url}/_kubesim/stats") as rsp:
            stats = await rsp.json()
        results["objects"] = stats["objects"]
        results["rss MiB"] = stats["rssBytes"] / 2**20
        for task in watch_tasks:
            task.cancel()
    return results


async def _watch(session: aiohttp.ClientSession, base: str, delivered: list[int]) -> None:
    async with session.get(base, params={"watch": "true", "resourceVersion": "1"},
                           timeout=aiohttp.ClientTimeout(total=None)) as rsp:
        async for _line in rsp.content:
            delivered[0] += 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m kubesim.bench")
    parser.add_argument("--objects", type=int, default=30_000)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--watchers", type=int, default=10,
                        help="open watches on the benchmarked collection during the run")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, start_emulator(Path(tmp)) as emulator:
        results = asyncio.run(run(emulator.url, args.objects, args.workers, args.watchers))
    for name, value in results.items():
        unit = "" if "(" in name or "/" in name or name in ("objects", "rss MiB") else " req/s"
        shown = f"{value:10.3f}" if value < 10 else f"{value:10.0f}"
        print(f"{name:28s} {shown}{unit}")


if __name__ == "__main__":
    main()
