"""The hook points later RBAC and admission work plugs into (in-process server)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from kubesim.errors import ApiError
from kubesim.hooks import ADMIN_TOKEN, Admission, Identity, RequestInfo
from kubesim.server import Server, serve


def _run(server: Server, calls: Any) -> Any:
    async def main() -> Any:
        runner, port = await serve(server, "127.0.0.1", 0)
        try:
            async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:
                return await calls(session)
        finally:
            await server.controllers.stop()
            await runner.cleanup()
    return asyncio.run(main())


def test_request_hook_sees_identity_and_can_reject():
    server = Server()
    seen: list[tuple[str, str, str]] = []

    def deny_anonymous(identity: Identity, info: RequestInfo) -> None:
        seen.append((identity.user, info.verb, info.resource))
        if identity.user == "system:anonymous" and info.resource_request:
            raise ApiError(403, "Forbidden", "anonymous may not", {})
    server.hooks.request_hooks.append(deny_anonymous)

    async def calls(session: aiohttp.ClientSession) -> tuple[int, int]:
        async with session.get("/api/v1/namespaces") as anonymous:
            pass
        async with session.get("/api/v1/namespaces",
                               headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin:
            pass
        return anonymous.status, admin.status
    assert _run(server, calls) == (403, 200)
    assert ("kubesim-admin", "list", "namespaces") in seen


def test_admission_hooks_mutate_then_validate():
    server = Server()
    stages: list[tuple[str, str, str]] = []

    def hook(review: Admission) -> None:
        if ((review.obj or {}).get("metadata") or {}).get("name") not in ("ok", "no"):
            return  # the controllers' own objects (each namespace's defaults)
        stages.append((review.stage, review.operation, review.identity.user))
        if review.stage == "mutating" and review.obj is not None:
            review.obj["metadata"].setdefault("labels", {})["mutated"] = "yes"
        if review.stage == "validating" and review.obj and review.obj.get("data", {}).get(
                "bad"):
            raise ApiError(400, "BadRequest", "admission webhook denied the request", {})
    server.hooks.admission_hooks.append(hook)

    async def calls(session: aiohttp.ClientSession) -> tuple[dict[str, Any], int]:
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        url = "/api/v1/namespaces/default/configmaps"
        async with session.post(url, json={"metadata": {"name": "ok"}}, headers=auth) as rsp:
            made = await rsp.json()
        async with session.post(url, json={"metadata": {"name": "no"}, "data": {"bad": "1"}},
                                headers=auth) as rsp:
            denied = rsp.status
        return made, denied
    made, denied = _run(server, calls)
    assert made["metadata"]["labels"] == {"mutated": "yes"}
    assert denied == 400
    assert stages[:2] == [("mutating", "CREATE", "kubesim-admin"),
                          ("validating", "CREATE", "kubesim-admin")]


def test_service_account_token_authenticates_as_the_account():
    server = Server()
    users: list[str] = []
    # First, ahead of RBAC (which denies the unbound account): this test is about identity.
    server.hooks.request_hooks.insert(0, lambda identity, info: users.append(identity.user))

    async def calls(session: aiohttp.ClientSession) -> int:
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with session.post("/api/v1/namespaces/default/serviceaccounts",
                                json={"metadata": {"name": "robot"}}, headers=auth):
            pass
        async with session.post("/api/v1/namespaces/default/serviceaccounts/robot/token",
                                json={"apiVersion": "authentication.k8s.io/v1",
                                      "kind": "TokenRequest", "spec": {}},
                                headers=auth) as rsp:
            token = (await rsp.json())["status"]["token"]
            status = rsp.status
        async with session.get("/api/v1/namespaces/default/pods",
                               headers={"Authorization": f"Bearer {token}"}):
            pass
        return status
    assert _run(server, calls) == 201
    assert users[-1] == "system:serviceaccount:default:robot"
