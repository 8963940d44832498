"""The idle watch: one loop that asks Prometheus which running rentals' GPUs sit idle.

Owns the I/O around the pure `idle` module: every `interval` seconds it groups the running
rentals whose idle window has fully elapsed by (metric, window), sends two instant queries per
group (the window's peak and its gap check, for all of the group's pods at once), judges each
rental and publishes the IDLE findings (replacing the shared findings map the rentals' passes
read), then wakes the newly idle rentals, whose next pass applies the hold. One asyncio task
for all rentals, never one per rental.

Never pauses anything itself and never writes to the API: a failed or partial query leaves the
rentals it covered without a finding, i.e. not idle.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

from gpurental import context, idle
from gpurental.clock import Clock
from gpurental.context import IdleFindings
from gpurental.models import Phase, RentalSpec, SpecError
from gpurental.observed import Key, RentalView
from gpurental.world import World

log = logging.getLogger(__name__)

# Pods per query: keeps the URL and Prometheus' regex matchers small at thousands of rentals.
CHUNK = 200


class IdleWatch:
    def __init__(self, world: World, clock: Clock, findings: IdleFindings,
                 wake: Callable[[Key], None], prometheus_url: str, interval: float) -> None:
        self.world = world
        self.clock = clock
        self.findings = findings  # read by the rentals' passes; replaced whole each round
        self._wake = wake
        self.url = prometheus_url.rstrip("/") + "/api/v1/query"
        self.interval = interval

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=max(self.interval, 10.0))
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                try:
                    await self.check(session)
                except Exception as exc:  # the loop must outlive any one bad answer
                    log.warning("idle check failed: %s", exc)
                    self.findings.clear()
                await asyncio.sleep(self.interval)

    async def check(self, session: aiohttp.ClientSession) -> None:
        """One round: judge every due rental, publish the IDLE findings, queue those rentals."""
        now = self.clock.now()
        findings: dict[tuple[str, str], idle.Finding] = {}
        for (metric, _window), members in self._groups(now).items():
            for chunk in _chunks(members, CHUNK):
                findings.update(await self._judge(session, metric, chunk, now))
        fresh = [key for key in findings if key not in self.findings]
        self.findings.clear()
        self.findings.update(findings)
        for key in fresh:
            log.info("%s/%s: %s", *key, findings[key].message)
            self._wake(key)

    def _groups(self, now: datetime) -> dict[tuple[idle.Metric, int], list[_Candidate]]:
        groups: dict[tuple[idle.Metric, int], list[_Candidate]] = defaultdict(list)
        for entry in list(self.world.rentals.values()):
            candidate = self._candidate(entry.view, now)
            if candidate is not None:
                groups[(candidate.metric, candidate.policy.window)].append(candidate)
        return groups

    def _candidate(self, view: RentalView, now: datetime) -> _Candidate | None:
        status = view.status
        if status.get("phase") != Phase.RUNNING or not status.get("podName"):
            return None
        try:
            spec = view.parsed_spec()
        except SpecError:
            return None
        offer, _ = context.offer_of(self.world, spec.offer)
        policy = idle.effective_policy(spec, offer)
        if policy is None or not idle.due(policy, status.get("runningSince"), now):
            return None
        return _Candidate(view, spec, policy, idle.metric_for(offer))

    async def _judge(self, session: aiohttp.ClientSession, metric: idle.Metric,
                     members: list[_Candidate], now: datetime
                     ) -> dict[tuple[str, str], idle.Finding]:
        pods = [(m.view.namespace, str(m.view.status["podName"])) for m in members]
        policy = members[0].policy  # the group shares its window, hence its queries
        peaks = await self._query(session, idle.peak_query(metric, policy, pods))
        presence = await self._query(session, idle.presence_query(metric, policy, pods))
        windows = idle.gpu_windows(peaks, presence)
        found = {}
        for member, pod in zip(members, pods, strict=True):
            finding = idle.judge(member.policy, metric, member.spec.gpus, windows.get(pod, []),
                                 member.view.status.get("runningSince"), now)
            if finding.verdict is idle.Verdict.IDLE:
                found[member.view.key] = finding
        return found

    async def _query(self, session: aiohttp.ClientSession, query: str) -> list[dict[str, Any]]:
        async with session.post(self.url, data={"query": query}) as response:
            body = await response.json(content_type=None)
        if response.status != 200 or body.get("status") != "success":
            raise RuntimeError(f"Prometheus answered {response.status}: "
                               f"{body.get('error', body)} for {query}")
        data = body.get("data") or {}
        if data.get("resultType") != "vector":
            raise RuntimeError(f"unexpected {data.get('resultType')} result for {query}")
        return list(data.get("result") or [])


@dataclass(frozen=True)
class _Candidate:
    view: RentalView
    spec: RentalSpec
    policy: idle.Policy
    metric: idle.Metric


def _chunks(items: list[_Candidate], size: int) -> Iterator[list[_Candidate]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
