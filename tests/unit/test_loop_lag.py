"""The event loop's lag probe: a loop blocked for a while shows as one late wake-up."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import REGISTRY

from gpurental import loop_lag

NAME = "gpurental_event_loop_lag_seconds"


def late_wakeups() -> float:
    """Wake-ups observed more than 100 ms late so far."""
    count = REGISTRY.get_sample_value(f"{NAME}_count") or 0.0
    on_time = REGISTRY.get_sample_value(f"{NAME}_bucket", {"le": "0.1"}) or 0.0
    return count - on_time


def test_a_blocked_loop_is_measured_as_lag() -> None:
    async def scenario() -> tuple[float, float]:
        probe = asyncio.create_task(loop_lag.measure(period=0.01))
        await asyncio.sleep(0.05)
        before = late_wakeups(), REGISTRY.get_sample_value(f"{NAME}_sum") or 0.0
        time.sleep(0.3)  # a synchronous stretch: nothing else runs meanwhile
        await asyncio.sleep(0.05)
        probe.cancel()
        after = late_wakeups(), REGISTRY.get_sample_value(f"{NAME}_sum") or 0.0
        return after[0] - before[0], after[1] - before[1]

    late, lag = asyncio.run(scenario())
    assert late >= 1  # the wake-up due during the block came at least 100 ms late
    assert lag >= 0.25  # and the lag it measured is about the block's length
