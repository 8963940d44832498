"""The SSH key path with a real OpenSSH server, on every substrate.

The real operator makes the rental's pod and Secret through the API; no kubelet runs them, so
the test plays the kubelet's part for the sshd sidecar: it writes the Secret's files into a
directory standing for the Secret's mount, takes the sidecar's start script from the pod's
spec, maps the two mount points (`/etc/gpurental/ssh`, the volume's mountPath) to directories
on this machine and runs the script, unchanged otherwise, with Debian's sshd on a loopback
port as an unprivileged user (`make tools` installs OpenSSH and, for root, that user). A real
ssh client then logs in with keys added and removed by `kubectl gpurental ssh-keys`.
"""

from __future__ import annotations

import base64
import getpass
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e_support import Rentals, eventually

from gpurental_dev.cluster import Cluster

PLUGIN = Path(sys.executable).parent / "kubectl-gpurental"
SSH_TEST_USER = "gpurental-ssh"  # created by scripts/install-tools.sh
SECRET_MOUNT, VOLUME_MOUNT = "/etc/gpurental/ssh", "/workspace"
OFFER = """
apiVersion: gpurental.dev/v1alpha1
kind: GpuOffer
metadata: {name: ssh-openssh}
spec:
  gpu: {product: NVIDIA-GeForce-RTX-4090}
  pricePerGpuHour: "0.69"
  tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
  access: {ssh: {enabled: true, user: USER}}
"""


@pytest.fixture(scope="module")
def ssh_offer(cluster: Cluster) -> Iterator[None]:
    # The offer names the image's user; here, the one this machine's sshd runs as.
    cluster.kubectl("apply", "-f", "-", input=OFFER.replace("USER", run_as()[0]))
    yield
    cluster.kubectl("delete", "gpuoffer", "ssh-openssh")


def run_as() -> tuple[str, list[str]]:
    """The unprivileged user sshd runs as (and the only one it can log in), and how to
    become it. Missing tools or user fail the test: `make tools` provides them."""
    for tool in ("/usr/sbin/sshd", shutil.which("ssh"), shutil.which("ssh-keyscan")):
        assert tool and os.access(tool, os.X_OK), "OpenSSH is missing: run `make tools`"
    if os.geteuid() != 0:
        return getpass.getuser(), []
    try:
        entry = pwd.getpwnam(SSH_TEST_USER)
    except KeyError:
        pytest.fail(f"user {SSH_TEST_USER} is missing: run `make tools`")
    return SSH_TEST_USER, ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}",
                           "--clear-groups"]


@dataclass
class Machine:
    """This machine standing in for the pod: the Secret's mount and the rental's volume."""

    root: Path
    user: str
    become: list[str]

    @property
    def secret(self) -> Path:
        return self.root / "secret"

    def volume(self, name: str = "volume") -> Path:
        return self.root / name

    def mapped(self, text: str, volume: str = "volume") -> str:
        assert SECRET_MOUNT in text and VOLUME_MOUNT in text
        return (text.replace(SECRET_MOUNT, str(self.secret))
                .replace(VOLUME_MOUNT, str(self.volume(volume))))

    def mount_secret(self, data: dict[str, str], volume: str = "volume") -> None:
        """As the kubelet refreshes a Secret volume: every file replaced at once, read-only."""
        self.secret.mkdir(exist_ok=True)
        for key, value in data.items():
            staged = self.secret / f".{key}.new"
            staged.write_text(self.mapped(value, volume) if key == "sshd_config" else value)
            staged.chmod(0o444)
            staged.replace(self.secret / key)

    def make_volume(self, name: str) -> Path:
        path = self.volume(name)
        path.mkdir(exist_ok=True)
        if self.become:  # fsGroup: the volume belongs to the pod's user
            entry = pwd.getpwnam(self.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        return path


@pytest.fixture
def machine() -> Iterator[Machine]:
    user, become = run_as()
    # Not under pytest's tmp_path: the unprivileged sshd must traverse it.
    root = Path(tempfile.mkdtemp(prefix="gpurental-openssh-"))
    root.chmod(0o755)
    yield Machine(root, user, become)
    shutil.rmtree(root, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Sshd:
    def __init__(self, machine: Machine, script: str, log: Path, volume: str = "volume") -> None:
        machine.make_volume(volume)
        self.port = free_port()
        self.log = log
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [*machine.become, "/bin/sh", "-c", machine.mapped(script, volume), "sh",
                 "-o", f"ListenAddress=127.0.0.1:{self.port}"],
                stdout=out, stderr=subprocess.STDOUT)
        eventually(self._listening, timeout=20)

    def _listening(self) -> bool:
        assert self.proc.poll() is None, f"sshd exited: {self.log.read_text()}"
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def host_key(self) -> str:
        out = subprocess.run(["ssh-keyscan", "-t", "ed25519", "-p", str(self.port),
                              "127.0.0.1"], capture_output=True, text=True, timeout=30).stdout
        return out.split()[-1]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def ssh(sshd: Sshd, machine: Machine, key: Path, known_hosts: Path, *command: str,
        strict: str = "yes") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-p", str(sshd.port), "-i", str(key), "-o", "BatchMode=yes",
         "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={known_hosts}",
         "-o", f"StrictHostKeyChecking={strict}", "-o", "ConnectTimeout=10",
         # As `kubectl gpurental ssh` does: one known host per rental, whatever the port.
         "-o", "HostKeyAlias=box.gpurental",
         f"{machine.user}@127.0.0.1", *command], capture_output=True, text=True, timeout=30)


def keypair(path: Path, comment: str) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment,
                    "-f", str(path)], check=True)
    return path


def plugin(kubeconfig: str, rentals: Rentals, *args: str) -> None:
    result = subprocess.run([str(PLUGIN), "--kubeconfig", kubeconfig, "-n", rentals.namespace,
                             *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"


def secret_data(rentals: Rentals, name: str) -> dict[str, str]:
    secret = rentals.core.read_namespaced_secret(f"{name}-ssh", rentals.namespace)
    return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}


def sidecar_script(rentals: Rentals, name: str) -> str:
    pod = rentals.core.read_namespaced_pod(name, rentals.namespace)
    (sshd,) = [c for c in pod.spec.containers if c.name == "sshd"]
    assert sshd.command[:2] == ["/bin/sh", "-c"]
    return str(sshd.command[2])


def keys_become(rentals: Rentals, name: str, *present: Path) -> dict[str, str]:
    wanted = {p.with_suffix(".pub").read_text().strip() for p in present}

    def check() -> dict[str, str]:
        data = secret_data(rentals, name)
        assert set(data["authorized_keys"].splitlines()) == wanted
        return data
    return eventually(check, timeout=30)


def test_keys_added_and_removed_with_the_plugin_log_in_and_are_refused(
        rentals: Rentals, ssh_offer: None, kubeconfig: str, machine: Machine,
        tmp_path: Path) -> None:
    rentals.create("box", offer="ssh-openssh", command=["sleep", "infinity"])
    rentals.wait_phase("box", "Running")
    alice = keypair(tmp_path / "alice", "alice@laptop")
    bob = keypair(tmp_path / "bob", "bob@desk")
    known_hosts = tmp_path / "known_hosts"
    plugin(kubeconfig, rentals, "ssh-keys", "add", "box", str(alice.with_suffix(".pub")))
    machine.mount_secret(keys_become(rentals, "box", alice))
    sshd = Sshd(machine, sidecar_script(rentals, "box"), tmp_path / "sshd.log")
    try:
        login = ssh(sshd, machine, alice, known_hosts, "id -un; echo hi > $PWD/x; "
                    f"touch {machine.volume()}/from-ssh", strict="accept-new")
        assert login.returncode == 0, login.stderr + sshd.log.read_text()
        assert login.stdout.split()[0] == machine.user
        assert (machine.volume() / "from-ssh").exists()  # the shell is on the rental's volume
        # Bob in, Alice out, while sshd runs: it reads authorized_keys at every login.
        plugin(kubeconfig, rentals, "ssh-keys", "add", "box", str(bob.with_suffix(".pub")))
        plugin(kubeconfig, rentals, "ssh-keys", "remove", "box", "alice@laptop")
        machine.mount_secret(keys_become(rentals, "box", bob))
        refused = ssh(sshd, machine, alice, known_hosts, "true")
        assert refused.returncode == 255 and "Permission denied" in refused.stderr
        assert ssh(sshd, machine, bob, known_hosts, "true").returncode == 0
        plugin_command_logs_in(kubeconfig, rentals, sshd, machine, bob, tmp_path)
    finally:
        sshd.stop()


def plugin_command_logs_in(kubeconfig: str, rentals: Rentals, sshd: Sshd, machine: Machine,
                           key: Path, tmp_path: Path) -> None:
    """`kubectl gpurental ssh`'s own ssh command, run as printed, against the sidecar's sshd
    at the local end of the port-forward (which needs a kubelet: sshd stands there)."""
    printed = subprocess.run(
        [str(PLUGIN), "--kubeconfig", kubeconfig, "-n", rentals.namespace, "ssh", "box",
         "--print", "--port-forward", "--local-port", str(sshd.port), "--", "id", "-un"],
        capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    forward, command = (shlex.split(line) for line in printed.stdout.splitlines())
    assert forward[-2:] == ["svc/box", f"{sshd.port}:22"]
    assert command[-3:] == [f"{machine.user}@127.0.0.1", "id", "-un"]
    # The user's own client settings: their key, a known_hosts of their own, no prompts.
    options = ["-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
               "-o", f"UserKnownHostsFile={tmp_path / 'plugin_known_hosts'}",
               "-o", "StrictHostKeyChecking=accept-new"]
    login = subprocess.run([command[0], *options, *command[1:]], capture_output=True,
                           text=True, timeout=30)
    assert login.returncode == 0, login.stderr
    assert login.stdout.strip() == machine.user


def test_the_host_key_survives_pause_and_resume(
        rentals: Rentals, ssh_offer: None, kubeconfig: str, machine: Machine,
        tmp_path: Path) -> None:
    key = keypair(tmp_path / "carol", "carol@laptop")
    known_hosts = tmp_path / "known_hosts"
    rentals.create("box", offer="ssh-openssh", command=["sleep", "infinity"],
                   sshKeys=[key.with_suffix(".pub").read_text().strip()])
    rentals.wait_phase("box", "Running")
    machine.mount_secret(keys_become(rentals, "box", key))
    first = Sshd(machine, sidecar_script(rentals, "box"), tmp_path / "sshd-1.log")
    try:
        assert ssh(first, machine, key, known_hosts, "true",
                   strict="accept-new").returncode == 0
        host_key = first.host_key()
    finally:
        first.stop()  # the pod goes with the pause
    plugin(kubeconfig, rentals, "pause", "box")
    rentals.wait_phase("box", "Paused")
    plugin(kubeconfig, rentals, "resume", "box")
    rentals.wait_phase("box", "Running")
    machine.mount_secret(keys_become(rentals, "box", key))
    # A new pod, a new sshd process, the same volume: the same host key, no warning.
    resumed = Sshd(machine, sidecar_script(rentals, "box"), tmp_path / "sshd-2.log")
    try:
        assert resumed.host_key() == host_key
        login = ssh(resumed, machine, key, known_hosts, "true")
        assert login.returncode == 0, login.stderr
    finally:
        resumed.stop()
    # The check is not vacuous: a fresh volume means a new host key, which ssh refuses.
    machine.mount_secret(secret_data(rentals, "box"), volume="other-volume")
    fresh = Sshd(machine, sidecar_script(rentals, "box"), tmp_path / "sshd-3.log",
                 volume="other-volume")
    try:
        changed = ssh(fresh, machine, key, known_hosts, "true")
        assert changed.returncode == 255 and "HOST IDENTIFICATION HAS CHANGED" in changed.stderr
    finally:
        fresh.stop()
