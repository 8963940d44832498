"""The HTTP front: one aiohttp handler that records, injects faults, routes and answers."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from . import admin, discovery, logs, openapi, rbac, webhooks
from .api import JSON, Api, parse_body
from .controllers import Controllers
from .encoding import dumps
from .errors import ApiError, PageNotFound, unknown_path
from .faults import FaultRule, Faults, RequestRecord
from .hooks import CURRENT, Hooks, RequestInfo
from .routing import Target, request_info, resolve
from .store import Store
from .watchstream import WatchStream

log = logging.getLogger(__name__)


class Server:
    """Holds the store and the cross-cutting machinery; `handle` serves every request."""

    def __init__(self, *, history_size: int = 20_000, bookmark_interval: float = 5.0,
                 gc_delay: float = 0.0) -> None:
        self.store = Store(history_size)
        self.hooks = Hooks()
        self.api = Api(self.store, self.hooks)
        self.controllers = Controllers(self.store, gc_delay)
        self.store.admission = self.hooks.admit
        # RBAC judges only identities the emulator issued tokens for (see rbac.py).
        self.hooks.request_hooks.append(rbac.Authorizer(self.store, self.hooks))
        self.hooks.admission_hooks.append(webhooks.Webhooks(self.store))
        self.faults = Faults()
        self.record = RequestRecord()
        self.bookmark_interval = bookmark_interval
        self.address = "127.0.0.1:0"
        self._bootstrap()

    def _bootstrap(self) -> None:
        ns_type = self.store.registry.get("", "v1", "namespaces")
        assert ns_type is not None
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.store.create(ns_type, "", {"metadata": {"name": name}})

    # --- entry point -----------------------------------------------------------------------

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.time()
        path = request.path
        info: RequestInfo | None = None
        identity = self.hooks.authenticate(request.headers.get("Authorization"))
        status = 500
        try:
            if path.startswith("/_kubesim/"):
                code, payload = admin.handle(self, request.method, path, await _read_body(request))
                status = code
                return _json(code, dumps(payload))
            info = request_info(request.method, path, request.query.get("watch") in
                                ("true", "1"))
            CURRENT.set((identity, info))
            self.hooks.check(identity, info)
            rules = self.faults.pick(info) if self.faults.rules else []
            for rule in rules:
                if rule.latency_ms:
                    await asyncio.sleep(rule.latency_ms / 1000)
                if rule.code:
                    raise Faults.error_for(rule)
            response = await self._serve(request, info, rules)
            await _hold_answer(rules, info)
            status = response.status
            return response
        except PageNotFound as exc:
            status = exc.code
            return web.Response(status=404, text=exc.TEXT, content_type="text/plain")
        except ApiError as exc:
            status = exc.code
            return _json(exc.code, dumps(exc.status()), exc.headers)
        except Exception:
            log.exception("internal error serving %s %s", request.method, request.path_qs)
            status = 500
            err = ApiError(500, "InternalError", "an error on the server has prevented the "
                           "request from succeeding", {})
            return _json(500, dumps(err.status()))
        finally:
            if self.record.enabled and not path.startswith("/_kubesim/"):
                self.record.add(request.method, path, request.query_string, info,
                                identity.user, status, started)

    async def _serve(self, request: web.BaseRequest, info: RequestInfo,
                     rules: list[Any]) -> web.StreamResponse:
        if not info.resource_request:
            return self._non_resource(request.method, request.path)
        target = resolve(self.store.registry, info)
        query = request.query
        accept = request.headers.get("Accept", "")
        method = request.method
        warnings: list[str] = []
        if method == "GET":
            if info.verb == "watch":
                return await self._watch(request, target, rules)
            return self._read(target, query, accept)
        raw = await _read_body(request)
        ctype = request.headers.get("Content-Type", JSON)
        if method == "POST":
            code, body = self.api.create(target, query, parse_body(raw, ctype), warnings)
        elif method == "PUT":
            code, body = self.api.update(target, query, parse_body(raw, ctype), warnings)
        elif method == "PATCH":
            code, body = self.api.patch(target, query, ctype, raw, warnings)
        elif method == "DELETE":
            options = _delete_options(raw, ctype)
            if target.name:
                code, body = self.api.delete(target, query, options)
            else:
                code, body = self.api.delete_collection(target, query, options)
        else:
            raise ApiError(405, "MethodNotAllowed", "method not allowed", {})
        if query.get("fieldValidation") == "Ignore":
            warnings.clear()  # the default (Warn) reports unknown fields; Ignore does not
        headers = {"Warning": _warning_header(warnings)} if warnings else None
        return _json(code, body, headers)

    def _read(self, target: Target, query: Mapping[str, str], accept: str) -> web.Response:
        """GET of one object (or its status, scale or log) or of a list."""
        if not target.name:
            return _json(200, self.api.list_objects(target, query, accept), table=accept)
        if target.subresource == "log":
            stored = self.store.get(target.rt, target.namespace or "", target.name)
            return web.Response(status=200, body=logs.pod_log(stored.obj, query),
                                content_type="text/plain")
        if target.subresource not in ("", "status", "scale"):
            raise ApiError(405, "MethodNotAllowed", "method not allowed", {})
        return _json(200, self.api.get(target, query, accept), table=accept)

    async def _watch(self, request: web.BaseRequest, target: Any,
                     rules: list[Any]) -> web.StreamResponse:
        accept = request.headers.get("Accept", "")
        stream = WatchStream(self.store, target, request.query, accept,
                             self.bookmark_interval, rules)
        first = stream.start()
        content_type = ("application/json;as=Table;v=v1;g=meta.k8s.io"
                        if stream.opts.table else JSON)
        resp = web.StreamResponse(status=200, headers={"Content-Type": content_type,
                                                        "Cache-Control": "no-cache"})
        try:
            await resp.prepare(request)
            if first is None:
                await resp.write(stream.gone_line())
            else:
                await stream.run(request, resp, first)
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            stream.stop()
        return resp

    def _non_resource(self, method: str, path: str) -> web.Response:
        if method != "GET":
            raise ApiError(405, "MethodNotAllowed", "method not allowed", {})
        parts = [p for p in path.split("/") if p]
        registry = self.store.registry
        doc: Any = None
        if parts == ["version"]:
            doc = discovery.VERSION_INFO
        elif parts == ["api"]:
            doc = discovery.api_versions(self.address)
        elif parts == ["apis"]:
            doc = discovery.api_group_list(registry)
        elif parts[:1] == ["api"] and len(parts) == 2:
            doc = discovery.resource_list(registry, "", parts[1])
        elif parts[:1] == ["apis"] and len(parts) == 2:
            doc = discovery.api_group(registry, parts[1])
        elif parts[:1] == ["apis"] and len(parts) == 3:
            doc = discovery.resource_list(registry, parts[1], parts[2])
        elif parts == ["openapi", "v3"]:
            doc = openapi.root(registry)
        elif parts[:2] == ["openapi", "v3"] and len(parts) in (4, 5):
            group, version = (parts[3], parts[4]) if parts[2] == "apis" and len(parts) == 5 \
                else ("", parts[3])
            doc = openapi.gv_document(registry, group, version)
        elif parts and parts[0] in ("healthz", "livez", "readyz"):
            return web.Response(status=200, body=b"ok", content_type="text/plain")
        if doc is None:
            raise unknown_path()
        return _json(200, dumps(doc))


def _delete_options(raw: bytes, content_type: str) -> dict[str, Any] | None:
    """A DELETE's optional DeleteOptions body (JSON; other encodings mean the defaults)."""
    if not raw.strip() or "json" not in content_type:
        return None
    try:
        options = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, "BadRequest", f"invalid DeleteOptions: {exc}") from exc
    return options if isinstance(options, dict) else None


def _warning_header(warnings: list[str]) -> str:
    """RFC 7234 warn-values, as client-go parses them: `299 - "quoted \\"text\\""`."""
    quoted = (w.replace("\\", "\\\\").replace('"', '\\"') for w in warnings)
    return ", ".join(f'299 - "{w}"' for w in quoted)


async def _hold_answer(rules: list[FaultRule], info: RequestInfo) -> None:
    """A `response_latency_ms` fault: the write is applied (watchers see it) before the
    client hears back. A watch has streamed its answer already, so it is not held."""
    if info.verb == "watch":
        return
    for rule in rules:
        if rule.response_latency_ms:
            await asyncio.sleep(rule.response_latency_ms / 1000)


async def _read_body(request: web.BaseRequest) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise ApiError(413, "RequestEntityTooLarge",
                       f"Request entity too large: limit is {MAX_BODY}", {}) from exc


def _json(code: int, body: bytes, headers: dict[str, str] | None = None,
          table: str = "") -> web.Response:
    content_type = JSON
    if table and "as=Table" in table and body.startswith(b'{"kind":"Table"'):
        content_type = "application/json;as=Table;v=v1;g=meta.k8s.io"
    out = {"Content-Type": content_type}
    if headers:
        out.update(headers)
    return web.Response(status=code, body=body, headers=out)


MAX_BODY = 3 * 1024 * 1024  # kube-apiserver's request body limit


class _HttpServer(web.Server):
    """aiohttp's low-level server, with the apiserver's body limit instead of 1 MiB."""

    def _make_request(self, message: Any, payload: Any, protocol: Any, writer: Any,
                      task: Any) -> web.BaseRequest:
        return web.BaseRequest(message, payload, protocol, writer, task, self._loop,
                               client_max_size=MAX_BODY)


async def serve(server: Server, host: str, port: int, ssl_context: ssl.SSLContext | None = None
                ) -> tuple[web.BaseRunner, int]:
    """Start listening; returns the runner and the bound port."""
    low = _HttpServer(server.handle, handler_cancellation=True, access_log=None)
    runner = web.ServerRunner(low, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024, ssl_context=ssl_context)
    await site.start()
    sockets = runner.addresses
    bound = sockets[0][1] if sockets else port
    server.address = f"{host}:{bound}"
    server.controllers.start()
    return runner, bound
