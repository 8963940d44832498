"""RBAC: tokens for named users and service accounts, authorization as kube-apiserver's RBAC
authorizer evaluates it, and the ClusterRole aggregation controller.

Owns: the identities behind issued tokens (`POST /_kubesim/tokens`), the allow/deny decision
for their requests (a request hook), the Forbidden message, and filling aggregated
ClusterRoles' rules from labelled ClusterRoles (as kube-controller-manager does).

Never enforces for system:masters (the admin token), nor for requests without a token or with
a token the emulator did not issue: over plain HTTP kubectl sends no token at all, and the
emulator stays open to such clients the way it always was. Only issued identities are judged.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import secrets
from collections.abc import Iterator
from typing import Any

from . import labelselector
from .errors import ApiError, bad_request, qualified
from .hooks import CURRENT, Hooks, Identity, RequestInfo
from .resources import ResourceType
from .store import Store

log = logging.getLogger(__name__)
GROUP = "rbac.authorization.k8s.io"
MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
CONTROLLER = Identity("system:kube-controller-manager", (AUTHENTICATED,))
AGGREGATION_PERIOD = 0.1  # seconds between checks for ClusterRole changes

# kube-apiserver's bootstrap policy lets every authenticated user discover the API; without it
# kubectl could not even read /api as a named user.
DISCOVERY_URLS = ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
                  "/openapi/*", "/readyz", "/version", "/version/"]


# --- identities ------------------------------------------------------------------------------

def service_account_identity(namespace: str, name: str) -> Identity:
    return Identity(f"system:serviceaccount:{namespace}:{name}",
                    ("system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                     AUTHENTICATED))


def issue_token(hooks: Hooks, request: dict[str, Any]) -> dict[str, Any]:
    """`{"user": "alice", "groups": [...]}` or `{"serviceAccount": "ns/name"}` -> a token."""
    if request.get("serviceAccount"):
        namespace, _, name = str(request["serviceAccount"]).partition("/")
        if not namespace or not name:
            raise bad_request('serviceAccount must be "namespace/name"')
        identity = service_account_identity(namespace, name)
    elif request.get("user"):
        groups = [str(g) for g in request.get("groups") or []]
        if AUTHENTICATED not in groups:
            groups.append(AUTHENTICATED)
        identity = Identity(str(request["user"]), tuple(groups))
    else:
        raise bad_request('a token request names a "user" or a "serviceAccount"')
    token = "kubesim-user-" + secrets.token_urlsafe(24)
    hooks.tokens[token] = identity
    return {"token": token, "user": identity.user, "groups": list(identity.groups)}


def enforced(identity: Identity) -> bool:
    """Judge identities the emulator issued tokens for, except cluster admins."""
    if MASTERS in identity.groups or identity.user.startswith("token:"):
        return False
    return identity.user not in ("system:anonymous", "system:kubesim")


# --- rule evaluation (k8s.io/kubernetes/pkg/apis/rbac/v1/evaluation_helpers.go) ---------------

def _has(values: list[str], wanted: str) -> bool:
    return "*" in values or wanted in values


def _resource_matches(rule: dict[str, Any], resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for candidate in rule.get("resources") or []:
        if candidate in ("*", combined):
            return True
        if subresource and candidate == f"*/{subresource}":
            return True
    return False


def _url_matches(rule: dict[str, Any], path: str) -> bool:
    for url in rule.get("nonResourceURLs") or []:
        if url in ("*", path) or (url.endswith("*") and path.startswith(url[:-1])):
            return True
    return False


def rule_allows(info: RequestInfo, rule: dict[str, Any]) -> bool:
    if not _has(rule.get("verbs") or [], info.verb):
        return False
    if not info.resource_request:
        return _url_matches(rule, info.path)
    names = rule.get("resourceNames") or []
    return (_has(rule.get("apiGroups") or [], info.group)
            and _resource_matches(rule, info.resource, info.subresource)
            and (not names or info.name in names))


def subject_applies(identity: Identity, subject: dict[str, Any], namespace: str) -> bool:
    """appliesToUser: a ServiceAccount subject without a namespace takes the binding's."""
    kind, name = subject.get("kind"), subject.get("name", "")
    if kind == "User":
        return identity.user == name
    if kind == "Group":
        return name in identity.groups
    if kind == "ServiceAccount":
        sa_namespace = subject.get("namespace") or namespace
        wanted = f"system:serviceaccount:{sa_namespace}:{name}"
        return bool(sa_namespace) and identity.user == wanted
    return False


def forbidden(identity: Identity, info: RequestInfo, reasons: list[str]) -> ApiError:
    """The authorization filter's 403, word for word (responsewriters.forbiddenMessage)."""
    if info.resource_request:
        resource = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
        where = (f"in the namespace {_q(info.namespace)}" if info.namespace
                 else "at the cluster scope")
        why = (f"User {_q(identity.user)} cannot {info.verb} resource {_q(resource)} in API group "
               f"{_q(info.group)} {where}")
    else:
        why = f"User {_q(identity.user)} cannot {info.verb} path {_q(info.path)}"
    if reasons:
        why += ": RBAC: " + ", ".join(reasons) if len(reasons) == 1 else \
            ": RBAC: [" + ", ".join(reasons) + "]"
    if not info.resource_request:
        return ApiError(403, "Forbidden", f"forbidden: {why}", {})
    gr = qualified(info.resource, info.group)
    subject = f"{gr} {_q(info.name)}" if info.name else gr
    details: dict[str, Any] = {"name": info.name} if info.name else {}
    if info.group:
        details["group"] = info.group
    details["kind"] = info.resource
    return ApiError(403, "Forbidden", f"{subject} is forbidden: {why}", details)


def _q(text: str) -> str:
    """Go's %q for the plain strings that appear in these messages."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- the authorizer --------------------------------------------------------------------------

class Authorizer:
    """The request hook. Reads Roles and bindings straight from the store on every request,
    so a binding takes effect on the next request, like the apiserver's informer-fed cache."""

    def __init__(self, store: Store, hooks: Hooks) -> None:
        self.store = store
        self.hooks = hooks
        self._aggregator: asyncio.Task[None] | None = None

    def __call__(self, identity: Identity, info: RequestInfo) -> None:
        self._start_aggregator()
        if not enforced(identity):
            return
        reasons: list[str] = []
        for rule in self._rules(identity, info.namespace, reasons):
            if rule_allows(info, rule):
                return
        raise forbidden(identity, info, reasons)

    def _type(self, plural: str) -> ResourceType:
        rt = self.store.registry.get(GROUP, "v1", plural)
        assert rt is not None, plural
        return rt

    def _objects(self, plural: str, namespace: str | None) -> Iterator[dict[str, Any]]:
        for stored in self.store.collection(self._type(plural)).iter(namespace):
            yield stored.obj

    def _role_rules(self, ref: dict[str, Any], namespace: str,
                    reasons: list[str]) -> list[dict[str, Any]]:
        kind, name = ref.get("kind"), ref.get("name", "")
        plural = "clusterroles" if kind == "ClusterRole" else "roles"
        coll = self.store.collection(self._type(plural))
        found = coll.get("" if kind == "ClusterRole" else namespace, name)
        if found is None:
            reasons.append(f'{plural[:-1]}.{GROUP} "{name}" not found')
            return []
        return list(found.obj.get("rules") or [])

    def _rules(self, identity: Identity, namespace: str,
               reasons: list[str]) -> Iterator[dict[str, Any]]:
        """VisitRulesFor: cluster bindings first, then the namespace's role bindings."""
        yield {"verbs": ["get"], "nonResourceURLs": DISCOVERY_URLS}
        for binding in self._objects("clusterrolebindings", None):
            if any(subject_applies(identity, s, "") for s in binding.get("subjects") or []):
                yield from self._role_rules(binding.get("roleRef") or {}, "", reasons)
        if not namespace:
            return
        for binding in self._objects("rolebindings", namespace):
            if any(subject_applies(identity, s, namespace)
                   for s in binding.get("subjects") or []):
                yield from self._role_rules(binding.get("roleRef") or {}, namespace, reasons)

    # --- aggregation (kube-controller-manager's clusterrole-aggregation controller) -----------

    def _start_aggregator(self) -> None:
        if self._aggregator is None:
            with contextlib.suppress(RuntimeError):  # no loop: called outside a server
                self._aggregator = asyncio.get_running_loop().create_task(self._aggregate_loop())

    async def _aggregate_loop(self) -> None:
        CURRENT.set((CONTROLLER, None))
        history = self.store.collection(self._type("clusterroles")).history
        seen = -1
        while True:
            latest = history.events[-1].rv if history.events else 0
            if latest != seen:
                seen = latest
                try:
                    self.aggregate()
                except Exception:  # a bad role must not stop aggregation for the others
                    log.exception("ClusterRole aggregation failed")
            await asyncio.sleep(AGGREGATION_PERIOD)

    def aggregate(self) -> None:
        """Set each aggregating ClusterRole's rules to the union of its selected roles'."""
        rt = self._type("clusterroles")
        roles = sorted(self._objects("clusterroles", None), key=lambda r: r["metadata"]["name"])
        for role in roles:
            selectors = (role.get("aggregationRule") or {}).get("clusterRoleSelectors")
            if not selectors:
                continue
            rules: list[dict[str, Any]] = []
            for other in roles:
                if other is role or not any(
                        labelselector.matches(s, other["metadata"].get("labels"))
                        for s in selectors):
                    continue
                rules.extend(r for r in other.get("rules") or [] if r not in rules)
            if rules != (role.get("rules") or []):
                self.store.update(rt, "", role["metadata"]["name"],
                                  {**copy.deepcopy(role), "rules": rules})
