"""How the plugin's failures read: ``error: <message>`` for its own, kubectl's lines for the
server's."""

from __future__ import annotations

import json

from kubernetes.client.rest import ApiException

from gpurental.plugin import render


class CliError(Exception):
    """A user-facing error: printed as ``error: <message>``, exit code 1."""


def api_error(exc: ApiException, name: str | None = None) -> str:
    """The server's Status, as kubectl prints it; a bare 404 (no Status body) names the rental."""
    body = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else exc.body
    if exc.status == 404 and name is not None:
        try:
            doc = json.loads(body or "")
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or not doc.get("message"):
            return render.not_found(name)
    return render.api_error(exc.status, exc.reason, body)
