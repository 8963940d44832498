"""Posting a plan's Events on its rental, from a queue of their own.

A pass only queues its Events: posting is one more API call, and a stop must not wait for the
record of an earlier transition to be written (client-go's event broadcaster is asynchronous
for the same reason). A few posters drain queues of their own, a rental's Events always going
to the same one, so they are posted in the order they happened; an Event that cannot
be posted is logged and dropped, as kopf's and client-go's posters do, since the status
already records the transition.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from typing import Any

from kubernetes.client.exceptions import ApiException

from gpurental.builders import make_event
from gpurental.clock import Clock
from gpurental.constants import API_VERSION
from gpurental.k8s import Kube
from gpurental.lifecycle import Event
from gpurental.observed import RentalView

log = logging.getLogger(__name__)

POSTERS = 4  # enough that a burst of transitions is posted within seconds, not minutes


class EventPoster:
    def __init__(self, kube: Kube, clock: Clock, instance: str) -> None:
        self.kube = kube
        self.clock = clock
        self.instance = instance  # reportingInstance: which replica said it
        self._queues: list[asyncio.Queue[dict[str, Any]]] = [
            asyncio.Queue() for _ in range(POSTERS)]

    def post(self, view: RentalView, events: tuple[Event, ...] | list[Event]) -> None:
        if not events:  # a heartbeat's plan, nearly every pass
            return
        involved = {"apiVersion": API_VERSION, "kind": "GpuRental", "name": view.name,
                    "namespace": view.namespace, "uid": view.uid}
        now = self.clock.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        queue = self._queues[zlib.crc32(view.uid.encode()) % POSTERS]
        for event in events:
            log.info("%s/%s: %s %s", view.namespace, view.name, event.reason, event.message)
            queue.put_nowait(make_event(involved, event.type, event.reason,
                                              event.message, now, self.instance))

    async def run(self) -> None:
        await asyncio.gather(*(self._poster(queue) for queue in self._queues))

    async def _poster(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            body = await queue.get()
            try:
                await self.kube.post_event(body)
            except (ApiException, OSError) as exc:
                log.warning("could not post Event %s on %s: %s", body.get("reason"),
                            body.get("involvedObject"), exc)
            except Exception:
                log.exception("could not post Event %s", body.get("reason"))
