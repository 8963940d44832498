"""Helpers the test suites share (fixtures stay in each suite's conftest)."""

from __future__ import annotations

import base64
import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from . import substrate as substrates
from .substrate import Substrate


@contextlib.contextmanager
def fresh_namespace(api: client.ApiClient, prefix: str = "t") -> Iterator[str]:
    """A new, uniquely named namespace, deleted afterwards (without waiting for its drain)."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    _wait_populated(core, name)
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise


def _wait_populated(core: client.CoreV1Api, namespace: str, timeout: float = 30.0) -> None:
    """Until the controllers have put their objects in a new namespace: the `default`
    ServiceAccount (pods are refused without it) and the kube-root-ca.crt ConfigMap. As
    Kubernetes' own e2e framework does, so no test races them."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            core.read_namespaced_service_account("default", namespace)
            core.read_namespaced_config_map("kube-root-ca.crt", namespace)
            return
        except client.ApiException as exc:
            if exc.status != 404 or time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def admin_session(kubeconfig: Path, workdir: Path) -> tuple[Any, str]:
    """A `requests` session with a kubeconfig's credentials (token or client certificate)
    and CA, and the server's URL: raw HTTP as the kubeconfig's user."""
    import requests

    config = yaml.safe_load(Path(kubeconfig).read_text())
    cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    session = requests.Session()
    # The machine's REQUESTS_CA_BUNDLE would replace the kubeconfig's CA on every request.
    session.trust_env = False
    if user.get("token"):
        session.headers["Authorization"] = f"Bearer {user['token']}"

    def written(name: str, data: str) -> str:
        path = workdir / name
        path.write_bytes(base64.b64decode(data))
        return str(path)
    if user.get("client-certificate-data"):
        session.cert = (written("client.crt", user["client-certificate-data"]),
                        written("client.key", user["client-key-data"]))
    if cluster.get("certificate-authority-data"):
        session.verify = written("ca.crt", cluster["certificate-authority-data"])
    elif cluster.get("insecure-skip-tls-verify"):
        session.verify = False
    return session, str(cluster["server"])


class ServerPool:
    """API servers started once per substrate for a whole test session, stopped at its end."""

    def __init__(self) -> None:
        self._started: dict[str, Substrate] = {}

    def get(self, name: str, workdir: Callable[[], Path],
            at_exit: Callable[[Callable[[], None]], None]) -> Substrate:
        if name not in self._started:
            server = self._started[name] = substrates.start(name, workdir())
            at_exit(server.stop)
        return self._started[name]
