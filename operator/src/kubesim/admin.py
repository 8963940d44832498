"""`/_kubesim/` admin endpoints: request record, fault rules, stats. Never used by the operator.

GET    /_kubesim/requests           the record ({"enabled": bool, "requests": [...]})
POST   /_kubesim/requests           {"enabled": true|false} start/stop recording
DELETE /_kubesim/requests           clear the record
GET    /_kubesim/faults             active rules
POST   /_kubesim/faults             add a rule (see faults.FaultRule for fields)
DELETE /_kubesim/faults             remove all rules
DELETE /_kubesim/watches            {"resource": "pods"} close its open watches ("*": all)
GET    /_kubesim/stats              object count, resourceVersion, open watches, RSS
POST   /_kubesim/tokens             {"user": "alice", "groups": [..]} or
                                    {"serviceAccount": "ns/name"}: a token RBAC judges
"""

from __future__ import annotations

import json
import resource
import sys
from typing import TYPE_CHECKING, Any

from . import rbac
from .errors import ApiError, bad_request, unknown_path

if TYPE_CHECKING:
    from .server import Server


def rss_bytes() -> int:
    """Current resident set size (Linux /proc), falling back to the peak."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        import os
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def handle(server: Server, method: str, path: str, body: bytes) -> tuple[int, Any]:
    what = path[len("/_kubesim/"):].strip("/")
    try:
        payload = json.loads(body) if body else {}
    except ValueError as exc:
        raise bad_request(f"invalid JSON: {exc}") from exc
    if what == "requests":
        record = server.record
        if method == "GET":
            return 200, {"enabled": record.enabled, "requests": list(record.entries)}
        if method == "POST":
            record.enabled = bool(payload.get("enabled", True))
            return 200, {"enabled": record.enabled}
        if method == "DELETE":
            record.entries.clear()
            return 200, {"enabled": record.enabled}
    elif what == "faults":
        if method == "GET":
            return 200, {"faults": server.faults.describe()}
        if method == "POST":
            try:
                server.faults.add(payload)
            except TypeError as exc:
                raise bad_request(f"invalid fault rule: {exc}") from exc
            return 201, {"faults": server.faults.describe()}
        if method == "DELETE":
            server.faults.clear()
            return 200, {"faults": []}
    elif what == "watches" and method == "DELETE":
        # Close the open watches of one resource (a plural; "*" for all), as a restarted
        # apiserver or a broken connection would: the clients must reconnect.
        wanted = str(payload.get("resource") or "*")
        closed = 0
        for (_, plural), collection in server.store.collections.items():
            if wanted in ("*", plural):
                for watcher in list(collection.history.watchers):
                    watcher.close()
                    closed += 1
        return 200, {"closed": closed}
    elif what == "tokens" and method == "POST":
        return 201, rbac.issue_token(server.hooks, payload)
    elif what == "stats" and method == "GET":
        store = server.store
        return 200, {
            "objects": store.count(), "resourceVersion": store.rv,
            "watches": sum(len(c.history.watchers) for c in store.collections.values()),
            "rssBytes": rss_bytes(),
        }
    else:
        raise unknown_path()
    raise ApiError(405, "MethodNotAllowed", f"{method} not allowed on {path}", {})
