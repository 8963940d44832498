"""The README's commands, run as written, against a fresh cluster on each substrate.

The commands are read from README.md itself (its `sh` blocks in the sections below, in order),
not copied here: a README edit that breaks a command fails this test, and a command the test
does not know fails it too (`CHECKS` says what the README promises for each). They run through
bash from the repository's root with the kubectl, helm and console scripts the project
installs first on PATH, and KUBECONFIG pointing at the cluster.

On the real control plane the story starts with the README's `helm install`: the chart's
Deployment gets its pod from the real controllers and scheduler, and that pod's container (its
command, args and env) is run here with a token bound to the pod, as a kubelet would. kubesim
has no Deployment controller, so there the operator is started with the README's own
"run it outside the cluster" command and the two helm commands are the ones that cannot run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_support import ChartOperator
from e2e_support import eventually

from gpurental_dev.cluster import BIN, ROOT, Cluster

pytestmark = pytest.mark.e2e

README = ROOT / "README.md"
TOOLS = ROOT / ".tools" / "bin"
SECTIONS = ("Install with Helm", "A first rental in five minutes", "The kubectl plugin",
            "Uninstall")
HELM_SECTION = "Install with Helm"
NODES = ["gpu-4090-a=NVIDIA-GeForce-RTX-4090:4", "gpu-4090-b=NVIDIA-GeForce-RTX-4090:4",
         "gpu-h100-a=NVIDIA-H100-80GB-HBM3:2"]
RELEASE, RELEASE_NS = "gpu-rental-operator", "gpu-rental"


def section(name: str) -> str:
    text = README.read_text()
    match = re.search(rf"^## {re.escape(name)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"README.md has no section '## {name}'"
    return match.group(1)


def commands(name: str) -> list[str]:
    """The section's shell commands: continuation lines joined, trailing comments dropped."""
    found: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", section(name), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command = re.split(r"\s{2,}#", line, maxsplit=1)[0].strip()
            if command:
                found.append(re.sub(r"\s+", " ", command))
    assert found, f"no commands in '## {name}'"
    return found


def outside_cluster_command() -> str:
    match = re.search(r"Run it outside the cluster against any kubeconfig: `([^`]+)`",
                      section(HELM_SECTION))
    assert match, "README.md no longer says how to run the operator outside the cluster"
    return re.sub(r"\s+", " ", match.group(1))


@dataclass
class Story:
    cluster: Cluster
    env: dict[str, str]
    workdir: Path

    def run(self, command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-c", command], cwd=ROOT, env=self.env, text=True,
                              capture_output=True, timeout=timeout)

    def kubectl(self, *args: str) -> str:
        """The test's own look at the cluster (as its administrator, namespaces explicit)."""
        return self.cluster.kubectl(*args).stdout

    def rental(self, name: str) -> dict[str, Any] | None:
        found = self.cluster.kubectl("get", "gpurental", name, "-n", "team-a", "-o", "json",
                                     check=False)
        return json.loads(found.stdout) if found.returncode == 0 else None

    def phase(self, name: str) -> str:
        return str(((self.rental(name) or {}).get("status") or {}).get("phase", ""))

    def names(self, kind: str, namespace: str = "team-a") -> set[str]:
        out = self.kubectl("get", kind, "-n", namespace, "-o", "name")
        return {line.split("/", 1)[1] for line in out.split()}

    def watch_until(self, command: str, done: Callable[[str], bool], timeout: float) -> str:
        """A `-w` command: read its output until `done`, then Ctrl-C it, as a user would."""
        process = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=ROOT, env=self.env,
                                   text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(process.stdout or []),
                                  daemon=True)
        reader.start()
        deadline = time.monotonic() + timeout
        try:
            while not done("".join(lines)):
                assert time.monotonic() < deadline, f"`{command}` never showed it:\n{lines}"
                assert process.poll() is None, f"`{command}` ended:\n{''.join(lines)}"
                time.sleep(0.2)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(10)
        return "".join(lines)


Check = Callable[[Story, subprocess.CompletedProcess[str]], None]


def ok(*texts: str) -> Check:
    def check(story: Story, result: subprocess.CompletedProcess[str]) -> None:
        assert result.returncode == 0, result.stdout + result.stderr
        for text in texts:
            assert text in result.stdout, f"{text!r} not in:\n{result.stdout}"
    return check


def then(first: Check, after: Callable[[Story], None]) -> Check:
    def check(story: Story, result: subprocess.CompletedProcess[str]) -> None:
        first(story, result)
        after(story)
    return check


def all_running(output: str) -> bool:
    rows = [line.split() for line in output.splitlines()]
    return {"finetune", "notebook", "pretrain"} <= {r[0] for r in rows if "Running" in r}


def paused_keeps_volume(story: Story) -> None:
    eventually(lambda: story.phase("notebook") == "Paused", timeout=60)
    eventually(lambda: "notebook" not in story.names("pods"), timeout=60)
    assert "notebook-storage" in story.names("persistentvolumeclaims")


def stopped_deletes_everything(story: Story) -> None:
    eventually(lambda: story.phase("pretrain") == "Stopped", timeout=60)
    eventually(lambda: "pretrain" not in story.names("pods"), timeout=60)
    eventually(lambda: "pretrain-storage" not in story.names("persistentvolumeclaims"),
               timeout=60)


def resumed(story: Story) -> None:
    eventually(lambda: story.phase("notebook") == "Running", timeout=90)


def meter_json(story: Story, result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr
    meter = json.loads(result.stdout)
    assert meter, result.stdout


def ssh_column(story: Story) -> None:
    """The example offer exposes a NodePort: finetune's row shows its ssh line."""
    def shown() -> bool:
        rows = story.run("kubectl get gpurentals -n team-a -o wide").stdout.splitlines()
        return any(r.startswith("finetune") and "ssh -p " in r for r in rows)
    eventually(shown, timeout=30)


def key_added(story: Story) -> None:
    keys = (story.rental("finetune") or {})["spec"]["sshKeys"]
    assert any(k.endswith("bob@desk") for k in keys), keys


def all_settled(story: Story) -> None:
    eventually(lambda: not story.names("gpurentals"), timeout=90)
    eventually(lambda: not story.names("pods") and not story.names("persistentvolumeclaims"),
               timeout=90)
    # Settled into the wallet: nothing accrues any more, the spend is what was settled.
    def settled() -> None:
        status = json.loads(story.kubectl("get", "wallet", "default", "-n", "team-a", "-o",
                                          "json"))["status"]
        assert status["burnCentsPerHour"] == 0, status
        assert status["spentCents"] == status["settledCents"], status
    eventually(settled, timeout=60)


def chart_gone_crds_kept(story: Story) -> None:
    assert story.run(f"kubectl get deploy -n {RELEASE_NS} -o name").stdout == ""
    for crd in ("gpurentals", "wallets", "gpuoffers"):
        assert story.run(f"kubectl get crd {crd}.gpurental.dev").returncode == 0
    assert "default" in story.names("wallets")  # kept with the CRDs


# What the README promises for each command, keyed by the command as written (comment cut).
CHECKS: dict[str, Check] = {
    "helm install gpu-rental-operator charts/gpu-rental-operator --namespace gpu-rental "
    "--create-namespace": ok("STATUS: deployed"),
    "kubectl -n gpu-rental rollout status deploy/gpu-rental-operator":
        ok('deployment "gpu-rental-operator" successfully rolled out'),
    "kubectl apply -f examples/offers.yaml":
        ok("gpuoffer.gpurental.dev/rtx4090", "gpuoffer.gpurental.dev/h100"),
    "kubectl apply -f examples/wallet.yaml": ok("namespace/team-a", "wallet.gpurental.dev/default"),
    "kubectl apply -f examples/rentals.yaml": ok(*(f"gpurental.gpurental.dev/{n}" for n in (
        "finetune", "notebook", "pretrain"))),
    "kubectl get wallet default -n team-a": ok("SPENT", "REMAINING", "BURN/H", "default"),
    "kubectl get gpurentals -n team-a -o wide": then(ok("SSH"), ssh_column),
    "kubectl patch gpurental notebook -n team-a --type merge -p "
    "'{\"spec\":{\"state\":\"Paused\"}}'":
        then(ok("gpurental.gpurental.dev/notebook patched"), paused_keeps_volume),
    "kubectl patch gpurental pretrain -n team-a --type merge -p "
    "'{\"spec\":{\"state\":\"Stopped\"}}'":
        then(ok("gpurental.gpurental.dev/pretrain patched"), stopped_deletes_everything),
    "kubectl describe gpurental pretrain -n team-a": ok("Stopped", "Events:"),
    "kubectl config set-context --current --namespace team-a": ok("modified"),
    "kubectl gpurental list --status running": ok("finetune"),
    "kubectl gpurental resume notebook": then(ok("notebook"), resumed),
    "kubectl gpurental extend finetune --hours 2": ok("duration: 4h -> 6h"),
    "kubectl gpurental autorenew finetune on": ok("finetune"),
    'kubectl gpurental ssh-keys add finetune '
    '"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJvYkBkZXNrIHJlYWRtZSBrZXk bob@desk"':
        then(ok(), key_added),
    "kubectl gpurental ssh finetune --print": ok("ssh -p ", "gpu@"),
    "kubectl gpurental open notebook jupyter --print": ok("http://"),
    "kubectl gpurental meter finetune": meter_json,
    "kubectl gpurental summary -A": ok(),
    "kubectl gpurental stop-all -l team=ml --dry-run": ok(),
    "kubectl delete gpurentals --all -A": then(ok("deleted"), all_settled),
    "helm uninstall gpu-rental-operator -n gpu-rental":
        then(ok("uninstalled"), chart_gone_crds_kept),
}
WATCH = "kubectl get gpurentals -n team-a -w"


@pytest.fixture
def story(tmp_path: Path, substrate: str) -> Iterator[Story]:
    on_kubernetes = substrate == "kubernetes"
    # The chart brings the CRDs on the real control plane (helm refuses to adopt ours).
    with Cluster(tmp_path / "cluster", nodes=NODES, substrate=substrate,
                 crds=not on_kubernetes) as cluster:
        kubeconfig = tmp_path / "kubeconfig"  # the README's set-context writes to it
        shutil.copy(cluster.kubeconfig, kubeconfig)
        env = {**os.environ, "KUBECONFIG": str(kubeconfig),
               "PATH": os.pathsep.join([str(BIN), str(TOOLS), os.environ.get("PATH", "")]),
               "PYTHONPATH": str(ROOT / "operator" / "src"),
               "HOME": str(tmp_path)}  # kubectl's and helm's caches and configs stay here
        yield Story(cluster, env, tmp_path)


def start_chart_operator(story: Story) -> ChartOperator:
    """Run the chart's pod as its kubelet would: its container, its ServiceAccount's token."""
    pods = json.loads(story.kubectl("get", "pods", "-n", RELEASE_NS, "-o", "json"))["items"]
    (pod,) = [p for p in pods if p["status"].get("phase") == "Running"]
    token = story.kubectl("create", "token", pod["spec"]["serviceAccountName"], "-n",
                          RELEASE_NS, "--bound-object-kind", "Pod", "--bound-object-name",
                          pod["metadata"]["name"], "--duration", "1h").strip()
    config = yaml.safe_load(Path(story.env["KUBECONFIG"]).read_text())
    config["users"][0]["user"] = {"token": token}
    kubeconfig = story.workdir / "pod-kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    operator = ChartOperator(pod["spec"]["containers"][0], kubeconfig, story.workdir,
                             pod["metadata"]["name"], RELEASE_NS)
    eventually(operator.healthy, timeout=90, interval=0.2)
    return operator


def start_outside_operator(story: Story) -> subprocess.Popen[str]:
    command = outside_cluster_command()
    log = open(story.workdir / "operator.log", "w")  # noqa: SIM115 - the child's stdout
    process = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=ROOT, env=story.env,
                               stdout=log, stderr=subprocess.STDOUT, text=True)
    log.close()
    return process


def test_readme_commands_run_as_written(story: Story) -> None:
    plan = [(name, command) for name in SECTIONS for command in commands(name)]
    unknown = [c for _, c in plan if c not in CHECKS and c != WATCH]
    assert not unknown, f"README commands without a check in CHECKS: {unknown}"
    on_kubernetes = story.cluster.on_kubernetes
    operator: ChartOperator | None = None
    outside: subprocess.Popen[str] | None = None
    ran: list[str] = []
    try:
        if not on_kubernetes:
            outside = start_outside_operator(story)
        for name, command in plan:
            if not on_kubernetes and command.startswith("helm "):
                continue  # kubesim has no Deployment controller: see the module docstring
            if not on_kubernetes and "rollout status" in command:
                continue
            if command == WATCH:
                story.watch_until(command, all_running, timeout=180)
            else:
                result = story.run(command, timeout=240)
                CHECKS[command](story, result)
            ran.append(command)
            if name == HELM_SECTION and "rollout status" in command:
                operator = start_chart_operator(story)
    finally:
        if operator is not None:
            operator.stop()
        if outside is not None:
            outside.send_signal(signal.SIGTERM)
            outside.wait(30)
    skipped = {c for _, c in plan} - set(ran)
    assert skipped == (set() if on_kubernetes else {
        c for _, c in plan if c.startswith("helm ") or "rollout status" in c})
    log = (story.workdir / "operator.log").read_text()
    assert "Traceback" not in log, log[-3000:]


# The README's first commands. `make test` is what CI itself runs (a test cannot run the suite
# it belongs to); every other one is run here as written.
RUN_BY_CI = {"make test", "GPURENTAL_SUBSTRATES=kubesim make test"}
START_SECTIONS = ("Try it in one command (no cluster needed)", "Proven on real Kubernetes")


def test_readme_try_it_commands_run_as_written(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")])}
    listed = [command for name in START_SECTIONS for command in commands(name)]
    assert set(listed) >= RUN_BY_CI
    for command in listed:
        if command in RUN_BY_CI:
            continue
        if " serve " in command:
            check_serve(command, env)
            continue
        result = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, text=True,
                                capture_output=True, timeout=600, stdin=subprocess.DEVNULL)
        assert result.returncode == 0, f"{command}:\n{result.stdout[-3000:]}{result.stderr}"
        assert "Point your own kubectl at it" in result.stdout, result.stdout[-3000:]
        assert "Settled" in result.stdout and "StoppedIsPermanent" in result.stdout


def check_serve(command: str, env: dict[str, str]) -> None:
    """The launcher prints one JSON line when the cluster is ready and stops on SIGTERM."""
    process = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=ROOT, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    try:
        ready = json.loads(process.stdout.readline())
        assert ready["version"] == "v1.37.2" and len(ready["nodes"]) == 4, ready
        nodes = subprocess.run([str(BIN / "kubectl"), f"--kubeconfig={ready['kubeconfig']}",
                                "get", "nodes", "-o", "name"], capture_output=True, text=True,
                               timeout=60)
        assert len(nodes.stdout.split()) == 4, nodes.stdout + nodes.stderr
    finally:
        process.terminate()
        assert process.wait(60) == 0
