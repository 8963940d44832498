"""How a rental is reached: its exposed ports, its sshd sidecar's configuration, and the
endpoints users read in status.

Pure: plain values in, plain values out. The endpoints are computed from the Service as
Kubernetes reports it (cluster IP, node ports, load-balancer ingress), never from what the
operator asked for, so status shows an address only once it really exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gpurental.models import OfferSpec, PortSpec, RentalSpec, ServiceType
from gpurental.observed import IngressView, ServiceView

SSH_PORT_NAME = "ssh"
SSH_PORT = 22
# The sidecar runs unprivileged, so it cannot bind 22; the Service maps 22 to this port.
SSHD_LISTEN_PORT = 2222
SSHD_CONTAINER = "sshd"
# Where the sidecar finds its configuration and the keys: the rental's SSH-keys Secret,
# mounted as a directory so the kubelet refreshes authorized_keys while the pod runs.
SSH_MOUNT_DIR = "/etc/gpurental/ssh"
SSHD_CONFIG_KEY = "sshd_config"
HOST_KEY_TYPES = ("ed25519", "rsa")


def host_key_dir(mount_path: str) -> str:
    """On the rental's volume, so a resumed rental keeps its host keys (no "host key changed"
    warning after a pause)."""
    return f"{mount_path.rstrip('/')}/.gpurental/sshd"


def ssh_enabled(offer: OfferSpec | None) -> bool:
    return offer is not None and offer.access.ssh.enabled


def exposed_ports(spec: RentalSpec, offer: OfferSpec | None) -> tuple[PortSpec, ...]:
    """The rental's declared ports, plus ssh on 22 when the offer runs the sshd sidecar and
    the rental did not declare it (the sidecar is useless without a way in)."""
    ports = spec.ports
    if ssh_enabled(offer) and not any(p.name == SSH_PORT_NAME for p in ports):
        ports = (PortSpec(name=SSH_PORT_NAME, port=SSH_PORT), *ports)
    return ports


def port_conflict(spec: RentalSpec, offer: OfferSpec | None) -> str | None:
    """A declared port the sshd sidecar already listens on (the pod shares one network)."""
    if not ssh_enabled(offer):
        return None
    for port in spec.ports:
        if port.port == SSHD_LISTEN_PORT and port.name != SSH_PORT_NAME:
            return (f"spec.ports: {port.name} ({port.port}) is the port of the offer's sshd "
                    "sidecar; choose another")
    return None


def target_port(port: PortSpec, offer: OfferSpec | None) -> int | str:
    """Where a Service port lands in the pod: the sidecar's named port for ssh."""
    if port.name == SSH_PORT_NAME and ssh_enabled(offer):
        return SSH_PORT_NAME
    return port.port


def sshd_config(keys_file: str, host_keys: str, port: int = SSHD_LISTEN_PORT) -> str:
    """The sidecar's sshd_config. The same text runs Debian's sshd in the tests."""
    lines = [
        f"Port {port}",
        *(f"HostKey {host_keys}/ssh_host_{kind}_key" for kind in HOST_KEY_TYPES),
        f"AuthorizedKeysFile {keys_file}",
        # An unprivileged sshd can log in only the user it runs as, and the Secret's files are
        # owned by root and read-only: the per-user ownership checks protect nothing here.
        "StrictModes no",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin no",
        "UsePAM no",
        "PidFile none",
        "AllowTcpForwarding yes",
        "X11Forwarding no",
        "PrintMotd no",
        "LogLevel INFO",
    ]
    return "".join(f"{line}\n" for line in lines)


def pod_sshd_config(mount_path: str) -> str:
    """The sidecar's sshd_config for a rental whose volume is mounted at `mount_path`."""
    return sshd_config(f"{SSH_MOUNT_DIR}/authorized_keys", host_key_dir(mount_path))


def sshd_start_script(config: str, host_keys: str, sshd: str = "/usr/sbin/sshd") -> str:
    """Create the host keys once (on the volume), then run sshd in the foreground. Extra
    arguments go to sshd (`sh -c SCRIPT sh -o Port=N`)."""
    keygen = " && ".join(
        f'{{ [ -f "$D/ssh_host_{kind}_key" ] || ssh-keygen -q -t {kind} -N "" '
        f'-f "$D/ssh_host_{kind}_key"; }}' for kind in HOST_KEY_TYPES)
    return (f'set -e; D="{host_keys}"; mkdir -p "$D"; chmod 700 "$D"; {keygen}; '
            f'exec {sshd} -D -e -f "{config}" "$@"')


def http_ports(spec: RentalSpec, offer: OfferSpec | None) -> tuple[PortSpec, ...]:
    """The ports an offer's Ingress routes: the declared web ports."""
    if offer is None or offer.access.ingress is None:
        return ()
    return tuple(p for p in spec.ports if p.http)


def ingress_host(template: str, port: str, rental: str, namespace: str) -> str:
    return template.format(port=port, rental=rental, namespace=namespace)


@dataclass(frozen=True)
class Address:
    host: str
    port: int
    reach: str  # ingress | load-balancer | nodes | cluster
    tls: bool = False


def _routed(ingress: IngressView | None, port: PortSpec) -> list[Address]:
    if ingress is None or ingress.deleting or not port.http or port.name not in ingress.hosts:
        return []
    host = ingress.hosts[port.name]
    tls = host in ingress.tls_hosts
    return [Address(host, 443 if tls else 80, "ingress", tls)]


def _addresses(service: ServiceView, port: PortSpec, host_ip: str | None) -> list[Address]:
    found = [Address(h, port.port, "load-balancer") for h in service.ingress]
    node_port = service.node_ports.get(port.name)
    if node_port and host_ip:
        found.append(Address(host_ip, node_port, "nodes"))
    if service.cluster_ip and service.cluster_ip != "None":
        found.append(Address(service.cluster_ip, port.port, "cluster"))
    return found


def connect_line(port: PortSpec, address: Address, user: str) -> str:
    """What a user pastes: an ssh command, a URL, or host:port."""
    if port.name == SSH_PORT_NAME:
        flag = "" if address.port == SSH_PORT else f"-p {address.port} "
        return f"ssh {flag}{user}@{address.host}"
    if address.reach == "ingress":
        return f"{'https' if address.tls else 'http'}://{address.host}/"
    if port.http:
        return f"http://{address.host}:{address.port}/"
    return f"{address.host}:{address.port}"


def endpoints(ports: tuple[PortSpec, ...], service: ServiceView | None, host_ip: str | None,
              user: str, ingress: IngressView | None = None) -> list[dict[str, Any]]:
    """One entry per port with the best address Kubernetes reports: an Ingress host for a
    routed web port, else a load balancer's ingress, else a node port on the pod's node,
    else the in-cluster Service IP."""
    result = []
    for port in ports:
        entry: dict[str, Any] = {"name": port.name, "port": port.port}
        if port.name == SSH_PORT_NAME:
            entry["user"] = user
        addresses = _routed(ingress, port)
        if service is not None:
            addresses += _addresses(service, port, host_ip)
        if service is not None:
            entry["serviceType"] = service.type
            entry["serviceName"] = service.name
        if not addresses:
            entry["message"] = "waiting for the Service's address"
        else:
            best = addresses[0]
            entry.update(host=best.host, hostPort=best.port, reach=best.reach,
                         connect=connect_line(port, best, user))
            if (service is not None and service.type == ServiceType.LOAD_BALANCER
                    and best.reach != "load-balancer"):
                entry["message"] = "the load balancer has no address yet"
        result.append(entry)
    return result


def paused_endpoints(ports: tuple[PortSpec, ...], rental: str) -> list[dict[str, Any]]:
    message = f"paused: nothing listens; `kubectl gpurental resume {rental}` to connect"
    return [{"name": p.name, "port": p.port, "message": message} for p in ports]


def ssh_summary(entries: list[dict[str, Any]]) -> str | None:
    """The printer column's text: the ssh line, or why there is none."""
    for entry in entries:
        if entry["name"] == SSH_PORT_NAME:
            return str(entry.get("connect") or entry.get("message") or "")
    return None
