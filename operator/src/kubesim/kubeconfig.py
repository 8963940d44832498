"""Writing the kubeconfig that points clients at a running emulator."""

from __future__ import annotations

from pathlib import Path

import yaml

from .hooks import ADMIN_TOKEN


def write_kubeconfig(path: Path, url: str, namespace: str = "default",
                     ca_data: str | None = None) -> None:
    cluster: dict[str, str] = {"server": url}
    if ca_data:
        cluster["certificate-authority-data"] = ca_data
    config = {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": "kubesim", "cluster": cluster}],
        "users": [{"name": "kubesim-admin", "user": {"token": ADMIN_TOKEN}}],
        "contexts": [{"name": "kubesim", "context": {
            "cluster": "kubesim", "user": "kubesim-admin", "namespace": namespace}}],
        "current-context": "kubesim",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
