"""Shared fixtures: one API server per substrate per test session, clients, fresh namespaces.

The conformance suite (tests/kubesim) runs on kubesim and on a real kube-apiserver (the
reference: a test that fails there is a bug in kubesim or in the test). Tests of what only
kubesim has (its admin endpoints, fault injection, its own flags), and the few that still
differ, are listed in tests/kubesim/divergences.py and get no real-server variant.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import divergences
import pytest
from kubernetes import client, config

from gpurental_dev import substrate as substrates
from gpurental_dev.substrate import Substrate
from gpurental_dev.testing import ServerPool, fresh_namespace
from kubesim.launch import Emulator

KUBECTL = Path(sys.executable).parent / "kubectl"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "api_server" in metafunc.fixturenames:
        metafunc.parametrize("api_server", divergences.substrates_for(metafunc.definition.nodeid),
                             indirect=True, scope="session")


_servers = ServerPool()


@pytest.fixture(scope="session")
def api_server(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Substrate:
    """The session's API server of this substrate (started once, stopped at the end)."""
    name = str(request.param)
    return _servers.get(name, lambda: tmp_path_factory.mktemp(f"api-{name}"),
                        request.session.config.add_cleanup)


@pytest.fixture(scope="session")
def emulator(api_server: Substrate) -> Emulator:
    """kubesim itself, for `kubesim_only` tests (its admin endpoints, its own flags)."""
    assert isinstance(api_server, substrates.Kubesim), "mark the test kubesim_only"
    return api_server.emulator


@pytest.fixture(scope="session")
def kubeconfig(api_server: Substrate) -> str:
    return str(api_server.kubeconfig)


@pytest.fixture(scope="session")
def api_client(kubeconfig: str) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=kubeconfig)
    yield api
    api.close()


@pytest.fixture
def namespace(api_client: client.ApiClient) -> Iterator[str]:
    """A fresh, uniquely named namespace; deleted (not awaited) after the test."""
    with fresh_namespace(api_client) as name:
        yield name


@pytest.fixture(scope="session")
def kubectl(kubeconfig: str, tmp_path_factory: pytest.TempPathFactory
            ) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the venv's kubectl against the emulator: kubectl("get", "pods", input=None)."""
    cache = tmp_path_factory.mktemp("kubectl-cache")

    def run(*args: str, input: str | None = None, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = [str(KUBECTL), f"--kubeconfig={kubeconfig}", f"--cache-dir={cache}", *args]
        result = subprocess.run(cmd, input=input, capture_output=True, text=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result
    return run


WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.kubesim.test"},
    "spec": {
        "group": "kubesim.test", "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                  "shortNames": ["wd"], "categories": ["gadgets"]},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "subresources": {"status": {}},
            "additionalPrinterColumns": [
                {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
            ],
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "metadata": {"type": "object"},
                    "spec": {
                        "type": "object", "required": ["size"],
                        "properties": {
                            "size": {"type": "integer", "minimum": 1, "maximum": 10},
                            "color": {"type": "string", "enum": ["red", "blue"],
                                      "default": "red"},
                            "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 8},
                            "tags": {"type": "array", "maxItems": 2,
                                     "items": {"type": "string"}},
                            "port": {"x-kubernetes-int-or-string": True},
                            "extra": {"type": "object",
                                      "x-kubernetes-preserve-unknown-fields": True},
                            "note": {"type": "string", "nullable": True},
                            "ratio": {"type": "number", "exclusiveMinimum": True,
                                      "minimum": 0},
                        },
                    },
                    "status": {"type": "object", "properties": {
                        "phase": {"type": "string"},
                        "count": {"type": "integer"},
                        "since": {"type": "string", "format": "date-time"},
                    }},
                },
            }},
        }],
    },
}


@pytest.fixture(scope="session")
def widget_crd(api_client: client.ApiClient) -> dict[str, str]:
    """A namespaced test CRD (kubesim.test/v1 Widget, status subresource, printer columns)."""
    ext = client.ApiextensionsV1Api(api_client)
    try:
        ext.create_custom_resource_definition(WIDGET_CRD)
    except client.ApiException as exc:
        if exc.status != 409:
            raise
    # Served (and in discovery) once Established: a moment after creation on a real server.
    custom = client.CustomObjectsApi(api_client)
    deadline = time.monotonic() + 60
    while not _served(custom):
        if time.monotonic() > deadline:
            raise AssertionError("the Widget CRD was never served")
        time.sleep(0.1)
    return {"group": "kubesim.test", "version": "v1", "plural": "widgets"}


def _served(custom: client.CustomObjectsApi) -> bool:
    try:
        custom.list_cluster_custom_object("kubesim.test", "v1", "widgets", limit=1)
    except client.ApiException:
        return False
    return True


@pytest.fixture(scope="session")
def http(api_server: Substrate, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Any]:
    """Raw HTTP as the administrator: http("GET", "/api/v1/pods", json=..., headers=...)."""
    from gpurental_dev.testing import admin_session

    session, url = admin_session(api_server.kubeconfig, tmp_path_factory.mktemp("http"))

    def call(method: str, path: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", 60)
        return session.request(method, url + path, **kwargs)
    return call
