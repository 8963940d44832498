"""A call queued behind a busy connection pool waits its turn: the connect timeout is for
reaching the server, not for a free pooled connection (a real HTTP server, local and slow)."""

from __future__ import annotations

import asyncio

import kubernetes
from aiohttp import web

from gpurental.rest import RestClient

SLOW = 1.0  # seconds the server takes per answer


async def slow_server() -> tuple[web.AppRunner, int]:
    async def answer(_: web.Request) -> web.Response:
        await asyncio.sleep(SLOW)
        return web.json_response({"kind": "Status", "status": "Success"})
    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, int(runner.addresses[0][1])


def test_a_call_waiting_for_the_pool_is_not_a_connect_timeout() -> None:
    async def scenario() -> list[dict[str, object]]:
        runner, port = await slow_server()
        config = kubernetes.client.Configuration(host=f"http://127.0.0.1:{port}")
        # One connection, a connect timeout shorter than the wait behind the first call.
        rest = RestClient(config, connections=1, timeout=10.0, connect_timeout=SLOW / 4)
        try:
            return list(await asyncio.gather(
                *(rest.request("GET", f"/api/v1/namespaces/n{i}") for i in range(3))))
        finally:
            await rest.close()
            await runner.cleanup()

    answers = asyncio.run(scenario())
    assert [a["status"] for a in answers] == ["Success"] * 3
