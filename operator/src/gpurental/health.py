"""The operator's HTTP endpoint: Prometheus text at /metrics, liveness at /healthz."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest


async def serve(port: int, alive: Callable[[], bool],
                host: str = "0.0.0.0") -> web.AppRunner:
    """Serve until the runner is cleaned up. `alive` says whether the controller's loops still
    run; a dead loop must fail the liveness probe so the kubelet restarts the operator."""
    async def metrics_page(_: web.Request) -> web.Response:
        body = generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        if not alive():
            return web.Response(status=503, text="controller stopped\n")
        return web.Response(text="ok\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics_page)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
