"""The loop's REST client speaks to a TLS server the way the official client would: it trusts
the Configuration's CA, presents its client certificate, sends the bearer token (asking the
refresh hook at most once a TOKEN_TTL), and turns a non-2xx answer into the official
client's ApiException with its status, reason, body and headers."""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from aiohttp import web
from kubernetes.client.exceptions import ApiException

from gpurental.rest import RestClient, ssl_context
from gpurental_dev.k8s.pki import Pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


def _config(pki: Pki, port: int, **overrides: Any) -> kubernetes.client.Configuration:
    config = kubernetes.client.Configuration()
    config.host = f"https://127.0.0.1:{port}"
    config.ssl_ca_cert = str(pki.ca.cert)
    client = pki.client("operator")
    config.cert_file, config.key_file = str(client.cert), str(client.key)
    for name, value in overrides.items():
        setattr(config, name, value)
    return config


class Server:
    """A TLS server that demands a client certificate signed by the CA and records what
    each request carried."""

    def __init__(self, pki: Pki, answers: list[tuple[int, dict[str, str], bytes]]) -> None:
        self.answers = answers
        self.seen: list[dict[str, Any]] = []
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH,
                                                  cafile=str(pki.ca.cert))
        self.context.load_cert_chain(str(pki.serving.cert), str(pki.serving.key))
        self.context.verify_mode = ssl.CERT_REQUIRED

    async def handle(self, request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        self.seen.append({"method": request.method, "path": request.path,
                          "headers": dict(request.headers), "body": await request.read(),
                          "peer": peer})
        status, headers, body = self.answers.pop(0)
        return web.Response(status=status, headers=headers, body=body,
                            content_type="application/json")

    async def __aenter__(self) -> int:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0, ssl_context=self.context)
        await site.start()
        return int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    async def __aexit__(self, *_: object) -> None:
        await self.runner.cleanup()


def test_a_patch_carries_the_certificate_token_and_body(pki: Pki) -> None:
    server = Server(pki, [(200, {}, b'{"metadata": {"resourceVersion": "7"}}')])
    refreshed: list[int] = []

    async def scenario() -> dict[str, Any]:
        async with server as port:
            config = _config(pki, port, api_key={"BearerToken": "Bearer s3cret"})
            config.refresh_api_key_hook = lambda _: refreshed.append(1)
            client = RestClient(config, connections=2)
            try:
                first = await client.request("PATCH", "/apis/x/v1/things/a/status",
                                             body={"status": {"n": 1}},
                                             content_type="application/merge-patch+json")
                return first
            finally:
                await client.close()

    assert asyncio.run(scenario()) == {"metadata": {"resourceVersion": "7"}}
    (seen,) = server.seen
    assert seen["method"] == "PATCH" and seen["path"] == "/apis/x/v1/things/a/status"
    assert seen["headers"]["Authorization"] == "Bearer s3cret"
    assert seen["headers"]["Content-Type"] == "application/merge-patch+json"
    assert json.loads(seen["body"]) == {"status": {"n": 1}}
    assert dict(x[0] for x in seen["peer"]["subject"])["commonName"] == "operator"
    assert refreshed == [1]


def test_the_token_hook_is_asked_once_per_ttl_not_per_call(pki: Pki) -> None:
    server = Server(pki, [(200, {}, b"{}")] * 3)
    refreshed: list[int] = []

    async def scenario() -> None:
        async with server as port:
            config = _config(pki, port, api_key={"BearerToken": "Bearer t"})
            config.refresh_api_key_hook = lambda _: refreshed.append(1)
            client = RestClient(config, connections=2)
            try:
                for _ in range(3):
                    await client.request("GET", "/api/v1/namespaces")
            finally:
                await client.close()

    asyncio.run(scenario())
    assert len(server.seen) == 3 and len(refreshed) == 1


def test_an_error_answer_is_the_official_clients_exception(pki: Pki) -> None:
    status = b'{"kind": "Status", "reason": "Conflict", "code": 409}'
    server = Server(pki, [(409, {}, status), (429, {"Retry-After": "3"}, b"{}")])

    async def scenario() -> list[ApiException]:
        errors = []
        async with server as port:
            client = RestClient(_config(pki, port), connections=2)
            try:
                for _ in range(2):
                    with pytest.raises(ApiException) as caught:
                        await client.request("PATCH", "/x", body={})
                    errors.append(caught.value)
            finally:
                await client.close()
        return errors

    conflict, throttled = asyncio.run(scenario())
    assert conflict.status == 409 and json.loads(conflict.body)["reason"] == "Conflict"
    assert throttled.status == 429 and throttled.headers["Retry-After"] == "3"


def test_an_untrusted_server_is_refused(pki: Pki, tmp_path: Path) -> None:
    other = Pki(tmp_path / "other")  # a CA the client was not given
    server = Server(pki, [(200, {}, b"{}")])

    async def scenario() -> None:
        async with server as port:
            client = RestClient(_config(pki, port, ssl_ca_cert=str(other.ca.cert)),
                                connections=2)
            try:
                await client.request("GET", "/")
            finally:
                await client.close()

    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
        asyncio.run(scenario())
    assert server.seen == []


def test_verify_ssl_off_checks_neither_name_nor_chain() -> None:
    config = kubernetes.client.Configuration()
    config.verify_ssl = False
    context = ssl_context(config)
    assert context.verify_mode is ssl.CERT_NONE and not context.check_hostname
