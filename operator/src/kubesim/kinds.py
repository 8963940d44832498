"""What the built-in kinds' registry strategies do beyond the generic object lifecycle.

Defaults on create (pod status, namespace phase, service clusterIP, secret stringData), field
immutability on update (pod spec), and the status a CRD reports once it is established.
"""

from __future__ import annotations

import base64
import itertools
from datetime import UTC, datetime
from typing import Any

from .errors import FieldError
from .resources import ResourceType

_cluster_ips = itertools.count(10)


def prepare_create(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Fill what the apiserver fills on create for this kind."""
    key = (rt.group, rt.plural)
    if key == ("", "pods"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("priority", 0)
        for c in spec.get("containers") or []:
            c.setdefault("imagePullPolicy", "Always" if str(c.get("image", "")).endswith(
                ":latest") or ":" not in str(c.get("image", "")) else "IfNotPresent")
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
        _default_toleration_seconds(spec)
        obj["status"] = {"phase": "Pending", "qosClass": _qos_class(spec)}
    elif key == ("", "namespaces"):
        obj.setdefault("spec", {})["finalizers"] = ["kubernetes"]
        obj["status"] = {"phase": "Active"}
        labels = obj["metadata"].setdefault("labels", {})
        labels["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
    elif key == ("", "persistentvolumeclaims"):
        # The StorageObjectInUseProtection admission plugin: a claim outlives its pods.
        finalizers = obj["metadata"].setdefault("finalizers", [])
        if "kubernetes.io/pvc-protection" not in finalizers:
            finalizers.append("kubernetes.io/pvc-protection")
        obj.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")
        obj["status"] = {"phase": "Pending"}
    elif key == ("", "persistentvolumes"):
        obj.setdefault("spec", {}).setdefault("persistentVolumeReclaimPolicy", "Retain")
        obj["spec"].setdefault("volumeMode", "Filesystem")
        obj["status"] = {"phase": "Pending",
                         "lastPhaseTransitionTime": obj["metadata"]["creationTimestamp"]}
    elif key == ("", "secrets"):
        _fold_string_data(obj)
        obj.setdefault("type", "Opaque")
    elif key == ("", "services"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        if spec.get("clusterIP") != "None":
            n = next(_cluster_ips)
            spec["clusterIP"] = f"10.96.{n // 250 % 250}.{n % 250 + 1}"
            spec["clusterIPs"] = [spec["clusterIP"]]
        spec.setdefault("sessionAffinity", "None")
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
        _allocate_node_ports(spec)
        obj["status"] = {"loadBalancer": {}}
    elif key == ("apps", "deployments"):
        obj.setdefault("spec", {}).setdefault("replicas", 1)
        obj["status"] = {}
    elif key == ("apiextensions.k8s.io", "customresourcedefinitions"):
        obj["status"] = crd_status(obj)


# kube-apiserver's --service-node-port-range default. Like its allocator, ports are handed out
# once per Service port and never twice at the same time (this emulator never frees one: a
# range of 2768 outlives any test run's Services).
NODE_PORT_RANGE = (30000, 32767)
_node_ports = itertools.count(NODE_PORT_RANGE[0] + 123)


def _allocate_node_ports(spec: dict[str, Any]) -> None:
    """NodePort and LoadBalancer Services get a node port per port on create (a
    LoadBalancer unless allocateLoadBalancerNodePorts is false), and the defaults
    kube-apiserver fills for them."""
    kind = spec.get("type")
    if kind not in ("NodePort", "LoadBalancer"):
        return
    spec.setdefault("externalTrafficPolicy", "Cluster")
    if kind == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
        if not spec["allocateLoadBalancerNodePorts"]:
            return
    low, high = NODE_PORT_RANGE
    for port in spec.get("ports") or []:
        if not port.get("nodePort"):
            port["nodePort"] = low + (next(_node_ports) - low) % (high - low + 1)


# The DefaultTolerationSeconds admission plugin (on by default in kube-apiserver): a pod rides
# out a not-ready or unreachable node for five minutes before the taint evicts it.
_NODE_PROBLEM_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
DEFAULT_TOLERATION_SECONDS = 300


def _default_toleration_seconds(spec: dict[str, Any]) -> None:
    tolerations = spec.setdefault("tolerations", [])
    for taint in _NODE_PROBLEM_TAINTS:
        if not any(_tolerates_no_execute(t, taint) for t in tolerations):
            tolerations.append({"key": taint, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": DEFAULT_TOLERATION_SECONDS})


def _tolerates_no_execute(toleration: dict[str, Any], key: str) -> bool:
    # The plugin's own test: the key (or none) and the effect NoExecute (or none).
    return (toleration.get("key") in (None, "", key)
            and toleration.get("effect") in (None, "", "NoExecute"))


def prepare_update(rt: ResourceType, new: dict[str, Any], old: dict[str, Any]) -> None:
    key = (rt.group, rt.plural)
    if key == ("", "secrets"):
        _fold_string_data(new)
    elif key == ("", "namespaces"):
        new["spec"] = old.get("spec", {})
        new["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = \
            new["metadata"]["name"]
    elif key == ("apiextensions.k8s.io", "customresourcedefinitions"):
        new["status"] = crd_status(new)
    prepare_status_update(rt, new, old)


def prepare_status_update(rt: ResourceType, new: dict[str, Any], old: dict[str, Any]) -> None:
    """A PersistentVolume records when its phase last changed (GA since 1.31)."""
    if (rt.group, rt.plural) != ("", "persistentvolumes") or "status" not in new:
        return
    status, before = new["status"], old.get("status") or {}
    if status.get("phase") != before.get("phase"):
        status["lastPhaseTransitionTime"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    elif "lastPhaseTransitionTime" in before:
        status["lastPhaseTransitionTime"] = before["lastPhaseTransitionTime"]


# ConfigMaps and Secrets hold at most 1 MiB of data (ValidateConfigMap, ValidateSecret).
MAX_DATA_BYTES = 1024 * 1024


def validate(rt: ResourceType, obj: dict[str, Any]) -> list[FieldError]:
    """Checks of a built-in kind's content, on create and update."""
    if (rt.group, rt.plural) == ("events.k8s.io", "events"):
        # Validated as the internal Event: what it regards lives in the event's namespace.
        regarding = obj.get("regarding") or {}
        namespace = obj["metadata"].get("namespace", "")
        if regarding.get("namespace", "") != namespace:
            return [FieldError("involvedObject.namespace", "FieldValueInvalid",
                               "does not match event.namespace", regarding.get("namespace", ""))]
    if (rt.group, rt.plural) == ("", "configmaps"):
        size = sum(len(str(v).encode()) for v in (obj.get("data") or {}).values()) + sum(
            len(base64.b64decode(v)) for v in (obj.get("binaryData") or {}).values())
        if size > MAX_DATA_BYTES:
            return [FieldError("[]", "FieldValueTooLong",
                               f"may not be more than {MAX_DATA_BYTES} bytes", show_value=False)]
    return []


def validate_update(rt: ResourceType, new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    """Immutable fields: a pod's spec may change only its images, tolerations and deadline."""
    if (rt.group, rt.plural) != ("", "pods"):
        return []
    new_spec, old_spec = dict(new.get("spec") or {}), dict(old.get("spec") or {})
    for spec in (new_spec, old_spec):
        spec.pop("activeDeadlineSeconds", None)
        spec.pop("tolerations", None)
        spec["containers"] = [{k: v for k, v in c.items() if k != "image"}
                              for c in spec.get("containers") or []]
    if new_spec != old_spec:
        return [FieldError("spec", "FieldValueForbidden",
                           "pod updates may not change fields other than `spec.containers[*]"
                           ".image`,`spec.initContainers[*].image`,"
                           "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions "
                           "to existing tolerations),`spec.terminationGracePeriodSeconds` "
                           "(allow it to be set to 1 if it was previously negative)",
                           show_value=False)]
    return []


def crd_status(crd: dict[str, Any]) -> dict[str, Any]:
    """A CRD is established at once: names accepted, stored versions recorded."""
    spec = crd.get("spec") or {}
    names = dict(spec.get("names") or {})
    names.setdefault("singular", str(names.get("kind", "")).lower())
    names.setdefault("listKind", f"{names.get('kind', '')}List")
    now = crd["metadata"].get("creationTimestamp")
    conditions = [
        {"type": t, "status": "True", "reason": r, "message": m, "lastTransitionTime": now}
        for t, r, m in (("NamesAccepted", "NoConflicts", "no conflicts found"),
                        ("Established", "InitialNamesAccepted",
                         "the initial names have been accepted"))
    ]
    stored = [v["name"] for v in spec.get("versions") or [] if v.get("storage")]
    return {"acceptedNames": names, "conditions": conditions, "storedVersions": stored}


def _fold_string_data(obj: dict[str, Any]) -> None:
    string_data = obj.pop("stringData", None)
    if string_data:
        data = obj.setdefault("data", {})
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode()).decode()


def _qos_class(spec: dict[str, Any]) -> str:
    containers = spec.get("containers") or []
    res = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in res):
        return "BestEffort"
    guaranteed = all(
        r.get("limits", {}).get(k) is not None and
        r.get("requests", {}).get(k, r["limits"][k]) == r["limits"][k]
        for r in res for k in ("cpu", "memory")
    ) if res else False
    return "Guaranteed" if guaranteed else "Burstable"


_SCHEMA_PROPS = frozenset((
    "id", "$schema", "$ref", "description", "type", "format", "title", "default", "maximum",
    "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern",
    "maxItems", "minItems", "uniqueItems", "multipleOf", "enum", "maxProperties",
    "minProperties", "required", "items", "allOf", "oneOf", "anyOf", "not", "properties",
    "additionalProperties", "patternProperties", "dependencies", "additionalItems",
    "definitions", "externalDocs", "example", "nullable", "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource", "x-kubernetes-int-or-string", "x-kubernetes-list-map-keys",
    "x-kubernetes-list-type", "x-kubernetes-map-type", "x-kubernetes-validations",
))


def drop_unknown_fields(rt: ResourceType, obj: dict[str, Any]) -> list[str]:
    """Decoding a built-in kind drops fields its Go type lacks; returns their paths.

    Only CRDs' JSONSchemaProps are checked: a typo there (or a YAML flow map whose comma made a
    stray key) is the mistake that matters for this project.
    """
    if (rt.group, rt.plural) != ("apiextensions.k8s.io", "customresourcedefinitions"):
        return []
    unknown: list[str] = []
    for i, version in enumerate((obj.get("spec") or {}).get("versions") or []):
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        if isinstance(schema, dict):
            _walk_schema(schema, f"spec.versions[{i}].schema.openAPIV3Schema", unknown)
    return unknown


def _walk_schema(schema: dict[str, Any], path: str, unknown: list[str]) -> None:
    for key in list(schema):
        if key not in _SCHEMA_PROPS:
            unknown.append(f"{path}.{key}")
            del schema[key]
    for key in ("properties", "patternProperties", "definitions"):
        for name, sub in (schema.get(key) or {}).items():
            if isinstance(sub, dict):
                # Map keys are dotted, as the strict decoder prints them.
                _walk_schema(sub, f"{path}.{key}.{name}", unknown)
    for key in ("items", "additionalProperties", "not", "additionalItems"):
        sub = schema.get(key)
        if isinstance(sub, dict):
            _walk_schema(sub, f"{path}.{key}", unknown)
    for key in ("allOf", "oneOf", "anyOf"):
        for j, sub in enumerate(schema.get(key) or []):
            if isinstance(sub, dict):
                _walk_schema(sub, f"{path}.{key}[{j}]", unknown)
