"""A GPU cluster with the real operator running on it, for tests, demo and bench.

Owns process orchestration only: the API server (kubesim, or a real control plane: see
`substrate`), the simulated GPU nodes and the operator each run as their own subprocess (their
own GIL, killable with SIGKILL like a real pod), and talk to each other only over HTTP.
Nothing here reaches into any of them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from . import substrate as substrates
from .substrate import Substrate

ROOT = Path(__file__).resolve().parents[3]
CRDS = ROOT / "crds"
BIN = Path(sys.executable).parent
KUBECTL = BIN / "kubectl"

DEFAULT_NODES = (
    "gpu-4090-a=NVIDIA-GeForce-RTX-4090:4",
    "gpu-4090-b=NVIDIA-GeForce-RTX-4090:4",
    "gpu-h100-a=NVIDIA-H100-80GB-HBM3:2",
    "gpu-a100-mig=NVIDIA-A100-SXM4-80GB:7:nvidia.com/mig-1g.10gb",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env() -> dict[str, str]:
    src = str(ROOT / "operator" / "src")
    env = dict(os.environ)
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _stop(process: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM,
          timeout: float = 15.0) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class OperatorProcess:
    """The real `gpurental-operator` console script against the emulator."""

    def __init__(self, kubeconfig: Path, workdir: Path, args: Sequence[str] = (),
                 env: dict[str, str] | None = None, profile: Path | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        self.args = list(args)
        self.extra_env = env or {}
        # Run under `py-spy record --gil` (only the thread holding the GIL: Python CPU, not
        # threads waiting on sockets; raw stacks written here at stop). py-spy starts the
        # operator, so the whole run is sampled from the first handler on.
        self.profile = profile
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._operator_pid = 0
        self.starts = 0

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def start(self, timeout: float = 60.0) -> OperatorProcess:
        self.starts += 1
        log = open(self.workdir / f"operator-{self.starts}.log", "wb")  # noqa: SIM115
        cmd = [str(BIN / "gpurental-operator"), "--metrics-port", str(self.port), *self.args]
        if self.profile is not None:
            cmd = [str(BIN / "py-spy"), "record", "--rate", "100", "--nonblocking", "--gil",
                   "--format", "raw", "--output", str(self.profile), "--", *cmd]
        env = {**_env(), "KUBECONFIG": str(self.kubeconfig), **self.extra_env}
        self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        self._wait_healthy(timeout)
        self._operator_pid = self.pid  # py-spy's child may outlive a crashed py-spy
        return self

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"operator exited with {self.process.returncode}; see "
                                   f"{self.workdir}/operator-{self.starts}.log")
            url = f"http://127.0.0.1:{self.port}/healthz"
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1):
                return
            time.sleep(0.1)
        raise TimeoutError("operator did not become healthy")

    @property
    def pid(self) -> int:
        """The operator's own process id (py-spy's child when profiled)."""
        assert self.process is not None
        if self.profile is None:
            return self.process.pid
        import psutil  # a test dependency, like py-spy a dev one: only profiled runs need it

        deadline = time.monotonic() + 10
        while not (children := psutil.Process(self.process.pid).children()):
            if time.monotonic() > deadline:
                raise RuntimeError("py-spy started no operator")
            time.sleep(0.05)
        return children[0].pid

    def kill(self) -> None:
        """SIGKILL, as the kubelet does when a pod's grace period runs out."""
        _stop(self.process, signal.SIGKILL)

    def stop(self) -> None:
        if self.profile is not None and self.process is not None:
            import psutil

            if self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)  # py-spy writes its stacks and exits
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(60)
            with contextlib.suppress(psutil.Error):
                operator = psutil.Process(self._operator_pid)
                operator.terminate()
                operator.wait(30)
        _stop(self.process)

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def log_text(self) -> str:
        return "".join(p.read_text(errors="replace")
                       for p in sorted(self.workdir.glob("operator-*.log")))


class GpuNodes:
    """The simulated kubelet + scheduler + PVC provisioner, as a subprocess."""

    def __init__(self, kubeconfig: Path, workdir: Path, nodes: Sequence[str] = DEFAULT_NODES,
                 args: Sequence[str] = (), log_name: str = "nodes.log") -> None:
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        self.nodes = list(nodes)
        self.args = list(args)
        self.log_name = log_name
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> GpuNodes:
        log = open(self.workdir / self.log_name, "wb")  # noqa: SIM115
        cmd = [sys.executable, "-m", "kubesim", "node", "--kubeconfig", str(self.kubeconfig)]
        for node in self.nodes:
            cmd += ["--node", node]
        self.process = subprocess.Popen([*cmd, *self.args], stdout=log,
                                        stderr=subprocess.STDOUT, env=_env())
        log.close()
        return self

    def stop(self) -> None:
        _stop(self.process)

    def kill(self) -> None:
        """SIGKILL: the nodes die at once (no more heartbeats, pods left as they were)."""
        _stop(self.process, signal.SIGKILL)


class Cluster:
    """An API server + CRDs + simulated GPU nodes (+ an operator, when asked).

    `substrate` names the API server to start (`kubesim` or `kubernetes`), or is one already
    running (then the cluster does not stop it).
    """

    def __init__(self, workdir: Path, nodes: Sequence[str] = DEFAULT_NODES,
                 node_args: Sequence[str] = (), substrate: str | Substrate = substrates.KUBESIM,
                 crds: bool = True) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._owns_substrate = isinstance(substrate, str)
        self.substrate = (substrates.start(substrate, self.workdir)
                          if isinstance(substrate, str) else substrate)
        self.kubeconfig = Path(self.substrate.kubeconfig)
        self.operators: list[OperatorProcess] = []
        self.nodes: GpuNodes | None = None
        try:
            if crds:
                self.apply_crds(CRDS)
            self.nodes = GpuNodes(self.substrate.nodes_kubeconfig(), self.workdir, nodes,
                                  [*self.substrate.node_args(), *node_args]).start()
        except BaseException:
            self.close()
            raise

    @property
    def on_kubernetes(self) -> bool:
        return self.substrate.name == substrates.KUBERNETES

    def apply_crds(self, path: Path | str) -> None:
        """Apply CRDs and wait until they are Established (a real server takes a moment)."""
        self.kubectl("apply", "-f", str(path))
        self.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = [str(KUBECTL), f"--kubeconfig={self.kubeconfig}",
               f"--cache-dir={self.workdir / 'kubectl-cache'}", *args]
        result = subprocess.run(cmd, input=input, capture_output=True, text=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed:\n{result.stdout}"
                               f"{result.stderr}")
        return result

    def start_operator(self, *args: str, env: dict[str, str] | None = None,
                       profile: Path | None = None) -> OperatorProcess:
        workdir = self.workdir / f"operator-{len(self.operators)}"
        workdir.mkdir(exist_ok=True)
        operator = OperatorProcess(self.kubeconfig, workdir, args, env, profile).start()
        self.operators.append(operator)
        return operator

    def close(self) -> None:
        for operator in self.operators:
            operator.stop()
        if self.nodes is not None:
            self.nodes.stop()
        if self._owns_substrate:
            self.substrate.stop()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
