"""The plugin's only door to the API server: GpuRentals, the offer catalog and wallets through
the ``kubernetes`` client's custom-objects API, in one namespace or across all of them.

Writes only ``spec`` (the fields users own) through merge patches of the main resource, never
``status``. A read-modify-write patch (``sshKeys``, ``duration``) carries the
``metadata.resourceVersion`` it was computed from, so the server refuses it (409) when the
rental changed in between; it is then recomputed from a fresh read, never forced over the
other edit.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from gpurental.constants import GROUP, OFFERS, RENTALS, VERSION
from gpurental.plugin.errors import CliError

MERGE = "application/merge-patch+json"
CONFLICT_RETRIES = 5
GONE_POLL_SECONDS = 0.2
#: A tenant may be refused the cluster-scoped offer catalog: commands then fall back to what
#: the rental's status says about its offer.
CATALOG_REFUSED = (401, 403, 404)

Obj = dict[str, Any]


def load_client(kubeconfig: str | None, context: str | None) -> tuple[client.ApiClient, str]:
    """The client for the kubeconfig (``KUBECONFIG``, ``--kubeconfig``, ``--context`` as
    kubectl) and its context's namespace; inside a pod without one, the service account's."""
    try:
        api = config.new_client_from_config(config_file=kubeconfig, context=context)
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
        chosen = next((c for c in contexts if c.get("name") == context), None) if context \
            else active
        namespace = ((chosen or {}).get("context") or {}).get("namespace") or "default"
        return api, namespace
    except config.ConfigException as exc:
        if kubeconfig or context or "KUBERNETES_SERVICE_HOST" not in os.environ:
            raise CliError(f"invalid configuration: {exc}") from None
    config.load_incluster_config()
    ns_file = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    namespace = ns_file.read_text().strip() if ns_file.exists() else "default"
    return client.ApiClient(), namespace


def _obj(value: Any) -> Obj:
    """The custom-objects API returns plain JSON dicts (typed as ``object``)."""
    if not isinstance(value, dict):
        raise CliError(f"unexpected response from the server: {type(value).__name__}")
    return value


class RentalApi:
    """The calls the plugin makes, scoped to ``namespace`` (or every namespace for lists)."""

    def __init__(self, custom: client.CustomObjectsApi, namespace: str,
                 all_namespaces: bool) -> None:
        self.custom = custom
        self.namespace = namespace
        self.all_namespaces = all_namespaces

    @classmethod
    def connect(cls, kubeconfig: str | None, context: str | None, namespace: str | None,
                all_namespaces: bool) -> RentalApi:
        """``namespace`` None: the kubeconfig context's."""
        api_client, default_ns = load_client(kubeconfig, context)
        return cls(client.CustomObjectsApi(api_client), namespace or default_ns, all_namespaces)

    def get(self, name: str) -> Obj:
        return _obj(self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, RENTALS, name))

    def list(self, plural: str = RENTALS, selector: str | None = None) -> list[Obj]:
        kwargs: dict[str, Any] = {"label_selector": selector} if selector else {}
        if self.all_namespaces:
            body = _obj(self.custom.list_cluster_custom_object(GROUP, VERSION, plural,
                                                               **kwargs))
        else:
            body = _obj(self.custom.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, **kwargs))
        return [dict(item) for item in body.get("items") or []]

    def offers(self) -> dict[str, Obj]:
        """The catalog by offer name; empty when the caller may not read it."""
        try:
            body = _obj(self.custom.list_cluster_custom_object(GROUP, VERSION, OFFERS))
        except ApiException as exc:
            if exc.status in CATALOG_REFUSED:
                return {}
            raise
        return {item["metadata"]["name"]: item for item in body.get("items") or []}

    def offer(self, name: str) -> Obj | None:
        """The offer, or None when it is gone or the caller may not read it."""
        try:
            return _obj(self.custom.get_cluster_custom_object(GROUP, VERSION, OFFERS, name))
        except ApiException as exc:
            if exc.status in CATALOG_REFUSED:
                return None
            raise

    def patch_spec(self, name: str, spec: Obj, resource_version: str | None = None,
                   namespace: str | None = None) -> Obj:
        body: Obj = {"spec": spec}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        return _obj(self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace or self.namespace, RENTALS, name, body,
            _content_type=MERGE))

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, RENTALS, name)

    def read_modify_write(self, name: str, change: Callable[[Obj], Obj | None]) -> bool:
        """GET, compute a spec patch (None: nothing to change), PATCH with the resourceVersion;
        on 409 start over from a fresh GET. Returns whether anything was patched."""
        for _ in range(CONFLICT_RETRIES):
            obj = self.get(name)
            patch = change(obj)
            if patch is None:
                return False
            try:
                self.patch_spec(name, patch, obj["metadata"].get("resourceVersion"))
                return True
            except ApiException as exc:
                if exc.status != 409:
                    raise
        raise CliError(f'gpurental "{name}" kept changing; try again')

    def wait_gone(self, name: str, timeout: float) -> None:
        """Until GET answers 404 (finalizers done: the bill is settled into the wallet)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.get(name)
            except ApiException as exc:
                if exc.status == 404:
                    return
                raise
            time.sleep(GONE_POLL_SECONDS)
        raise CliError(f'timed out waiting for gpurental "{name}" to be deleted')
