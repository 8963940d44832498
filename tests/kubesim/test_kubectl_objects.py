"""kubectl against the emulator: reading, selecting, patching, editing, deleting and watching.

Expected output is what kubectl 1.37 prints against kube-apiserver: kubectl's own messages
(`<resource>.<group>/<name> patched`, `... deleted from <ns> namespace`) and the server's Status
messages it relays (conflicts, unsupported patch types, field selectors).
"""

from __future__ import annotations

import json
import queue
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
Table = Callable[[str], list[dict[str, str]]]

GROUP = "conformance.kubesim.dev"
RESOURCE = f"gadget.{GROUP}"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def gadget(name: str, spec: str, labels: str = "{}") -> str:
    return (f"apiVersion: {GROUP}/v1\nkind: Gadget\n"
            f"metadata: {{name: {name}, labels: {labels}}}\nspec: {spec}\n")


@pytest.fixture
def ns(sim_kubectl: Kubectl, gadget_crds: None, sim_namespace: str) -> str:
    """A namespace with three labelled Gadgets: g1 (gold), g2 (silver), g3 (no tier)."""
    sim_kubectl("apply", "-n", sim_namespace, "-f", "-", input="---\n".join([
        gadget("g1", "{size: small, owner: alice}", "{tier: gold, team: a}"),
        gadget("g2", "{size: large, replicas: 3}", "{tier: silver, team: a}"),
        gadget("g3", "{size: small}", "{team: b}")]))
    return sim_namespace


def get_json(kubectl: Kubectl, *args: str) -> Any:
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


# -- output formats ----------------------------------------------------------------------------


def test_json_and_yaml_show_the_stored_object_with_server_fields(
        sim_kubectl: Kubectl, ns: str) -> None:
    obj = get_json(sim_kubectl, "gadget", "g1", "-n", ns)
    assert obj["apiVersion"] == f"{GROUP}/v1" and obj["kind"] == "Gadget"
    meta = obj["metadata"]
    assert meta["name"] == "g1" and meta["namespace"] == ns
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                        meta["uid"])
    assert meta["resourceVersion"].isdigit()
    assert RFC3339.match(meta["creationTimestamp"])
    assert meta["generation"] == 1
    assert obj["spec"] == {"size": "small", "owner": "alice", "replicas": 1}
    as_yaml = yaml.safe_load(sim_kubectl("get", "gadget", "g1", "-n", ns, "-o", "yaml").stdout)
    assert as_yaml == obj


def test_list_output_is_a_kubectl_list(sim_kubectl: Kubectl, ns: str) -> None:
    listed = get_json(sim_kubectl, "gadgets", "-n", ns)
    assert listed["apiVersion"] == "v1" and listed["kind"] == "List"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["g1", "g2", "g3"]
    assert all(i["kind"] == "Gadget" for i in listed["items"])


def test_jsonpath_custom_columns_and_name_output(
        sim_kubectl: Kubectl, ns: str, parse_table: Table) -> None:
    out = sim_kubectl("get", "gadgets", "-n", ns, "-o",
                      "jsonpath={.items[*].metadata.name}").stdout
    assert out == "g1 g2 g3"
    out = sim_kubectl("get", "gadgets", "-n", ns, "-o",
                      'jsonpath={range .items[*]}{.metadata.name}={.spec.replicas}{"\\n"}{end}'
                      ).stdout
    assert out == "g1=1\ng2=3\ng3=1\n"
    out = sim_kubectl("get", "gadget", "g2", "-n", ns, "-o", "jsonpath={.spec.size}").stdout
    assert out == "large"
    out = sim_kubectl("get", "gadgets", "-n", ns, "-o",
                      "custom-columns=NAME:.metadata.name,SIZE:.spec.size,OWNER:.spec.owner"
                      ).stdout
    assert [(r["NAME"], r["SIZE"], r["OWNER"]) for r in parse_table(out)] == [
        ("g1", "small", "alice"), ("g2", "large", "<none>"), ("g3", "small", "<none>")]
    out = sim_kubectl("get", "gadgets", "-n", ns, "-o", "name").stdout
    assert out == f"{RESOURCE}/g1\n{RESOURCE}/g2\n{RESOURCE}/g3\n"


def test_get_missing_object_is_not_found(sim_kubectl: Kubectl, ns: str) -> None:
    result = sim_kubectl("get", "gadget", "nope", "-n", ns, check=False)
    assert result.returncode == 1
    assert result.stderr == (
        f'Error from server (NotFound): gadgets.{GROUP} "nope" not found\n')
    assert sim_kubectl("get", "gadget", "nope", "-n", ns, "--ignore-not-found").stdout == ""


def test_create_of_an_existing_name_conflicts_and_generate_name_is_filled(
        sim_kubectl: Kubectl, ns: str) -> None:
    result = sim_kubectl("create", "-n", ns, "-f", "-", input=gadget("g1", "{size: small}"),
                         check=False)
    assert result.returncode == 1
    assert result.stderr == (
        f'Error from server (AlreadyExists): error when creating "STDIN": gadgets.{GROUP} '
        '"g1" already exists\n')
    generated = (f"apiVersion: {GROUP}/v1\nkind: Gadget\nmetadata: {{generateName: gen-}}\n"
                 "spec: {size: small}\n")
    out = sim_kubectl("create", "-n", ns, "-f", "-", input=generated).stdout
    # the apiserver appends 5 characters from its "safe" alphabet (no vowels, no 0/1/3)
    assert re.fullmatch(rf"{re.escape(RESOURCE)}/gen-[bcdfghjklmnpqrstvwxz2456789]{{5}} "
                        r"created\n", out), out


# -- selectors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("selector", "names"), [
    ("tier=gold", ["g1"]),
    ("tier!=gold", ["g2", "g3"]),
    ("tier in (gold,silver)", ["g1", "g2"]),
    ("tier notin (gold)", ["g2", "g3"]),
    ("tier", ["g1", "g2"]),
    ("!tier", ["g3"]),
    ("team=a,tier=silver", ["g2"]),
])
def test_label_selectors(sim_kubectl: Kubectl, ns: str, selector: str,
                         names: list[str]) -> None:
    out = sim_kubectl("get", "gadgets", "-n", ns, "-l", selector, "-o",
                      "jsonpath={.items[*].metadata.name}").stdout
    assert out.split() == names


def test_no_match_prints_no_resources_found(sim_kubectl: Kubectl, ns: str) -> None:
    result = sim_kubectl("get", "gadgets", "-n", ns, "-l", "tier=bronze")
    assert result.stdout == ""
    assert result.stderr == f"No resources found in {ns} namespace.\n"


def test_label_and_annotate_then_select(sim_kubectl: Kubectl, ns: str) -> None:
    out = sim_kubectl("label", "gadget", "g3", "-n", ns, "tier=bronze").stdout
    assert out == f"{RESOURCE}/g3 labeled\n"
    overwrite = sim_kubectl("label", "gadget", "g3", "-n", ns, "tier=gold", check=False)
    assert overwrite.returncode == 1
    assert "already has a value (bronze), and --overwrite is false" in overwrite.stderr
    sim_kubectl("label", "gadget", "g3", "-n", ns, "tier=gold", "--overwrite")
    out = sim_kubectl("annotate", "gadget", "g3", "-n", ns, "note=hello").stdout
    assert out == f"{RESOURCE}/g3 annotated\n"
    names = sim_kubectl("get", "gadgets", "-n", ns, "-l", "tier=gold", "-o",
                        "jsonpath={.items[*].metadata.name}").stdout.split()
    assert names == ["g1", "g3"]
    # metadata changes never bump generation
    assert get_json(sim_kubectl, "gadget", "g3", "-n", ns)["metadata"]["generation"] == 1


def test_field_selectors_on_custom_resources(sim_kubectl: Kubectl, ns: str) -> None:
    out = sim_kubectl("get", "gadgets", "-n", ns, "--field-selector", "metadata.name=g2",
                      "-o", "name").stdout
    assert out == f"{RESOURCE}/g2\n"
    out = sim_kubectl("get", "gadgets", "-A", "--field-selector",
                      f"metadata.namespace={ns},metadata.name!=g2", "-o", "name").stdout
    assert out == f"{RESOURCE}/g1\n{RESOURCE}/g3\n"
    result = sim_kubectl("get", "gadgets", "-n", ns, "--field-selector", "spec.size=small",
                         check=False)
    assert result.returncode == 1
    assert result.stderr == (
        f'Error from server (BadRequest): Unable to find "{GROUP}/v1, Resource=gadgets" that '
        'match label selector "", field selector "spec.size=small": field label not '
        "supported: spec.size\n")


def pod(name: str, node: str | None = None) -> str:
    node_line = f"  nodeName: {node}\n" if node else ""
    return (f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n{node_line}"
            "  containers: [{name: main, image: busybox}]\n")


def test_field_selectors_on_pods(sim_kubectl: Kubectl, sim_namespace: str) -> None:
    sim_kubectl("apply", "-n", sim_namespace, "-f", "-",
                input=pod("bound", "node-x") + "---\n" + pod("free"))
    sim_kubectl("patch", "pod", "bound", "-n", sim_namespace, "--subresource=status",
                "--type=merge", "-p", '{"status": {"phase": "Running"}}')
    run = ["get", "pods", "-n", sim_namespace, "-o", "name", "--field-selector"]
    assert sim_kubectl(*run, "status.phase=Running").stdout == "pod/bound\n"
    assert sim_kubectl(*run, "status.phase!=Running").stdout == "pod/free\n"
    assert sim_kubectl(*run, "spec.nodeName=node-x").stdout == "pod/bound\n"
    assert sim_kubectl(*run, "spec.nodeName=").stdout == "pod/free\n"


# -- changing objects --------------------------------------------------------------------------


def test_merge_patch_reports_patched_then_no_change(sim_kubectl: Kubectl, ns: str) -> None:
    patch = ["patch", "gadget", "g1", "-n", ns, "--type=merge", "-p",
             '{"spec": {"replicas": 5, "owner": null}}']
    assert sim_kubectl(*patch).stdout == f"{RESOURCE}/g1 patched\n"
    assert sim_kubectl(*patch).stdout == f"{RESOURCE}/g1 patched (no change)\n"
    obj = get_json(sim_kubectl, "gadget", "g1", "-n", ns)
    assert obj["spec"] == {"size": "small", "replicas": 5}
    assert obj["metadata"]["generation"] == 2


def test_json_patch_applies_and_a_failed_test_op_changes_nothing(
        sim_kubectl: Kubectl, ns: str) -> None:
    ok = '[{"op": "test", "path": "/spec/size", "value": "small"},' \
         ' {"op": "replace", "path": "/spec/size", "value": "large"}]'
    out = sim_kubectl("patch", "gadget", "g1", "-n", ns, "--type=json", "-p", ok).stdout
    assert out == f"{RESOURCE}/g1 patched\n"
    before = get_json(sim_kubectl, "gadget", "g1", "-n", ns)
    result = sim_kubectl("patch", "gadget", "g1", "-n", ns, "--type=json", "-p", ok,
                         check=False)
    assert result.returncode == 1
    assert result.stderr == (
        "The request is invalid: the server rejected our request due to an error in our "
        "request\n")
    assert get_json(sim_kubectl, "gadget", "g1", "-n", ns) == before


def test_patch_that_breaks_the_schema_is_rejected(sim_kubectl: Kubectl, ns: str) -> None:
    result = sim_kubectl("patch", "gadget", "g1", "-n", ns, "--type=merge", "-p",
                         '{"spec": {"size": "medium"}}', check=False)
    assert result.returncode == 1
    assert result.stderr == (
        'The Gadget "g1" is invalid: spec.size: Unsupported value: "medium": supported '
        'values: "small", "large"\n')


def test_strategic_merge_patch_is_refused_for_custom_resources(
        sim_kubectl: Kubectl, ns: str) -> None:
    for args in (["--type=strategic"], []):  # strategic is kubectl patch's default
        result = sim_kubectl("patch", "gadget", "g1", "-n", ns, *args, "-p",
                             '{"spec": {"size": "large"}}', check=False)
        assert result.returncode == 1
        assert result.stderr == (
            f"error: application/strategic-merge-patch+json is not supported by {GROUP}/v1, "
            "Kind=Gadget: the body of the request was in an unknown format - accepted media "
            "types include: application/json-patch+json, application/merge-patch+json, "
            "application/apply-patch+yaml\n")


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - {name: main, image: "nginx:1.25", ports: [{containerPort: 80}]}
        - {name: side, image: "busybox:1.36", command: [sleep, infinity]}
"""


def test_strategic_merge_patch_merges_containers_by_name(
        sim_kubectl: Kubectl, sim_namespace: str) -> None:
    sim_kubectl("apply", "-n", sim_namespace, "-f", "-", input=DEPLOYMENT)
    out = sim_kubectl("patch", "deployment", "web", "-n", sim_namespace, "-p",
                      '{"spec": {"template": {"spec": {"containers": '
                      '[{"name": "side", "image": "busybox:1.37"}]}}}}').stdout
    assert out == "deployment.apps/web patched\n"
    containers = get_json(sim_kubectl, "deployment", "web", "-n", sim_namespace)[
        "spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("main", "nginx:1.25"),
                                                             ("side", "busybox:1.37")]
    assert containers[0]["ports"][0]["containerPort"] == 80
    assert containers[1]["command"] == ["sleep", "infinity"]


def test_apply_configures_changes_and_removes_dropped_fields(
        sim_kubectl: Kubectl, ns: str) -> None:
    changed = gadget("g1", "{size: large}", "{tier: gold, team: a}")
    out = sim_kubectl("apply", "-n", ns, "-f", "-", input=changed).stdout
    assert out == f"{RESOURCE}/g1 configured\n"
    spec = get_json(sim_kubectl, "gadget", "g1", "-n", ns)["spec"]
    assert spec == {"size": "large", "replicas": 1}  # owner was dropped from the manifest
    out = sim_kubectl("apply", "-n", ns, "-f", "-", input=changed).stdout
    assert out == f"{RESOURCE}/g1 unchanged\n"


def test_server_side_apply(sim_kubectl: Kubectl, gadget_crds: None, sim_namespace: str) -> None:
    manifest = gadget("ssa", "{size: small, replicas: 2}")
    out = sim_kubectl("apply", "--server-side", "-n", sim_namespace, "-f", "-",
                      input=manifest).stdout
    assert out == f"{RESOURCE}/ssa serverside-applied\n"
    sim_kubectl("apply", "--server-side", "-n", sim_namespace, "-f", "-",
                input=manifest.replace("replicas: 2", "replicas: 4"))
    spec = get_json(sim_kubectl, "gadget", "ssa", "-n", sim_namespace)["spec"]
    assert spec == {"size": "small", "replicas": 4}


def editor_script(tmp_path: Any, old: str, new: str) -> dict[str, str]:
    """A KUBE_EDITOR that replaces text in the file kubectl edit hands it."""
    script = tmp_path / "editor.py"
    script.write_text(
        "import sys, pathlib\n"
        "p = pathlib.Path(sys.argv[-1])\n"
        f"p.write_text(p.read_text().replace({old!r}, {new!r}))\n")
    import sys
    return {"KUBE_EDITOR": f"{sys.executable} {script}"}


def test_edit_changes_the_object(sim_kubectl: Kubectl, ns: str, tmp_path: Any) -> None:
    env = editor_script(tmp_path, "owner: alice", "owner: carol")
    out = sim_kubectl("edit", "gadget", "g1", "-n", ns, env=env).stdout
    assert out == f"{RESOURCE}/g1 edited\n"
    obj = get_json(sim_kubectl, "gadget", "g1", "-n", ns)
    assert obj["spec"]["owner"] == "carol" and obj["metadata"]["generation"] == 2
    unchanged = sim_kubectl("edit", "gadget", "g1", "-n", ns,
                            env=editor_script(tmp_path, "no such text", "x"))
    assert unchanged.stderr == "Edit cancelled, no changes made.\n"


def test_replace_with_a_stale_resource_version_conflicts(sim_kubectl: Kubectl, ns: str) -> None:
    stale = sim_kubectl("get", "gadget", "g1", "-n", ns, "-o", "yaml").stdout
    sim_kubectl("patch", "gadget", "g1", "-n", ns, "--type=merge", "-p",
                '{"spec": {"replicas": 2}}')
    result = sim_kubectl("replace", "-f", "-", input=stale.replace("size: small",
                                                                   "size: large"),
                         check=False)
    assert result.returncode == 1
    assert result.stderr == (
        'Error from server (Conflict): error when replacing "STDIN": Operation cannot be '
        f'fulfilled on gadgets.{GROUP} "g1": the object has been modified; please apply your '
        "changes to the latest version and try again\n")
    fresh = sim_kubectl("get", "gadget", "g1", "-n", ns, "-o", "yaml").stdout
    out = sim_kubectl("replace", "-f", "-", input=fresh.replace("size: small", "size: large"))
    assert out.stdout == f"{RESOURCE}/g1 replaced\n"
    assert get_json(sim_kubectl, "gadget", "g1", "-n", ns)["spec"]["size"] == "large"


def test_status_subresource_is_separate_from_the_main_resource(
        sim_kubectl: Kubectl, ns: str) -> None:
    sim_kubectl("patch", "gadget", "g1", "-n", ns, "--subresource=status", "--type=merge",
                "-p", '{"status": {"ready": true}, "spec": {"size": "large"}}')
    obj = get_json(sim_kubectl, "gadget", "g1", "-n", ns)
    assert obj["status"] == {"ready": True}
    assert obj["spec"]["size"] == "small"  # spec in a status write is ignored
    assert obj["metadata"]["generation"] == 1
    sim_kubectl("patch", "gadget", "g1", "-n", ns, "--type=merge", "-p",
                '{"status": {"ready": false}, "spec": {"replicas": 2}}')
    obj = get_json(sim_kubectl, "gadget", "g1", "-n", ns)
    assert obj["status"] == {"ready": True}  # status in a main-resource write is ignored
    assert obj["spec"]["replicas"] == 2 and obj["metadata"]["generation"] == 2


def test_wait_for_a_jsonpath_value(sim_kubectl: Kubectl, ns: str) -> None:
    def later() -> None:
        time.sleep(1)
        sim_kubectl("patch", "gadget", "g2", "-n", ns, "--subresource=status",
                    "--type=merge", "-p", '{"status": {"ready": true}}')

    thread = threading.Thread(target=later)
    thread.start()
    try:
        out = sim_kubectl("wait", "gadget/g2", "-n", ns, "--for=jsonpath={.status.ready}=true",
                          "--timeout=60s").stdout
    finally:
        thread.join()
    assert out == f"{RESOURCE}/g2 condition met\n"


def test_server_side_dry_run_changes_nothing(sim_kubectl: Kubectl, ns: str) -> None:
    out = sim_kubectl("apply", "-n", ns, "--dry-run=server", "-f", "-",
                      input=gadget("ghost", "{size: small}")).stdout
    assert out == f"{RESOURCE}/ghost created (server dry run)\n"
    assert sim_kubectl("get", "gadget", "ghost", "-n", ns, check=False).returncode == 1
    before = get_json(sim_kubectl, "gadget", "g1", "-n", ns)
    out = sim_kubectl("patch", "gadget", "g1", "-n", ns, "--type=merge", "--dry-run=server",
                      "-p", '{"spec": {"size": "large"}}').stdout
    assert out == f"{RESOURCE}/g1 patched\n"  # kubectl patch adds no dry-run suffix
    assert get_json(sim_kubectl, "gadget", "g1", "-n", ns) == before
    out = sim_kubectl("delete", "gadget", "g1", "-n", ns, "--dry-run=server").stdout
    assert out == f'{RESOURCE} "g1" deleted from {ns} namespace (server dry run)\n'
    assert get_json(sim_kubectl, "gadget", "g1", "-n", ns) == before


def test_diff_shows_what_apply_would_change(sim_kubectl: Kubectl, ns: str) -> None:
    same = gadget("g1", "{size: small, owner: alice}", "{tier: gold, team: a}")
    assert sim_kubectl("diff", "-n", ns, "-f", "-", input=same).returncode == 0
    changed = same.replace("size: small", "size: large")
    result = sim_kubectl("diff", "-n", ns, "-f", "-", input=changed, check=False)
    assert result.returncode == 1, result.stderr  # 1 means: differences found
    lines = result.stdout.splitlines()
    assert "-  size: small" in lines and "+  size: large" in lines
    assert "-  generation: 1" in lines and "+  generation: 2" in lines
    assert get_json(sim_kubectl, "gadget", "g1", "-n", ns)["spec"]["size"] == "small"


def test_chunked_list_follows_continue_tokens(sim_kubectl: Kubectl, ns: str) -> None:
    out = sim_kubectl("get", "gadgets", "-n", ns, "--chunk-size=1", "-o", "name").stdout
    assert out == f"{RESOURCE}/g1\n{RESOURCE}/g2\n{RESOURCE}/g3\n"
    out = sim_kubectl("get", "gadgets", "-n", ns, "--chunk-size=2").stdout
    assert out.count("NAME") == 1 and len(out.splitlines()) == 4


# -- deleting ----------------------------------------------------------------------------------


def test_delete_prints_the_namespace_and_waits_until_gone(sim_kubectl: Kubectl, ns: str) -> None:
    out = sim_kubectl("delete", "gadget", "g1", "-n", ns).stdout
    assert out == f'{RESOURCE} "g1" deleted from {ns} namespace\n'
    assert sim_kubectl("get", "gadget", "g1", "-n", ns, check=False).returncode == 1
    out = sim_kubectl("delete", "gadgets", "-n", ns, "-l", "team=a").stdout
    assert out == f'{RESOURCE} "g2" deleted from {ns} namespace\n'
    result = sim_kubectl("delete", "gadget", "g1", "-n", ns, check=False)
    assert result.stderr == f'Error from server (NotFound): gadgets.{GROUP} "g1" not found\n'


def test_delete_of_an_object_with_a_finalizer_waits_for_its_removal(
        sim_kubectl: Kubectl, ns: str) -> None:
    sim_kubectl("patch", "gadget", "g1", "-n", ns, "--type=merge", "-p",
                '{"metadata": {"finalizers": ["example.com/hold"]}}')
    out = sim_kubectl("delete", "gadget", "g1", "-n", ns, "--wait=false").stdout
    assert out == f'{RESOURCE} "g1" deleted from {ns} namespace\n'
    obj = get_json(sim_kubectl, "gadget", "g1", "-n", ns)
    assert RFC3339.match(obj["metadata"]["deletionTimestamp"])
    assert obj["metadata"]["finalizers"] == ["example.com/hold"]

    timed_out = sim_kubectl("delete", "gadget", "g1", "-n", ns, "--timeout=2s", check=False)
    assert timed_out.returncode == 1
    assert "timed out waiting for the condition" in timed_out.stderr

    def release() -> None:
        time.sleep(1)
        sim_kubectl("patch", "gadget", "g1", "-n", ns, "--type=json", "-p",
                    '[{"op": "remove", "path": "/metadata/finalizers"}]')

    thread = threading.Thread(target=release)
    thread.start()
    try:
        out = sim_kubectl("wait", "--for=delete", "gadget/g1", "-n", ns,
                          "--timeout=60s").stdout
    finally:
        thread.join()
    assert out == f"{RESOURCE}/g1 condition met\n"


def test_deleting_a_namespace_deletes_its_objects(
        sim_kubectl: Kubectl, gadget_crds: None, sim_namespace: str) -> None:
    doomed = f"{sim_namespace}-doomed"
    sim_kubectl("apply", "-f", "-", input=f"apiVersion: v1\nkind: Namespace\n"
                                          f"metadata: {{name: {doomed}}}\n")
    sim_kubectl("apply", "-n", doomed, "-f", "-", input=gadget("inside", "{size: small}"))
    out = sim_kubectl("delete", "namespace", doomed, "--timeout=60s").stdout
    assert out == f'namespace "{doomed}" deleted\n'
    result = sim_kubectl("get", "namespace", doomed, check=False)
    assert result.stderr == f'Error from server (NotFound): namespaces "{doomed}" not found\n'
    assert sim_kubectl("get", "gadgets", "-A", "--field-selector",
                       f"metadata.namespace={doomed}", "-o", "name").stdout == ""


def test_create_namespace_and_configmap_with_generators(
        sim_kubectl: Kubectl, sim_namespace: str) -> None:
    name = f"{sim_namespace}-gen"
    assert sim_kubectl("create", "namespace", name).stdout == f"namespace/{name} created\n"
    out = sim_kubectl("create", "configmap", "settings", "-n", name,
                      "--from-literal=mode=fast").stdout
    assert out == "configmap/settings created\n"
    data = get_json(sim_kubectl, "configmap", "settings", "-n", name)["data"]
    assert data == {"mode": "fast"}
    sim_kubectl("delete", "namespace", name, "--wait=false")


# -- watching ----------------------------------------------------------------------------------


class Stream:
    """A long-running kubectl whose stdout lines are read on a thread, with timeouts."""

    def __init__(self, argv: list[str]):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next_line(self, timeout: float = 30) -> str | None:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output from kubectl within {timeout}s") from None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def stream(kubectl_cmd: Callable[..., list[str]]) -> Iterator[Callable[..., Stream]]:
    started: list[Stream] = []

    def start(*args: str) -> Stream:
        started.append(Stream(kubectl_cmd(*args)))
        return started[-1]

    yield start
    for s in started:
        s.close()


def test_get_watch_streams_added_modified_deleted(
        sim_kubectl: Kubectl, ns: str, stream: Callable[..., Stream]) -> None:
    watch = stream("get", "gadgets", "-n", ns, "-l", "team=a", "-w", "--output-watch-events")
    assert (watch.next_line() or "").split() == ["EVENT", "NAME", "SIZE", "REPLICAS", "READY",
                                                 "AGE"]
    initial = sorted((watch.next_line() or "").split()[:2] for _ in range(2))
    assert initial == [["ADDED", "g1"], ["ADDED", "g2"]]

    sim_kubectl("patch", "gadget", "g1", "-n", ns, "--type=merge", "-p",
                '{"spec": {"replicas": 7}}')
    assert (watch.next_line() or "").split()[:4] == ["MODIFIED", "g1", "small", "7"]
    sim_kubectl("apply", "-n", ns, "-f", "-",
                input=gadget("g4", "{size: large}", "{team: a}"))
    assert (watch.next_line() or "").split()[:3] == ["ADDED", "g4", "large"]
    sim_kubectl("patch", "gadget", "g3", "-n", ns, "--type=merge", "-p",
                '{"spec": {"replicas": 2}}')  # not selected: no line
    sim_kubectl("delete", "gadget", "g2", "-n", ns)
    assert (watch.next_line() or "").split()[:2] == ["DELETED", "g2"]


def read_json_event(watch: Stream, timeout: float) -> dict[str, Any] | None:
    """One pretty-printed JSON watch event, or None if nothing starts within ``timeout``."""
    try:
        text = watch.lines.get(timeout=timeout) or ""
    except queue.Empty:
        return None
    while True:
        try:
            return dict(json.loads(text))
        except ValueError:
            line = watch.next_line()
            assert line is not None, f"stream ended inside an event: {text!r}"
            text += "\n" + line


def test_watch_only_json_events_and_request_timeout(
        sim_kubectl: Kubectl, ns: str, stream: Callable[..., Stream]) -> None:
    watch = stream("get", "gadget", "g1", "-n", ns, "--watch-only", "-o", "json",
                   "--output-watch-events", "--request-timeout=8s")
    # --watch-only prints nothing for the current state, and a change made before kubectl's
    # initial list would be part of that state: change the object until an event shows up.
    event = None
    for attempt in range(20):
        sim_kubectl("label", "gadget", "g1", "-n", ns, f"seen=v{attempt}", "--overwrite")
        event = read_json_event(watch, timeout=1.0)
        if event is not None:
            break
    assert event is not None, "no watch event"
    assert event["type"] == "MODIFIED"
    assert event["object"]["metadata"]["labels"]["seen"].startswith("v")
    # --request-timeout ends the watch: kubectl exits on its own, successfully
    while watch.next_line(timeout=30) is not None:
        pass
    assert watch.proc.wait(10) == 0
