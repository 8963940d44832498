"""A minimal asynchronous Kubernetes REST client: requests with client-go's retries, watches."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from .kubeconfig import ClusterConfig
from .objects import Obj

try:  # orjson parses watch streams several times faster; the stdlib is the fallback
    import orjson

    def _loads(raw: bytes | str) -> Any:
        return orjson.loads(raw)

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)
except ImportError:  # pragma: no cover
    def _loads(raw: bytes | str) -> Any:
        return json.loads(raw)

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj).encode()


class ApiError(Exception):
    """A non-2xx answer from the API server, carrying its Status body."""

    def __init__(self, status: int, body: Obj):
        super().__init__(f"HTTP {status}: {body.get('message') or body}")
        self.status = status
        self.body = body


class KubeClient:
    """A minimal asynchronous Kubernetes REST client (JSON in, JSON out) over aiohttp."""

    def __init__(self, config: ClusterConfig, *, max_connections: int = 32, retries: int = 6):
        self.config = config
        self.retries = retries
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=self.config.ssl)
        self._session = aiohttp.ClientSession(
            connector=connector, headers={"Accept": "application/json", **self.config.headers})

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("KubeClient is not open")
        return self._session

    async def request(self, method: str, path: str, body: Obj | None = None, *,
                      params: dict[str, str] | None = None,
                      content_type: str = "application/json") -> Obj:
        """Send one request; return the decoded JSON body or raise :class:`ApiError`.

        Transient failures (429, 5xx, dropped connections) are retried with backoff, honouring
        Retry-After, as client-go does: a kubelet must not give up a status write on a blip.
        """
        data = None if body is None else _dumps(body)
        headers = {"Content-Type": content_type} if data is not None else None
        for attempt in range(self.retries + 1):
            delay = min(0.1 * 2**attempt, 2.0)
            try:
                async with self.session.request(
                        method, self.config.server + path, data=data, params=params,
                        headers=headers, timeout=aiohttp.ClientTimeout(total=60)) as resp:
                    decoded = _decode(await resp.read())
                    if resp.status < 400:
                        return decoded
                    error = ApiError(resp.status, decoded)
                    if resp.status not in RETRIABLE or attempt == self.retries:
                        raise error
                    delay = max(delay, _retry_after(resp.headers.get("Retry-After")))
            except (aiohttp.ClientConnectionError, TimeoutError):
                if attempt == self.retries:
                    raise
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def watch(self, path: str, params: dict[str, str],
                    read_timeout: float) -> AsyncIterator[Obj]:
        """Yield the events of one watch request until the server ends the stream."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=read_timeout)
        async with self.session.get(self.config.server + path, params=params,
                                    timeout=timeout) as resp:
            if resp.status >= 400:
                raise ApiError(resp.status, _decode(await resp.read()))
            buffer = b""
            async for chunk in resp.content.iter_any():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield _loads(line)
            if buffer.strip():
                yield _loads(buffer)


RETRIABLE = frozenset({429, 500, 502, 503, 504})


def _retry_after(value: str | None) -> float:
    try:
        return min(float(value or 0), 5.0)
    except ValueError:
        return 0.0


def _decode(raw: bytes) -> Obj:
    if not raw:
        return {}
    try:
        decoded = _loads(raw)
    except ValueError:
        return {"message": raw.decode(errors="replace")}
    return decoded if isinstance(decoded, dict) else {"items": decoded}
