"""End-to-end fixtures: the real operator process on a GPU cluster, on every substrate.

Every e2e test runs once per substrate (`substrate` below): kubesim, our emulator, and a real
Kubernetes control plane built from the Kubernetes Go modules (`gpurental_dev.k8s`), which is
the reference. `GPURENTAL_SUBSTRATES=kubesim` (or `kubernetes`) narrows a run by hand; a real
control plane that cannot be built or started fails its tests, it never skips them.

One cluster and one operator serve the whole session per substrate; each test works in its
own namespace, so tests never see each other's rentals. Tests that kill the operator restart
it before they return. The cluster has an API server of its own (the kubeconfig, api_client,
kubectl and namespace fixtures below override the root ones): its simulated kubelet must never
touch the pods of the emulator's own conformance tests.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator

import pytest
from e2e_support import Rentals
from kubernetes import client, config

from gpurental_dev import substrate as substrates
from gpurental_dev.cluster import Cluster, OperatorProcess
from gpurental_dev.testing import fresh_namespace

TEST_OFFERS = """
apiVersion: gpurental.dev/v1alpha1
kind: GpuOffer
metadata: {name: rtx4090}
spec:
  gpu: {product: NVIDIA-GeForce-RTX-4090}
  pricePerGpuHour: "0.69"
  storagePricePerGiBHour: "0.0001"
  maxGpus: 4
  tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
---
apiVersion: gpurental.dev/v1alpha1
kind: GpuOffer
metadata: {name: a100-mig}
spec:
  gpu: {product: NVIDIA-A100-SXM4-80GB, resourceName: nvidia.com/mig-1g.10gb}
  pricePerGpuHour: "0.40"
---
apiVersion: gpurental.dev/v1alpha1
kind: GpuOffer
metadata: {name: quickfail}
spec:
  gpu: {product: NVIDIA-GeForce-RTX-4090}
  pricePerGpuHour: "0.69"
  provisioningTimeout: 3s
---
apiVersion: gpurental.dev/v1alpha1
kind: GpuOffer
metadata: {name: pricey}
spec:
  gpu: {product: NVIDIA-GeForce-RTX-4090}
  pricePerGpuHour: "360.00"
---
apiVersion: gpurental.dev/v1alpha1
kind: GpuOffer
metadata: {name: storagey}
spec:
  gpu: {product: NVIDIA-GeForce-RTX-4090}
  pricePerGpuHour: "0.69"
  storagePricePerGiBHour: "36.00"
---
apiVersion: gpurental.dev/v1alpha1
kind: GpuOffer
metadata: {name: capped}
spec:
  gpu: {product: NVIDIA-GeForce-RTX-4090}
  pricePerGpuHour: "0.69"
  maxDuration: 3s
---
apiVersion: gpurental.dev/v1alpha1
kind: GpuOffer
metadata: {name: storagefail}
spec:
  gpu: {product: NVIDIA-B200}
  pricePerGpuHour: "5.00"
  storagePricePerGiBHour: "36.00"
  provisioningTimeout: 3s
---
apiVersion: gpurental.dev/v1alpha1
kind: GpuOffer
metadata: {name: nowhere}
spec:
  gpu: {product: NVIDIA-B200}
  pricePerGpuHour: "5.00"
  provisioningTimeout: 3s
"""


@pytest.fixture(scope="session", params=substrates.selected())
def substrate(request: pytest.FixtureRequest) -> str:
    """The API server under the test: "kubesim" or "kubernetes" (a real control plane)."""
    return str(request.param)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory, substrate: str) -> Iterator[Cluster]:
    nodes = [f"gpu-4090-{i}=NVIDIA-GeForce-RTX-4090:8" for i in range(4)] + [
        "gpu-a100-mig=NVIDIA-A100-SXM4-80GB:7:nvidia.com/mig-1g.10gb"]
    with Cluster(tmp_path_factory.mktemp(f"cluster-{substrate}"), nodes=nodes,
                 node_args=["--pull-fail-images", r"^registry\.invalid/",
                            "--fail-storage-class", "broken"],
                 substrate=substrate) as cluster:
        cluster.kubectl("apply", "-f", "-", input=TEST_OFFERS)
        yield cluster


@pytest.fixture(scope="session")
def kubeconfig(cluster: Cluster) -> str:
    return str(cluster.kubeconfig)


@pytest.fixture(scope="session")
def api_client(kubeconfig: str) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=kubeconfig)
    yield api
    api.close()


@pytest.fixture(scope="session")
def kubectl(cluster: Cluster) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*args: str, input: str | None = None, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = cluster.kubectl(*args, input=input, check=False, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result
    return run


@pytest.fixture
def namespace(api_client: client.ApiClient) -> Iterator[str]:
    with fresh_namespace(api_client, "e2e") as name:
        yield name


@pytest.fixture(scope="session")
def operator(cluster: Cluster) -> OperatorProcess:
    return cluster.start_operator("--metering-interval", "2", "--provisioning-timeout", "120")


@pytest.fixture
def custom(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def rentals(operator: OperatorProcess, custom: client.CustomObjectsApi,
            core: client.CoreV1Api, namespace: str) -> Rentals:
    return Rentals(custom, core, namespace)
