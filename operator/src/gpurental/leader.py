"""Holding the Lease that makes one replica of the operator the one that acts.

Every replica lists and watches (so a standby's cache is warm and its admission webhook
answers from a full cache), but only the holder of the Lease runs passes, writes and posts
Events. The holder renews every `retry` seconds; if it cannot renew for `renew_deadline`
seconds, or finds another holder, it has lost the lease and must stop acting at once: the
caller exits the process (as client-go's controllers do), because a pass already under way
cannot be recalled and a restart is the one clean way back to standby.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from kubernetes.client.exceptions import ApiException

from gpurental.clock import Clock
from gpurental.k8s import Conflict, Kube
from gpurental.leases import Observed, lease_body, may_take, released

log = logging.getLogger(__name__)


class LostLeadership(Exception):
    pass


class LeaderElection:
    def __init__(self, kube: Kube, clock: Clock, namespace: str, name: str, identity: str,
                 duration: float = 15.0, renew_deadline: float = 10.0,
                 retry: float = 2.0) -> None:
        self.kube = kube
        self.clock = clock
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.duration = duration
        self.renew_deadline = renew_deadline
        self.retry = retry
        self._observed: Observed | None = None
        self._held: dict[str, object] | None = None  # the Lease as last written by us

    async def acquire(self) -> None:
        """Wait until this replica holds the lease."""
        log.info("waiting to lead: Lease %s/%s as %s", self.namespace, self.name, self.identity)
        while not await self._try():
            await asyncio.sleep(self.retry)
        log.info("leading: Lease %s/%s held by %s", self.namespace, self.name, self.identity)

    async def hold(self) -> None:
        """Renew until the lease is lost; then raise LostLeadership."""
        renewed = self.clock.monotonic()
        while True:
            await asyncio.sleep(self.retry)
            try:
                if await self._try():
                    renewed = self.clock.monotonic()
                    continue
                raise LostLeadership(f"Lease {self.namespace}/{self.name} is held by "
                                     f"{self._observed.holder if self._observed else '?'}")
            except (ApiException, Conflict, OSError) as exc:
                log.warning("could not renew Lease %s/%s: %s", self.namespace, self.name, exc)
            if self.clock.monotonic() - renewed > self.renew_deadline:
                raise LostLeadership(f"Lease {self.namespace}/{self.name} not renewed for "
                                     f"{self.renew_deadline:g}s")

    async def release(self) -> None:
        """Give the lease up (a clean shutdown), so a standby need not wait it out."""
        if self._held is None:
            return
        with contextlib.suppress(ApiException, Conflict, OSError), Kube.urgent_calls():
            await self.kube.write_lease(self.namespace, released(self._held))
            log.info("released Lease %s/%s", self.namespace, self.name)
        self._held = None

    async def _try(self) -> bool:
        """Take or renew the lease if the rules allow; whether this replica holds it now."""
        # The stop-and-pause connections: a renewal queued behind a wave of heartbeat writes
        # could miss its deadline and stop the operator.
        with Kube.urgent_calls():
            lease = await self.kube.get_lease(self.namespace, self.name)
            now = self.clock.monotonic()
            self._observed = Observed.of(lease, now, self._observed)
            if not may_take(self._observed, self.identity, now):
                return False
            body = lease_body(self.name, self.namespace, self.identity, self.duration,
                              self.clock.now(), lease)
            try:
                self._held = await self.kube.write_lease(self.namespace, body)
            except Conflict:
                return False  # another replica wrote first; look again at the next try
        return True
