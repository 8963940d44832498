"""Helpers the test suites share (fixtures stay in each suite's conftest)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

from kubernetes import client


@contextlib.contextmanager
def fresh_namespace(api: client.ApiClient, prefix: str = "t") -> Iterator[str]:
    """A new, uniquely named namespace, deleted afterwards (without waiting for its drain)."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
