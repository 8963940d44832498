"""Per-request identity and the hook point where authorization and admission will plug in.

Nothing is enforced today: every token is accepted. A hook is called with the identity and the
parsed request before the request is served; raising an ApiError rejects the request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


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
class Hooks:
    """Callables run for each API request, in order (e.g. RBAC, then admission webhooks)."""

    tokens: dict[str, Identity] = field(default_factory=lambda: {
        ADMIN_TOKEN: Identity("kubesim-admin", ("system:masters", "system:authenticated"))})
    request_hooks: list[Callable[[Identity, RequestInfo], None]] = field(default_factory=list)

    def authenticate(self, authorization: str | None) -> Identity:
        if authorization and authorization.startswith("Bearer "):
            token = authorization[7:].strip()
            return self.tokens.get(token, Identity(f"token:{token[:8]}",
                                                   ("system:authenticated",)))
        return ANONYMOUS

    def check(self, identity: Identity, info: RequestInfo) -> None:
        for hook in self.request_hooks:
            hook(identity, info)
