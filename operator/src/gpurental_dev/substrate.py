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
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import yaml

from kubesim.launch import Emulator, start_emulator

from .k8s.controlplane import ControlPlane, Timings

KUBESIM = "kubesim"
KUBERNETES = "kubernetes"
NAMES = (KUBESIM, KUBERNETES)
NODES_USER = "kubesim-node"

_VERBS = {"create": "POST", "delete": "DELETE", "deletecollection": "DELETE",
          "patch": "PATCH", "update": "PUT"}


def _method(verb: str) -> str:
    return _VERBS.get(verb, "GET")  # get, list and watch are GETs


def selected() -> list[str]:
    """The substrates a test run covers: `$GPURENTAL_SUBSTRATES` (comma-separated), else all."""
    wanted = [n.strip() for n in os.environ.get("GPURENTAL_SUBSTRATES", "").split(",")
              if n.strip()]
    unknown = sorted(set(wanted) - set(NAMES))
    if unknown:
        raise ValueError(f"GPURENTAL_SUBSTRATES: unknown {unknown}; choose from {NAMES}")
    return wanted or list(NAMES)


# One request as the API server received it, the shape of kubesim's record: "method", "path",
# "query", "status" (the answer's code), "user", "timestamp" (arrival, epoch seconds), and the
# API "verb", "resource" and "subresource". The real server records writes to the project's
# kinds, pods and claims, and every request of a ServiceAccount (its audit policy).
Request = dict[str, Any]


class Substrate(Protocol):
    name: str
    kubeconfig: Path
    admin_user: str  # who the admin kubeconfig authenticates as

    def node_args(self) -> list[str]: ...

    def nodes_kubeconfig(self) -> Path:
        """The identity the simulated nodes (kubelets, provisioner) act as."""
        ...

    def start_recording(self) -> float: ...

    def recorded(self, since: float) -> list[Request]: ...

    def user_kubeconfig(self, user: str, groups: Sequence[str] = ()) -> Path:
        """A kubeconfig whose requests the API server authenticates as `user` in `groups`."""
        ...

    def stop(self) -> None: ...


class Kubesim:
    name = KUBESIM
    admin_user = "kubesim-admin"

    def __init__(self, emulator: Emulator, owned: bool = True) -> None:
        self.emulator = emulator
        self.kubeconfig = Path(emulator.kubeconfig)
        self.url = emulator.url
        self._owned = owned

    def node_args(self) -> list[str]:
        return []

    def nodes_kubeconfig(self) -> Path:
        return self.kubeconfig  # kubesim judges only the identities it issued tokens for

    def admin(self, what: str, method: str, body: Any = None) -> Any:
        """One of kubesim's `/_kubesim/` admin endpoints: requests, faults, tokens, stats."""
        request = urllib.request.Request(
            f"{self.url}/_kubesim/{what}", method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def start_recording(self) -> float:
        self.admin("requests", "DELETE")
        self.admin("requests", "POST", {"enabled": True})
        return time.time()

    def recorded(self, since: float) -> list[Request]:
        entries = self.admin("requests", "GET")["requests"]
        return [e for e in entries if float(e["timestamp"]) >= since]

    def user_kubeconfig(self, user: str, groups: Sequence[str] = ()) -> Path:
        token = self.admin("tokens", "POST", {"user": user, "groups": list(groups)})["token"]
        config = yaml.safe_load(self.kubeconfig.read_text())
        config["users"][0]["user"] = {"token": token}
        path = self.kubeconfig.parent / "users" / f"{user}.kubeconfig"
        path.parent.mkdir(exist_ok=True)
        path.write_text(yaml.safe_dump(config))
        return path

    def stop(self) -> None:
        if self._owned:
            self.emulator.stop()


class Kubernetes:
    name = KUBERNETES
    admin_user = "admin"  # the client certificate's CN (in group system:masters)
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

    def nodes_kubeconfig(self) -> Path:
        # An administrator of its own name: the request record tells its writes apart.
        return self.control_plane.user_kubeconfig(NODES_USER, ("system:masters",))

    def start_recording(self) -> float:
        return time.time()  # the audit log always records

    def recorded(self, since: float) -> list[Request]:
        found = []
        for event in self.control_plane.audit_events():
            if event.timestamp >= since:
                uri = urlsplit(event.uri)
                found.append({"method": _method(event.verb), "path": uri.path,
                              "query": uri.query, "status": event.code, "user": event.user,
                              "timestamp": event.timestamp, "verb": event.verb,
                              "duration": (event.completed - event.received).total_seconds(),
                              "resource": event.resource, "subresource": event.subresource})
        return found

    def user_kubeconfig(self, user: str, groups: Sequence[str] = ()) -> Path:
        return self.control_plane.user_kubeconfig(user, tuple(groups))

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
