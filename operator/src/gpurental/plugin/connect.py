"""`kubectl gpurental ssh` and `open`: the exact commands that reach a rental.

Pure planning (`ssh_plan`, `open_plan`) from the rental as the API returns it, so the
invocation is tested as data and printed by `--print`; `run` is the only part that starts
processes. An address the rental's Service exposes outside the cluster (a load balancer's
ingress or a node port) is used directly; otherwise `kubectl port-forward` to the rental's
Service carries the connection from localhost.
"""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

SSH_PORT_NAME = "ssh"
OUTSIDE = ("ingress", "load-balancer", "nodes")  # reaches from outside the cluster
FORWARD_READY = "Forwarding from"
FORWARD_TIMEOUT = 20.0


class ConnectError(Exception):
    """Why there is nothing to connect to (printed as `error: ...`)."""


@dataclass(frozen=True)
class Plan:
    command: list[str]  # ssh, or empty for `open` (which prints the URL)
    url: str = ""
    port_forward: list[str] = field(default_factory=list)  # started first when set

    def lines(self) -> list[str]:
        lines = [shlex.join(self.port_forward)] if self.port_forward else []
        if self.command:
            lines.append(shlex.join(self.command))
        if self.url:
            lines.append(self.url)
        return lines


def _running_endpoint(rental: dict[str, Any], port: str) -> dict[str, Any]:
    name = rental["metadata"]["name"]
    status = rental.get("status") or {}
    phase = status.get("phase") or "Pending"
    if phase != "Running":
        hint = f"; `kubectl gpurental resume {name}` first" if phase == "Paused" else ""
        raise ConnectError(f'gpurental "{name}" is {phase}, not Running{hint}')
    entries = status.get("endpoints") or []
    for entry in entries:
        if entry.get("name") == port or str(entry.get("port")) == port:
            return dict(entry)
    known = ", ".join(f"{e.get('name')} ({e.get('port')})" for e in entries) or "none"
    raise ConnectError(f'gpurental "{name}" has no port {port!r} (its ports: {known}); '
                       "declare it in spec.ports")


def _forward(rental: dict[str, Any], entry: dict[str, Any], local_port: int,
             kubectl: Sequence[str]) -> list[str]:
    namespace = rental["metadata"]["namespace"]
    service = entry.get("serviceName") or rental["metadata"]["name"]
    return [*kubectl, "-n", namespace, "port-forward", f"svc/{service}",
            f"{local_port}:{entry['port']}"]


def _direct(entry: dict[str, Any], forward: bool) -> bool:
    return not forward and entry.get("reach") in OUTSIDE and bool(entry.get("host"))


def ssh_plan(rental: dict[str, Any], remote: Sequence[str], local_port: int,
             kubectl: Sequence[str] = ("kubectl",), forward: bool = False) -> Plan:
    """ssh to the rental's sidecar, with the user's own client and keys."""
    entry = _running_endpoint(rental, SSH_PORT_NAME)
    user = entry.get("user") or "gpu"
    meta = rental["metadata"]
    # One known_hosts entry per rental, whichever address or local port reaches it.
    alias = ["-o", f"HostKeyAlias={meta['name']}.{meta['namespace']}.gpurental"]
    if _direct(entry, forward):
        return Plan(["ssh", "-p", str(entry["hostPort"]), *alias,
                     f"{user}@{entry['host']}", *remote])
    return Plan(["ssh", "-p", str(local_port), *alias, f"{user}@127.0.0.1", *remote],
                port_forward=_forward(rental, entry, local_port, kubectl))


def open_plan(rental: dict[str, Any], port: str, local_port: int,
              kubectl: Sequence[str] = ("kubectl",), forward: bool = False) -> Plan:
    """The URL of a web port, through a port-forward unless it is exposed outside."""
    entry = _running_endpoint(rental, port)
    if _direct(entry, forward):
        connect_line = str(entry.get("connect") or "")
        if connect_line.startswith(("http://", "https://")):
            return Plan([], url=connect_line)  # an Ingress host, or a web port's address
        return Plan([], url=f"http://{entry['host']}:{entry['hostPort']}/")
    return Plan([], url=f"http://127.0.0.1:{local_port}/",
                port_forward=_forward(rental, entry, local_port, kubectl))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_forward(argv: list[str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + FORWARD_TIMEOUT
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if FORWARD_READY in line:
            return proc
        if not line and proc.poll() is not None:
            break
    proc.kill()
    error = proc.stderr.read().strip() if proc.stderr else ""
    raise ConnectError(f"kubectl port-forward did not start: {error or 'timed out'}")


def run(plan: Plan, wait: bool) -> int:
    """Start the port-forward (if any), then ssh; or print the URL and keep the forward
    open until Ctrl-C (`wait`)."""
    forward = _start_forward(plan.port_forward) if plan.port_forward else None
    try:
        if plan.command:
            return subprocess.call(plan.command)
        print(plan.url, flush=True)
        if forward is not None and wait:
            print("forwarding; Ctrl-C to stop", file=sys.stderr, flush=True)
            return forward.wait()
        return 0
    finally:
        if forward is not None and forward.poll() is None:
            forward.terminate()
            forward.wait(timeout=10)
