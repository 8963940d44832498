"""Per-request identity and the hook points where authorization and admission will plug in.

Nothing is enforced today: every token is accepted. Two kinds of hooks, both empty by default:
- request hooks run with the identity and the parsed request before it is served (RBAC);
- admission hooks run inside writes with the object: "mutating" after defaulting and before
  validation, "validating" after validation (webhooks), as kube-apiserver orders them.
Raising an ApiError from any hook rejects the request.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Identity:
    """The authenticated user, as an authenticator would hand it to authorizers."""

    user: str
    groups: tuple[str, ...] = ()


ANONYMOUS = Identity("system:anonymous", ("system:unauthenticated",))
ADMIN_TOKEN = "kubesim-admin-token"


@dataclass
class RequestInfo:
    """What a request targets, as the apiserver's RequestInfoResolver describes it."""

    verb: str  # get list watch create update patch delete deletecollection, or the HTTP verb
    path: str
    resource_request: bool = False
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""


@dataclass
class Admission:
    """One object write as admission sees it (an AdmissionReview's request, roughly)."""

    stage: str  # "mutating" | "validating"
    operation: str  # CREATE | UPDATE | DELETE
    group: str
    version: str
    resource: str
    obj: dict[str, Any] | None  # mutable at the mutating stage
    old: dict[str, Any] | None
    identity: Identity
    request: RequestInfo | None


# The identity and request being served, so that writes deep in the store can be attributed.
CURRENT: ContextVar[tuple[Identity, RequestInfo | None]] = ContextVar(
    "kubesim_current_request", default=(Identity("system:kubesim"), None))


@dataclass
class Hooks:
    """Callables run for each API request, in order (e.g. RBAC, then admission webhooks)."""

    tokens: dict[str, Identity] = field(default_factory=lambda: {
        ADMIN_TOKEN: Identity("kubesim-admin", ("system:masters", "system:authenticated"))})
    request_hooks: list[Callable[[Identity, RequestInfo], None]] = field(default_factory=list)
    admission_hooks: list[Callable[[Admission], None]] = field(default_factory=list)

    def authenticate(self, authorization: str | None) -> Identity:
        if authorization and authorization.startswith("Bearer "):
            token = authorization[7:].strip()
            return self.tokens.get(token, Identity(f"token:{token[:8]}",
                                                   ("system:authenticated",)))
        return ANONYMOUS

    def check(self, identity: Identity, info: RequestInfo) -> None:
        for hook in self.request_hooks:
            hook(identity, info)

    def admit(self, stage: str, operation: str, group: str, version: str, resource: str,
              obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
        if not self.admission_hooks:
            return
        identity, request = CURRENT.get()
        review = Admission(stage, operation, group, version, resource, obj, old, identity,
                           request)
        for hook in self.admission_hooks:
            hook(review)
