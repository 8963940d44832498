"""Admission webhooks: the emulator calls registered webhooks over HTTPS like kube-apiserver.

A tiny HTTPS webhook server runs in the test (its certificate signed by a test CA). Every
configuration selects only the test's namespace (namespaceSelector on a unique label), so the
other tests sharing the session emulator never meet these webhooks.
"""

from __future__ import annotations

import base64
import contextlib
import json
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from gpurental_dev.certs import ServingCert, make_serving_cert

ADM = "/apis/admissionregistration.k8s.io/v1"
Call = Callable[..., requests.Response]


class Webhook:
    """Answers by path: /deny, /allow, /slow, /mutate, /bad-uid, /no-message."""

    def __init__(self, cert: ServingCert) -> None:
        self.reviews: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.reviews.append(review)
                # kube-apiserver adds ?timeout=10s: answer by the path alone.
                path = urlsplit(self.path).path
                body = json.dumps(outer.answer(path, review["request"])).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the emulator gave up (timeout test)
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert.cert, cert.key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def answer(path: str, request: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = {"uid": request["uid"], "allowed": True}
        data = (request.get("object") or {}).get("data") or {}
        if path == "/deny" and data.get("bad"):
            response = {"uid": request["uid"], "allowed": False,
                        "status": {"code": 422, "message": f"data.bad: {data['bad']} is bad"}}
        elif path == "/no-message":
            response = {"uid": request["uid"], "allowed": False}
        elif path == "/slow":
            time.sleep(5)
        elif path == "/bad-uid":
            response["uid"] = "someone-else"
        elif path == "/mutate":
            ops = [{"op": "add", "path": "/metadata/labels", "value": {"mutated": "yes"}}]
            response.update(patchType="JSONPatch",
                            patch=base64.b64encode(json.dumps(ops).encode()).decode())
        return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "response": response}


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> ServingCert:
    return make_serving_cert(tmp_path_factory.mktemp("webhook-tls"),
                             ("hooks.webhook-ns.svc", "localhost"))


@pytest.fixture(scope="module")
def webhook(cert: ServingCert) -> Iterator[Webhook]:
    hook = Webhook(cert)
    yield hook
    hook.server.shutdown()


@pytest.fixture
def scoped(http: Call, namespace: str) -> dict[str, Any]:
    """Label the test namespace; the namespaceSelector that selects only it."""
    label = f"webhook-test-{uuid.uuid4().hex[:8]}"
    reply = http("PATCH", f"/api/v1/namespaces/{namespace}",
                 json={"metadata": {"labels": {label: "yes"}}},
                 headers={"Content-Type": "application/merge-patch+json"})
    assert reply.status_code == 200, reply.text
    return {"matchLabels": {label: "yes"}}


@pytest.fixture
def register(http: Call, webhook: Webhook, cert: ServingCert) -> Iterator[Callable[..., str]]:
    """register(kind, webhook dicts...) -> config name, once the API server applies it;
    deleted after the test.

    kube-apiserver picks configurations up asynchronously (an informer), so, as Kubernetes' own
    e2e tests do, each configuration carries a marker webhook that denies only objects labelled
    with its name: once a marker object is denied, the whole configuration is in force.
    """
    made: list[str] = []

    def create(kind: str, *webhooks: dict[str, Any]) -> str:
        name = f"cfg-{uuid.uuid4().hex[:8]}"
        # In `default`, which the tests' own hooks never select.
        marker = hook(f"marker-{name}.kubesim.test", url(webhook, cert, "/deny"),
                      {"matchLabels": {"kubernetes.io/metadata.name": "default"}},
                      objectSelector={"matchLabels": {"marker": name}})
        reply = http("POST", f"{ADM}/{kind}",
                     json={"metadata": {"name": name}, "webhooks": [*webhooks, marker]})
        assert reply.status_code == 201, reply.text
        made.append(f"{ADM}/{kind}/{name}")
        _wait_in_force(http, name)
        return name
    yield create
    for path in made:
        http("DELETE", path)


def _wait_in_force(http: Call, name: str, timeout: float = 30.0) -> None:
    path = "/api/v1/namespaces/default/configmaps"
    probe = {"metadata": {"name": f"marker-{name}", "labels": {"marker": name}},
             "data": {"bad": "marker"}}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = http("POST", path, json=probe)
        if reply.status_code == 201:  # not in force yet: try again
            http("DELETE", f"{path}/marker-{name}")
        elif "data.bad: marker is bad" in reply.text:
            return
        time.sleep(0.1)
    raise AssertionError(f"webhook configuration {name} never came into force: {reply.text}")


def hook(name: str, client_config: dict[str, Any], selector: dict[str, Any],
         operations: tuple[str, ...] = ("CREATE", "UPDATE"), **extra: Any) -> dict[str, Any]:
    return {"name": name, "clientConfig": client_config, "namespaceSelector": selector,
            "rules": [{"operations": list(operations), "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["configmaps"], "scope": "Namespaced"}],
            "sideEffects": "None", "admissionReviewVersions": ["v1"], **extra}


def url(webhook: Webhook, cert: ServingCert, path: str) -> dict[str, Any]:
    return {"url": f"https://127.0.0.1:{webhook.port}{path}", "caBundle": cert.ca_bundle}


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "data": data}


def test_denial_is_reported_like_kube_apiserver(http, namespace, webhook, cert, scoped,
                                                register, api_server):
    register("validatingwebhookconfigurations",
             hook("deny.kubesim.test", url(webhook, cert, "/deny"), scoped))
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    denied = http("POST", path, json=configmap("no", bad="rm -rf"))
    assert denied.status_code == 422
    assert denied.json()["message"] == \
        'admission webhook "deny.kubesim.test" denied the request: data.bad: rm -rf is bad'
    assert http("GET", f"{path}/no").status_code == 404
    assert http("POST", path, json=configmap("yes", good="1")).status_code == 201
    request = webhook.reviews[-1]["request"]
    assert webhook.reviews[-1]["apiVersion"] == "admission.k8s.io/v1"
    assert request["operation"] == "CREATE"
    assert request["namespace"] == namespace and request["name"] == "yes"
    assert request["kind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
    assert request["resource"] == {"group": "", "version": "v1", "resource": "configmaps"}
    assert request["userInfo"]["username"] == api_server.admin_user
    assert request["object"]["data"] == {"good": "1"} and request["oldObject"] is None
    # An update that makes it bad is denied too, and the review carries the old object.
    update = http("PATCH", f"{path}/yes", json={"data": {"bad": "x"}},
                  headers={"Content-Type": "application/merge-patch+json"})
    assert update.status_code == 422
    assert webhook.reviews[-1]["request"]["oldObject"]["data"] == {"good": "1"}


def test_denial_without_a_message(http, namespace, webhook, cert, scoped, register):
    register("validatingwebhookconfigurations",
             hook("silent.kubesim.test", url(webhook, cert, "/no-message"), scoped))
    denied = http("POST", f"/api/v1/namespaces/{namespace}/configmaps", json=configmap("a"))
    assert denied.status_code == 400
    assert denied.json()["message"] == \
        'admission webhook "silent.kubesim.test" denied the request without explanation'


def test_rules_and_selectors_decide_who_is_asked(http, namespace, webhook, cert, scoped,
                                                 register):
    register("validatingwebhookconfigurations",
             hook("updates.kubesim.test", url(webhook, cert, "/deny"), scoped,
                  operations=("UPDATE",),
                  objectSelector={"matchExpressions": [
                      {"key": "checked", "operator": "In", "values": ["yes"]}]}))
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    before = len(webhook.reviews)
    assert http("POST", path, json=configmap("created", bad="1")).status_code == 201
    unchecked = http("PUT", f"{path}/created", json=configmap("created", bad="2"))
    assert unchecked.status_code == 200  # objectSelector does not select it
    checked = {"metadata": {"name": "labelled", "labels": {"checked": "yes"}}}
    assert http("POST", path, json=checked).status_code == 201  # CREATE is not in the rule
    assert len(webhook.reviews) == before
    denied = http("PUT", f"{path}/labelled", json={**checked, "data": {"bad": "3"}})
    assert denied.status_code == 422
    # Another namespace is outside the namespaceSelector.
    assert http("POST", "/api/v1/namespaces/default/configmaps",
                json={**checked, "metadata": {"name": f"x-{uuid.uuid4().hex[:6]}",
                                              "labels": {"checked": "yes"}}}
                ).status_code == 201


def test_failure_policy_and_timeout(http, namespace, webhook, cert, scoped, register):
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    name = register("validatingwebhookconfigurations",
                    hook("slow.kubesim.test", url(webhook, cert, "/slow"), scoped,
                         timeoutSeconds=1, failurePolicy="Fail"))
    started = time.monotonic()
    failed = http("POST", path, json=configmap("slow"))
    assert time.monotonic() - started < 4  # gave up after timeoutSeconds, not the 5 s
    assert failed.status_code == 500
    assert failed.json()["message"].startswith(
        'Internal error occurred: failed calling webhook "slow.kubesim.test": '
        f'failed to call webhook: Post "https://127.0.0.1:{webhook.port}/slow?timeout=1s": '
        "context deadline exceeded")
    http("DELETE", f"{ADM}/validatingwebhookconfigurations/{name}")
    register("validatingwebhookconfigurations",
             hook("gone.kubesim.test", {"url": "https://127.0.0.1:1/none",
                                        "caBundle": cert.ca_bundle}, scoped,
                  failurePolicy="Ignore"))
    assert http("POST", path, json=configmap("ignored")).status_code == 201


def test_ca_bundle_is_verified(http, namespace, webhook, cert, scoped, register, tmp_path):
    other = make_serving_cert(tmp_path / "other")
    register("validatingwebhookconfigurations",
             hook("untrusted.kubesim.test",
                  {"url": f"https://127.0.0.1:{webhook.port}/allow",
                   "caBundle": other.ca_bundle}, scoped))
    failed = http("POST", f"/api/v1/namespaces/{namespace}/configmaps", json=configmap("a"))
    assert failed.status_code == 500
    assert ("tls: failed to verify certificate: x509: certificate signed by unknown authority"
            in failed.json()["message"])


def test_response_uid_must_match(http, namespace, webhook, cert, scoped, register):
    register("validatingwebhookconfigurations",
             hook("uid.kubesim.test", url(webhook, cert, "/bad-uid"), scoped))
    failed = http("POST", f"/api/v1/namespaces/{namespace}/configmaps", json=configmap("a"))
    assert failed.status_code == 500
    assert "expected response.uid" in failed.json()["message"]


def test_service_reference_resolves_through_the_address_annotation(
        http, namespace, webhook, cert, scoped, register):
    service_ns = f"webhook-ns-{uuid.uuid4().hex[:6]}"
    assert http("POST", "/api/v1/namespaces",
                json={"metadata": {"name": service_ns}}).status_code == 201
    try:
        http("POST", f"/api/v1/namespaces/{service_ns}/services", json={
            "metadata": {"name": "hooks", "annotations": {
                "kubesim.dev/webhook-address": f"127.0.0.1:{webhook.port}"}},
            "spec": {"ports": [{"port": 443, "targetPort": webhook.port}]}})
        register("validatingwebhookconfigurations", hook(
            "svc.kubesim.test", {"service": {"namespace": service_ns, "name": "hooks",
                                             "path": "/deny"},
                                 "caBundle": cert.ca_bundle}, scoped))
        denied = http("POST", f"/api/v1/namespaces/{namespace}/configmaps",
                      json=configmap("a", bad="yes"))
        # The certificate names hooks.webhook-ns.svc, not this namespace's service name:
        # verification is for <service>.<namespace>.svc, as kube-apiserver checks.
        assert denied.status_code == 500
        assert f"hooks.{service_ns}.svc" in denied.json()["message"]
    finally:
        http("DELETE", f"/api/v1/namespaces/{service_ns}")


def test_service_reference_with_matching_certificate(http, namespace, webhook, cert, scoped,
                                                     register):
    if http("GET", "/api/v1/namespaces/webhook-ns").status_code == 404:
        http("POST", "/api/v1/namespaces", json={"metadata": {"name": "webhook-ns"}})
    name = f"hooks-{uuid.uuid4().hex[:6]}"
    http("POST", "/api/v1/namespaces/webhook-ns/services", json={
        "metadata": {"name": name, "annotations": {
            "kubesim.dev/webhook-address": f"127.0.0.1:{webhook.port}"}},
        "spec": {"ports": [{"port": 443}]}})
    cert_for_name = make_serving_cert(Path(str(cert.directory) + f"-{name}"),
                                      (f"{name}.webhook-ns.svc",))
    hook_server = Webhook(cert_for_name)
    try:
        http("PATCH", f"/api/v1/namespaces/webhook-ns/services/{name}",
             json={"metadata": {"annotations": {
                 "kubesim.dev/webhook-address": f"127.0.0.1:{hook_server.port}"}}},
             headers={"Content-Type": "application/merge-patch+json"})
        register("validatingwebhookconfigurations", hook(
            "svc-ok.kubesim.test", {"service": {"namespace": "webhook-ns", "name": name,
                                                "path": "/deny"},
                                    "caBundle": cert_for_name.ca_bundle}, scoped))
        denied = http("POST", f"/api/v1/namespaces/{namespace}/configmaps",
                      json=configmap("a", bad="yes"))
        assert denied.status_code == 422, denied.text
        assert "svc-ok.kubesim.test" in denied.json()["message"]
    finally:
        hook_server.server.shutdown()


def test_mutating_webhook_patches_the_object(http, namespace, webhook, cert, scoped,
                                             register):
    register("mutatingwebhookconfigurations",
             hook("label.kubesim.test", url(webhook, cert, "/mutate"), scoped))
    made = http("POST", f"/api/v1/namespaces/{namespace}/configmaps", json=configmap("m"))
    assert made.status_code == 201
    assert made.json()["metadata"]["labels"] == {"mutated": "yes"}
