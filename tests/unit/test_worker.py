"""The one worker loop: success forgets failures, a conflict refreshes and goes again at once,
other failures back off per key (doubling, capped, a 429's Retry-After as a floor), and a key
is never in two passes at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubernetes.client.exceptions import ApiException

from gpurental import metrics
from gpurental.deadlines import Backoff
from gpurental.k8s import Conflict
from gpurental.worker import WorkLoop, retry_after
from gpurental.workqueue import WorkQueue


async def run_until(loop: WorkLoop, done: Callable[[], bool]) -> None:
    """Run the loop's workers until `done()` holds, then cancel them (as an operator's
    shutdown does) and check that cancellation is what ended them."""
    task = asyncio.create_task(loop.run())
    while not done():
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


class Script:
    """A pass that fails as told for each key, recording every call."""

    def __init__(self, failures: dict[str, list[Exception]]) -> None:
        self.failures = failures
        self.calls: list[str] = []
        self.refreshed: list[str] = []

    async def reconcile(self, key: str) -> None:
        self.calls.append(key)
        queued = self.failures.get(key) or []
        if queued:
            raise queued.pop(0)

    async def refresh(self, key: str) -> None:
        self.refreshed.append(key)


def loop_for(script: Script, now: list[float], refresh: bool = True) -> WorkLoop[str]:
    queue: WorkQueue[str] = WorkQueue(lambda: now[0])
    return WorkLoop("tests", queue, script.reconcile,
                    refresh=script.refresh if refresh else None)


def test_a_failing_key_backs_off_doubling_and_success_forgets() -> None:
    now = [0.0]
    script = Script({"r": [RuntimeError("boom"), RuntimeError("boom")]})
    loop = loop_for(script, now)

    async def scenario() -> list[float | None]:
        loop.queue.add("r")
        dues = []
        for _ in range(2):
            await loop.process_next()
            dues.append(loop.queue.due_in("r"))
            now[0] += dues[-1] or 0.0
        await loop.process_next()
        dues.append(loop.queue.due_in("r"))
        return dues

    dues = asyncio.run(scenario())
    assert dues == [0.5, 1.0, None]  # 0.25 x 2^failures; then success: nothing queued
    assert script.calls == ["r", "r", "r"]
    assert loop._failures == {}


def test_a_conflict_refreshes_the_cache_and_goes_again_at_once() -> None:
    now = [0.0]
    script = Script({"r": [Conflict("stale")]})
    loop = loop_for(script, now)

    async def scenario() -> None:
        loop.queue.add("r")
        await loop.process_next()
        assert loop.queue.due_in("r") == 0.0
        await loop.process_next()

    asyncio.run(scenario())
    assert script.refreshed == ["r"]
    assert script.calls == ["r", "r"]


def test_without_a_refresh_a_conflict_waits_briefly_for_the_watch() -> None:
    now = [0.0]
    script = Script({"w": [Conflict("stale")]})
    loop = loop_for(script, now, refresh=False)

    async def scenario() -> float | None:
        loop.queue.add("w")
        await loop.process_next()
        return loop.queue.due_in("w")

    due = asyncio.run(scenario())
    assert due is not None and 0 < due < Backoff().base


def test_retry_after_of_a_429_is_a_floor() -> None:
    throttled = ApiException(status=429)
    throttled.headers = {"Retry-After": "7"}
    now = [0.0]
    script = Script({"r": [throttled]})
    loop = loop_for(script, now)

    async def scenario() -> float | None:
        loop.queue.add("r")
        await loop.process_next()
        return loop.queue.due_in("r")

    assert retry_after(throttled) == 7.0
    assert asyncio.run(scenario()) == 7.0


def test_every_failed_pass_is_counted_per_queue() -> None:
    counter = metrics.WORK_RETRIES.labels(queue="tests")
    before = counter._value.get()
    now = [0.0]
    loop = loop_for(Script({"a": [RuntimeError("x")], "b": [ValueError("y")]}), now)

    async def scenario() -> None:
        loop.queue.add("a")
        loop.queue.add("b")
        await loop.process_next()
        await loop.process_next()

    asyncio.run(scenario())
    assert counter._value.get() - before == 2


def test_a_key_is_never_in_two_passes_at_once() -> None:
    now = [0.0]
    queue: WorkQueue[str] = WorkQueue(lambda: now[0])
    inside: set[str] = set()
    overlaps: list[str] = []
    passes: list[str] = []

    async def slow(key: str) -> None:
        if key in inside:
            overlaps.append(key)
        inside.add(key)
        passes.append(key)
        await asyncio.sleep(0.01)
        if len(passes) < 3:
            queue.add(key)  # re-added mid-pass: parked until this pass is done
        inside.discard(key)

    loop = WorkLoop("tests", queue, slow, workers=4)

    async def scenario() -> None:
        queue.add("r")
        await run_until(loop, lambda: len(passes) >= 3)

    asyncio.run(scenario())
    assert overlaps == [] and passes == ["r", "r", "r"]


@given(failures=st.integers(min_value=1, max_value=100),
       server=st.one_of(st.none(), st.floats(min_value=0, max_value=600)))
def test_backoff_grows_never_shrinks_and_is_capped(failures: int, server: float | None) -> None:
    backoff = Backoff()
    delay = backoff.delay(failures, server)
    assert delay >= backoff.delay(max(failures - 1, 1))
    assert delay <= max(backoff.cap, server or 0.0)
    if server is not None:
        assert delay >= server


def test_a_failed_refresh_after_a_conflict_backs_off_and_the_worker_lives_on() -> None:
    now = [0.0]
    script = Script({"w": [Conflict("stale")]})

    async def broken_refresh(key: str) -> None:
        raise RuntimeError("500 on the re-read")

    queue: WorkQueue[str] = WorkQueue(lambda: now[0])
    loop = WorkLoop("tests", queue, script.reconcile, refresh=broken_refresh)

    async def scenario() -> float | None:
        queue.add("w")
        await loop.process_next()  # raises nothing: the failed re-read is retried later
        return queue.due_in("w")

    assert asyncio.run(scenario()) == 0.5


def test_a_worker_survives_an_error_outside_any_pass() -> None:
    now = [0.0]
    queue: WorkQueue[str] = WorkQueue(lambda: now[0])
    passes: list[str] = []

    async def record(key: str) -> None:
        passes.append(key)

    loop = WorkLoop("tests", queue, record)
    done = queue.done
    calls = [0]

    def flaky_done(key: str) -> None:
        calls[0] += 1
        done(key)
        if calls[0] == 1:
            raise RuntimeError("bookkeeping failed")

    queue.done = flaky_done  # type: ignore[method-assign]

    async def scenario() -> None:
        queue.add("a")

        def b_added_after_a() -> bool:
            if passes == ["a"] and queue.due_in("b") is None:
                queue.add("b")  # after the pass whose bookkeeping failed
            return len(passes) >= 2
        await run_until(loop, b_added_after_a)

    asyncio.run(scenario())
    assert passes == ["a", "b"]
