"""The operator's validating webhook, called for real by the API server over HTTPS.

Its own cluster (the session operator runs without the webhook): a CA and a serving certificate
for the chart's webhook Service made here, the operator started with --webhook-port and
--webhook-cert-dir, the chart's own Service and ValidatingWebhookConfiguration applied with the
CA as caBundle (webhook.certManager.enabled=false); then `kubectl apply` of good and bad rentals.
There is no pod network: kubesim reaches the Service at the operator's address (an annotation);
kube-apiserver, which refuses loopback endpoints in an EndpointSlice, is given the chart's
webhook configuration with the Service reference replaced by that address as a URL (same path,
same caBundle, same rules).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_support import eventually

from gpurental_dev.certs import make_serving_cert
from gpurental_dev.cluster import ROOT, Cluster, free_port

pytestmark = pytest.mark.e2e

HELM = ROOT / ".tools" / "bin" / "helm"
RELEASE, NAMESPACE = "gpr", "gpu-system"
SERVICE = f"{RELEASE}-gpu-rental-operator-webhook"

SETUP = """
apiVersion: gpurental.dev/v1alpha1
kind: GpuOffer
metadata: {name: rtx4090}
spec:
  gpu: {product: NVIDIA-GeForce-RTX-4090}
  pricePerGpuHour: "0.69"
  maxGpus: 2
  maxDuration: 72h
---
apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
apiVersion: gpurental.dev/v1alpha1
kind: Wallet
metadata: {name: broke, namespace: team-a}
spec: {budget: "0.00"}
"""


def rental(name: str, **spec: object) -> str:
    body = {"apiVersion": "gpurental.dev/v1alpha1", "kind": "GpuRental",
            "metadata": {"name": name, "namespace": "team-a"},
            "spec": {"offer": "rtx4090", "gpus": 1, "image": "pytorch/pytorch",
                     "storage": {"size": "1Gi"}, **spec}}
    return json.dumps(body)


def chart_webhook(ca_bundle: str) -> list[dict[str, Any]]:
    """The chart's webhook Service and ValidatingWebhookConfiguration, with our CA."""
    if not HELM.exists():
        subprocess.run(["make", "tools"], cwd=ROOT, check=True, capture_output=True)
    rendered = subprocess.run(
        [str(HELM), "template", RELEASE, str(ROOT / "charts" / "gpu-rental-operator"),
         "--namespace", NAMESPACE, "--set", "crds.enabled=false", "--set",
         "webhook.enabled=true", "--set", "webhook.certManager.enabled=false",
         "--set", f"webhook.caBundle={ca_bundle}"],
        capture_output=True, text=True, check=True).stdout
    return [d for d in yaml.safe_load_all(rendered) if d and (
        d["kind"] == "ValidatingWebhookConfiguration"
        or (d["kind"] == "Service" and d["metadata"]["name"] == SERVICE))]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, substrate: str) -> Iterator[Cluster]:
    workdir: Path = tmp_path_factory.mktemp(f"admission-{substrate}")
    # The name kube-apiserver verifies when it calls the chart's Service.
    cert = make_serving_cert(workdir / "tls", (f"{SERVICE}.{NAMESPACE}.svc",))
    port = free_port()
    with Cluster(workdir / "cluster", nodes=["gpu-4090-a=NVIDIA-GeForce-RTX-4090:4"],
                 substrate=substrate) as cluster:
        cluster.kubectl("apply", "-f", "-", input=SETUP)
        cluster.kubectl("create", "namespace", NAMESPACE)
        cluster.start_operator("--metering-interval", "2", "--webhook-port", str(port),
                               "--webhook-cert-dir", str(cert.directory))
        objects = chart_webhook(cert.ca_bundle)
        if cluster.on_kubernetes:
            objects = [by_url(o, port) for o in objects]
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects))
        if not cluster.on_kubernetes:
            cluster.kubectl("annotate", "service", SERVICE, "-n", NAMESPACE,
                            f"kubesim.dev/webhook-address=127.0.0.1:{port}")
        yield cluster


def by_url(obj: dict[str, Any], port: int) -> dict[str, Any]:
    """The webhook configuration calling the operator's address instead of its Service."""
    if obj["kind"] != "ValidatingWebhookConfiguration":
        return obj
    for webhook in obj["webhooks"]:
        config = webhook["clientConfig"]
        path = config.pop("service").get("path", "/")
        config["url"] = f"https://127.0.0.1:{port}{path}"
    return obj


def apply(cluster: Cluster, manifest: str) -> tuple[bool, str]:
    result = cluster.kubectl("apply", "-f", "-", input=manifest, check=False)
    return result.returncode == 0, result.stdout + result.stderr


def rejected(cluster: Cluster, manifest: str) -> str:
    """The denial message, once the webhook answers (it starts after the operator's cache)."""
    def denial() -> str:
        ok, output = apply(cluster, manifest)
        assert not ok, f"accepted: {output}"
        # "failed calling webhook" until it listens (failurePolicy: Fail): not yet an answer
        assert "denied the request" in output, output
        return output
    return eventually(denial, timeout=60)


@pytest.mark.parametrize(("spec", "message"), [
    ({"offer": "h200"}, 'spec.offer: GpuOffer "h200" not found (offers: rtx4090)'),
    ({"gpus": 3}, "spec.gpus: 3 exceeds offer rtx4090's maxGpus 2"),
    ({"duration": "100h"}, "spec.duration: 100h exceeds offer rtx4090's maxDuration 72h"),
])
def test_rentals_beyond_the_offer_are_rejected(cluster, spec, message):
    output = rejected(cluster, rental("bad", **spec))
    assert f'admission webhook "validate.gpurental.dev" denied the request: {message}' in output
    assert cluster.kubectl("get", "gpurentals", "bad", "-n", "team-a",
                           check=False).returncode != 0


def test_new_rental_on_an_exhausted_wallet_is_rejected(cluster):
    eventually(lambda: json.loads(cluster.kubectl(
        "get", "wallet", "broke", "-n", "team-a", "-o", "json").stdout)
        .get("status", {}).get("exhausted") is True, timeout=60)
    output = rejected(cluster, rental("broke", wallet="broke"))
    assert 'spec.wallet: Wallet "broke" is exhausted' in output


def test_good_rental_runs_and_a_stopped_one_never_runs_again(cluster):
    rejected(cluster, rental("probe", gpus=9))  # the webhook is up
    ok, output = apply(cluster, rental("good", gpus=2, duration="4h"))
    assert ok, output

    def phase() -> str:
        return json.loads(cluster.kubectl("get", "gpurentals", "good", "-n", "team-a", "-o",
                                          "json").stdout).get("status", {}).get("phase", "")
    eventually(lambda: phase() == "Running", timeout=90)
    ok, output = apply(cluster, rental("good", gpus=2, duration="4h", state="Stopped"))
    assert ok, output
    eventually(lambda: phase() == "Stopped", timeout=60)
    output = rejected(cluster, rental("good", gpus=2, duration="4h", state="Running"))
    assert "spec.state: a Stopped rental cannot be set to Running" in output
    log = cluster.operators[0].log_text
    assert "Traceback" not in log, log[-3000:]
