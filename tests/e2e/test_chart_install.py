"""The Helm chart installed into a cluster of its own, and a rental run through it.

`helm template` renders the chart (default values, plus the example offers, the ServiceMonitor
and the PrometheusRule); everything is `kubectl apply`-ed into a fresh cluster (on each
substrate) whose only GpuRental CRDs are the chart's. There is no container runtime, so the
Deployment's container is run as the kubelet would: its exact command, args and env from the
rendered manifest, authenticated with a token of the chart's ServiceAccount (RBAC enforced).
The examples' wallet and rentals must then go Running on the simulated GPU nodes, and the chart
rendered with `crds.enabled=false` must apply cleanly on top.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_support import ChartOperator, container_of
from e2e_support import GROUP, VERSION, eventually
from kubernetes import client, config

from gpurental_dev.cluster import ROOT, Cluster, free_port

pytestmark = pytest.mark.e2e

HELM = ROOT / ".tools" / "bin" / "helm"
CHART = ROOT / "charts" / "gpu-rental-operator"
EXAMPLES = ROOT / "examples"
RELEASE, NAMESPACE = "gpr", "gpu-system"
NODES = ["gpu-4090-a=NVIDIA-GeForce-RTX-4090:4", "gpu-h100-a=NVIDIA-H100-80GB-HBM3:2"]

# The Prometheus Operator's kinds, as far as the API server needs them to store the chart's
# ServiceMonitor and PrometheusRule (the emulator has no prometheus-operator to install them).
MONITORING_CRDS = [
    {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
     "metadata": {"name": f"{plural}.monitoring.coreos.com"},
     "spec": {"group": "monitoring.coreos.com", "scope": "Namespaced",
              "names": {"plural": plural, "singular": kind.lower(), "kind": kind,
                        "listKind": f"{kind}List"},
              "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                  "openAPIV3Schema": {"type": "object",
                                      "x-kubernetes-preserve-unknown-fields": True}}}]}}
    for plural, kind in (("servicemonitors", "ServiceMonitor"),
                         ("prometheusrules", "PrometheusRule"))]


def example_offers() -> list[dict[str, Any]]:
    """examples/offers.yaml as the chart's `offers` value."""
    return [{"name": offer["metadata"]["name"], **offer["spec"]}
            for offer in yaml.safe_load_all((EXAMPLES / "offers.yaml").read_text()) if offer]


def render(workdir: Path, metrics_port: int, *sets: str) -> list[dict[str, Any]]:
    if not HELM.exists():
        raise AssertionError(f"{HELM} is missing: run `make tools`")
    values = workdir / "values.yaml"
    values.write_text(yaml.safe_dump({
        "offers": example_offers(), "metrics": {"port": metrics_port},
        "metering": {"interval": 2}, "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True}}))
    rendered = subprocess.run(
        [str(HELM), "template", RELEASE, str(CHART), "--namespace", NAMESPACE,
         "--values", str(values), *(arg for s in sets for arg in ("--set", s))],
        capture_output=True, text=True, check=True).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def apply(cluster: Cluster, objects: list[dict[str, Any]]) -> str:
    result = cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects), check=False)
    assert result.returncode == 0, f"kubectl apply failed:\n{result.stdout}{result.stderr}"
    return result.stdout


class Installed:
    def __init__(self, cluster: Cluster, workdir: Path, port: int,
                 objects: list[dict[str, Any]], operator: ChartOperator) -> None:
        self.cluster, self.workdir, self.port = cluster, workdir, port
        self.objects, self.operator = objects, operator
        self.api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        self.custom = client.CustomObjectsApi(self.api)


def operator_kubeconfig(cluster: Cluster, workdir: Path, service_account: str) -> Path:
    token = cluster.kubectl("create", "token", service_account, "-n", NAMESPACE,
                            "--duration=2h").stdout.strip()
    kubeconfig = yaml.safe_load(cluster.kubeconfig.read_text())
    kubeconfig["users"][0]["user"] = {"token": token}
    path = workdir / "operator-kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    return path


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, substrate: str
              ) -> Iterator[Installed]:
    workdir: Path = tmp_path_factory.mktemp(f"chart-install-{substrate}")
    # Only the chart's CRDs may define the kinds: the cluster starts without crds/'s. (Deleting
    # them right after they were established raced kube-apiserver's CRD finalizer: "storage is
    # (re)initializing", and the CRDs stayed Terminating for minutes.)
    with Cluster(workdir / "cluster", nodes=NODES, substrate=substrate, crds=False) as cluster:
        port = free_port()
        objects = render(workdir, port)
        crds = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
        assert {c["metadata"]["name"] for c in crds} == {
            "gpuoffers.gpurental.dev", "wallets.gpurental.dev", "gpurentals.gpurental.dev"}
        cluster.kubectl("create", "namespace", NAMESPACE)
        apply(cluster, [*MONITORING_CRDS, *crds])
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                        *(f"crd/{c['metadata']['name']}" for c in [*MONITORING_CRDS, *crds]))
        apply(cluster, [o for o in objects if o["kind"] != "CustomResourceDefinition"])
        sa = next(o for o in objects if o["kind"] == "ServiceAccount")["metadata"]["name"]
        operator = ChartOperator(container_of(objects),
                                 operator_kubeconfig(cluster, workdir, sa), workdir,
                                 f"{RELEASE}-gpu-rental-operator-0", NAMESPACE)
        try:
            eventually(operator.healthy, timeout=90, interval=0.2)
            yield Installed(cluster, workdir, port, objects, operator)
        finally:
            operator.stop()


def exists(cluster: Cluster, obj: dict[str, Any]) -> bool:
    meta = obj["metadata"]
    kind = f"{obj['kind'].lower()}.{obj['apiVersion'].split('/')[0]}" \
        if "/" in obj["apiVersion"] else obj["kind"].lower()
    args = ["get", f"{kind}/{meta['name']}", "-o", "name"]
    if meta.get("namespace"):
        args += ["-n", meta["namespace"]]
    return cluster.kubectl(*args, check=False).returncode == 0


def test_every_rendered_object_is_accepted(installed: Installed) -> None:
    kinds = {o["kind"] for o in installed.objects}
    assert {"CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
            "Service", "Deployment", "ConfigMap", "GpuOffer", "ServiceMonitor",
            "PrometheusRule"} <= kinds
    missing = [f"{o['kind']}/{o['metadata']['name']}" for o in installed.objects
               if not exists(installed.cluster, o)]
    assert not missing
    args = container_of(installed.objects)["args"]
    assert "--all-namespaces" in args and f"--metrics-port={installed.port}" in args


def rental_phase(installed: Installed, name: str) -> str:
    body = installed.custom.get_namespaced_custom_object(GROUP, VERSION, "team-a",
                                                         "gpurentals", name)
    return str((body.get("status") or {}).get("phase", ""))


def test_example_rentals_run_through_the_charts_operator(installed: Installed) -> None:
    installed.cluster.kubectl("apply", "-f", str(EXAMPLES / "wallet.yaml"))
    installed.cluster.kubectl("apply", "-f", str(EXAMPLES / "rentals.yaml"))
    names = [r["metadata"]["name"] for r in
             yaml.safe_load_all((EXAMPLES / "rentals.yaml").read_text()) if r]
    for name in names:
        eventually(lambda name=name: rental_phase(installed, name) == "Running", timeout=120)

    def wallet_burning() -> None:
        wallet = installed.custom.get_namespaced_custom_object(GROUP, VERSION, "team-a",
                                                               "wallets", "default")
        assert (wallet.get("status") or {}).get("burnCentsPerHour", 0) > 0
    eventually(wallet_burning, timeout=60)
    log = installed.operator.log.read_text()
    assert "403" not in log and "Forbidden" not in log


def test_chart_without_crds_applies_on_top(installed: Installed) -> None:
    """Runs after the rentals above: applying must leave them and their CRDs alone."""
    before = installed.cluster.kubectl("get", "gpurentals", "-A", "-o", "name").stdout
    objects = render(installed.workdir, installed.port, "crds.enabled=false")
    assert not [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    apply(installed.cluster, objects)
    assert installed.cluster.kubectl("get", "gpurentals", "-A", "-o", "name").stdout == before
    assert all(exists(installed.cluster, o) for o in objects)
    assert installed.operator.healthy()
