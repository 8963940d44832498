"""A small asyncio client for the bench: bulk rental writes, lists, and the request record.

The benchmark's own load must not be its bottleneck, so it talks plain HTTP with aiohttp (with
the admin kubeconfig's credentials: kubesim's token, or the real server's client certificate)
instead of the sync kubernetes client. The request record and the server's own figures come
from the substrate (kubesim's admin endpoints, or the real server's audit log and processes).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from gpurental_dev.substrate import Substrate
from gpurental_dev.testing import admin_session

GROUP, VERSION = "gpurental.dev", "v1alpha1"
MERGE = {"Content-Type": "application/merge-patch+json"}


class ApiError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status


class Api:
    def __init__(self, substrate: Substrate, workdir: Path, concurrency: int = 32) -> None:
        self.substrate = substrate
        self.concurrency = concurrency
        session, self.url = admin_session(substrate.kubeconfig, workdir)
        context: ssl.SSLContext | bool = False
        if isinstance(session.verify, str):
            context = ssl.create_default_context(cafile=session.verify)
            if session.cert:
                context.load_cert_chain(*session.cert)
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency + 8, ssl=context),
            headers=dict(session.headers), timeout=aiohttp.ClientTimeout(total=300))
        self._since = 0.0

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

    async def raw(self, path: str, timeout: float = 300) -> bytes:
        """GET `path`'s body as bytes (a profile, not JSON)."""
        async with self.session.get(self.url + path,
                                    timeout=aiohttp.ClientTimeout(total=timeout)) as rsp:
            body = await rsp.read()
            if rsp.status != 200:
                raise ApiError(rsp.status, body[:300])
            return body

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

    # --- the request record -----------------------------------------------------------------

    async def record(self) -> None:
        """Start the record afresh (what came before is left out of `recorded`)."""
        self._since = await asyncio.to_thread(self.substrate.start_recording)

    async def recorded(self) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.substrate.recorded, self._since)
