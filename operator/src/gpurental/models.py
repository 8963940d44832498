"""The domain's vocabulary: specs of offers, wallets and rentals, phases and conditions.

Pure: parses the dicts kopf hands us into validated pydantic models and nothing else. The CRD
schemas already reject most bad input at admission; these models are the second line, so a
manifest that slipped past an older CRD becomes a clear condition instead of a crash.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gpurental import billing, durations


class Phase(StrEnum):
    PENDING = "Pending"
    PROVISIONING = "Provisioning"
    RUNNING = "Running"
    PAUSED = "Paused"
    STOPPED = "Stopped"
    FAILED = "Failed"

    @property
    def terminal(self) -> bool:
        return self in (Phase.STOPPED, Phase.FAILED)


class DesiredState(StrEnum):
    RUNNING = "Running"
    PAUSED = "Paused"
    STOPPED = "Stopped"


class ExhaustAction(StrEnum):
    PAUSE = "Pause"
    STOP = "Stop"


class InterruptAction(StrEnum):
    """What a rental of an interruptible offer does when the scheduler takes its GPUs back."""

    RESUME = "Resume"  # a new pod at once, waiting for capacity on the same volume
    PAUSE = "Pause"
    STOP = "Stop"


class _Spec(BaseModel):
    """Specs ignore unknown fields: the API server prunes them, and a newer CRD must not
    crash an older operator."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)


_QUANTITY = re.compile(r"^([0-9]+)(Mi|Gi|Ti)$")
_MIB_PER_UNIT = {"Mi": 1, "Gi": 1024, "Ti": 1024 * 1024}


def quantity_gib(size: str) -> Decimal:
    """Storage size as GiB (exact): '50Gi' -> 50, '512Mi' -> 0.5."""
    match = _QUANTITY.match(size)
    if not match:
        raise ValueError(f"storage size {size!r} must look like 50Gi, 512Mi or 1Ti")
    mib = int(match.group(1)) * _MIB_PER_UNIT[match.group(2)]
    return Decimal(mib) / Decimal(1024)


class GpuSpec(_Spec):
    product: str = Field(min_length=1)
    resource_name: str = Field(default="nvidia.com/gpu", alias="resourceName")

    @property
    def is_mig(self) -> bool:
        return "/mig-" in self.resource_name


class Toleration(_Spec):
    key: str | None = None
    operator: str | None = None
    value: str | None = None
    effect: str | None = None
    toleration_seconds: int | None = Field(default=None, alias="tolerationSeconds")


class IdleSpec(_Spec):
    """An idle auto-pause policy; fields left out are filled in by `idle.effective_policy`."""

    below: int | None = Field(default=None, ge=0, le=100)
    for_seconds: int | None = Field(default=None, alias="for")
    action: ExhaustAction | None = None

    @field_validator("for_seconds", mode="before")
    @classmethod
    def _window(cls, value: Any) -> int | None:
        return None if value is None else durations.parse_duration(str(value))


class OfferIdleSpec(_Spec):
    default: IdleSpec | None = None
    min_window: int | None = Field(default=None, alias="minWindow")

    @field_validator("min_window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> int | None:
        return None if value is None else durations.parse_duration(str(value))


class ServiceType(StrEnum):
    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"


class SshAccess(_Spec):
    """The sshd sidecar an offer grants its rentals. Its image defaults to the operator's
    --sshd-image (the chart's `ssh.image`)."""

    enabled: bool = False
    image: str | None = None
    user: str = Field(default="gpu", pattern=r"^[a-z_][a-z0-9_-]{0,31}$")


class ExposeSpec(_Spec):
    type: ServiceType = ServiceType.CLUSTER_IP


_HOST_TEMPLATE = r"^[a-z0-9{}.-]{1,253}$"


class IngressAccess(_Spec):
    """An Ingress routing the rental's `http` ports by host name. The host comes from the
    platform's template ({port}, {rental}, {namespace}), never from the tenant."""

    host_template: str = Field(alias="hostTemplate", pattern=_HOST_TEMPLATE)
    class_name: str | None = Field(default=None, alias="className")
    tls_secret_name: str | None = Field(default=None, alias="tlsSecretName")

    @field_validator("host_template")
    @classmethod
    def _placeholders(cls, template: str) -> str:
        try:
            template.format(port="p", rental="r", namespace="n")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError("hostTemplate may use {port}, {rental}, {namespace}: "
                             f"{exc}") from None
        return template


class AccessSpec(_Spec):
    """How a rental of the offer can be reached: the platform team's choice, never the
    tenant's (tenants cannot edit offers, so no rental can ask for more)."""

    ssh: SshAccess = Field(default_factory=SshAccess)
    expose: ExposeSpec = Field(default_factory=ExposeSpec)
    ingress: IngressAccess | None = None


class OfferSpec(_Spec):
    gpu: GpuSpec
    price_per_gpu_hour: Decimal = Field(alias="pricePerGpuHour")
    storage_price_per_gib_hour: Decimal | None = Field(default=None, alias="storagePricePerGiBHour")
    max_gpus: int | None = Field(default=None, alias="maxGpus", ge=1)
    max_duration: int | None = Field(default=None, alias="maxDuration")
    provisioning_timeout: int | None = Field(default=None, alias="provisioningTimeout")
    privileged: bool = False
    node_selector: dict[str, str] = Field(default_factory=dict, alias="nodeSelector")
    tolerations: tuple[Toleration, ...] = ()
    idle: OfferIdleSpec | None = None
    # Cheaper GPUs the scheduler may take back: the pods get the low PriorityClass, which
    # on-demand rentals' pods preempt.
    interruptible: bool = False
    access: AccessSpec = Field(default_factory=AccessSpec)

    @field_validator("price_per_gpu_hour", "storage_price_per_gib_hour", mode="before")
    @classmethod
    def _money(cls, value: Any) -> Decimal | None:
        return None if value is None else billing.parse_money(value)

    @field_validator("max_duration", "provisioning_timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> int | None:
        return None if value is None else durations.parse_duration(str(value))


class WalletSpec(_Spec):
    budget: Decimal
    on_exhausted: ExhaustAction = Field(default=ExhaustAction.PAUSE, alias="onExhausted")

    @field_validator("budget", mode="before")
    @classmethod
    def _money(cls, value: Any) -> Decimal:
        return billing.parse_money(value)

    @property
    def budget_cents(self) -> int:
        return billing.dollars_to_cents(self.budget)


class StorageSpec(_Spec):
    size: str = "50Gi"
    storage_class_name: str | None = Field(default=None, alias="storageClassName")
    mount_path: str = Field(default="/workspace", alias="mountPath")
    # The uid of a claim that was lost (deleted outside the operator): naming it lets the
    # rental continue on a new, empty volume. A uid, not a flag, so a GitOps repository that
    # accepted one loss never silently accepts the next.
    accept_lost_claim: str | None = Field(default=None, alias="acceptLostClaim")

    @field_validator("size")
    @classmethod
    def _size(cls, value: str) -> str:
        quantity_gib(value)
        return value

    @property
    def gib(self) -> Decimal:
        return quantity_gib(self.size)


class EnvVar(_Spec):
    name: str = Field(min_length=1)
    value: str = ""


class PortSpec(_Spec):
    """A port the rental's workload (or its sshd sidecar, for `ssh`) listens on."""

    name: str = Field(pattern=r"^[a-z]([-a-z0-9]{0,13}[a-z0-9])?$")
    port: int = Field(ge=1, le=65535)
    protocol: str = Field(default="TCP", pattern="^(TCP|UDP|SCTP)$")
    http: bool = False  # a web port: status shows a URL instead of host:port


class RentalSpec(_Spec):
    offer: str = Field(min_length=1)
    gpus: int = Field(default=1, ge=1)
    image: str = Field(min_length=1)
    command: tuple[str, ...] | None = None
    args: tuple[str, ...] | None = None
    env: tuple[EnvVar, ...] = ()
    state: DesiredState = DesiredState.RUNNING
    storage: StorageSpec = Field(default_factory=StorageSpec)
    duration: int | None = None
    auto_renew: bool = Field(default=False, alias="autoRenew")
    on_expiry: ExhaustAction = Field(default=ExhaustAction.PAUSE, alias="onExpiry")
    ssh_keys: tuple[str, ...] = Field(default=(), alias="sshKeys")
    wallet: str | None = None
    idle: IdleSpec | None = None
    on_interruption: InterruptAction = Field(default=InterruptAction.RESUME,
                                             alias="onInterruption")
    ports: tuple[PortSpec, ...] = ()

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> int | None:
        if value is None:
            return None
        seconds = durations.parse_duration(str(value))
        if seconds <= 0:
            raise ValueError("duration must be positive")
        return seconds

    @field_validator("ssh_keys")
    @classmethod
    def _keys(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        # authorized_keys is line-oriented: a newline inside a key would smuggle in a second
        # key (or key options) the user never listed.
        for key in keys:
            if any(ch in key for ch in "\r\n\x00"):
                raise ValueError("an ssh key must be a single line")
        return keys

    @field_validator("ports")
    @classmethod
    def _unique_ports(cls, ports: tuple[PortSpec, ...]) -> tuple[PortSpec, ...]:
        # One Service carries them all, and a Service rejects a repeated name or port.
        if len({p.name for p in ports}) != len(ports) or len({p.port for p in ports}) != len(ports):
            raise ValueError("port names and numbers must be unique")
        return ports


class SpecError(ValueError):
    """A spec the operator cannot act on; the message names the field."""


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(part) for part in err["loc"])
    return f"spec.{where}: {err['msg']}" if where else err["msg"]


SpecT = TypeVar("SpecT", bound=_Spec)


def parse_spec(model: type[SpecT], spec: Any) -> SpecT:
    """Validate a raw spec dict; raise SpecError with a field-named message."""
    try:
        return model.model_validate(spec or {})
    except ValidationError as exc:
        raise SpecError(_first_error(exc)) from None


# --- conditions -----------------------------------------------------------------------------

class ConditionType(StrEnum):
    READY = "Ready"  # the rental runs and is billed
    ACCEPTED = "Accepted"  # the spec names a usable offer/wallet and respects the offer's limits
    PAUSED = "Paused"
    EXPIRED = "Expired"
    BUDGET_EXHAUSTED = "BudgetExhausted"
    SETTLED = "Settled"
    IDLE = "Idle"  # paused (or stopped) because the GPU sat idle
    VOLUME_LOST = "VolumeLost"  # the rental's claim was deleted outside the operator
    INTERRUPTED = "Interrupted"  # the scheduler preempted the pod of an interruptible rental


def set_condition(
    conditions: list[dict[str, Any]],
    type_: str,
    status: bool,
    reason: str,
    message: str,
    now: str,
    generation: int | None = None,
) -> list[dict[str, Any]]:
    """Return conditions with one condition upserted.

    lastTransitionTime moves only when the status flips, as the API conventions require;
    reason and message may change without a transition.
    """
    value = "True" if status else "False"
    result = []
    found = False
    for cond in conditions:
        if cond.get("type") != type_:
            result.append(cond)
            continue
        found = True
        since = cond.get("lastTransitionTime") if cond.get("status") == value else now
        result.append(_condition(type_, value, reason, message, since or now, generation))
    if not found:
        result.append(_condition(type_, value, reason, message, now, generation))
    return result


def _condition(
    type_: str, status: str, reason: str, message: str, since: str, generation: int | None
) -> dict[str, Any]:
    cond: dict[str, Any] = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
    }
    if generation is not None:
        cond["observedGeneration"] = generation
    return cond


def get_condition(conditions: list[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type_), None)


def status_merge_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch turning status `old` into `new` (null removes a field)."""
    # A null and an absent field are the same thing after a merge patch; comparing with
    # .get() keeps the operator from rewriting a null it already removed.
    patch: dict[str, Any] = {k: v for k, v in new.items() if old.get(k) != v}
    patch.update({k: None for k, v in old.items() if k not in new and v is not None})
    return patch
