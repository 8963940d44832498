"""Decoding Kubernetes protobuf request bodies for the kinds kubectl builds itself.

Since 1.31 client-go's typed clients send `application/vnd.kubernetes.protobuf`, so
`kubectl create namespace|configmap|secret|serviceaccount|role|...` post protobuf. The bytes are
`k8s\\x00` + a runtime.Unknown envelope around the typed message. Only the messages listed in
MESSAGES are known (field numbers from k8s.io/api generated.proto); anything else answers 415 so
the gap is visible rather than silently mis-decoded. Deployments and Services (`kubectl create
deployment`, `kubectl expose`) decode the common fields of their pod templates and ports.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from .errors import ApiError

MAGIC = b"k8s\x00"
# field number -> (json name, type); type is a scalar kind, a message name, or "map:<value>".
Field = tuple[str, str]
MESSAGES: dict[str, dict[int, Field]] = {
    "Unknown": {1: ("typeMeta", "TypeMeta"), 2: ("raw", "bytes"),
                3: ("contentEncoding", "string"), 4: ("contentType", "string")},
    "TypeMeta": {1: ("apiVersion", "string"), 2: ("kind", "string")},
    "ObjectMeta": {1: ("name", "string"), 2: ("generateName", "string"),
                   3: ("namespace", "string"), 5: ("uid", "string"),
                   6: ("resourceVersion", "string"), 7: ("generation", "int"),
                   8: ("creationTimestamp", "Time"), 9: ("deletionTimestamp", "Time"),
                   10: ("deletionGracePeriodSeconds", "int"), 11: ("labels", "map:string"),
                   12: ("annotations", "map:string"), 13: ("ownerReferences", "[]OwnerReference"),
                   14: ("finalizers", "[]string")},
    "Time": {1: ("seconds", "int"), 2: ("nanos", "int")},
    "OwnerReference": {1: ("kind", "string"), 3: ("name", "string"), 4: ("uid", "string"),
                       5: ("apiVersion", "string"), 6: ("controller", "bool"),
                       7: ("blockOwnerDeletion", "bool")},
    "Namespace": {1: ("metadata", "ObjectMeta"), 2: ("spec", "NamespaceSpec")},
    "NamespaceSpec": {1: ("finalizers", "[]string")},
    "ConfigMap": {1: ("metadata", "ObjectMeta"), 2: ("data", "map:string"),
                  3: ("binaryData", "map:bytes"), 4: ("immutable", "bool")},
    "Secret": {1: ("metadata", "ObjectMeta"), 2: ("data", "map:bytes"), 3: ("type", "string"),
               4: ("stringData", "map:string"), 5: ("immutable", "bool")},
    "ServiceAccount": {1: ("metadata", "ObjectMeta"), 2: ("secrets", "[]ObjectReference"),
                       3: ("imagePullSecrets", "[]LocalObjectReference"),
                       4: ("automountServiceAccountToken", "bool")},
    "ObjectReference": {1: ("kind", "string"), 2: ("namespace", "string"), 3: ("name", "string"),
                        4: ("uid", "string"), 5: ("apiVersion", "string"),
                        6: ("resourceVersion", "string"), 7: ("fieldPath", "string")},
    "LocalObjectReference": {1: ("name", "string")},
    "Role": {1: ("metadata", "ObjectMeta"), 2: ("rules", "[]PolicyRule")},
    "ClusterRole": {1: ("metadata", "ObjectMeta"), 2: ("rules", "[]PolicyRule")},
    "PolicyRule": {1: ("verbs", "[]string"), 2: ("apiGroups", "[]string"),
                   3: ("resources", "[]string"), 4: ("resourceNames", "[]string"),
                   5: ("nonResourceURLs", "[]string")},
    "RoleBinding": {1: ("metadata", "ObjectMeta"), 2: ("subjects", "[]Subject"),
                    3: ("roleRef", "RoleRef")},
    "ClusterRoleBinding": {1: ("metadata", "ObjectMeta"), 2: ("subjects", "[]Subject"),
                           3: ("roleRef", "RoleRef")},
    "Subject": {1: ("kind", "string"), 2: ("apiGroup", "string"), 3: ("name", "string"),
                4: ("namespace", "string")},
    "RoleRef": {1: ("apiGroup", "string"), 2: ("kind", "string"), 3: ("name", "string")},
    "Service": {1: ("metadata", "ObjectMeta"), 2: ("spec", "ServiceSpec")},
    "ServiceSpec": {1: ("ports", "[]ServicePort"), 2: ("selector", "map:string"),
                    3: ("clusterIP", "string"), 4: ("type", "string"),
                    5: ("externalIPs", "[]string"), 7: ("sessionAffinity", "string"),
                    8: ("loadBalancerIP", "string"), 11: ("externalName", "string"),
                    18: ("clusterIPs", "[]string"), 19: ("ipFamilies", "[]string"),
                    17: ("ipFamilyPolicy", "string")},
    "ServicePort": {1: ("name", "string"), 2: ("protocol", "string"), 3: ("port", "int"),
                    4: ("targetPort", "IntOrString"), 5: ("nodePort", "int"),
                    6: ("appProtocol", "string")},
    "Deployment": {1: ("metadata", "ObjectMeta"), 2: ("spec", "DeploymentSpec")},
    "DeploymentSpec": {1: ("replicas", "int"), 2: ("selector", "LabelSelector"),
                       3: ("template", "PodTemplateSpec"), 4: ("strategy", "DeploymentStrategy"),
                       5: ("minReadySeconds", "int"), 6: ("revisionHistoryLimit", "int"),
                       7: ("paused", "bool"), 9: ("progressDeadlineSeconds", "int")},
    "DeploymentStrategy": {1: ("type", "string")},
    "LabelSelector": {1: ("matchLabels", "map:string"),
                      2: ("matchExpressions", "[]LabelSelectorRequirement")},
    "LabelSelectorRequirement": {1: ("key", "string"), 2: ("operator", "string"),
                                 3: ("values", "[]string")},
    "PodTemplateSpec": {1: ("metadata", "ObjectMeta"), 2: ("spec", "PodSpec")},
    "PodSpec": {2: ("containers", "[]Container"), 3: ("restartPolicy", "string"),
                4: ("terminationGracePeriodSeconds", "int"), 6: ("dnsPolicy", "string"),
                7: ("nodeSelector", "map:string"), 8: ("serviceAccountName", "string"),
                10: ("nodeName", "string"), 19: ("schedulerName", "string"),
                20: ("initContainers", "[]Container")},
    "Container": {1: ("name", "string"), 2: ("image", "string"), 3: ("command", "[]string"),
                  4: ("args", "[]string"), 5: ("workingDir", "string"),
                  6: ("ports", "[]ContainerPort"), 7: ("env", "[]EnvVar"),
                  8: ("resources", "ResourceRequirements"), 9: ("volumeMounts", "[]VolumeMount"),
                  13: ("terminationMessagePath", "string"), 14: ("imagePullPolicy", "string"),
                  20: ("terminationMessagePolicy", "string")},
    "ContainerPort": {1: ("name", "string"), 2: ("hostPort", "int"), 3: ("containerPort", "int"),
                      4: ("protocol", "string")},
    "EnvVar": {1: ("name", "string"), 2: ("value", "string")},
    "ResourceRequirements": {1: ("limits", "map:Quantity"), 2: ("requests", "map:Quantity")},
    "VolumeMount": {1: ("name", "string"), 2: ("readOnly", "bool"), 3: ("mountPath", "string"),
                    4: ("subPath", "string")},
    "Quantity": {1: ("string", "string")},
    "IntOrString": {1: ("type", "int"), 2: ("intVal", "int"), 3: ("strVal", "string")},
    "TokenRequest": {1: ("metadata", "ObjectMeta"), 2: ("spec", "TokenRequestSpec")},
    "TokenRequestSpec": {1: ("audiences", "[]string"), 4: ("expirationSeconds", "int")},
    "MapEntry": {1: ("key", "string"), 2: ("value", "bytes")},
}


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """Wire-format (field, value) pairs: varints as int, length-delimited as bytes."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            out.append((field, value))
        elif wire == 2:
            size, pos = _varint(buf, pos)
            out.append((field, buf[pos:pos + size]))
            pos += size
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return out


def _time(raw: bytes) -> str | None:
    seconds = next((v for f, v in _fields(raw) if f == 1 and isinstance(v, int)), 0)
    if not seconds:
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _scalar(kind: str, value: int | bytes) -> Any:
    if kind == "string":
        return value.decode() if isinstance(value, bytes) else str(value)
    if kind == "bytes":
        return base64.b64encode(value).decode() if isinstance(value, bytes) else value
    if kind == "bool":
        return bool(value)
    return value  # int


def _value(kind: str, raw: int | bytes) -> Any:
    """One field's value: scalars, the special wrapper types, or a nested message."""
    if kind == "Time":
        return _time(raw) if isinstance(raw, bytes) else None
    if kind in ("Quantity", "IntOrString") and isinstance(raw, bytes):
        inner = decode_message(kind, raw)
        if kind == "Quantity":
            return inner.get("string")
        return inner.get("strVal") if inner.get("type") == 1 else inner.get("intVal", 0)
    if kind in MESSAGES:
        return decode_message(kind, raw) if isinstance(raw, bytes) else {}
    return _scalar(kind, raw)


def decode_message(name: str, buf: bytes) -> dict[str, Any]:
    """Decode into the JSON shape, dropping zero values like Go's omitempty would."""
    table = MESSAGES[name]
    out: dict[str, Any] = {}
    for number, value in _fields(buf):
        if number not in table:
            continue
        key, kind = table[number]
        repeated = kind.startswith("[]")
        kind = kind[2:] if repeated else kind
        if kind.startswith("map:"):
            entry = dict(_fields(value)) if isinstance(value, bytes) else {}
            out.setdefault(key, {})[_scalar("string", entry.get(1, b""))] = _value(
                kind[4:], entry.get(2, b""))
            continue
        decoded = _value(kind, value)
        if repeated:
            out.setdefault(key, []).append(decoded)
        elif decoded is not None and (decoded not in ("", 0, False, {}) or (
                kind in MESSAGES and kind not in ("Quantity", "IntOrString"))):
            out[key] = decoded
    return {k: v for k, v in out.items() if v not in ({}, None) or k == "metadata"}


def decode(body: bytes) -> dict[str, Any]:
    """A protobuf request body as the equivalent JSON object, or 415 for unknown kinds."""
    if not body.startswith(MAGIC):
        raise ApiError(400, "BadRequest", "provided protobuf is not a Kubernetes object")
    envelope = decode_message("Unknown", body[len(MAGIC):])
    type_meta = envelope.get("typeMeta") or {}
    kind = type_meta.get("kind", "")
    if kind not in MESSAGES or "metadata" not in {k for k, _ in MESSAGES[kind].values()}:
        raise ApiError(415, "UnsupportedMediaType",
                       f"kubesim cannot decode protobuf for kind {kind!r}; send JSON", {})
    raw = base64.b64decode(envelope.get("raw", ""))
    obj = {"apiVersion": type_meta.get("apiVersion", ""), "kind": kind}
    obj.update(decode_message(kind, raw))
    return obj
