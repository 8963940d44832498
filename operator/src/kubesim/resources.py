"""Resource types the server knows: the built-in kinds and the ones CRDs declare."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]

# The group/resources whose objects the store and the controllers treat specially.
POD_GR = ("", "pods")
PVC_GR = ("", "persistentvolumeclaims")
SERVICE_GR = ("", "services")
NS_GR = ("", "namespaces")
SLICE_GR = ("discovery.k8s.io", "endpointslices")
CRD_GR = ("apiextensions.k8s.io", "customresourcedefinitions")
PRIORITY_CLASS_GR = ("scheduling.k8s.io", "priorityclasses")


@dataclass
class ResourceType:
    """One REST resource (plural) of one group/version, with what discovery says about it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    subresources: set[str] = field(default_factory=set)
    printer_columns: list[dict[str, Any]] | None = None  # CRD additionalPrinterColumns
    schema: dict[str, Any] | None = None  # CRD openAPIV3Schema
    scale_paths: dict[str, str] | None = None  # CRD subresources.scale
    custom: bool = False
    has_generation: bool = True
    field_selectors: tuple[str, ...] = ()
    storage_version: str = ""
    list_kind: str = ""

    def __post_init__(self) -> None:
        self.singular = self.singular or self.kind.lower()
        self.storage_version = self.storage_version or self.version
        self.list_kind = self.list_kind or self.kind + "List"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> tuple[str, str]:
        """Identity of the stored collection, shared by every served version."""
        return (self.group, self.plural)

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources


_POD_FIELDS = ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
               "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
               "status.nominatedNodeName")
_EVENT_FIELDS = ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                 "involvedObject.uid", "involvedObject.apiVersion",
                 "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
                 "reportingComponent", "source", "type")


def _core(plural: str, kind: str, namespaced: bool = True, **kw: Any) -> ResourceType:
    return ResourceType("", "v1", plural, kind, namespaced, **kw)


def builtin_types() -> list[ResourceType]:
    """The built-in kinds served from start."""
    rbac = "rbac.authorization.k8s.io"
    adm = "admissionregistration.k8s.io"
    return [
        _core("namespaces", "Namespace", False, short_names=["ns"], subresources={"status"},
              has_generation=False, field_selectors=("status.phase",)),
        _core("pods", "Pod", short_names=["po"], categories=["all"],
              subresources={"status", "binding", "log", "eviction"},
              field_selectors=_POD_FIELDS),
        _core("persistentvolumeclaims", "PersistentVolumeClaim", short_names=["pvc"],
              subresources={"status"}, has_generation=False),
        _core("persistentvolumes", "PersistentVolume", False, short_names=["pv"],
              subresources={"status"}, has_generation=False),
        _core("secrets", "Secret", has_generation=False, field_selectors=("type",)),
        _core("configmaps", "ConfigMap", short_names=["cm"], has_generation=False),
        _core("services", "Service", short_names=["svc"], categories=["all"],
              subresources={"status"}, has_generation=False),
        _core("serviceaccounts", "ServiceAccount", short_names=["sa"], subresources={"token"},
              has_generation=False),
        _core("events", "Event", short_names=["ev"], has_generation=False,
              field_selectors=_EVENT_FIELDS),
        _core("nodes", "Node", False, short_names=["no"], subresources={"status"},
              has_generation=False, field_selectors=("spec.unschedulable",)),
        _core("endpoints", "Endpoints", short_names=["ep"], has_generation=False),
        ResourceType("apps", "v1", "deployments", "Deployment", True, short_names=["deploy"],
                     categories=["all"], subresources={"status", "scale"}),
        ResourceType("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True),
        ResourceType("networking.k8s.io", "v1", "ingresses", "Ingress", True,
                     short_names=["ing"], subresources={"status"}),
        ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True,
                     has_generation=False),
        ResourceType("storage.k8s.io", "v1", "storageclasses", "StorageClass", False,
                     short_names=["sc"], has_generation=False),
        ResourceType("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", False,
                     short_names=["pc"], has_generation=False),
        ResourceType("events.k8s.io", "v1", "events", "Event", True, short_names=["ev"],
                     has_generation=False),
        ResourceType("apiextensions.k8s.io", "v1", "customresourcedefinitions",
                     "CustomResourceDefinition", False, short_names=["crd", "crds"],
                     categories=["api-extensions"], subresources={"status"}),
        ResourceType(adm, "v1", "validatingwebhookconfigurations",
                     "ValidatingWebhookConfiguration", False, categories=["api-extensions"]),
        ResourceType(adm, "v1", "mutatingwebhookconfigurations",
                     "MutatingWebhookConfiguration", False, categories=["api-extensions"]),
        ResourceType(rbac, "v1", "roles", "Role", True, has_generation=False),
        ResourceType(rbac, "v1", "rolebindings", "RoleBinding", True, has_generation=False),
        ResourceType(rbac, "v1", "clusterroles", "ClusterRole", False, has_generation=False),
        ResourceType(rbac, "v1", "clusterrolebindings", "ClusterRoleBinding", False,
                     has_generation=False),
    ]


def types_from_crd(crd: dict[str, Any]) -> list[ResourceType]:
    """One ResourceType per served version of a CustomResourceDefinition."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    versions = [v for v in spec.get("versions") or [] if v.get("served", True)]
    storage = next((v["name"] for v in spec.get("versions") or [] if v.get("storage")),
                   versions[0]["name"] if versions else "v1")
    out = []
    for ver in versions:
        subs = set((ver.get("subresources") or {}).keys())
        schema = (ver.get("schema") or {}).get("openAPIV3Schema")
        selectable = tuple(f["jsonPath"].lstrip(".")
                           for f in ver.get("selectableFields") or [])
        out.append(ResourceType(
            group=spec.get("group", ""), version=ver["name"], plural=names.get("plural", ""),
            kind=names.get("kind", ""), namespaced=spec.get("scope") == "Namespaced",
            singular=names.get("singular", ""), short_names=list(names.get("shortNames") or []),
            categories=list(names.get("categories") or []), subresources=subs,
            printer_columns=ver.get("additionalPrinterColumns"), schema=schema, custom=True,
            field_selectors=selectable, storage_version=storage,
            scale_paths=(ver.get("subresources") or {}).get("scale"),
            list_kind=names.get("listKind", ""),
        ))
    return out


class Registry:
    """Resolves (group, version, plural) to a ResourceType; CRDs add and remove entries."""

    def __init__(self) -> None:
        self.by_gvr: dict[tuple[str, str, str], ResourceType] = {}
        self.crd_types: dict[str, list[ResourceType]] = {}  # CRD name -> its served types
        self.epoch = 0  # bumped when the set of served types changes (discovery/openapi hashes)
        for rt in builtin_types():
            self.add(rt)

    def add(self, rt: ResourceType) -> None:
        self.by_gvr[(rt.group, rt.version, rt.plural)] = rt
        self.epoch += 1

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self.by_gvr.get((group, version, plural))

    def set_crd(self, crd_name: str, types: list[ResourceType]) -> None:
        self.remove_crd(crd_name)
        for rt in types:
            self.add(rt)
        self.crd_types[crd_name] = types

    def remove_crd(self, crd_name: str) -> None:
        for rt in self.crd_types.pop(crd_name, []):
            self.by_gvr.pop((rt.group, rt.version, rt.plural), None)
        self.epoch += 1

    def group_versions(self) -> dict[str, list[str]]:
        """group -> versions served, preferred (storage) version first."""
        out: dict[str, list[str]] = {}
        for (group, version, _plural), rt in self.by_gvr.items():
            versions = out.setdefault(group, [])
            if version not in versions:
                if version == rt.storage_version:
                    versions.insert(0, version)
                else:
                    versions.append(version)
        return out

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for (g, v, _), rt in self.by_gvr.items() if g == group and v == version]

    def all(self) -> list[ResourceType]:
        return list(self.by_gvr.values())
