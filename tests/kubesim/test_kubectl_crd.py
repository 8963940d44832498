"""kubectl against the emulator: CRDs, discovery, printer columns, short names, validation.

Every expected string is what kube-apiserver + kubectl 1.37 print for the same commands (the
tables come from the server's `Table` response, errors from its `Status` bodies, the rest is
kubectl's own formatting of what discovery says).
"""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
Table = Callable[[str], list[dict[str, str]]]

REPO = Path(__file__).resolve().parents[2]
AGE = re.compile(r"^\d+(s|m\d*s?)$")  # kubectl's HumanDuration for a fresh object: "0s", "12s"
GROUP = "conformance.kubesim.dev"


def gadget(name: str, spec: str, labels: str = "{}") -> str:
    return (f"apiVersion: {GROUP}/v1\nkind: Gadget\n"
            f"metadata: {{name: {name}, labels: {labels}}}\nspec: {spec}\n")


@pytest.fixture
def gadgets(sim_kubectl: Kubectl, gadget_crds: None, sim_namespace: str) -> str:
    """Two Gadgets in a fresh namespace (g1 with status ready/ratio); returns the namespace."""
    sim_kubectl("apply", "-n", sim_namespace, "-f", "-", input=(
        gadget("g1", "{size: small, owner: alice}", "{tier: gold}") + "---\n"
        + gadget("g2", "{size: large, replicas: 3}", "{tier: silver}")))
    sim_kubectl("patch", "gadget", "g1", "-n", sim_namespace, "--subresource=status",
                "--type=merge", "-p", '{"status": {"ready": true, "ratio": 0.5}}')
    return sim_namespace


# -- CRD lifecycle and discovery ---------------------------------------------------------------


def widget_crd(group: str) -> str:
    return f"""\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{group}
spec:
  group: {group}
  scope: Namespaced
  names: {{kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
"""


def test_apply_crd_reports_created_then_unchanged_and_becomes_established(
        sim_kubectl: Kubectl) -> None:
    group = f"t{uuid.uuid4().hex[:8]}.kubesim.dev"
    name = f"widgets.{group}"
    manifest = widget_crd(group)
    out = sim_kubectl("apply", "-f", "-", input=manifest).stdout
    assert out == f"customresourcedefinition.apiextensions.k8s.io/{name} created\n"
    out = sim_kubectl("apply", "-f", "-", input=manifest).stdout
    assert out == f"customresourcedefinition.apiextensions.k8s.io/{name} unchanged\n"
    out = sim_kubectl("wait", "--for=condition=Established", "--timeout=30s",
                      f"crd/{name}").stdout
    assert out == f"customresourcedefinition.apiextensions.k8s.io/{name} condition met\n"
    accepted = sim_kubectl("get", "crd", name, "-o",
                           "jsonpath={.status.acceptedNames.kind}").stdout
    assert accepted == "Widget"
    out = sim_kubectl("delete", "-f", "-", input=manifest).stdout
    assert out == f'customresourcedefinition.apiextensions.k8s.io "{name}" deleted\n'
    result = sim_kubectl("get", f"widgets.{group}", check=False)
    assert result.returncode != 0
    assert result.stderr == (
        f'error: the server doesn\'t have a resource type "widgets" in group "{group}"\n')


def test_crd_with_an_unknown_schema_field_is_rejected_by_strict_validation(
        sim_kubectl: Kubectl) -> None:
    """A flow-style YAML description with a comma makes a stray key kubectl sends as a field.

    (kubectl drops null-valued keys from the body, so the stray key needs a value to reach the
    server: ``{description: a, b: c}``.)
    """
    group = f"t{uuid.uuid4().hex[:8]}.kubesim.dev"
    manifest = widget_crd(group).replace(
        "x-kubernetes-preserve-unknown-fields: true",
        "x-kubernetes-preserve-unknown-fields: true\n"
        "          properties:\n"
        "            spec: {type: string, description: Price, currency: USD}")
    result = sim_kubectl("apply", "-f", "-", input=manifest, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith(
        'Error from server (BadRequest): error when creating "STDIN": CustomResourceDefinition '
        'in version "v1" cannot be handled as a CustomResourceDefinition: strict decoding '
        'error: unknown field "spec.versions[0].schema.openAPIV3Schema.properties'), (
        result.stderr)
    assert 'currency"' in result.stderr


def test_project_crds_install_cleanly_with_kubectl_apply(sim_kubectl: Kubectl) -> None:
    first = sim_kubectl("apply", "-f", str(REPO / "crds"), check=False)
    assert first.returncode == 0, first.stderr
    second = sim_kubectl("apply", "-f", str(REPO / "crds")).stdout
    assert second.splitlines() == [
        f"customresourcedefinition.apiextensions.k8s.io/{plural}.gpurental.dev unchanged"
        for plural in ("gpuoffers", "gpurentals", "wallets")]


def test_api_resources_lists_crd_names_scope_and_verbs(
        sim_kubectl: Kubectl, gadget_crds: None, parse_table: Table) -> None:
    out = sim_kubectl("api-resources", f"--api-group={GROUP}").stdout
    assert out.splitlines()[0].split() == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED",
                                           "KIND"]
    rows = {r["NAME"]: r for r in parse_table(out)}
    assert rows["gadgets"] == {"NAME": "gadgets", "SHORTNAMES": "gd",
                               "APIVERSION": f"{GROUP}/v1", "NAMESPACED": "true",
                               "KIND": "Gadget"}
    assert rows["gizmos"]["NAMESPACED"] == "false"
    wide = {r["NAME"]: r for r in parse_table(
        sim_kubectl("api-resources", f"--api-group={GROUP}", "-o", "wide").stdout)}
    assert wide["gadgets"]["CATEGORIES"] == "conformance"
    assert set(wide["gadgets"]["VERBS"].split(",")) == {
        "create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
    names = sim_kubectl("api-resources", "--namespaced=false", "-o", "name").stdout.split()
    assert f"gizmos.{GROUP}" in names and f"gadgets.{GROUP}" not in names


def test_crd_discovery_lists_verbs_in_apiextensions_order(
        sim_kubectl: Kubectl, gadget_crds: None, parse_table: Table) -> None:
    """apiextensions-apiserver publishes CRD verbs in a fixed order kubectl prints as is."""
    wide = {r["NAME"]: r for r in parse_table(
        sim_kubectl("api-resources", f"--api-group={GROUP}", "-o", "wide").stdout)}
    assert wide["gadgets"]["VERBS"] == (
        "delete,deletecollection,get,list,patch,create,update,watch")


# -- tables --------------------------------------------------------------------------------------


def test_get_prints_the_crd_printer_columns(
        sim_kubectl: Kubectl, gadgets: str, parse_table: Table) -> None:
    out = sim_kubectl("get", "gadgets", "-n", gadgets).stdout
    assert out.splitlines()[0].split() == ["NAME", "SIZE", "REPLICAS", "READY", "AGE"]
    rows = parse_table(out)
    assert [r["NAME"] for r in rows] == ["g1", "g2"]
    g1, g2 = rows
    assert (g1["SIZE"], g1["REPLICAS"], g1["READY"]) == ("small", "1", "true")
    assert (g2["SIZE"], g2["REPLICAS"], g2["READY"]) == ("large", "3", "")  # no status yet
    assert AGE.match(g1["AGE"]), g1["AGE"]


def test_wide_output_adds_priority_columns(
        sim_kubectl: Kubectl, gadgets: str, parse_table: Table) -> None:
    out = sim_kubectl("get", "gadgets", "-n", gadgets, "-o", "wide").stdout
    assert out.splitlines()[0].split() == ["NAME", "SIZE", "REPLICAS", "READY", "RATIO",
                                           "OWNER", "AGE"]
    g1 = parse_table(out)[0]
    assert (g1["RATIO"], g1["OWNER"]) == ("0.5", "alice")


def test_all_namespaces_and_label_columns(
        sim_kubectl: Kubectl, gadgets: str, parse_table: Table) -> None:
    out = sim_kubectl("get", "gadgets", "-A", "--show-labels").stdout
    assert out.splitlines()[0].split() == ["NAMESPACE", "NAME", "SIZE", "REPLICAS", "READY",
                                           "AGE", "LABELS"]
    mine = [r for r in parse_table(out) if r["NAMESPACE"] == gadgets]
    assert [(r["NAME"], r["LABELS"]) for r in mine] == [("g1", "tier=gold"),
                                                        ("g2", "tier=silver")]
    out = sim_kubectl("get", "gadgets", "-n", gadgets, "-L", "tier").stdout
    assert out.splitlines()[0].split()[-1] == "TIER"
    assert [r["TIER"] for r in parse_table(out)] == ["gold", "silver"]


def test_short_name_singular_and_kind_resolve_to_the_same_resource(
        sim_kubectl: Kubectl, gadgets: str) -> None:
    expected = sim_kubectl("get", "gadgets", "-n", gadgets, "-o", "name").stdout
    assert expected == f"gadget.{GROUP}/g1\ngadget.{GROUP}/g2\n"
    for alias in ("gd", "gadget", "Gadget", f"gadgets.{GROUP}", f"gadgets.v1.{GROUP}"):
        assert sim_kubectl("get", alias, "-n", gadgets, "-o", "name").stdout == expected, alias


def test_category_lists_every_kind_in_it(
        sim_kubectl: Kubectl, gadgets: str, parse_table: Table) -> None:
    sim_kubectl("apply", "-f", "-", input=(
        f"apiVersion: {GROUP}/v1\nkind: Gizmo\nmetadata: {{name: z-{gadgets}}}\n"
        "spec: {colour: red}\n"))
    out = sim_kubectl("get", "conformance", "-n", gadgets).stdout
    gadget_part, gizmo_part = out.split("\n\n")
    assert [r["NAME"] for r in parse_table(gadget_part)] == [f"gadget.{GROUP}/g1",
                                                             f"gadget.{GROUP}/g2"]
    gizmos = {r["NAME"]: r["COLOUR"] for r in parse_table(gizmo_part)}
    assert gizmos[f"gizmo.{GROUP}/z-{gadgets}"] == "red"
    sim_kubectl("delete", "gizmo", f"z-{gadgets}")


def test_project_crd_short_names_and_category(
        sim_kubectl: Kubectl, sim_namespace: str, parse_table: Table) -> None:
    sim_kubectl("apply", "-f", str(REPO / "crds"))
    sim_kubectl("wait", "--for=condition=Established", "--timeout=30s",
                "crd/gpurentals.gpurental.dev", "crd/wallets.gpurental.dev",
                "crd/gpuoffers.gpurental.dev")
    sim_kubectl("apply", "-n", sim_namespace, "-f", "-", input="""\
apiVersion: gpurental.dev/v1alpha1
kind: GpuRental
metadata: {name: finetune}
spec: {offer: rtx4090, gpus: 2, image: "pytorch/pytorch:2.4.0"}
---
apiVersion: gpurental.dev/v1alpha1
kind: Wallet
metadata: {name: default}
spec: {budget: "500.00"}
""")
    by_short = sim_kubectl("get", "gr", "-n", sim_namespace).stdout
    assert sim_kubectl("get", "rental", "-n", sim_namespace).stdout.splitlines()[0] == (
        by_short.splitlines()[0])
    (row,) = parse_table(by_short)
    assert row["NAME"] == "finetune"
    assert row["GPUS"] == "2" and row["OFFER"] == "rtx4090"
    # kubectl expands a category before it resolves a resource name, so the category is named
    # unlike every kind: `gpurental-all` lists every kind, `gpurental` means rentals only.
    out = sim_kubectl("get", "gpurental-all", "-n", sim_namespace, "-o", "name").stdout
    assert set(out.split()) == {"gpurental.gpurental.dev/finetune",
                                "wallet.gpurental.dev/default"}
    out = sim_kubectl("get", "gpurental", "-n", sim_namespace, "-o", "name").stdout
    assert out.split() == ["gpurental.gpurental.dev/finetune"]
    assert sim_kubectl("get", "gpurental", "finetune", "-n", sim_namespace, "-o",
                       "name").stdout.strip() == "gpurental.gpurental.dev/finetune"


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "error"), [
    ("{size: huge}",
     'spec.size: Unsupported value: "huge": supported values: "small", "large"'),
    ("{size: small, replicas: 0}",
     "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or "
     "equal to 1"),
    ("{size: small, owner: Bob}",
     "spec.owner: Invalid value: \"Bob\": spec.owner in body should match '^[a-z]+$'"),
    ("{replicas: 2}", "spec.size: Required value"),
    ("{size: small, tags: [a, b, c, d]}", "spec.tags: Too many: 4: must have at most 3 items"),
], ids=["enum", "minimum", "pattern", "required", "maxItems"])
def test_invalid_custom_resource_is_rejected_naming_the_field(
        sim_kubectl: Kubectl, gadget_crds: None, sim_namespace: str, spec: str,
        error: str) -> None:
    result = sim_kubectl("apply", "-n", sim_namespace, "-f", "-",
                         input=gadget("bad", spec), check=False)
    assert result.returncode == 1
    assert result.stderr == f'The Gadget "bad" is invalid: {error}\n'
    assert sim_kubectl("get", "gadget", "bad", "-n", sim_namespace, check=False).returncode == 1


def test_wrong_type_is_reported_with_the_type_name(
        sim_kubectl: Kubectl, gadget_crds: None, sim_namespace: str) -> None:
    result = sim_kubectl("apply", "-n", sim_namespace, "-f", "-",
                         input=gadget("bad", '{size: small, replicas: "two"}'), check=False)
    assert result.stderr == (
        'The Gadget "bad" is invalid: spec.replicas: Invalid value: "string": spec.replicas '
        'in body must be of type integer: "string"\n')


def test_several_errors_are_listed_one_per_line(
        sim_kubectl: Kubectl, gadget_crds: None, sim_namespace: str) -> None:
    result = sim_kubectl("apply", "-n", sim_namespace, "-f", "-",
                         input=gadget("bad", "{size: huge, replicas: 11}"), check=False)
    lines = result.stderr.splitlines()
    assert lines[0] == 'The Gadget "bad" is invalid: '
    assert sorted(lines[1:]) == [
        "* spec.replicas: Invalid value: 11: spec.replicas in body should be less than or "
        "equal to 10",
        '* spec.size: Unsupported value: "huge": supported values: "small", "large"']


def test_unknown_field_is_rejected_by_strict_field_validation(
        sim_kubectl: Kubectl, gadget_crds: None, sim_namespace: str) -> None:
    result = sim_kubectl("apply", "-n", sim_namespace, "-f", "-",
                         input=gadget("bad", "{size: small, colour: red}"), check=False)
    assert result.returncode == 1
    assert result.stderr == (
        'Error from server (BadRequest): error when creating "STDIN": Gadget in version "v1" '
        'cannot be handled as a Gadget: strict decoding error: unknown field "spec.colour"\n')


def test_unknown_fields_are_pruned_when_validation_is_ignored(
        sim_kubectl: Kubectl, gadget_crds: None, sim_namespace: str) -> None:
    sim_kubectl("create", "--validate=ignore", "-n", sim_namespace, "-f", "-",
                input=gadget("loose", "{size: small, colour: red}"))
    spec = yaml.safe_load(sim_kubectl("get", "gadget", "loose", "-n", sim_namespace,
                                      "-o", "jsonpath={.spec}").stdout)
    assert spec == {"size": "small", "replicas": 1}  # pruned, and the default applied


def test_explain_reads_the_crd_schema_from_openapi(
        sim_kubectl: Kubectl, gadget_crds: None) -> None:
    out = sim_kubectl("explain", "gadgets.spec").stdout
    assert f"GROUP:      {GROUP}" in out
    assert "KIND:       Gadget" in out
    assert "VERSION:    v1" in out
    assert "FIELD: spec <Object>" in out
    assert "What the user wants." in out
    assert re.search(r"^\s+size\t<string> -required-$", out, re.M), out
    assert re.search(r"^\s+replicas\t<integer>$", out, re.M), out
    out = sim_kubectl("explain", "gadget.spec.size").stdout
    assert "How big the gadget is." in out
    assert "ENUM:" in out and "small" in out and "large" in out
