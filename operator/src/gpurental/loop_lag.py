"""How late the event loop runs what is due: the wait every stop, heartbeat and watch event
has before its turn on the operator's one loop.

A probe sleeps `period` and times how much later than asked it woke. A loop busy with other
callbacks, a long synchronous stretch or a collector pause all show as lag, whatever caused
them; gpurental_gc_pause_seconds tells the collector's part. At ten thousand running rentals
on a shared two-core machine most of a stop's tail is this wait, not any one step of it.
Ten wake-ups a second cost nothing measurable.
"""

from __future__ import annotations

import asyncio

from gpurental import metrics

PERIOD = 0.1  # seconds between probes


async def measure(period: float = PERIOD) -> None:
    """Time every wake-up's lateness into gpurental_event_loop_lag_seconds, for the
    operator's lifetime."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + period
        await asyncio.sleep(period)
        metrics.LOOP_LAG.observe(max(loop.time() - due, 0.0))
