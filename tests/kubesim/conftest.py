"""Fixtures for the kubectl conformance and simulated-node suites.

These suites run against a private emulator (``sim_*`` fixtures), not the session one: they
install CRDs with short names and categories, register Nodes and run a scheduler, all of which
are cluster-wide and must not leak into (or be disturbed by) other suites.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
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
from kubesim.node import NodeSpec, SimulatedNodesThread

KUBECTL = Path(sys.executable).parent / "kubectl"

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05,
             message: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}; last: {last!r}")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The kubectl and simulated-node suites run on both substrates (on the real control plane
    the simulated nodes play only kubelets and a CSI provisioner: kube-scheduler binds)."""
    if "sim_server" in metafunc.fixturenames:
        nodeid = metafunc.definition.nodeid
        names = divergences.substrates_for(nodeid)
        metafunc.parametrize("sim_server", names, indirect=True, scope="session")


_private = ServerPool()


@pytest.fixture(scope="session")
def sim_server(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Substrate:
    """A private API server of this substrate (started once per session)."""
    name = str(request.param)
    return _private.get(name, lambda: tmp_path_factory.mktemp(f"private-{name}"),
                        request.session.config.add_cleanup)


@pytest.fixture(scope="session")
def sim_emulator(sim_server: Substrate) -> Emulator:
    assert isinstance(sim_server, substrates.Kubesim), "kubesim only"
    return sim_server.emulator


@pytest.fixture(scope="session")
def sim_kubeconfig(sim_server: Substrate) -> str:
    return str(sim_server.kubeconfig)


@pytest.fixture(scope="session")
def sim_api(sim_kubeconfig: str) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=sim_kubeconfig)
    yield api
    api.close()


@pytest.fixture
def sim_namespace(sim_api: client.ApiClient) -> Iterator[str]:
    """A fresh namespace in the private emulator, deleted after the test."""
    with fresh_namespace(sim_api) as name:
        yield name


@pytest.fixture(scope="session")
def kubectl_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One discovery cache for every kubectl call against the private emulator."""
    return tmp_path_factory.mktemp("kubectl-cache-private")


@pytest.fixture(scope="session")
def sim_kubectl(sim_kubeconfig: str, kubectl_cache: Path) -> Kubectl:
    """Run the venv's kubectl against the private emulator; ``env`` adds variables."""
    cache = kubectl_cache

    def run(*args: str, input: str | None = None, check: bool = True, timeout: float = 60,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        cmd = [str(KUBECTL), f"--kubeconfig={sim_kubeconfig}", f"--cache-dir={cache}", *args]
        result = subprocess.run(cmd, input=input, capture_output=True, text=True,
                                timeout=timeout, env={**os.environ, **(env or {})})
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    return run


@pytest.fixture(scope="session")
def kubectl_cmd(sim_kubeconfig: str, kubectl_cache: Path) -> Callable[..., list[str]]:
    """The argv of a kubectl call against the private emulator (for long-running Popen)."""
    return lambda *args: [str(KUBECTL), f"--kubeconfig={sim_kubeconfig}",
                          f"--cache-dir={kubectl_cache}", *args]


@pytest.fixture
def simulated_nodes(sim_kubeconfig: str, sim_namespace: str, sim_server: Substrate
                    ) -> Iterator[Callable[..., SimulatedNodesThread]]:
    """Start simulated nodes for this test's namespace: ``simulated_nodes("a=P:2", ...)``.

    Node names get a unique suffix (``.node_names`` maps the given names to the real ones) so
    tests never see each other's Nodes; everything is stopped and deleted after the test.
    """
    started: list[SimulatedNodesThread] = []
    suffix = uuid.uuid4().hex[:6]

    def start(*nodes: NodeSpec | str, **options: Any) -> SimulatedNodesThread:
        specs = [n if isinstance(n, NodeSpec) else NodeSpec.parse(n) for n in nodes]
        for spec in specs:
            spec.name = f"{spec.name}-{suffix}"
        options.setdefault("namespace", sim_namespace)
        if isinstance(sim_server, substrates.Kubernetes):
            options.setdefault("scheduler", False)
            options.setdefault("lease_interval", substrates.Kubernetes.LEASE_INTERVAL)
            options.setdefault("external_provisioner", True)
        sim = SimulatedNodesThread(sim_kubeconfig, specs, **options).start()
        started.append(sim)
        return sim

    yield start
    for sim in reversed(started):
        sim.stop()


# -- a CRD of the suite's own, with every printer-column type and schema rule kubectl shows ----

GADGET_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.conformance.kubesim.dev
spec:
  group: conformance.kubesim.dev
  scope: Namespaced
  names:
    kind: Gadget
    listKind: GadgetList
    plural: gadgets
    singular: gadget
    shortNames: [gd]
    categories: [conformance]
  versions:
    - name: v1
      served: true
      storage: true
      subresources:
        status: {}
      additionalPrinterColumns:
        - {name: Size, type: string, jsonPath: .spec.size}
        - {name: Replicas, type: integer, jsonPath: .spec.replicas}
        - {name: Ready, type: boolean, jsonPath: .status.ready}
        - {name: Ratio, type: number, jsonPath: .status.ratio, priority: 1}
        - {name: Owner, type: string, jsonPath: .spec.owner, priority: 1}
        - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
      schema:
        openAPIV3Schema:
          type: object
          description: "A Gadget: something small with a size."
          required: [spec]
          properties:
            spec:
              type: object
              description: "What the user wants."
              required: [size]
              properties:
                size:
                  type: string
                  description: "How big the gadget is."
                  enum: [small, large]
                replicas:
                  type: integer
                  minimum: 1
                  maximum: 10
                  default: 1
                owner:
                  type: string
                  pattern: '^[a-z]+$'
                tags:
                  type: array
                  maxItems: 3
                  items: {type: string}
            status:
              type: object
              properties:
                ready: {type: boolean}
                ratio: {type: number}
"""

GIZMO_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gizmos.conformance.kubesim.dev
spec:
  group: conformance.kubesim.dev
  scope: Cluster
  names:
    kind: Gizmo
    listKind: GizmoList
    plural: gizmos
    singular: gizmo
    shortNames: [gz]
    categories: [conformance]
  versions:
    - name: v1
      served: true
      storage: true
      additionalPrinterColumns:
        - {name: Colour, type: string, jsonPath: .spec.colour}
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                colour: {type: string}
"""


@pytest.fixture(scope="session")
def gadget_crds(sim_kubectl: Kubectl) -> None:
    """The Gadget (namespaced) and Gizmo (cluster-scoped) CRDs, installed and Established."""
    sim_kubectl("apply", "-f", "-", input=GADGET_CRD + "---\n" + GIZMO_CRD)
    sim_kubectl("wait", "--for=condition=Established", "--timeout=60s",
                "crd/gadgets.conformance.kubesim.dev", "crd/gizmos.conformance.kubesim.dev")


def split_table(text: str) -> list[dict[str, str]]:
    """Rows of a ``kubectl get`` table as {HEADER: cell}, cut at the header's column starts.

    kubectl's tabwriter left-aligns every cell under its header, so the header words' offsets
    are the column boundaries (headers may contain spaces, e.g. ``RAN FOR``; cells never start
    mid-header). Empty cells come back as "".
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    header = lines[0]
    starts = [m.start() for m in re.finditer(r"(?:^|(?<=\s{2}))\S", header)]
    names = [header[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
    rows = []
    for line in lines[1:]:
        cells = [line[a:b].strip() if a < len(line) else ""
                 for a, b in zip(starts, [*starts[1:], None], strict=True)]
        rows.append(dict(zip(names, cells, strict=True)))
    return rows


@pytest.fixture(scope="session")
def parse_table() -> Callable[[str], list[dict[str, str]]]:
    return split_table
