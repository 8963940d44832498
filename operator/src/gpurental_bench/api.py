"""A small asyncio client for the emulator: bulk rental writes, lists, and `/_kubesim/` admin.

The benchmark's own load must not be its bottleneck, so it talks plain HTTP with aiohttp (the
emulator accepts token-less requests as an administrator) instead of the sync kubernetes client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import aiohttp
import orjson

GROUP, VERSION = "gpurental.dev", "v1alpha1"
MERGE = {"Content-Type": "application/merge-patch+json"}


class ApiError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status


class Api:
    def __init__(self, url: str, concurrency: int = 32) -> None:
        self.url = url
        self.concurrency = concurrency
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency + 8),
            timeout=aiohttp.ClientTimeout(total=300))

    async def close(self) -> None:
        await self.session.close()

    async def call(self, method: str, path: str, body: Any = None,
                   headers: dict[str, str] | None = None, ok: Iterable[int] = (200, 201)) -> Any:
        data = orjson.dumps(body) if body is not None else None
        headers = headers or ({"Content-Type": "application/json"} if data else None)
        async with self.session.request(method, self.url + path, data=data,
                                        headers=headers) as rsp:
            raw = await rsp.read()
            decoded = orjson.loads(raw) if raw else None
            if rsp.status not in ok:
                raise ApiError(rsp.status, decoded)
            return decoded

    async def each(self, items: Iterable[Any], op: Callable[[Any], Awaitable[None]]) -> None:
        """Run op over items with `concurrency` requests in flight, like a bulk client."""
        queue = iter(items)

        async def worker() -> None:
            for item in queue:
                await op(item)
        await asyncio.gather(*(worker() for _ in range(self.concurrency)))

    # --- objects ----------------------------------------------------------------------------

    @staticmethod
    def rentals_path(namespace: str, name: str = "") -> str:
        base = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/gpurentals"
        return f"{base}/{name}" if name else base

    async def namespace(self, name: str) -> None:
        await self.call("POST", "/api/v1/namespaces", {"metadata": {"name": name}},
                        ok=(201, 409))

    async def apply(self, path: str, body: dict[str, Any]) -> None:
        await self.call("POST", path, body, ok=(201, 409))

    async def wallet(self, namespace: str, name: str, budget: str) -> None:
        await self.apply(f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/wallets", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "Wallet",
            "metadata": {"name": name}, "spec": {"budget": budget}})

    async def create_rental(self, namespace: str, name: str, **spec: Any) -> None:
        spec.setdefault("image", "busybox:1.36")
        spec.setdefault("storage", {"size": "1Gi"})
        await self.apply(self.rentals_path(namespace), {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "GpuRental",
            "metadata": {"name": name}, "spec": spec})

    async def set_state(self, namespace: str, name: str, state: str) -> None:
        await self.call("PATCH", self.rentals_path(namespace, name),
                        {"spec": {"state": state}}, headers=MERGE)

    async def items(self, path: str) -> list[dict[str, Any]]:
        return list((await self.call("GET", path))["items"])

    async def rentals(self, namespace: str) -> list[dict[str, Any]]:
        return await self.items(self.rentals_path(namespace))

    async def count(self, namespace: str, plural: str) -> int:
        return len(await self.items(f"/api/v1/namespaces/{namespace}/{plural}"))

    # --- the emulator's admin endpoints -----------------------------------------------------

    async def record(self, enabled: bool) -> None:
        await self.call("DELETE", "/_kubesim/requests")
        await self.call("POST", "/_kubesim/requests", {"enabled": enabled})

    async def recorded(self) -> list[dict[str, Any]]:
        return list((await self.call("GET", "/_kubesim/requests"))["requests"])

    async def stats(self) -> dict[str, Any]:
        return dict(await self.call("GET", "/_kubesim/stats"))
