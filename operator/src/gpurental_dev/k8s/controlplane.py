"""etcd, kube-apiserver, kube-controller-manager and kube-scheduler on loopback, for tests.

Started from the one cached binary (`binary`), each as its own process with its log in the
work directory, with envtest's flags as the base and what this project's tests need on top:
RBAC and Node authorization judged by the real authorizer, an audit log of the writes the
tests time (the real server's request record), a default StorageClass whose volumes the
simulated nodes provision, and node-loss timings that can be shortened. `stop()` ends every
process it started and removes etcd's data; nothing listens afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from . import binary
from .pki import KeyPair, Pki, write_kubeconfig

SERVICE_CIDR = "10.0.0.0/24"
STORAGE_CLASS = "standard"
# Who provisions the default StorageClass's volumes: the simulated nodes' provisioner
# (kubesim.provisioner.PROVISIONER_NAME), as a CSI driver's external-provisioner would.
PROVISIONER = "kubesim.dev/hostpath"

# Every write (Metadata level: no bodies), whose arrival tests and the bench time, and what a
# ServiceAccount asks for; no other reads.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "Metadata", "verbs": ["create", "delete", "deletecollection", "patch",
                                        "update"]},
        # Every request of a ServiceAccount (the operator run with its chart's token): the
        # RBAC tests check each call it made against the chart's rules.
        {"level": "Metadata", "userGroups": ["system:serviceaccounts"]},
        {"level": "None"},
    ],
}


def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Timings:
    """Node-lifecycle timings (seconds); the defaults are upstream's."""

    node_monitor_grace_period: int = 50
    not_ready_toleration: int = 300
    unreachable_toleration: int = 300


@dataclass
class AuditEvent:
    verb: str  # the API verb: get, list, watch, create, patch, delete...
    uri: str
    user: str
    code: int
    received: datetime
    completed: datetime
    resource: str
    subresource: str

    @property
    def timestamp(self) -> float:
        return self.received.timestamp()


def _audit_event(line: bytes) -> AuditEvent | None:
    event = json.loads(line) if line.strip() else {}
    # A watch is logged when its response starts and again when it completes.
    if event.get("stage") != "ResponseComplete":
        return None
    ref = event.get("objectRef") or {}
    return AuditEvent(
        verb=event["verb"], uri=event["requestURI"],
        user=(event.get("user") or {}).get("username", ""),
        code=int((event.get("responseStatus") or {}).get("code", 0)),
        received=_time(event["requestReceivedTimestamp"]),
        completed=_time(event["stageTimestamp"]),
        resource=ref.get("resource", ""), subresource=ref.get("subresource", ""))


@dataclass
class _Component:
    name: str
    argv: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, exe: Path) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen([str(exe), self.name, *self.argv], stdout=out,
                                            stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if not self.alive():
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# The client rate limits of the controller manager and the scheduler. Their defaults (20 and
# 50 requests/s) are sized for shared production API servers; here the PV binder's four writes
# per claim at 20/s made a thousand rentals' volumes take minutes to bind, so every test and
# benchmark on this control plane would wait on a throttle no platform keeps at that scale.
CLIENT_RATE = ("--kube-api-qps=1000", "--kube-api-burst=2000")


class ControlPlane:
    """A single-node-less control plane; nodes are played by `kubesim node` (see cluster)."""

    def __init__(self, workdir: Path, *, timings: Timings | None = None,
                 apiserver_args: Sequence[str] = ()) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.timings = timings or Timings()
        self.extra_apiserver_args = list(apiserver_args)
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.audit_log = self.workdir / "audit.log"
        self._audit: list[AuditEvent] = []  # parsed so far, and the bytes they came from
        self._audit_read = 0
        self._audit_lock = threading.Lock()
        self.version = binary.KUBERNETES_VERSION
        self._components: list[_Component] = []
        self._pki: Pki | None = None
        self.kubeconfig = self.workdir / "kubeconfig"

    @property
    def pki(self) -> Pki:
        if self._pki is None:
            self._pki = Pki(self.workdir / "pki")
        return self._pki

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, timeout: float = 180.0) -> ControlPlane:
        exe = binary.ensure_binary().path
        deadline = time.monotonic() + timeout
        try:
            admin = self.pki.client("admin", ("system:masters",))
            write_kubeconfig(self.kubeconfig, self.url, self.pki.ca.cert, cert=admin)
            etcd_url = self._start_etcd(exe, deadline)
            self._start(exe, "kube-apiserver", self._apiserver_args(etcd_url))
            self._wait_ready(admin, deadline)
            # Each component as itself (the bootstrap RBAC policy's users), so the audit log
            # tells the operator's requests from the controllers'.
            self._start(exe, "kube-controller-manager", self._controller_manager_args(
                self._component_kubeconfig("system:kube-controller-manager")))
            self._start(exe, "kube-scheduler", [
                f"--kubeconfig={self._component_kubeconfig('system:kube-scheduler')}",
                "--leader-elect=false", "--secure-port=0", *CLIENT_RATE, "-v=1"])
            self._apply(self._default_storage_class())
            self._wait_controllers(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def pids(self) -> dict[str, int]:
        """The running components' process ids, by name (for the bench's CPU and RSS)."""
        return {c.name: c.process.pid for c in self._components
                if c.process is not None and c.alive()}

    def stop(self) -> None:
        for component in reversed(self._components):
            component.stop()
        self._components.clear()
        shutil.rmtree(self.workdir / "etcd", ignore_errors=True)

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _start(self, exe: Path, name: str, argv: list[str]) -> _Component:
        component = _Component(name, argv, self.workdir / f"{name}.log")
        component.start(exe)
        self._components.append(component)
        return component

    def _check_alive(self) -> None:
        for component in self._components:
            if not component.alive():
                tail = component.log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{component.name} exited; {component.log}:\n{tail}")

    # -- etcd -------------------------------------------------------------------------------

    def _start_etcd(self, exe: Path, deadline: float) -> str:
        client_url = f"http://127.0.0.1:{free_port()}"
        self._start(exe, "etcd", [f"--data-dir={self.workdir / 'etcd'}",
                                  f"--listen-client-url={client_url}",
                                  f"--listen-peer-url=http://127.0.0.1:{free_port()}",
                                  "--unsafe-no-fsync"])
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(OSError), \
                    urllib.request.urlopen(f"{client_url}/health", timeout=1) as response:
                if json.loads(response.read()).get("health") == "true":
                    return client_url
            time.sleep(0.1)
        raise TimeoutError("etcd did not become healthy")

    # -- kube-apiserver ---------------------------------------------------------------------

    def _apiserver_args(self, etcd_url: str) -> list[str]:
        pki, t = self.pki, self.timings
        policy = self.workdir / "audit-policy.json"
        policy.write_text(json.dumps(AUDIT_POLICY))
        return [
            f"--etcd-servers={etcd_url}",
            f"--secure-port={self.port}", "--bind-address=127.0.0.1",
            # Loopback cannot be a Service endpoint: the `kubernetes` Service gets none (every
            # client here is outside the cluster and dials the URL of its kubeconfig).
            "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none",
            f"--tls-cert-file={pki.serving.cert}", f"--tls-private-key-file={pki.serving.key}",
            f"--client-ca-file={pki.ca.cert}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            f"--service-account-issuer={self.url}",
            f"--service-account-key-file={pki.service_account_pub}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            "--allow-privileged=true",
            # Webhooks reach a Service through its EndpointSlices (or its ExternalName),
            # never its ClusterIP: there is no kube-proxy.
            "--enable-aggregator-routing=true",
            f"--audit-log-path={self.audit_log}", f"--audit-policy-file={policy}",
            "--audit-log-format=json",
            f"--default-not-ready-toleration-seconds={t.not_ready_toleration}",
            f"--default-unreachable-toleration-seconds={t.unreachable_toleration}",
            "-v=1",
            *self.extra_apiserver_args,
        ]

    def _ssl_context(self, cert: KeyPair) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki.ca.cert))
        context.load_cert_chain(str(cert.cert), str(cert.key))
        return context

    def _wait_ready(self, admin: KeyPair, deadline: float) -> None:
        context = self._ssl_context(admin)
        last = ""
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2,
                                            context=context) as response:
                    if response.status == 200:
                        return
            except urllib.error.HTTPError as exc:
                last = exc.read().decode(errors="replace")[-500:]
            except OSError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise TimeoutError(f"kube-apiserver not ready: {last}")

    # -- controllers ------------------------------------------------------------------------

    def _component_kubeconfig(self, user: str) -> Path:
        return self.user_kubeconfig(user)

    def _controller_manager_args(self, kubeconfig: Path) -> list[str]:
        pki, t = self.pki, self.timings
        return [
            f"--kubeconfig={kubeconfig}", "--leader-elect=false", "--secure-port=0",
            # Each controller with its own ServiceAccount and bootstrap role, as kubeadm runs
            # them (the manager's own user may do little more than mint their tokens).
            "--use-service-account-credentials=true",
            f"--root-ca-file={pki.ca.cert}",
            f"--service-account-private-key-file={pki.service_account_key}",
            f"--cluster-signing-cert-file={pki.ca.cert}",
            f"--cluster-signing-key-file={pki.ca.key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--node-monitor-grace-period={t.node_monitor_grace_period}s",
            "--node-monitor-period=2s",
            # Nodes are simulated: no cloud, no pod CIDRs to allocate.
            "--allocate-node-cidrs=false", "--controllers=*",
            *CLIENT_RATE,
            "-v=1",
        ]

    def _wait_controllers(self, deadline: float) -> None:
        """The controller manager is up once it made the default ServiceAccount."""
        while time.monotonic() < deadline:
            self._check_alive()
            found = self.kubectl("get", "serviceaccount", "default", "-n", "default",
                                 "-o", "name", check=False)
            if found.returncode == 0:
                return
            time.sleep(0.2)
        raise TimeoutError("kube-controller-manager made no default ServiceAccount")

    @staticmethod
    def _default_storage_class() -> dict[str, Any]:
        return {
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": STORAGE_CLASS, "annotations": {
                "storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": PROVISIONER, "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        }

    # -- clients ----------------------------------------------------------------------------

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
        from gpurental_dev.cluster import KUBECTL

        cmd = [str(KUBECTL), f"--kubeconfig={kubeconfig or self.kubeconfig}",
               f"--cache-dir={self.workdir / 'kubectl-cache'}", *args]
        result = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr}")
        return result

    def _apply(self, obj: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", input=json.dumps(obj))

    def user_kubeconfig(self, user: str, groups: tuple[str, ...] = ()) -> Path:
        """A kubeconfig authenticating as `user` (in `groups`) with a client certificate."""
        pair = self.pki.client(user, groups)
        safe = pair.cert.stem
        return write_kubeconfig(self.workdir / "users" / f"{safe}.kubeconfig", self.url,
                                self.pki.ca.cert, cert=pair)

    def service_account_token(self, namespace: str, name: str, seconds: int = 3600) -> str:
        """A token of the ServiceAccount, from the TokenRequest API (as the kubelet gets it)."""
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                   "spec": {"expirationSeconds": seconds}}
        result = self.kubectl("create", "--raw",
                              f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
                              "-f", "-", input=json.dumps(request))
        return str(json.loads(result.stdout)["status"]["token"])

    def service_account_kubeconfig(self, namespace: str, name: str) -> Path:
        token = self.service_account_token(namespace, name)
        return write_kubeconfig(self.workdir / "users" / f"sa-{namespace}-{name}.kubeconfig",
                                self.url, self.pki.ca.cert, token=token, namespace=namespace)

    def audit_events(self) -> list[AuditEvent]:
        """Every write the audit policy records, in the order the server logged them.

        Each line is parsed once: a call reads on from where the last one stopped (a bench
        at thousands of rentals polls a log of hundreds of megabytes)."""
        with self._audit_lock:
            if self.audit_log.exists():
                with open(self.audit_log, "rb") as log:
                    if log.seek(0, os.SEEK_END) < self._audit_read:  # a new log: start over
                        self._audit_read, self._audit = 0, []
                    log.seek(self._audit_read)
                    chunk = log.read()
                complete = chunk.rfind(b"\n") + 1  # a line still being written waits
                self._audit_read += complete
                self._audit.extend(event for line in chunk[:complete].splitlines()
                                   if (event := _audit_event(line)) is not None)
            return list(self._audit)
