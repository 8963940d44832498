"""Protobuf request bodies, which kubectl's typed clients send for the kinds they build."""

from __future__ import annotations

import base64


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _configmap_protobuf(name: str) -> bytes:
    meta = _field(1, name.encode()) + _field(11, _field(1, b"app") + _field(2, b"x"))
    data = _field(2, _field(1, b"k") + _field(2, b"v"))
    raw = _field(1, meta) + data
    envelope = _field(1, _field(1, b"v1") + _field(2, b"ConfigMap")) + _field(2, raw)
    return b"k8s\x00" + envelope


def test_configmap_posted_as_protobuf(http, namespace):
    rsp = http("POST", f"/api/v1/namespaces/{namespace}/configmaps",
               data=_configmap_protobuf("pb"),
               # A protobuf body, a JSON answer (asked for protobuf first, kube-apiserver answers
               # protobuf, which kubesim does not encode).
               headers={"Content-Type": "application/vnd.kubernetes.protobuf",
                        "Accept": "application/json"})
    assert rsp.status_code == 201, rsp.text
    body = rsp.json()
    assert body["metadata"]["name"] == "pb"
    assert body["metadata"]["labels"] == {"app": "x"}
    assert body["data"] == {"k": "v"}


def test_kubectl_create_generators(kubectl, namespace):
    kubectl("create", "configmap", "gen", "--from-literal=a=b", "-n", namespace)
    kubectl("create", "secret", "generic", "sec", "--from-literal=p=q", "-n", namespace)
    kubectl("create", "serviceaccount", "robot", "-n", namespace)
    got = kubectl("get", "secret", "sec", "-n", namespace, "-o",
                  "jsonpath={.data.p}").stdout
    assert base64.b64decode(got) == b"q"
    assert kubectl("get", "configmap", "gen", "-n", namespace, "-o",
                   "jsonpath={.data.a}").stdout == "b"


def test_kubectl_create_deployment_and_service(kubectl, namespace):
    kubectl("create", "deployment", "web", "--image=nginx:1.27", "--port=80", "-n", namespace)
    kubectl("expose", "deployment", "web", "--port=8080", "--target-port=80", "-n", namespace)
    image = kubectl("get", "deployment", "web", "-n", namespace, "-o",
                    "jsonpath={.spec.template.spec.containers[0].image}").stdout
    assert image == "nginx:1.27"
    ports = kubectl("get", "service", "web", "-n", namespace, "-o",
                    "jsonpath={.spec.ports[0].port}/{.spec.ports[0].targetPort}").stdout
    assert ports == "8080/80"


def test_kubectl_create_token(kubectl, namespace):
    kubectl("create", "serviceaccount", "bot", "-n", namespace)
    token = kubectl("create", "token", "bot", "-n", namespace, "--duration=10m").stdout.strip()
    assert token
