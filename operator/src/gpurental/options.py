"""The operator's options: one typed object, one place for every default.

The console script's flags, the kopf startup handler and the controller all read this
dataclass, so a default (the metering interval, the provisioning timeout, the worker and
thread counts) is written once. Pure: no I/O, no kopf.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpurental.models import OfferSpec

# The sidecar's default image (the chart's ssh.image): any image with OpenSSH's sshd and
# ssh-keygen and a user whose uid is builders.UNPRIVILEGED_UID; images/sshd/ builds one.
DEFAULT_SSHD_IMAGE = "ghcr.io/gpu-rental-operator/sshd:9.2"


@dataclass(frozen=True)
class Options:
    namespaces: tuple[str, ...] = ()  # empty: every namespace
    metrics_port: int | None = 8080
    metering_interval: float = 30.0  # seconds between running rentals' status refreshes
    provisioning_timeout: int = 600  # seconds a rental may stay unprovisioned before Failed
    # Rental workers: passes run concurrently, one per rental at a time. The API connections
    # bound how many of their calls are in flight (one each for every worker by default).
    workers: int = 32
    api_connections: int = 32
    on_demand_priority_class: str | None = None
    interruptible_priority_class: str | None = None
    sshd_image: str = DEFAULT_SSHD_IMAGE
    # The Lease that elects the one acting replica (None: standalone, the only replica).
    leader_election: str | None = None
    leader_election_namespace: str | None = None  # default: the pod's own namespace
    webhook_port: int | None = None
    webhook_cert_dir: str | None = None
    webhook_address: str = "0.0.0.0"
    prometheus_url: str | None = None
    idle_check_interval: float = 60.0
    verbose: bool = False

    def problems(self) -> list[str]:
        """What makes these options unusable, in the words the console script prints."""
        found = []
        if self.metering_interval <= 0 or self.provisioning_timeout <= 0:
            found.append("intervals and timeouts must be positive")
        if self.idle_check_interval <= 0:
            found.append("--idle-check-interval must be positive")
        if self.workers <= 0 or self.api_connections <= 0:
            found.append("--workers and --api-connections must be positive")
        if (self.webhook_port is None) != (self.webhook_cert_dir is None):
            found.append("--webhook-port and --webhook-cert-dir go together")
        return found

    def priority_class(self, offer: OfferSpec | None) -> str | None:
        """The PriorityClass of an offer's pods: interruptible offers' is the lower one."""
        if offer is None:
            return None
        return (self.interruptible_priority_class if offer.interruptible
                else self.on_demand_priority_class)


DEFAULTS = Options()
