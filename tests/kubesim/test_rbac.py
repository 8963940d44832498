"""RBAC conformance: issued tokens are judged the way kube-apiserver's RBAC authorizer judges.

Everything goes through the session emulator's HTTP API: the admin (`http`) writes roles and
bindings, users act with tokens from `POST /_kubesim/tokens`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests

RBAC = "/apis/rbac.authorization.k8s.io/v1"
Call = Callable[..., requests.Response]


@pytest.fixture
def token_for(http: Call, api_server: Any, tmp_path: Any) -> Callable[..., Call]:
    """token_for(user="alice", groups=[...]) or token_for(serviceAccount="ns/name").

    A user is whatever the substrate authenticates (a kubesim token, a client certificate on
    the real server); a ServiceAccount's token comes from the TokenRequest API on both."""
    from gpurental_dev.testing import admin_session

    def issue(**who: Any) -> Call:
        if "serviceAccount" in who:
            namespace, name = who["serviceAccount"].split("/")
            reply = http("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
                         json={"apiVersion": "authentication.k8s.io/v1",
                               "kind": "TokenRequest", "spec": {}})
            assert reply.status_code == 201, reply.text
            session, url = admin_session(api_server.kubeconfig, tmp_path)
            session.cert = None
            session.headers["Authorization"] = f"Bearer {reply.json()['status']['token']}"
        else:
            kubeconfig = api_server.user_kubeconfig(who["user"], who.get("groups") or ())
            folder = tmp_path / who["user"]
            folder.mkdir(exist_ok=True)
            session, url = admin_session(kubeconfig, folder)

        def call(method: str, path: str, **kwargs: Any) -> requests.Response:
            return session.request(method, url + path, timeout=60, **kwargs)
        return call
    return issue


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def make(http: Call, path: str, body: dict[str, Any]) -> None:
    reply = http("POST", path, json=body)
    assert reply.status_code == 201, reply.text


def role(http: Call, namespace: str, name: str, rules: list[dict[str, Any]]) -> None:
    make(http, f"{RBAC}/namespaces/{namespace}/roles",
         {"metadata": {"name": name}, "rules": rules})


def cluster_role(http: Call, name: str, rules: list[dict[str, Any]] | None = None,
                 **extra: Any) -> None:
    body: dict[str, Any] = {"metadata": {"name": name, **extra.pop("metadata", {})}, **extra}
    if rules is not None:
        body["rules"] = rules
    make(http, f"{RBAC}/clusterroles", body)


def bind(http: Call, namespace: str | None, kind: str, role_name: str,
         subjects: list[dict[str, Any]]) -> None:
    body = {"metadata": {"name": unique("b")}, "subjects": subjects,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind,
                        "name": role_name}}
    if namespace is None:
        make(http, f"{RBAC}/clusterrolebindings", body)
    else:
        make(http, f"{RBAC}/namespaces/{namespace}/rolebindings", body)


def granted(call: Call, method: str, path: str, **kwargs: Any) -> requests.Response:
    """The first request after a binding: kube-apiserver's RBAC authorizer reads bindings
    from an informer, so a grant takes effect a moment after the binding is stored. Retries
    403s briefly; any other answer (or a 403 that persists) is returned as it is."""
    deadline = time.monotonic() + 10
    while True:
        reply = call(method, path, **kwargs)
        if reply.status_code != 403 or time.monotonic() > deadline:
            return reply
        time.sleep(0.1)


def user(name: str) -> dict[str, str]:
    return {"kind": "User", "name": name, "apiGroup": "rbac.authorization.k8s.io"}


def configmap(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "data": {"k": "v"}}


def test_unbound_user_is_forbidden_with_the_apiserver_message(token_for, namespace):
    alice = unique("alice")
    call = token_for(user=alice)
    denied = call("POST", f"/api/v1/namespaces/{namespace}/pods",
                  json={"metadata": {"name": "x"}, "spec": {"containers": [
                      {"name": "c", "image": "busybox"}]}})
    assert denied.status_code == 403
    status = denied.json()
    assert status["reason"] == "Forbidden"
    assert status["message"] == (
        f'pods is forbidden: User "{alice}" cannot create resource "pods" in API group "" '
        f'in the namespace "{namespace}"')
    named = call("GET", f"/api/v1/namespaces/{namespace}/pods/x")
    assert named.json()["message"] == (
        f'pods "x" is forbidden: User "{alice}" cannot get resource "pods" in API group "" '
        f'in the namespace "{namespace}"')
    assert named.json()["details"] == {"name": "x", "kind": "pods"}
    cluster = call("GET", "/apis/gpurental.dev/v1alpha1/gpuoffers")
    assert cluster.json()["message"] == (
        f'gpuoffers.gpurental.dev is forbidden: User "{alice}" cannot list resource '
        f'"gpuoffers" in API group "gpurental.dev" at the cluster scope')


def test_admin_token_and_discovery_stay_open(http, token_for):
    assert http("GET", f"{RBAC}/clusterroles").status_code == 200
    call = token_for(user=unique("bob"))
    assert call("GET", "/api").status_code == 200
    assert call("GET", "/apis/rbac.authorization.k8s.io/v1").status_code == 200
    denied = call("GET", "/metrics")
    assert denied.status_code == 403
    assert denied.json()["message"].startswith("forbidden: User ")
    assert denied.json()["message"].endswith('cannot get path "/metrics"')


def test_role_binding_grants_verbs_in_its_namespace_only(http, token_for, namespace):
    alice = unique("alice")
    role(http, namespace, "cm-writer", [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "get", "list"]}])
    bind(http, namespace, "Role", "cm-writer", [user(alice)])
    call = token_for(user=alice)
    assert granted(call, "POST", f"/api/v1/namespaces/{namespace}/configmaps",
                   json=configmap("a")).status_code == 201
    assert call("GET", f"/api/v1/namespaces/{namespace}/configmaps/a").status_code == 200
    assert call("DELETE", f"/api/v1/namespaces/{namespace}/configmaps/a").status_code == 403
    assert call("GET", "/api/v1/namespaces/default/configmaps").status_code == 403
    assert call("GET", "/api/v1/configmaps").status_code == 403  # all namespaces: cluster scope


def test_resource_names_subresources_and_wildcards(http, token_for, namespace):
    alice = unique("alice")
    for name in ("mine", "theirs"):
        make(http, f"/api/v1/namespaces/{namespace}/configmaps", configmap(name))
    role(http, namespace, "narrow", [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "update"],
         "resourceNames": ["mine"]},
        {"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["*"]}])
    bind(http, namespace, "Role", "narrow", [user(alice)])
    call = token_for(user=alice)
    assert granted(call, "GET", f"/api/v1/namespaces/{namespace}/configmaps/mine"
                   ).status_code == 200
    assert call("GET", f"/api/v1/namespaces/{namespace}/configmaps/theirs").status_code == 403
    assert call("GET", f"/api/v1/namespaces/{namespace}/configmaps").status_code == 403
    # */status grants every status subresource, and nothing but status.
    assert call("GET", f"/api/v1/namespaces/{namespace}/pods/p/status").status_code == 404
    denied = call("GET", f"/api/v1/namespaces/{namespace}/pods/p")
    assert denied.status_code == 403
    status_denied = token_for(user=unique("eve"))(
        "PATCH", f"/api/v1/namespaces/{namespace}/pods/p/status", json={})
    assert 'cannot patch resource "pods/status" in API group ""' in \
        status_denied.json()["message"]


def test_cluster_role_through_role_binding_is_scoped_to_the_namespace(http, token_for,
                                                                      namespace):
    alice, name = unique("alice"), unique("cm-reader")
    cluster_role(http, name, [{"apiGroups": [""], "resources": ["configmaps"],
                               "verbs": ["list"]}])
    bind(http, namespace, "ClusterRole", name, [user(alice)])
    call = token_for(user=alice)
    assert granted(call, "GET", f"/api/v1/namespaces/{namespace}/configmaps"
                   ).status_code == 200
    assert call("GET", "/api/v1/namespaces/kube-system/configmaps").status_code == 403
    bind(http, None, "ClusterRole", name, [user(alice)])
    assert granted(call, "GET", "/api/v1/namespaces/kube-system/configmaps").status_code == 200
    assert call("GET", "/api/v1/configmaps").status_code == 200


def test_group_and_service_account_subjects(http, token_for, namespace):
    name, team = unique("reader"), unique("team")
    cluster_role(http, name, [{"apiGroups": [""], "resources": ["configmaps"],
                               "verbs": ["list"]}])
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    bind(http, namespace, "ClusterRole", name, [{"kind": "Group", "name": team}])
    assert granted(token_for(user=unique("carol"), groups=[team]), "GET", path
                   ).status_code == 200
    assert token_for(user=unique("dave"))("GET", path).status_code == 403
    # A ServiceAccount subject without a namespace takes the binding's. (TokenRequest needs
    # the accounts to exist.)
    for where in (namespace, "default"):
        if http("GET", f"/api/v1/namespaces/{where}/serviceaccounts/robot").status_code == 404:
            make(http, f"/api/v1/namespaces/{where}/serviceaccounts",
                 {"metadata": {"name": "robot"}})
    bind(http, namespace, "ClusterRole", name, [{"kind": "ServiceAccount", "name": "robot"}])
    robot = token_for(serviceAccount=f"{namespace}/robot")
    assert granted(robot, "GET", path).status_code == 200
    other = token_for(serviceAccount="default/robot")
    assert other("GET", path).json()["message"].startswith(
        'configmaps is forbidden: User "system:serviceaccount:default:robot" cannot list')
    # All service accounts of a namespace, through the group the authenticator adds.
    bind(http, "default", "ClusterRole", name,
         [{"kind": "Group", "name": "system:serviceaccounts:default"}])
    assert granted(other, "GET", "/api/v1/namespaces/default/configmaps").status_code == 200


def test_token_request_tokens_are_judged_as_the_account(http, token_for, namespace):
    make(http, f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": "sa"}})
    denied = token_for(serviceAccount=f"{namespace}/sa")(
        "GET", f"/api/v1/namespaces/{namespace}/secrets")
    assert denied.status_code == 403
    assert f'User "system:serviceaccount:{namespace}:sa"' in denied.json()["message"]


def test_missing_role_is_named_in_the_reason(http, token_for, namespace):
    alice = unique("alice")
    bind(http, namespace, "Role", "does-not-exist", [user(alice)])
    denied = token_for(user=alice)("GET", f"/api/v1/namespaces/{namespace}/pods")
    assert denied.json()["message"].endswith(
        ': RBAC: role.rbac.authorization.k8s.io "does-not-exist" not found')


def test_non_resource_urls_only_through_cluster_role_bindings(http, token_for):
    alice, name = unique("alice"), unique("metrics")
    # Paths no API server serves: allowed ones then answer 404, others 403.
    cluster_role(http, name, [{"nonResourceURLs": ["/gpurental-none", "/gpurental-logs/*"],
                               "verbs": ["get"]}])
    bind(http, None, "ClusterRole", name, [user(alice)])
    call = token_for(user=alice)
    assert call("GET", "/gpurental-none").status_code == 404  # allowed, then not served
    assert call("GET", "/gpurental-logs/kube").status_code == 404
    assert call("GET", "/gpurental-other").status_code == 403


def wait_for_rules(http: Call, name: str, expected: list[dict[str, Any]],
                   timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    rules: Any = None
    while time.monotonic() < deadline:
        rules = http("GET", f"{RBAC}/clusterroles/{name}").json().get("rules")
        if (rules or []) == expected:
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} rules {rules} never became {expected}")


def test_aggregation_fills_rules_from_labelled_cluster_roles(http, token_for, namespace):
    label = unique("agg")
    aggregate, part_a, part_b = unique("aggregate"), unique("part-a"), unique("part-b")
    cluster_role(http, aggregate, aggregationRule={"clusterRoleSelectors": [
        {"matchLabels": {f"example.dev/{label}": "true"}}]})
    rule_a = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}
    rule_b = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}
    cluster_role(http, part_a, [rule_a],
                 metadata={"labels": {f"example.dev/{label}": "true"}})
    wait_for_rules(http, aggregate, [rule_a])
    cluster_role(http, part_b, [rule_b, rule_a],
                 metadata={"labels": {f"example.dev/{label}": "true"}})
    wait_for_rules(http, aggregate, [rule_a, rule_b])  # union, each rule once
    alice = unique("alice")
    bind(http, namespace, "ClusterRole", aggregate, [user(alice)])
    call = token_for(user=alice)
    assert granted(call, "GET", f"/api/v1/namespaces/{namespace}/secrets").status_code == 200
    # Unlabelling a part takes its rules away again.
    reply = http("PATCH", f"{RBAC}/clusterroles/{part_b}",
                 json={"metadata": {"labels": None}},
                 headers={"Content-Type": "application/merge-patch+json"})
    assert reply.status_code == 200, reply.text
    wait_for_rules(http, aggregate, [rule_a])
    assert call("GET", f"/api/v1/namespaces/{namespace}/secrets").status_code == 403
