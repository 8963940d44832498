"""Driving rentals the way users do: kubectl apply, get, patch, delete."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from subprocess import CompletedProcess

import pytest
from e2e_support import Rentals, eventually

from gpurental_dev.cluster import BIN

Kubectl = Callable[..., CompletedProcess[str]]

RENTAL = """
apiVersion: gpurental.dev/v1alpha1
kind: GpuRental
metadata: {{name: {name}}}
spec:
  offer: rtx4090
  gpus: 1
  image: pytorch/pytorch:2.4.0-cuda12.1-cudnn9-runtime
  command: ["sleep", "infinity"]
{extra}
"""


def apply(kubectl: Kubectl, namespace: str, name: str = "finetune", extra: str = "",
          check: bool = True) -> CompletedProcess[str]:
    return kubectl("apply", "-n", namespace, "-f", "-",
                   input=RENTAL.format(name=name, extra=extra), check=check)


def test_apply_get_patch_delete(rentals: Rentals, kubectl: Kubectl) -> None:
    ns = rentals.namespace
    assert "gpurental.gpurental.dev/finetune created" in apply(kubectl, ns).stdout
    rentals.wait_phase("finetune", "Running")

    table = kubectl("get", "gpurentals", "-n", ns).stdout.splitlines()
    assert table[0].split() == ["NAME", "PHASE", "OFFER", "GPUS", "RATE", "RAN", "FOR",
                                "TOTAL", "AGE"]
    row = table[1].split()
    assert row[:5] == ["finetune", "Running", "rtx4090", "1", "0.69"]
    assert row[6].startswith("$")
    assert kubectl("get", "gr", "-n", ns, "-o", "name").stdout.strip() == \
        "gpurental.gpurental.dev/finetune"
    # The category is no kind's name: the singular names exactly one resource everywhere.
    assert "finetune" in kubectl("get", "gpurental-all", "-n", ns).stdout
    assert kubectl("get", "gpurental", "finetune", "-n", ns, "-o", "name").stdout.strip() == \
        "gpurental.gpurental.dev/finetune"
    assert "Name:         finetune" in kubectl("describe", "gpurental", "finetune", "-n", ns).stdout

    kubectl("patch", "gr", "finetune", "-n", ns, "--type", "merge",
            "-p", '{"spec":{"state":"Paused"}}')
    rentals.wait_phase("finetune", "Paused")
    jsonpath = "{.status.phase} {.status.conditions[?(@.type=='Paused')].reason}"
    assert kubectl("get", "gr", "finetune", "-n", ns, "-o",
                   f"jsonpath={jsonpath}").stdout == "Paused UserRequested"

    kubectl("patch", "gr", "finetune", "-n", ns, "--type", "merge",
            "-p", '{"spec":{"state":"Stopped"}}')
    rentals.wait_phase("finetune", "Stopped")
    kubectl("delete", "gr", "finetune", "-n", ns, "--wait=true", "--timeout=60s")
    assert kubectl("get", "gr", "-n", ns, "-o", "name").stdout.strip() == ""
    eventually(lambda: rentals.pods() == [] and rentals.pvcs() == [])


def test_reapplying_the_same_manifest_changes_nothing(rentals: Rentals, kubectl: Kubectl) -> None:
    apply(kubectl, rentals.namespace, "steady")
    rentals.wait_phase("steady", "Running")
    before = rentals.get("steady")["metadata"]["generation"]
    assert "unchanged" in apply(kubectl, rentals.namespace, "steady").stdout
    assert rentals.get("steady")["metadata"]["generation"] == before


@pytest.mark.parametrize(("extra", "field"), [
    ("  gpus: -1", "spec.gpus"),
    ("  gpus: 100000", "spec.gpus"),
    ('  gpus: "two"', "spec.gpus"),
    ("  state: Exploded", "spec.state"),
    ('  duration: "4 hours"', "spec.duration"),
    ("  onExpiry: Delete", "spec.onExpiry"),
    ('  storage: {size: "lots"}', "spec.storage.size"),
    ('  storage: {mountPath: "relative/path"}', "spec.storage.mountPath"),
    ('  sshKeys: ["not a key"]', "spec.sshKeys[0]"),
    ('  sshKeys: ["ssh-ed25519 AAAA x\\nssh-rsa BBBB injected"]', "spec.sshKeys[0]"),
    ("  wallet: Not_A_Name", "spec.wallet"),
])
def test_bad_manifests_are_rejected_with_the_field_named(
    rentals: Rentals, kubectl: Kubectl, extra: str, field: str
) -> None:
    result = apply(kubectl, rentals.namespace, "bad", extra, check=False)
    assert result.returncode != 0
    assert field in result.stderr, result.stderr
    assert rentals.pods() == []


@pytest.mark.parametrize(("image", "field"), [
    ("busybox; rm -rf /", "spec.image"),
    ("$(curl evil)", "spec.image"),
    ("", "spec.image"),
])
def test_hostile_images_are_rejected(rentals: Rentals, kubectl: Kubectl, image: str,
                                     field: str) -> None:
    manifest = RENTAL.format(name="bad", extra="").replace(
        "pytorch/pytorch:2.4.0-cuda12.1-cudnn9-runtime", f"'{image}'")
    result = kubectl("apply", "-n", rentals.namespace, "-f", "-", input=manifest, check=False)
    assert result.returncode != 0 and field in result.stderr, result.stderr


def test_what_a_first_time_user_reads(rentals: Rentals, kubectl: Kubectl) -> None:
    """`kubectl explain`, `describe` of each kind and both console scripts' --help."""
    explained = kubectl("explain", "gpurental.spec").stdout
    assert "FIELDS:" in explained
    for field in ("offer", "gpus", "image", "state", "storage", "duration", "wallet"):
        assert re.search(rf"^\s+{field}\s", explained, re.M), f"{field} not explained"
    ns = rentals.namespace
    apply(kubectl, ns, "described")
    rentals.wait_phase("described", "Running")
    described = kubectl("describe", "gpurental", "described", "-n", ns).stdout
    assert "Phase:" in described and "Events:" in described
    assert "Price Per Gpu Hour:" in kubectl("describe", "gpuoffer", "rtx4090").stdout
    for script in ("gpurental-operator", "kubectl-gpurental"):
        shown = subprocess.run([str(BIN / script), "--help"], capture_output=True, text=True)
        assert shown.returncode == 0 and shown.stdout.startswith("usage: "), shown.stderr
