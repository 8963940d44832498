"""The Helm chart with the real helm: lint, template with default and other values, every
rendered built-in object validated offline (kubernetes-validate), custom objects checked
against their CRDs, least-privilege RBAC, and values.schema.json rejecting bad values."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import crd_schema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "gpu-rental-operator"

RELEASE, NAMESPACE = "gpr", "gpu-system"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest known.
K8S_VERSIONS = ("1.28.0", "1.35.0")
CRD_KINDS = {  # kinds defined by CRDs: checked for well-formedness, not by kubernetes-validate
    ("gpurental.dev/v1alpha1", "GpuOffer"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("cert-manager.io/v1", "Certificate"),
    ("cert-manager.io/v1", "Issuer"),
}
CLUSTER_SCOPED = {
    "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "GpuOffer",
    "Namespace", "ValidatingWebhookConfiguration", "PriorityClass",
}
OFFERS = [
    {"name": "rtx4090", "gpu": {"product": "NVIDIA-GeForce-RTX-4090"}, "pricePerGpuHour": "0.69",
     "maxGpus": 8, "maxDuration": "72h",
     "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]},
    {"name": "a100-mig", "gpu": {"product": "NVIDIA-A100-SXM4-80GB",
                                 "resourceName": "nvidia.com/mig-1g.10gb"},
     "pricePerGpuHour": "0.25", "storagePricePerGiBHour": "0.0001"},
]
SCENARIOS: dict[str, dict[str, Any]] = {
    "default": {},
    "ha": {"ha": {"enabled": True, "replicas": 3}},
    "ha-namespaced": {"ha": {"enabled": True}, "watchNamespaces": ["team-a", "team-b"]},
    "monitoring": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "offers": OFFERS,
    },
    "webhook": {"webhook": {"enabled": True}, "watchNamespaces": ["team-a"]},
    "webhook-own-cert": {"webhook": {"enabled": True, "secretName": "my-tls", "caBundle": "Q0E=",
                                     "certManager": {"enabled": False}}},
    "crds-off": {"crds": {"enabled": False}, "dashboards": {"enabled": False},
                 "rbac": {"userRoles": False}},
    "customised": {
        "fullnameOverride": "gpurental", "image": {"digest": "sha256:" + "a" * 64},
        "metering": {"interval": 5}, "provisioning": {"timeout": 120},
        "extraArgs": ["--verbose"], "crds": {"keep": False},
        "prometheusRule": {
            "enabled": True, "operatorJobRegex": "gpu-system/gpurental-metrics",
            "runbookBaseURL": "https://wiki.example.com/gpu/", "ruleLabels": {"team": "platform"},
            "disabledAlerts": ["GpuRentalBurnRateSpike"],
        },
        "dashboards": {"folder": "GPU", "namespace": "monitoring"},
    },
}


def helm_run(helm: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([helm, *args], capture_output=True, text=True, check=False)


def template(helm: str, tmp_path: Path, values: dict, *extra: str) -> subprocess.CompletedProcess:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    return helm_run(helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE,
                    "--values", str(values_file), *extra)


def render(helm: str, tmp_path: Path, values: dict) -> list[dict]:
    proc = template(helm, tmp_path, values)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def find(objs: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [o for o in objs if o["kind"] == kind and name in (None, o["metadata"]["name"])]


def one(objs: list[dict], kind: str, name: str | None = None) -> dict:
    (found,) = find(objs, kind, name)
    return found


def workload(objs: list[dict]) -> dict:
    (found,) = [o for o in objs if o["kind"] == "Deployment"]
    return found


@pytest.fixture(scope="module", params=sorted(SCENARIOS))
def scenario(request, helm, tmp_path_factory) -> tuple[str, list[dict]]:
    name = request.param
    return name, render(helm, tmp_path_factory.mktemp(name), SCENARIOS[name])


# --- helm itself ----------------------------------------------------------------------------

@pytest.mark.parametrize("strict", [False, True], ids=["lint", "lint-strict"])
def test_helm_lint(helm, strict):
    proc = helm_run(helm, "lint", str(CHART), *(["--strict"] if strict else []))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


@pytest.mark.parametrize("name", ["ha", "monitoring", "customised"])
def test_helm_lint_strict_with_values(helm, tmp_path, name):
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(SCENARIOS[name]))
    proc = helm_run(helm, "lint", "--strict", str(CHART), "--values", str(values))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_notes_render(helm):
    proc = helm_run(helm, "install", RELEASE, str(CHART), "--namespace", NAMESPACE,
                    "--dry-run=client")
    assert proc.returncode == 0, proc.stderr
    notes = proc.stdout.split("NOTES:", 1)[1]
    assert f"svc/{RELEASE}-gpu-rental-operator-metrics" in notes and "GpuRental" in notes


# --- every rendered object ------------------------------------------------------------------

@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_builtin_objects_are_valid(scenario, kubernetes_validate, version):
    _, objs = scenario
    problems = []
    for obj in objs:
        if (obj["apiVersion"], obj["kind"]) in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(map(str, exc.path))
            problems.append(f"{obj['kind']}/{obj['metadata']['name']}: {where}: {exc.message}")
    assert not problems, f"invalid on Kubernetes {version}:\n" + "\n".join(problems)


def stray_keys(node: Any, path: str = "") -> list[str]:
    """Keys without a value: what `{description: a, b}` parses to (`b` is a key)."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if value is None and key not in ("default", "example"):
                found.append(f"{path}.{key}")
            found += stray_keys(value, f"{path}.{key}")
    elif isinstance(node, list):
        for n, value in enumerate(node):
            found += stray_keys(value, f"{path}[{n}]")
    return found


@pytest.mark.parametrize("source", sorted((REPO / "crds").glob("*.yaml")), ids=lambda p: p.name)
def test_crds_dir_is_valid(kubernetes_validate, source):
    crd = yaml.safe_load(source.read_text())
    stray = stray_keys(crd)
    assert not stray, (
        f"crds/{source.name}: an unquoted comma in a flow mapping made these keys "
        f"(quote the description): {stray}"
    )
    kubernetes_validate.validate(crd, K8S_VERSIONS[-1], strict=True)


def test_custom_objects_are_well_formed(scenario, promtool, tmp_path):
    _, objs = scenario
    for obj in objs:
        key = (obj["apiVersion"], obj["kind"])
        if key not in CRD_KINDS:
            continue
        assert set(obj) <= {"apiVersion", "kind", "metadata", "spec"}, obj["kind"]
        assert obj["metadata"]["name"], obj
        if crd_schema.is_custom(obj):
            assert not crd_schema.errors(obj)
        elif obj["kind"] == "PrometheusRule":
            rules = tmp_path / "rendered-rules.yaml"
            rules.write_text(yaml.safe_dump(obj["spec"]))
            proc = subprocess.run([promtool, "check", "rules", str(rules)],
                                  capture_output=True, text=True, check=False)
            assert proc.returncode == 0, proc.stdout + proc.stderr
        elif obj["kind"] in ("Certificate", "Issuer"):
            assert obj["spec"], obj
        elif obj["kind"] == "ServiceMonitor":
            (endpoint,) = obj["spec"]["endpoints"]
            assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
        else:
            raise AssertionError(f"no check for {key}")


def test_namespaces_and_labels(scenario):
    _, objs = scenario
    for obj in objs:
        meta = obj["metadata"]
        if obj["kind"] in CLUSTER_SCOPED:
            assert "namespace" not in meta, f"{obj['kind']}/{meta['name']}"
        else:
            assert meta.get("namespace"), f"{obj['kind']}/{meta['name']} has no namespace"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        assert meta["labels"]["app.kubernetes.io/part-of"] == "gpu-rental-operator"


def test_rbac_has_no_wildcards(scenario):
    _, objs = scenario
    for role in find(objs, "ClusterRole") + find(objs, "Role"):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                assert "*" not in rule.get(field, []), f"{role['metadata']['name']}: {rule}"
                assert not any("*" in v for v in rule.get(field, []))


# --- RBAC -----------------------------------------------------------------------------------

def triples(role: dict) -> set[tuple[str, str, str]]:
    return {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"]
            for r in rule["resources"] for v in rule["verbs"]}


def grant(group: str, resources: str, verbs: str) -> set[tuple[str, str, str]]:
    return {(group, r, v) for r in resources.split() for v in verbs.split()}


# What the code calls, verb by verb (tests/e2e/test_rbac.py proves it against the running
# operator on an emulator that enforces RBAC).
OPERATOR_NEEDS = (
    grant("gpurental.dev", "gpurentals", "get list watch patch")
    | grant("gpurental.dev", "gpurentals/status wallets/status gpuoffers/status", "patch")
    | grant("gpurental.dev", "wallets", "get list watch")
    | grant("gpurental.dev", "gpuoffers", "list watch")
    | grant("", "pods persistentvolumeclaims", "list watch create delete")
    | grant("", "secrets", "list watch create patch delete")
    | grant("", "services", "list watch create delete")
    | grant("networking.k8s.io", "ingresses", "list watch create delete")
    | grant("", "events", "create list")
    | grant("apiextensions.k8s.io", "customresourcedefinitions", "list watch")
    | grant("", "nodes", "list watch")  # node loss: the node-lifecycle controller's verdict
    | grant("coordination.k8s.io", "leases", "get")  # a lost node's last heartbeat
    | grant("", "persistentvolumes", "get")  # can a lost node's volume move?
)
LEADER_ELECTION = grant("coordination.k8s.io", "leases", "get create update")


def test_operator_role_is_least_privilege(scenario):
    name, objs = scenario
    fullname = "gpurental" if name == "customised" else f"{RELEASE}-gpu-rental-operator"
    role = one(objs, "ClusterRole", fullname)
    # The same cluster-wide needs with --namespace: the operator's informers watch each
    # namespace it serves and need no list of namespaces.
    assert triples(role) == OPERATOR_NEEDS
    binding = one(objs, "ClusterRoleBinding", fullname)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                  "kind": "ClusterRole", "name": fullname}
    (subject,) = binding["subjects"]
    sa = one(objs, "ServiceAccount")
    assert subject == {"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                       "namespace": NAMESPACE}
    pod = workload(objs)["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == sa["metadata"]["name"]


def test_user_roles(helm, tmp_path):
    objs = render(helm, tmp_path, {})
    view, user, admin = (one(objs, "ClusterRole", n)
                         for n in ("gpurental-view", "gpurental-user", "gpurental-admin"))
    labels = "rbac.authorization.k8s.io/aggregate-to-"
    assert view["metadata"]["labels"][f"{labels}view"] == "true"
    assert user["metadata"]["labels"][f"{labels}edit"] == "true"
    # Namespace admins must not top up their own wallets: gpurental-admin is not aggregated.
    assert not any(k.startswith(labels) for k in admin["metadata"]["labels"])
    write = "create update patch delete deletecollection"
    user_grants = triples(user)
    assert grant("gpurental.dev", "gpurentals", "get list watch " + write) <= user_grants
    assert not {t for t in user_grants if t[1].endswith("/status")}
    assert not {t for t in user_grants if t[1] in ("wallets", "gpuoffers") and t[2] in write}
    assert grant("gpurental.dev", "gpuoffers wallets", write) <= triples(admin)
    assert all(v in ("get", "list", "watch") for _, _, v in triples(view))


# --- the operator's pod ---------------------------------------------------------------------

def test_default_deployment(helm, tmp_path):
    objs = render(helm, tmp_path, {})
    deploy = one(objs, "Deployment")
    spec = deploy["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["gpurental-operator"]
    assert container["args"] == [
        "--all-namespaces", "--metrics-port=8080", "--metering-interval=30",
        "--provisioning-timeout=600", "--on-demand-priority-class=gpurental-on-demand",
        "--interruptible-priority-class=gpurental-interruptible",
    ]
    assert container["ports"] == [{"name": "metrics", "containerPort": 8080, "protocol": "TCP"}]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"]
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsNonRoot"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    service = one(objs, "Service")
    assert service["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert not find(objs, "PrometheusRule") and not find(objs, "ServiceMonitor")
    assert not find(objs, "GpuOffer") and not find(objs, "Role")


def test_customised_arguments(helm, tmp_path):
    objs = render(helm, tmp_path, SCENARIOS["customised"])
    (container,) = workload(objs)["spec"]["template"]["spec"]["containers"]
    assert container["args"] == [
        "--all-namespaces", "--metrics-port=8080", "--metering-interval=5",
        "--provisioning-timeout=120", "--on-demand-priority-class=gpurental-on-demand",
        "--interruptible-priority-class=gpurental-interruptible", "--verbose",
    ]
    repository = "ghcr.io/gpu-rental-operator/gpu-rental-operator"
    assert container["image"] == f"{repository}@sha256:{'a' * 64}"


@pytest.mark.parametrize("name", ["ha", "ha-namespaced"])
def test_ha_leader_election(helm, tmp_path, name):
    objs = render(helm, tmp_path, SCENARIOS[name])
    deploy = one(objs, "Deployment")
    assert deploy["spec"]["replicas"] == SCENARIOS[name]["ha"].get("replicas", 2)
    # A rolling update is safe: the new pod stands by until the old one gives the Lease up.
    assert deploy["spec"]["strategy"] == {"type": "RollingUpdate"}
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    lease = f"{RELEASE}-gpu-rental-operator"
    assert [a for a in container["args"] if a.startswith("--leader")] == [
        f"--leader-election={lease}"]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    # The Lease is written in the release's namespace only, never cluster-wide.
    role = one(objs, "Role", f"{lease}-leader-election")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert triples(role) == LEADER_ELECTION
    binding = one(objs, "RoleBinding", f"{lease}-leader-election")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"][0]["namespace"] == NAMESPACE
    namespaces = SCENARIOS[name].get("watchNamespaces")
    assert [a for a in container["args"] if a.startswith("--namespace")] == [
        f"--namespace={ns}" for ns in namespaces or ()]
    assert not find(objs, "StatefulSet")
    assert one(objs, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


# --- CRDs -----------------------------------------------------------------------------------

def test_chart_crds_are_in_sync_with_crds_dir():
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "sync_chart_crds.py"), "--check"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_rendered_crds_equal_crds_dir(helm, tmp_path):
    objs = render(helm, tmp_path, {})
    rendered = {o["metadata"]["name"]: o for o in find(objs, "CustomResourceDefinition")}
    sources = [yaml.safe_load(p.read_text()) for p in sorted((REPO / "crds").glob("*.yaml"))]
    assert len(sources) == 3
    for source in sources:
        crd = rendered[source["metadata"]["name"]]
        assert crd["spec"] == source["spec"]
        assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
        assert source["metadata"]["labels"].items() <= crd["metadata"]["labels"].items()


def test_crds_off_and_not_kept(helm, tmp_path):
    assert not find(render(helm, tmp_path, {"crds": {"enabled": False}}),
                    "CustomResourceDefinition")
    objs = render(helm, tmp_path, {"crds": {"keep": False}})
    assert all("annotations" not in c["metadata"] for c in find(objs, "CustomResourceDefinition"))


def test_offers_from_values(helm, tmp_path):
    offers = find(render(helm, tmp_path, {"offers": OFFERS}), "GpuOffer")
    assert [o["metadata"]["name"] for o in offers] == ["rtx4090", "a100-mig"]
    assert offers[0]["spec"] == {k: v for k, v in OFFERS[0].items() if k != "name"}
    for offer in offers:
        assert not crd_schema.errors(offer)


# --- monitoring -----------------------------------------------------------------------------

def test_dashboard_configmap(helm, tmp_path):
    objs = render(helm, tmp_path, {})
    cm = one(objs, "ConfigMap", f"{RELEASE}-gpu-rental-operator-dashboards")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads((CHART / "dashboards" / "gpu-rentals.json").read_text())
    assert json.loads(cm["data"]["gpu-rentals.json"]) == shipped
    custom = one(render(helm, tmp_path, SCENARIOS["customised"]), "ConfigMap")
    assert custom["metadata"]["namespace"] == "monitoring"
    assert custom["metadata"]["annotations"] == {"grafana_folder": "GPU"}


def test_prometheusrule_is_the_alerts_file(helm, tmp_path):
    objs = render(helm, tmp_path, SCENARIOS["monitoring"])
    rule = one(objs, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    source = yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())
    assert rule["spec"] == source


def test_prometheusrule_values(helm, tmp_path):
    rule = one(render(helm, tmp_path, SCENARIOS["customised"]), "PrometheusRule")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert "GpuRentalBurnRateSpike" not in alerts and len(alerts) == 7
    assert alerts["GpuRentalOperatorDown"]["expr"].strip() == (
        'absent(up{job=~"gpu-system/gpurental-metrics"} == 1)'
    )
    for name, alert in alerts.items():
        assert alert["labels"]["team"] == "platform"
        assert alert["labels"]["severity"] in ("warning", "critical")
        assert alert["annotations"]["runbook_url"] == f"https://wiki.example.com/gpu#{name.lower()}"


def test_servicemonitor_selects_the_metrics_service(helm, tmp_path):
    objs = render(helm, tmp_path, SCENARIOS["monitoring"])
    monitor, service = one(objs, "ServiceMonitor"), one(objs, "Service")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    # The job label is the Service's app.kubernetes.io/name, which the alert's regex matches.
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "gpu-rental-operator"


# --- values.schema.json ---------------------------------------------------------------------

BAD_VALUES = {
    "negative metering interval": ({"metering": {"interval": -1}}, "/metering/interval"),
    "HA with one replica": ({"ha": {"enabled": True, "replicas": 1}}, "/ha/replicas"),
    "two operators without HA": ({"replicaCount": 2}, "/replicaCount"),
    "price as a float": ({"offers": [{"name": "x", "gpu": {"product": "P"},
                                      "pricePerGpuHour": 0.69}]}, "pricePerGpuHour"),
    "offer without a price": ({"offers": [{"name": "x", "gpu": {"product": "P"}}]}, "/offers/0"),
    "typo in a key": ({"serviceMonitor": {"enabeld": True}}, "enabeld"),
    "unknown top-level key": ({"metrcis": {}}, "metrcis"),
    "bad pull policy": ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    "unknown alert": ({"prometheusRule": {"disabledAlerts": ["Nope"]}}, "disabledAlerts"),
}


@pytest.mark.parametrize(("values", "where"), BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_schema_rejects_bad_values(helm, tmp_path, values, where):
    proc = template(helm, tmp_path, values)
    assert proc.returncode != 0, f"helm template accepted {values}"
    assert where in proc.stderr, proc.stderr


# --- validating webhook ---------------------------------------------------------------------

def test_webhook_is_off_by_default(helm, tmp_path):
    objs = render(helm, tmp_path, {})
    assert not find(objs, "ValidatingWebhookConfiguration")
    container = workload(objs)["spec"]["template"]["spec"]["containers"][0]
    assert not any(a.startswith("--webhook") for a in container["args"])


def test_webhook_with_cert_manager(helm, tmp_path):
    objs = render(helm, tmp_path, SCENARIOS["webhook"])
    fullname = f"{RELEASE}-gpu-rental-operator"
    config = one(objs, "ValidatingWebhookConfiguration", fullname)
    assert config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == \
        f"{NAMESPACE}/{fullname}-webhook"
    (webhook,) = config["webhooks"]
    assert webhook["clientConfig"] == {"service": {
        "name": f"{fullname}-webhook", "namespace": NAMESPACE, "path": "/validate-gpurental",
        "port": 443}}
    assert webhook["rules"] == [{"apiGroups": ["gpurental.dev"], "apiVersions": ["v1alpha1"],
                                 "resources": ["gpurentals"],
                                 "operations": ["CREATE", "UPDATE"], "scope": "Namespaced"}]
    assert webhook["namespaceSelector"]["matchExpressions"][0]["values"] == ["team-a"]
    service = one(objs, "Service", f"{fullname}-webhook")
    assert service["spec"]["ports"] == [{"name": "webhook", "port": 443,
                                         "targetPort": "webhook", "protocol": "TCP"}]
    cert = one(objs, "Certificate", f"{fullname}-webhook")
    assert cert["spec"]["secretName"] == f"{fullname}-webhook-tls"
    assert f"{fullname}-webhook.{NAMESPACE}.svc" in cert["spec"]["dnsNames"]
    issuer = one(objs, "Issuer", f"{fullname}-selfsigned")
    assert issuer["spec"] == {"selfSigned": {}}
    assert cert["spec"]["issuerRef"] == {"kind": "Issuer", "name": f"{fullname}-selfsigned"}
    pod = workload(objs)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert "--webhook-port=9443" in container["args"]
    assert "--webhook-cert-dir=/etc/gpurental/webhook-tls" in container["args"]
    assert {"name": "webhook", "containerPort": 9443, "protocol": "TCP"} in container["ports"]
    assert {"name": "webhook-tls", "mountPath": "/etc/gpurental/webhook-tls",
            "readOnly": True} in container["volumeMounts"]
    assert {"name": "webhook-tls", "secret": {"secretName": f"{fullname}-webhook-tls"}} in \
        pod["volumes"]


def test_webhook_with_own_certificate(helm, tmp_path):
    objs = render(helm, tmp_path, SCENARIOS["webhook-own-cert"])
    assert not find(objs, "Certificate") and not find(objs, "Issuer")
    (webhook,) = one(objs, "ValidatingWebhookConfiguration")["webhooks"]
    assert webhook["clientConfig"]["caBundle"] == "Q0E="
    assert {"name": "webhook-tls", "secret": {"secretName": "my-tls"}} in \
        workload(objs)["spec"]["template"]["spec"]["volumes"]
    missing = template(helm, tmp_path, {"webhook": {"enabled": True,
                                                    "certManager": {"enabled": False}}})
    assert missing.returncode != 0 and "webhook.caBundle" in missing.stderr


# --- idle auto-pause ------------------------------------------------------------------------

def test_idle_auto_pause_is_off_by_default_and_passes_its_flags_when_on(helm, tmp_path):
    container = workload(render(helm, tmp_path, {}))["spec"]["template"]["spec"]["containers"][0]
    assert not any(a.startswith(("--prometheus-url", "--idle")) for a in container["args"])
    values = {"idle": {"prometheusUrl": "http://prometheus.monitoring:9090", "checkInterval": 30}}
    objs = render(helm, tmp_path, values)
    container = workload(objs)["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][6:8] == ["--prometheus-url=http://prometheus.monitoring:9090",
                                      "--idle-check-interval=30"]
    bad = helm_run(helm, "template", RELEASE, str(CHART), "--set", "idle.prometheusUrl=nope")
    assert bad.returncode != 0 and "/idle/prometheusUrl" in bad.stderr, bad.stderr


def test_rental_priority_classes(helm, tmp_path):
    """On-demand pods preempt only interruptible ones; interruptible pods never preempt."""
    classes = {o["metadata"]["name"]: o for o in find(render(helm, tmp_path, {}), "PriorityClass")}
    on_demand, spot = classes["gpurental-on-demand"], classes["gpurental-interruptible"]
    assert on_demand["value"] == 0 and on_demand["preemptionPolicy"] == "PreemptLowerPriority"
    assert spot["value"] < on_demand["value"] and spot["preemptionPolicy"] == "Never"
    assert not on_demand["globalDefault"] and not spot["globalDefault"]
    none = render(helm, tmp_path, {"rentalPriorityClasses": {
        "create": False, "onDemand": {"name": "", "value": 0},
        "interruptible": {"name": "", "value": -1000}}})
    assert not find(none, "PriorityClass")
    (container,) = workload(none)["spec"]["template"]["spec"]["containers"]
    assert not any("priority-class" in arg for arg in container["args"])


# --- reaching rentals -----------------------------------------------------------------------

def test_sshd_image_flag_only_when_set(helm, tmp_path):
    container = workload(render(helm, tmp_path, {}))["spec"]["template"]["spec"]["containers"][0]
    assert not any(a.startswith("--sshd-image") for a in container["args"])
    objs = render(helm, tmp_path, {"ssh": {"image": "corp/sshd:1"}})
    container = workload(objs)["spec"]["template"]["spec"]["containers"][0]
    assert "--sshd-image=corp/sshd:1" in container["args"]


def test_network_policy_lets_only_named_declared_ports_in(helm, tmp_path):
    assert not find(render(helm, tmp_path, {}), "NetworkPolicy")
    objs = render(helm, tmp_path, {"watchNamespaces": ["team-a", "team-b"],
                                   "networkPolicy": {"enabled": True}})
    policies = find(objs, "NetworkPolicy")
    assert sorted(p["metadata"]["namespace"] for p in policies) == ["team-a", "team-b"]
    assert policies[0]["spec"] == {
        "podSelector": {"matchLabels": {"app.kubernetes.io/managed-by": "gpu-rental-operator"}},
        "policyTypes": ["Ingress"],
        "ingress": [{"ports": [{"port": "ssh", "protocol": "TCP"},
                               {"port": "jupyter", "protocol": "TCP"}]}]}
    nowhere = template(helm, tmp_path, {"networkPolicy": {"enabled": True}})
    assert nowhere.returncode != 0 and "networkPolicy.namespaces" in nowhere.stderr
