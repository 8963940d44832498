"""Fault injection and the request record, both off until enabled through `/_kubesim/`.

A fault rule matches requests by verb, resource and namespace and fires with a probability:
it can answer an error status (500, 409, 429 with Retry-After, ...), add latency before the
request is served or hold its answer back after it is applied (a slow or lost response: the
write has happened, the client does not know yet), or, for watches, drop the stream after some
events or answer it with `410 Gone`.
"""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from .errors import ApiError
from .hooks import RequestInfo

_REASONS = {409: "Conflict", 429: "TooManyRequests", 500: "InternalError",
            503: "ServiceUnavailable", 504: "Timeout", 404: "NotFound", 410: "Expired",
            403: "Forbidden", 422: "Invalid"}


@dataclass
class FaultRule:
    verb: str = "*"
    resource: str = "*"
    namespace: str = "*"
    rate: float = 1.0  # probability per matching request
    code: int = 0  # error status to answer; 0 = no error (latency / watch faults only)
    retry_after: int | None = None  # seconds, for 429 / 503
    latency_ms: float = 0.0  # before the request is served
    response_latency_ms: float = 0.0  # after it is applied, before the answer (not watches)
    watch: str = ""  # "" | "drop" (close the stream) | "gone" (410 Gone event, then close)
    after_events: int = 0  # for watch faults: how many events to deliver first
    count: int | None = None  # how many more times the rule may fire; None = unlimited

    def matches(self, info: RequestInfo) -> bool:
        return (self.verb in ("*", info.verb) and self.resource in ("*", info.resource)
                and self.namespace in ("*", info.namespace)
                and (self.count is None or self.count > 0))


class Faults:
    """The active fault rules; consulted once per request."""

    def __init__(self) -> None:
        self.rules: list[FaultRule] = []
        self.rng = random.Random()

    def add(self, spec: dict[str, Any]) -> FaultRule:
        rule = FaultRule(**spec)
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()

    def describe(self) -> list[dict[str, Any]]:
        return [asdict(r) for r in self.rules]

    def pick(self, info: RequestInfo) -> list[FaultRule]:
        """The rules that fire for this request (each consumes one of its `count`)."""
        fired = []
        for rule in self.rules:
            if rule.matches(info) and self.rng.random() < rule.rate:
                if rule.count is not None:
                    rule.count -= 1
                fired.append(rule)
        return fired

    @staticmethod
    def error_for(rule: FaultRule) -> ApiError:
        headers = {"Retry-After": str(rule.retry_after)} if rule.retry_after is not None else {}
        details: dict[str, Any] = {}
        if rule.retry_after is not None:
            details["retryAfterSeconds"] = rule.retry_after
        return ApiError(rule.code, _REASONS.get(rule.code, "InternalError"),
                        f"kubesim injected fault ({rule.code})", details, headers)


class RequestRecord:
    """A bounded log of served requests: method, path, time.time() stamp, status."""

    def __init__(self, size: int = 200_000) -> None:
        self.enabled = False
        self.entries: deque[dict[str, Any]] = deque(maxlen=size)

    def add(self, method: str, path: str, query: str, info: RequestInfo | None, user: str,
            status: int, started: float) -> None:
        entry: dict[str, Any] = {
            "method": method, "path": path, "query": query, "timestamp": started,
            "duration": time.time() - started, "status": status, "user": user,
        }
        if info is not None:
            entry.update(verb=info.verb, resource=info.resource, namespace=info.namespace,
                         name=info.name, subresource=info.subresource)
        self.entries.append(entry)
