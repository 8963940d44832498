"""Stop, pause and delete requests the operator has seen but not yet carried out.

A rental with such a request jumps its work queue (a user's stop must not wait behind a
backlog of heartbeats) and its API calls use the urgent connections; the time from seeing the
request to issuing the pod's DELETE feeds gpurental_stop_latency_seconds.
"""

from __future__ import annotations

from collections.abc import Callable

from gpurental import metrics
from gpurental.observed import Key, RentalView


class StopRequests:
    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self._seen: dict[Key, tuple[float, str]] = {}  # key -> (when seen, action)

    def __contains__(self, key: Key) -> bool:
        return key in self._seen

    def note(self, before: RentalView | None, view: RentalView) -> None:
        """Remember when a stop/pause request (or a deletion) was first seen."""
        state = view.spec.get("state", "Running")
        previous = before.spec.get("state", "Running") if before else None
        if state in ("Stopped", "Paused") and previous not in (None, state):
            self._seen[view.key] = (self._monotonic(), state.lower())
        elif view.deleting and (before is None or not before.deleting):
            self._seen[view.key] = (self._monotonic(), "delete")

    def carried_out(self, key: Key) -> None:
        """The pod's DELETE is being issued: the request's latency ends here."""
        requested = self._seen.pop(key, None)
        if requested is not None:
            since, action = requested
            metrics.labelled(metrics.STOP_LATENCY, action).observe(self._monotonic() - since)

    def forget(self, key: Key) -> None:
        """Nothing left to stop (no pod, or the rental is gone): no latency to measure."""
        self._seen.pop(key, None)
