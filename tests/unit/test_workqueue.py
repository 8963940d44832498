"""The work queue's ordering: due time first, urgent keys (stop requests) before all."""

from __future__ import annotations

import asyncio

from gpurental.workqueue import WorkQueue


async def drain(queue: WorkQueue[str], n: int) -> list[str]:
    """The next `n` keys in the order one worker gets them."""
    order = []
    for _ in range(n):
        key = await queue.get()
        order.append(key)
        queue.done(key)
    return order


def test_an_urgent_key_goes_before_an_overdue_backlog() -> None:
    now = [100.0]
    queue: WorkQueue[str] = WorkQueue(lambda: now[0])
    for i in range(5):
        queue.add(f"heartbeat-{i}")
    now[0] += 10  # the heartbeats are all overdue
    queue.add("stop", urgent=True)
    queue.add("ordinary")
    order = asyncio.run(drain(queue, 7))
    assert order[0] == "stop"
    assert order[1:6] == [f"heartbeat-{i}" for i in range(5)]
    assert order[6] == "ordinary"


def test_a_stop_seen_while_its_key_is_in_a_pass_stays_urgent() -> None:
    """A user's stop that arrives while the rental's heartbeat pass is in flight is parked
    until that pass ends; it must then go before the overdue backlog, not behind it (at
    10,000 running on kubesim it waited behind it for up to 17 s)."""
    now = [100.0]
    queue: WorkQueue[str] = WorkQueue(lambda: now[0])
    queue.add("rental")

    async def scenario() -> list[str]:
        in_pass = await queue.get()  # the rental's heartbeat pass begins
        for i in range(5):
            queue.add(f"heartbeat-{i}")
        now[0] += 10  # the others' heartbeats are all overdue
        queue.add(in_pass, urgent=True)  # the stop is seen: parked behind the pass
        queue.done(in_pass)
        return await drain(queue, 6)
    order = asyncio.run(scenario())
    assert order[0] == "rental"
    assert order[1:] == [f"heartbeat-{i}" for i in range(5)]


def test_an_earlier_key_wakes_a_worker_waiting_for_a_later_one() -> None:
    now = [0.0]
    queue: WorkQueue[str] = WorkQueue(lambda: now[0])

    async def scenario() -> list[str]:
        got: list[str] = []

        async def worker() -> None:
            while True:
                key = await queue.get()
                got.append(key)
                queue.done(key)
        workers = [asyncio.create_task(worker()) for _ in range(4)]
        queue.add("later", delay=3600)
        await asyncio.sleep(0.05)  # every worker is now waiting for "later"
        queue.add("now")
        await asyncio.sleep(0.05)
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        return got
    assert asyncio.run(scenario()) == ["now"]


def test_a_key_is_never_processed_by_two_workers_at_once() -> None:
    queue: WorkQueue[str] = WorkQueue(lambda: 0.0)

    async def scenario() -> tuple[int, list[str]]:
        busy: set[str] = set()
        overlaps = 0
        done: list[str] = []

        async def worker() -> None:
            nonlocal overlaps
            while True:
                key = await queue.get()
                overlaps += key in busy
                busy.add(key)
                await asyncio.sleep(0.01)
                if len(done) < 20:
                    queue.add(key)  # re-added while processing: parked, not handed out
                busy.discard(key)
                done.append(key)
                queue.done(key)
        workers = [asyncio.create_task(worker()) for _ in range(8)]
        for key in ("a", "b", "c"):
            queue.add(key)
        await asyncio.sleep(0.5)
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        return overlaps, done
    overlaps, done = asyncio.run(scenario())
    assert overlaps == 0
    assert {"a", "b", "c"} <= set(done) and len(done) >= 20
