"""Shared fixtures: one API emulator per test session, clients for it, fresh namespaces."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from kubesim.launch import Emulator, start_emulator

KUBECTL = Path(sys.executable).parent / "kubectl"


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with start_emulator(tmp_path_factory.mktemp("kubesim")) as emu:
        yield emu


@pytest.fixture(scope="session")
def kubeconfig(emulator: Emulator) -> str:
    return str(emulator.kubeconfig)


@pytest.fixture(scope="session")
def api_client(kubeconfig: str) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=kubeconfig)
    yield api
    api.close()


@pytest.fixture
def namespace(api_client: client.ApiClient) -> Iterator[str]:
    """A fresh, uniquely named namespace; deleted (not awaited) after the test."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    try:
        core.delete_namespace(name)
    except client.ApiException as exc:
        if exc.status != 404:
            raise


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
