"""Validates custom objects against the CRDs in crds/, offline, as strictly as
`kubectl apply` (server-side field validation Strict) would: unknown fields are errors."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

CRDS = Path(__file__).resolve().parents[2] / "crds"


@cache
def crds() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> CRD."""
    found = {}
    for path in sorted(CRDS.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                for version in doc["spec"]["versions"]:
                    api_version = f"{doc['spec']['group']}/{version['name']}"
                    found[(api_version, doc["spec"]["names"]["kind"])] = doc
    return found


def to_json_schema(node: Any) -> Any:
    """OpenAPI v3 (structural CRD schema) -> JSON Schema."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if node.get("nullable"):
        out.pop("nullable")
        out["type"] = [out["type"], "null"] if "type" in out else out.get("type")
    # A structural schema prunes unknown fields; kubectl's strict validation rejects them.
    if (
        node.get("type") == "object"
        and "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def is_custom(obj: dict) -> bool:
    return (obj.get("apiVersion"), obj.get("kind")) in crds()


def scope(obj: dict) -> str:
    return crds()[(obj["apiVersion"], obj["kind"])]["spec"]["scope"]


def errors(obj: dict) -> list[str]:
    """Schema violations of one custom object (apiVersion/kind must name a CRD in crds/)."""
    crd = crds()[(obj["apiVersion"], obj["kind"])]
    version = obj["apiVersion"].split("/")[1]
    (ver,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    schema = to_json_schema(copy.deepcopy(ver["schema"]["openAPIV3Schema"]))
    validator = jsonschema.Draft7Validator(schema)
    found = [
        f"{obj['kind']}/{obj['metadata'].get('name')}: {'.'.join(map(str, e.path))}: {e.message}"
        for e in validator.iter_errors(obj)
    ]
    namespaced = crd["spec"]["scope"] == "Namespaced"
    if not namespaced and "namespace" in obj["metadata"]:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        found.append(f"{name} is cluster-scoped but has a namespace")
    return found
