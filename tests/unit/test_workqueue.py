"""The work queue's ordering: due time first, urgent keys (stop requests) before all."""

from __future__ import annotations

import asyncio

from gpurental.workqueue import WorkQueue


def test_an_urgent_key_goes_before_an_overdue_backlog() -> None:
    now = [100.0]
    queue: WorkQueue[str] = WorkQueue(lambda: now[0])
    for i in range(5):
        queue.add(f"heartbeat-{i}")
    now[0] += 10  # the heartbeats are all overdue
    queue.add("stop", urgent=True)
    queue.add("ordinary")

    async def drain() -> list[str]:
        order = []
        for _ in range(7):
            key = await queue.get()
            order.append(key)
            queue.done(key)
        return order
    order = asyncio.run(drain())
    assert order[0] == "stop"
    assert order[1:6] == [f"heartbeat-{i}" for i in range(5)]
    assert order[6] == "ordinary"
