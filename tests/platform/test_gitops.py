"""The GitOps example (examples/gitops/): real `kubectl kustomize` builds it, every object is
valid (built-ins with kubernetes-validate, ours against crds/), and the argocd-cm patch carries
the chart's health checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import crd_schema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
GITOPS = REPO / "examples" / "gitops"
K8S_VERSION = "1.33"


def kustomize(kubectl: str, path: Path) -> list[dict]:
    proc = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def validate(objs: list[dict], kubernetes_validate) -> None:
    for obj in objs:
        if crd_schema.is_custom(obj):
            assert not crd_schema.errors(obj)
        else:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@pytest.mark.parametrize("layer", ["base", "overlays/team-a"])
def test_kustomize_builds_valid_objects(kubectl, kubernetes_validate, layer):
    objs = kustomize(kubectl, GITOPS / layer)
    assert objs
    validate(objs, kubernetes_validate)


def test_team_overlay_puts_team_objects_in_its_namespace(kubectl):
    objs = kustomize(kubectl, GITOPS / "overlays" / "team-a")
    by_kind: dict[str, list[dict]] = {}
    for obj in objs:
        by_kind.setdefault(obj["kind"], []).append(obj)
    assert {o["metadata"]["name"] for o in by_kind["Namespace"]} == {"team-a"}
    # Offers are cluster-scoped: kustomize must not have given them a namespace.
    assert by_kind["GpuOffer"]
    assert all("namespace" not in o["metadata"] for o in by_kind["GpuOffer"])
    (wallet,) = by_kind["Wallet"]
    assert wallet["metadata"]["namespace"] == "team-a" and wallet["spec"]["budget"] == "500.00"
    offers = {o["metadata"]["name"] for o in by_kind["GpuOffer"]}
    for rental in by_kind["GpuRental"]:
        assert rental["metadata"]["namespace"] == "team-a"
        assert rental["spec"]["offer"] in offers
        assert rental["spec"]["wallet"] == wallet["metadata"]["name"]


def test_schema_check_catches_mistakes():
    rental = {
        "apiVersion": "gpurental.dev/v1alpha1", "kind": "GpuRental",
        "metadata": {"name": "x", "namespace": "team-a"},
        "spec": {"offer": "rtx4090", "image": "busybox", "state": "Sleeping", "gpuz": 2},
    }
    problems = "\n".join(crd_schema.errors(rental))
    assert "Sleeping" in problems and "gpuz" in problems
    offer = {
        "apiVersion": "gpurental.dev/v1alpha1", "kind": "GpuOffer",
        "metadata": {"name": "x", "namespace": "team-a"},
        "spec": {"gpu": {"product": "P"}, "pricePerGpuHour": 0.69},
    }
    problems = "\n".join(crd_schema.errors(offer))
    assert "cluster-scoped" in problems and "0.69" in problems


def test_argocd_cm_patch_is_generated():
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "sync_gitops_example.py"), "--check"],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
