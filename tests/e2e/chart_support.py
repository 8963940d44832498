"""Running a rendered chart's operator container as a kubelet would, for the e2e tests.

There is no container runtime here: the Deployment's container is run as a local process with
its exact command, args and env (field references resolved for the pod it stands for),
authenticated with a token of its ServiceAccount.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

from gpurental_dev.cluster import BIN, ROOT


def container_of(objects: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    return dict(deployment["spec"]["template"]["spec"]["containers"][0])


def pod_env(container: dict[str, Any], pod_name: str, namespace: str) -> dict[str, str]:
    """The container's env as the kubelet resolves it for a pod of this name."""
    fields = {"metadata.name": pod_name, "metadata.namespace": namespace}
    env: dict[str, str] = {}
    for var in container.get("env") or []:
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            env[var["name"]] = fields[var["valueFrom"]["fieldRef"]["fieldPath"]]
    return env


class ChartOperator:
    """The rendered Deployment's container, run as a local process."""

    def __init__(self, container: dict[str, Any], kubeconfig: Path, workdir: Path,
                 pod_name: str, namespace: str) -> None:
        self.port = next(p["containerPort"] for p in container["ports"]
                         if p["name"] == "metrics")
        command = [str(BIN / container["command"][0]), *container.get("args", [])]
        env = {**os.environ, **pod_env(container, pod_name, namespace),
               "KUBECONFIG": str(kubeconfig),
               "PYTHONPATH": str(ROOT / "operator" / "src")}
        self.log = workdir / "operator.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            env=env)

    def healthy(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()[-3000:]
        with contextlib.suppress(OSError), urllib.request.urlopen(
                f"http://127.0.0.1:{self.port}/healthz", timeout=2):
            return True
        return False

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
