"""Every failed API call is counted in gpurental_api_errors_total, a call that got no answer
at all too: a server that refuses the connection shows as code "unreachable"."""

from __future__ import annotations

import asyncio
import socket

import kubernetes
import pytest
from prometheus_client import REGISTRY

from gpurental.k8s import UNREACHABLE, Kube
from gpurental.rest import ApiUnreachable


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def unreachable_count(verb: str) -> float:
    return REGISTRY.get_sample_value(
        "gpurental_api_errors_total", {"verb": verb, "code": UNREACHABLE}) or 0.0


def test_a_refused_connection_is_counted_as_unreachable() -> None:
    config = kubernetes.client.Configuration(host=f"http://127.0.0.1:{closed_port()}")

    async def patch() -> None:
        kube = Kube(config, connections=1)
        try:
            await kube.patch_status("gpurentals", "team-a", "job", {"phase": "Running"}, "7")
        finally:
            await kube.close()

    before = unreachable_count("patch_status")
    with pytest.raises(ApiUnreachable):
        asyncio.run(patch())
    assert unreachable_count("patch_status") == before + 1
