"""The API server a `Cluster` runs on: kubesim (the emulator) or a real Kubernetes control plane.

Both give the same three things: a kubeconfig with administrator rights, the extra flags the
simulated nodes need on that substrate, and a request record (when each write reached the API
server: kubesim's `/_kubesim/requests`, the real server's audit log). Tests and the bench
choose one by name; where they disagree, Kubernetes is the reference.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from kubesim.launch import Emulator, start_emulator

from .k8s.controlplane import ControlPlane, Timings

KUBESIM = "kubesim"
KUBERNETES = "kubernetes"
NAMES = (KUBESIM, KUBERNETES)

_VERBS = {"create": "POST", "delete": "DELETE", "deletecollection": "DELETE",
          "patch": "PATCH", "update": "PUT"}


def selected() -> list[str]:
    """The substrates a test run covers: `$GPURENTAL_SUBSTRATES` (comma-separated), else all."""
    wanted = [n.strip() for n in os.environ.get("GPURENTAL_SUBSTRATES", "").split(",")
              if n.strip()]
    unknown = sorted(set(wanted) - set(NAMES))
    if unknown:
        raise ValueError(f"GPURENTAL_SUBSTRATES: unknown {unknown}; choose from {NAMES}")
    return wanted or list(NAMES)


@dataclass(frozen=True)
class Request:
    """One write as the API server received it (`timestamp`: seconds since the epoch)."""

    method: str
    path: str
    timestamp: float


class Substrate(Protocol):
    name: str
    kubeconfig: Path

    def node_args(self) -> list[str]: ...

    def start_recording(self) -> float: ...

    def recorded(self, since: float) -> list[Request]: ...

    def stop(self) -> None: ...


class Kubesim:
    name = KUBESIM

    def __init__(self, emulator: Emulator, owned: bool = True) -> None:
        self.emulator = emulator
        self.kubeconfig = Path(emulator.kubeconfig)
        self.url = emulator.url
        self._owned = owned

    def node_args(self) -> list[str]:
        return []

    def _admin(self, method: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            f"{self.url}/_kubesim/requests", method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def start_recording(self) -> float:
        self._admin("DELETE")
        self._admin("POST", {"enabled": True})
        return time.time()

    def recorded(self, since: float) -> list[Request]:
        entries = self._admin("GET")["requests"]
        return [Request(e["method"], e["path"], float(e["timestamp"])) for e in entries
                if float(e["timestamp"]) >= since]

    def stop(self) -> None:
        if self._owned:
            self.emulator.stop()


class Kubernetes:
    name = KUBERNETES
    # The node-lifecycle controller needs a heartbeat well inside its grace period.
    LEASE_INTERVAL = 5.0

    def __init__(self, control_plane: ControlPlane, owned: bool = True) -> None:
        self.control_plane = control_plane
        self.kubeconfig = control_plane.kubeconfig
        self.url = control_plane.url
        self._owned = owned

    def node_args(self) -> list[str]:
        return ["--no-scheduler", "--external-provisioner",
                "--lease-interval", str(self.LEASE_INTERVAL)]

    def start_recording(self) -> float:
        return time.time()  # the audit log always records

    def recorded(self, since: float) -> list[Request]:
        return [Request(_VERBS.get(e.verb, e.verb.upper()), urlsplit(e.uri).path, e.timestamp)
                for e in self.control_plane.audit_events() if e.timestamp >= since]

    def stop(self) -> None:
        if self._owned:
            self.control_plane.stop()


def start(name: str, workdir: Path, *, timings: Timings | None = None,
          emulator_args: Sequence[str] = ()) -> Substrate:
    workdir = Path(workdir)
    if name == KUBESIM:
        return Kubesim(start_emulator(workdir / "kubesim", extra_args=list(emulator_args)))
    if name == KUBERNETES:
        return Kubernetes(ControlPlane(workdir / "k8s", timings=timings).start())
    raise ValueError(f"unknown substrate {name!r}; choose from {NAMES}")
