"""REST calls to the API server made on the event loop itself, over aiohttp.

The official client is synchronous: each call crosses to a thread and back, goes through
pydantic's `validate_call`, urllib3's request building and http.client's header parsing, and
runs the kubeconfig's token hook, which re-sets the whole Configuration. py-spy at ten thousand
running rentals on kubesim put the heartbeat's status PATCH made that way at 27 % of the
operator's CPU, the thread hand-overs at another 6 %. Every call of `Kube` goes through this
client instead, the informers' lists and watch streams included.

It is built from the same Configuration as the official client (server, CA, client
certificate, `verify_ssl`, `tls_server_name`, proxy, bearer token with its refresh hook), so
both authenticate alike. It raises the official client's ApiException for an answer that is
not 2xx, so callers and the work loops handle one kind of API error, and ApiUnreachable (an
OSError) for no answer.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import aiohttp
import kubernetes
import orjson
from kubernetes.client.exceptions import ApiException

TOKEN_TTL = 1.0  # seconds a bearer token is reused before its refresh hook is asked again


def ssl_context(config: kubernetes.client.Configuration) -> ssl.SSLContext:
    """The TLS settings the official client would use for this Configuration."""
    context = ssl.create_default_context(cafile=config.ssl_ca_cert or None)
    if config.cert_file:
        context.load_cert_chain(config.cert_file, config.key_file or None)
    if not config.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif config.assert_hostname is False:
        context.check_hostname = False
    return context


class ApiUnreachable(ConnectionError):
    """No answer: the connection failed, dropped or timed out (an OSError, as a socket's)."""


def api_exception(status: int, reason: str | None, body: bytes,
                  headers: dict[str, str]) -> ApiException:
    """The official client's error for a non-2xx answer (its Status body kept, as text)."""
    exc = ApiException(status=status, reason=reason, body=body.decode("utf-8", "replace"))
    exc.headers = headers
    return exc


class RestClient:
    """JSON in, JSON out, on the running event loop."""

    def __init__(self, config: kubernetes.client.Configuration, *, connections: int,
                 timeout: float = 30.0, connect_timeout: float = 10.0) -> None:
        self._config = config
        self._server = str(config.host).rstrip("/")
        self._ssl = ssl_context(config) if self._server.startswith("https:") else None
        self._connections = connections
        # sock_connect, not connect: aiohttp's `connect` also counts the wait for a free
        # pooled connection, so a burst queued behind the pool (a ramp of thousands of
        # rentals) failed after 10 s as if the server were unreachable, and its Events were
        # dropped. The total still bounds the wait and the answer together.
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self._session: aiohttp.ClientSession | None = None
        self._auth: dict[str, str] = {}
        self._auth_at = -TOKEN_TTL

    def _open(self) -> aiohttp.ClientSession:
        # Made on first use: an aiohttp session belongs to the loop it was made on.
        connector = aiohttp.TCPConnector(limit=self._connections, ssl=self._ssl or False)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout,
            headers={"Accept": "application/json", "User-Agent": "gpurental-operator"})
        return self._session

    def _headers(self) -> dict[str, str]:
        """The Authorization header, its token refreshed at most once a TOKEN_TTL: the
        kubeconfig's refresh hook re-sets the whole Configuration on every call."""
        now = time.monotonic()
        if now - self._auth_at >= TOKEN_TTL:
            settings = cast(dict[str, dict[str, Any]], self._config.auth_settings())
            self._auth = {setting["key"]: str(setting["value"])
                          for setting in settings.values()
                          if setting["in"] == "header" and setting["value"]}
            self._auth_at = now
        return self._auth

    async def request(self, method: str, path: str, *, body: Any = None,
                      content_type: str = "application/json",
                      query: dict[str, str] | None = None) -> dict[str, Any]:
        """Send one request; the decoded JSON body, or ApiException on a non-2xx answer."""
        session = self._session or self._open()
        headers = dict(self._headers())
        data = None
        if body is not None:
            data = orjson.dumps(body)
            headers["Content-Type"] = content_type
        try:
            async with session.request(
                    method, self._server + path, data=data, params=query, headers=headers,
                    proxy=self._config.proxy or None,
                    server_hostname=self._config.tls_server_name or None) as response:
                raw = await response.read()
                status, reason, answered = response.status, response.reason, response.headers
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApiUnreachable(f"{method} {path}: {exc!r}") from exc
        if not 200 <= status <= 299:
            raise api_exception(status, reason, raw, dict(answered))
        return cast(dict[str, Any], orjson.loads(raw)) if raw else {}

    @contextlib.asynccontextmanager
    async def stream(self, path: str, query: dict[str, str], *,
                     read_timeout: float) -> AsyncIterator[AsyncIterator[bytes]]:
        """GET whose body is read as it arrives (a watch): its chunks, as they come. No
        total timeout, only one between reads; ApiException on a non-2xx answer."""
        session = self._session or self._open()
        timeout = aiohttp.ClientTimeout(total=None, connect=self._timeout.connect,
                                        sock_read=read_timeout)
        try:
            response = await session.get(
                self._server + path, params=query, headers=self._headers(), timeout=timeout,
                proxy=self._config.proxy or None,
                server_hostname=self._config.tls_server_name or None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApiUnreachable(f"GET {path}: {exc!r}") from exc
        try:
            if not 200 <= response.status <= 299:
                raise api_exception(response.status, response.reason, await response.read(),
                                    dict(response.headers))
            yield response.content.iter_any()
        finally:
            response.close()  # a watch given up half-read: its connection is not reused

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
