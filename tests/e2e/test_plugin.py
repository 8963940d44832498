"""`kubectl-gpurental` (the console script, and as `kubectl gpurental`) against the emulated
cluster with the real operator: the seeds' console actions end to end."""

from __future__ import annotations

import base64
import json
import os
import pty
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_support import GROUP, VERSION, Rentals, eventually, eventually_found
from kubernetes.client.rest import ApiException

from gpurental import billing
from gpurental.clock import parse_ts

BIN = Path(sys.executable).parent
PLUGIN = BIN / "kubectl-gpurental"


def ed25519_key(seed: int, comment: str) -> str:
    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + bytes([seed]) * 32
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


KEY_A = ed25519_key(1, "alice@laptop")
KEY_B = ed25519_key(2, "bob@desk")

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def plugin(kubeconfig: str, rentals: Rentals) -> Iterator[Run]:
    """Run the console script in the test's namespace; stops what the test left running."""

    def run(*args: str, input: str | None = None, ns: bool = True, tty_answer: str | None = None,
            expect: int | None = 0) -> subprocess.CompletedProcess[str]:
        cmd = [str(PLUGIN), "--kubeconfig", kubeconfig,
               *(["-n", rentals.namespace] if ns else []), *args]
        if tty_answer is not None:
            result = _run_on_tty(cmd, tty_answer)
        else:
            result = subprocess.run(cmd, input=input, capture_output=True, text=True,
                                    timeout=120, stdin=None if input is not None
                                    else subprocess.DEVNULL)
        if expect is not None:
            assert result.returncode == expect, (
                f"{args}: exit {result.returncode}\n{result.stdout}\n{result.stderr}")
        return result

    yield run
    # Free the session's simulated GPUs for the next test.
    run("stop-all", "--all", "--status", "all", "--yes", expect=None)


def _run_on_tty(cmd: list[str], answer: str) -> subprocess.CompletedProcess[str]:
    """Run with stdin on a pseudo-terminal (the user at a prompt) and type `answer`."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(cmd, stdin=slave, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        os.write(master, f"{answer}\n".encode())
        out, err = proc.communicate(timeout=120)
    finally:
        os.close(slave)
        os.close(master)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def create(rentals: Rentals, name: str, labels: dict[str, str] | None = None,
           **spec: Any) -> None:
    spec.setdefault("offer", "rtx4090")
    spec.setdefault("image", "busybox:1.36")
    rentals.custom.create_namespaced_custom_object(GROUP, VERSION, rentals.namespace,
                                                   "gpurentals", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "GpuRental",
        "metadata": {"name": name, "labels": labels or {}}, "spec": spec})


def spec_of(rentals: Rentals, name: str) -> dict[str, Any]:
    return dict(rentals.get(name).get("spec") or {})


def names_in(table: str) -> list[str]:
    return [line.split()[0] for line in table.splitlines()[1:]]


def column_starts(line: str, headers: list[str]) -> list[int]:
    return [line.index(h) for h in headers]


# --- list ----------------------------------------------------------------------------------------


def test_list_with_each_status_filter(rentals: Rentals, plugin: Run) -> None:
    ns = rentals.namespace
    create(rentals, "run1", gpus=2)
    create(rentals, "paused1")
    create(rentals, "stopped1")
    create(rentals, "failed1", offer="nowhere")
    create(rentals, "waiting1", wallet="missing")  # a named wallet that does not exist
    for name in ("run1", "paused1", "stopped1"):
        rentals.wait_phase(name, "Running")
    plugin("pause", "paused1")
    plugin("stop", "stopped1", "--yes")
    rentals.wait_phase("paused1", "Paused")
    rentals.wait_phase("stopped1", "Stopped")
    rentals.wait_phase("failed1", "Failed", timeout=60)
    assert rentals.status("waiting1").get("phase", "Pending") in ("Pending", "Provisioning")

    out = plugin("list").stdout
    lines = out.splitlines()
    headers = ["NAME", "PHASE", "OFFER", "GPUS", "RATE", "RAN FOR", "TOTAL", "AGE"]
    assert re.fullmatch(r"NAME +PHASE +OFFER +GPUS +RATE +RAN FOR +TOTAL +AGE", lines[0])
    assert names_in(out) == ["failed1", "paused1", "run1", "stopped1", "waiting1"]
    starts = column_starts(lines[0], headers)
    row = next(line for line in lines if line.startswith("run1 "))
    cells = [row[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
    assert cells[:5] == ["run1", "Running", "rtx4090", "2x NVIDIA-GeForce-RTX-4090",
                         "$1.38/hr"]
    assert re.fullmatch(r"\d+s|\d+m\d*s?", cells[5])
    assert re.fullmatch(r"\$\d+\.\d\d", cells[6])
    # kubectl's tabwriter: three spaces after the widest cell of every column but the last.
    assert lines[0].index("PHASE") == max(len(line.split()[0]) for line in lines) + 3

    expected = {"all": ["failed1", "paused1", "run1", "stopped1", "waiting1"],
                "running": ["run1"], "in-progress": ["waiting1"], "paused": ["paused1"],
                "stopped": ["stopped1"], "failed": ["failed1"]}
    for chip, names in expected.items():
        assert names_in(plugin("list", "--status", chip).stdout) == names, chip

    failed = next(line for line in lines if line.startswith("failed1 "))
    assert "$0.00" in failed and "1x NVIDIA-B200" in failed

    assert plugin("list", "-o", "name", "--status", "running").stdout.strip() == \
        "gpurental.gpurental.dev/run1"
    doc = json.loads(plugin("list", "-o", "json").stdout)
    assert doc["kind"] == "List" and len(doc["items"]) == 5
    assert yaml.safe_load(plugin("list", "-o", "yaml").stdout)["items"][0]["metadata"][
        "name"] == "failed1"
    wide = plugin("list", "-o", "wide").stdout.splitlines()[0]
    assert wide.split()[-4:] == ["EXPIRES", "AUTORENEW", "WALLET", "MESSAGE"]

    every = plugin("list", "-A", ns=False).stdout.splitlines()
    assert every[0].startswith("NAMESPACE ")
    assert any(line.split()[:2] == [ns, "run1"] for line in every)

    empty = plugin("list", "--status", "running", "-l", "nobody=here")
    assert empty.stdout == ""
    assert empty.stderr.strip() == f"No resources found in {ns} namespace."


# --- pause / resume / stop / delete --------------------------------------------------------------


def test_pause_resume_stop_and_confirmation(rentals: Rentals, plugin: Run) -> None:
    create(rentals, "m")
    rentals.wait_phase("m", "Running")

    assert plugin("pause", "m").stdout == "gpurental.gpurental.dev/m patched\n"
    rentals.wait_phase("m", "Paused")
    assert plugin("pause", "m").stdout == "gpurental.gpurental.dev/m patched (no change)\n"
    assert plugin("resume", "m").stdout == "gpurental.gpurental.dev/m patched\n"
    rentals.wait_phase("m", "Running")

    # No terminal and no --yes: refuse, change nothing.
    refused = plugin("stop", "m", expect=1)
    assert "refusing to stop" in refused.stderr and "--yes" in refused.stderr
    assert spec_of(rentals, "m")["state"] == "Running"
    # At a terminal: the question is asked; "n" keeps it running, "y" stops it.
    declined = plugin("stop", "m", tty_answer="n", expect=1)
    assert ("Stop rental m? This deletes its pod and volume and cannot be undone [y/N]"
            in declined.stderr)
    assert spec_of(rentals, "m")["state"] == "Running"
    accepted = plugin("stop", "m", tty_answer="y")
    assert accepted.stdout == "gpurental.gpurental.dev/m patched\n"
    rentals.wait_phase("m", "Stopped")

    again = plugin("resume", "m", expect=1)
    assert "stopped is permanent" in again.stderr
    assert spec_of(rentals, "m")["state"] == "Stopped"
    assert plugin("pause", "m", expect=1).stderr.startswith("error: cannot pause")

    missing = plugin("pause", "nope", expect=1)
    assert missing.stderr == \
        'Error from server (NotFound): gpurentals.gpurental.dev "nope" not found\n'
    assert missing.stdout == ""
    mixed = plugin("stop", "nope", "m", "--yes", expect=1)  # kubectl: keep going, exit 1
    assert mixed.stdout == "gpurental.gpurental.dev/m patched (no change)\n"

    assert plugin("delete", "m", expect=1).stderr.startswith("error: refusing to delete")
    assert plugin("delete", "m", "--yes").stdout == 'gpurental.gpurental.dev "m" deleted\n'
    assert plugin("list").stderr.startswith("No resources found")


# --- extend / autorenew --------------------------------------------------------------------------


def test_extend_and_autorenew(rentals: Rentals, plugin: Run) -> None:
    create(rentals, "e", duration="4h")
    running = rentals.wait_phase("e", "Running")
    eventually_found(lambda: rentals.status("e").get("expiresAt"))
    old_expiry = parse_ts(rentals.status("e")["expiresAt"])

    out = plugin("extend", "e", "--hours", "2").stdout.splitlines()
    assert out[0] == "gpurental.gpurental.dev/e patched"
    assert out[1] == "duration: 4h -> 6h"
    printed = parse_ts(out[2].split()[2])
    assert out[2].startswith("expires at: ")
    assert printed == parse_ts(running["runningSince"]) + (old_expiry - parse_ts(
        running["runningSince"])) + (parse_ts("2026-01-01T02:00:00Z") -
                                     parse_ts("2026-01-01T00:00:00Z"))
    assert spec_of(rentals, "e")["duration"] == "6h"
    eventually(lambda: parse_ts(rentals.status("e")["expiresAt"]) == printed)
    plugin("extend", "e", "--hours", "0.5")
    assert spec_of(rentals, "e")["duration"] == "6h30m"
    assert "positive" in plugin("extend", "e", "--hours", "-1", expect=1).stderr

    # Without a duration the rental runs until stopped: extending would impose a limit.
    create(rentals, "open")
    rentals.wait_phase("open", "Running")
    refused = plugin("extend", "open", "--hours", "1", expect=1)
    assert "no spec.duration" in refused.stderr and "--from-now" in refused.stderr
    assert "duration" not in spec_of(rentals, "open")
    eventually(lambda: rentals.status("open").get("secondsBilled", 0) >= 1)
    assert plugin("extend", "open", "--hours", "1", "--from-now").stdout.splitlines()[1] == \
        "duration: <none> -> 2h"  # ran under an hour: rounded up to 1h, plus 1h

    # Expired: resume changes nothing and says why; extend brings it back.
    create(rentals, "short", duration="2s")
    rentals.wait_phase("short", "Paused", timeout=30)
    held = plugin("resume", "short")
    assert held.stdout == "gpurental.gpurental.dev/short patched (no change)\n"
    assert "held by the operator (Expired)" in held.stderr and "extend" in held.stderr
    more = plugin("extend", "short", "--hours", "1").stdout.splitlines()
    assert more[1:] == ["duration: 2s -> 1h0m2s",
                        "remaining: 1h (the prepaid time runs only while the rental is Running)"]
    rentals.wait_phase("short", "Running")

    assert plugin("autorenew", "e", "on").stdout == "gpurental.gpurental.dev/e patched\n"
    assert spec_of(rentals, "e")["autoRenew"] is True
    assert plugin("autorenew", "e", "on").stdout.endswith("patched (no change)\n")
    plugin("autorenew", "e", "off")
    assert spec_of(rentals, "e")["autoRenew"] is False
    assert plugin("autorenew", "e", "maybe", expect=2).returncode == 2


# --- ssh-keys ------------------------------------------------------------------------------------


def test_ssh_keys_add_remove_list(rentals: Rentals, plugin: Run, tmp_path: Path) -> None:
    create(rentals, "k", sshKeys=[KEY_A])
    rentals.wait_phase("k", "Running")
    pub = tmp_path / "id_ed25519.pub"
    pub.write_text(KEY_B + "\n")

    assert plugin("ssh-keys", "add", "k", str(pub)).stdout == \
        "gpurental.gpurental.dev/k patched\n"
    assert spec_of(rentals, "k")["sshKeys"] == [KEY_A, KEY_B]
    assert plugin("ssh-keys", "add", "k", KEY_A).stdout.endswith("(no change)\n")
    table = plugin("ssh-keys", "list", "k").stdout.splitlines()
    assert table[0].split() == ["TYPE", "FINGERPRINT", "COMMENT"]
    assert [row.split()[2] for row in table[1:]] == ["alice@laptop", "bob@desk"]
    assert all(row.split()[1].startswith("SHA256:") for row in table[1:])
    assert json.loads(plugin("ssh-keys", "list", "k", "-o", "json").stdout) == [KEY_A, KEY_B]

    plugin("ssh-keys", "remove", "k", "alice@laptop")
    assert spec_of(rentals, "k")["sshKeys"] == [KEY_B]
    unknown = plugin("ssh-keys", "remove", "k", "carol@nowhere", expect=1)
    assert "no SSH key" in unknown.stderr
    assert spec_of(rentals, "k")["sshKeys"] == [KEY_B]
    invalid = plugin("ssh-keys", "add", "k", "not-a-key", expect=1)
    assert "is invalid" in invalid.stderr and "sshKeys" in invalid.stderr
    assert rentals.status("k")["phase"] == "Running"  # keys change while running


# --- meter ---------------------------------------------------------------------------------------


def test_meter_json_is_the_seeds_shape_and_live(rentals: Rentals, plugin: Run) -> None:
    create(rentals, "mt", gpus=2)
    rentals.wait_phase("mt", "Running")
    eventually(lambda: rentals.status("mt").get("secondsBilled", 0) >= 2, timeout=30)
    before = rentals.get("mt")
    raw = plugin("meter", "mt").stdout
    doc = json.loads(raw, parse_float=Decimal)
    assert list(doc) == ["rentalId", "ratePerHour", "secondsBilled", "currentChargeCents",
                         "lastHeartbeatAt"]
    assert doc["rentalId"] == before["metadata"]["uid"]
    assert '"ratePerHour": 1.38,' in raw  # a JSON number, written from the Decimal text
    assert doc["ratePerHour"] == Decimal(before["status"]["ratePerHour"]) == Decimal("1.38")
    assert isinstance(doc["secondsBilled"], int)
    assert doc["secondsBilled"] >= before["status"]["secondsBilled"]
    assert doc["currentChargeCents"] == billing.charge_cents(doc["secondsBilled"],
                                                             Decimal("1.38"))
    parse_ts(doc["lastHeartbeatAt"])

    plugin("pause", "mt")
    paused = rentals.wait_phase("mt", "Paused")
    frozen = json.loads(plugin("meter", "mt", "--no-live").stdout)
    assert frozen["secondsBilled"] == paused["secondsBilled"]
    assert frozen["currentChargeCents"] == paused["currentChargeCents"]
    assert json.loads(plugin("meter", "mt").stdout)["secondsBilled"] == paused["secondsBilled"]
    assert plugin("meter", "ghost", expect=1).stderr.startswith("Error from server (NotFound)")


# --- summary -------------------------------------------------------------------------------------


def _wallet(rentals: Rentals, name: str, budget: str) -> None:
    rentals.custom.create_namespaced_custom_object(GROUP, VERSION, rentals.namespace, "wallets", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Wallet", "metadata": {"name": name},
        "spec": {"budget": budget}})


def _dear_offer(rentals: Rentals) -> str:
    """A MIG offer at one cent per second and no storage price: nothing accrues once paused."""
    try:
        rentals.custom.create_cluster_custom_object(GROUP, VERSION, "gpuoffers", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "GpuOffer",
            "metadata": {"name": "plugin-dear"},
            "spec": {"gpu": {"product": "NVIDIA-A100-SXM4-80GB",
                             "resourceName": "nvidia.com/mig-1g.10gb"},
                     "pricePerGpuHour": "36.00"}})
    except ApiException as exc:
        if exc.status != 409:
            raise
    return "plugin-dear"


def test_summary_kpis(rentals: Rentals, plugin: Run) -> None:
    offer = _dear_offer(rentals)
    _wallet(rentals, "team", "100.00")
    create(rentals, "s1", offer=offer)
    create(rentals, "s2", offer=offer, gpus=2)
    create(rentals, "gone", offer=offer, wallet="team")
    for name in ("s1", "s2", "gone"):
        rentals.wait_phase(name, "Running")
    eventually(lambda: rentals.status("gone").get("secondsBilled", 0) >= 2, timeout=30)
    plugin("pause", "gone")
    rentals.wait_phase("gone", "Paused")

    listed = plugin("list", "--status", "running").stdout
    assert "2x NVIDIA-A100-SXM4-80GB (mig-1g.10gb)" in listed

    table = plugin("summary").stdout.splitlines()
    assert re.fullmatch(r"ACTIVE INSTANCES +HOURLY BURN +SPEND", table[0])
    assert table[1].split()[:2] == ["2", "$108.00/hr"]  # 36 + 2 x 36
    doc = json.loads(plugin("summary", "-o", "json").stdout, parse_float=Decimal)
    assert doc["namespace"] == rentals.namespace
    assert doc["activeInstances"] == 2 and doc["hourlyBurn"] == Decimal("108.00")

    plugin("delete", "gone", "--yes")  # waits until the finalizer settled it
    plugin("pause", "s1", "s2")
    statuses = [rentals.wait_phase(n, "Paused") for n in ("s1", "s2")]
    wallet: Any = rentals.custom.get_namespaced_custom_object(
        GROUP, VERSION, rentals.namespace, "wallets", "team")
    settled = int(wallet["status"]["settledCents"])
    assert settled >= 2
    expected = sum(s["totalChargeCents"] - s.get("refundedCents", 0) for s in statuses)
    final = json.loads(plugin("summary", "-o", "json").stdout, parse_float=Decimal)
    assert final["activeInstances"] == 0 and final["hourlyBurn"] == 0
    assert final["spendCents"] == expected + settled
    cells = plugin("summary").stdout.splitlines()[1].split()
    assert cells == ["0", "$0.00/hr", f"${Decimal(final['spendCents']) / 100:.2f}"]

    every = plugin("summary", "-A", ns=False).stdout.splitlines()
    assert every[0].split()[0] == "NAMESPACE" and every[-1].split()[0] == "TOTAL"
    assert any(line.split()[0] == rentals.namespace for line in every)


# --- stop-all ------------------------------------------------------------------------------------


def test_stop_all_with_selector_dry_run_and_real(rentals: Rentals, plugin: Run) -> None:
    sweep = {"experiment": "sweep-3"}
    for name in ("a", "b"):
        create(rentals, name, labels=sweep)
    create(rentals, "c", labels=sweep)
    create(rentals, "other")
    for name in ("a", "b", "c", "other"):
        rentals.wait_phase(name, "Running")
    plugin("pause", "c")
    rentals.wait_phase("c", "Paused")

    assert "needs a label selector" in plugin("stop-all", expect=1).stderr
    dry = plugin("stop-all", "-l", "experiment=sweep-3", "--dry-run").stdout
    assert dry.splitlines() == ["gpurental.gpurental.dev/a patched (dry run)",
                                "gpurental.gpurental.dev/b patched (dry run)"]
    assert all(spec_of(rentals, n).get("state") == "Running" for n in ("a", "b", "other"))

    refused = plugin("stop-all", "-l", "experiment=sweep-3", expect=1)
    assert "refusing to stop 2 rentals" in refused.stderr
    declined = plugin("stop-all", "-l", "experiment=sweep-3", tty_answer="no", expect=1)
    assert "Stop 2 rentals (a, b)?" in declined.stderr
    assert spec_of(rentals, "a").get("state") == "Running"

    done = plugin("stop-all", "-l", "experiment=sweep-3", "--yes").stdout
    assert done.splitlines() == ["gpurental.gpurental.dev/a patched",
                                 "gpurental.gpurental.dev/b patched"]
    for name in ("a", "b"):
        rentals.wait_phase(name, "Stopped")
    assert rentals.status("other")["phase"] == "Running"
    assert rentals.status("c")["phase"] == "Paused"  # --status running (the default)
    assert plugin("stop-all", "-l", "experiment=sweep-3").stderr.startswith(
        "No resources found")
    plugin("stop-all", "-l", "experiment=sweep-3", "--status", "paused", "--yes")
    rentals.wait_phase("c", "Stopped")


# --- as a kubectl plugin -------------------------------------------------------------------------


def test_kubectl_discovers_the_plugin_on_path(rentals: Rentals, plugin: Run,
                                              kubeconfig: str) -> None:
    create(rentals, "viak")
    rentals.wait_phase("viak", "Running")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "KUBECONFIG": kubeconfig}

    def kubectl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(BIN / "kubectl"), *args], capture_output=True, text=True,
                                env=env, timeout=120, stdin=subprocess.DEVNULL)
        assert not check or result.returncode == 0, result.stderr
        return result

    assert "kubectl-gpurental" in kubectl("plugin", "list", check=False).stdout
    listed = kubectl("gpurental", "list", "-n", rentals.namespace).stdout
    assert names_in(listed) == ["viak"] and "Running" in listed
    meter = json.loads(kubectl("gpurental", "meter", "viak", "-n", rentals.namespace).stdout)
    assert meter["rentalId"] == rentals.get("viak")["metadata"]["uid"]
    assert kubectl("gpurental", "pause", "viak", "-n", rentals.namespace).stdout == \
        "gpurental.gpurental.dev/viak patched\n"
    rentals.wait_phase("viak", "Paused")
    failed = kubectl("gpurental", "resume", "ghost", "-n", rentals.namespace, check=False)
    assert failed.returncode == 1
    assert failed.stderr.startswith('Error from server (NotFound): gpurentals.gpurental.dev '
                                    '"ghost" not found')
