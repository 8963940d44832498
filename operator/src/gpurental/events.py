"""Posting a plan's Events on its rental, from a queue of their own.

A pass only queues its Events: posting is one more API call, and a stop must not wait for the
record of an earlier transition to be written (client-go's event broadcaster is asynchronous
for the same reason). A few posters drain queues of their own, a rental's Events always going
to the same one, so they are posted in the order they happened. An Event the server got
no answer for is tried again, as client-go's recorder does (12 tries, 10 s apart): a
partition of a minute must not erase the record of what happened in it. One the server
refused is logged and dropped, as kopf's and client-go's posters do, since the status
already records the transition.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import zlib
from typing import Any

from kubernetes.client.exceptions import ApiException

from gpurental.builders import event_name, make_event
from gpurental.clock import Clock
from gpurental.constants import API_VERSION
from gpurental.k8s import Kube
from gpurental.lifecycle import Event
from gpurental.observed import RentalView
from gpurental.rest import ApiUnreachable

log = logging.getLogger(__name__)

POSTERS = 4  # enough that a burst of transitions is posted within seconds, not minutes
TRIES = 12  # client-go's maxTriesPerEvent
RETRY_AFTER = 10.0  # seconds between tries (client-go's sleepDuration)


class EventPoster:
    def __init__(self, kube: Kube, clock: Clock, instance: str, *,
                 retry_after: float = RETRY_AFTER) -> None:
        self.kube = kube
        self.clock = clock
        self.instance = instance  # reportingInstance: which replica said it
        self.retry_after = retry_after
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
            name = event_name(view.name, secrets.token_hex(8))
            queue.put_nowait(make_event(involved, name, event.type, event.reason,
                                        event.message, now, self.instance))

    async def run(self) -> None:
        await asyncio.gather(*(self._poster(queue) for queue in self._queues))

    async def _poster(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            body = await queue.get()
            try:
                await self._post(body)
            except (ApiException, OSError) as exc:
                log.warning("could not post Event %s on %s: %s", body.get("reason"),
                            body.get("involvedObject"), exc)
            except Exception:
                log.exception("could not post Event %s", body.get("reason"))

    async def _post(self, body: dict[str, Any]) -> None:
        """Post one Event, trying again while the server gives no answer; the queue waits
        behind it, so a rental's Events keep their order."""
        for attempt in range(1, TRIES + 1):
            try:
                await self.kube.post_event(body)
                return
            except ApiException as exc:
                if exc.status == 409 and attempt > 1:
                    return  # an earlier try got there; only its answer was lost
                raise
            except ApiUnreachable:
                if attempt == TRIES:
                    raise
            await asyncio.sleep(self.retry_after)
