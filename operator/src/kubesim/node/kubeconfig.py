"""Reading a kubeconfig's current context: server URL, TLS settings and credentials."""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass

import yaml

from .objects import Obj


@dataclass
class ClusterConfig:
    """What we need from a kubeconfig's current context."""

    server: str
    ssl: ssl.SSLContext | bool
    headers: dict[str, str]


def _named(entries: list[Obj] | None, name: str | None) -> Obj:
    for entry in entries or []:
        if entry.get("name") == name:
            return entry
    return {}


def load_kubeconfig(path: str | os.PathLike[str]) -> ClusterConfig:
    """Read the current context of a kubeconfig: server URL, TLS settings and credentials."""
    with open(path, encoding="utf-8") as fh:
        config = yaml.safe_load(fh) or {}
    context = _named(config.get("contexts"), config.get("current-context")).get("context") or {}
    contexts = config.get("contexts") or []
    if not context and contexts:
        context = contexts[0].get("context") or {}
    cluster = _named(config.get("clusters"), context.get("cluster")).get("cluster") or {}
    if not cluster and config.get("clusters"):
        cluster = config["clusters"][0].get("cluster") or {}
    user = _named(config.get("users"), context.get("user")).get("user") or {}
    server = str(cluster.get("server", "")).rstrip("/")
    if not server:
        raise ValueError(f"kubeconfig {path} has no server")
    headers = {"Authorization": f"Bearer {user['token']}"} if user.get("token") else {}
    tls: ssl.SSLContext | bool = False
    if server.startswith("https://"):
        tls = _ssl_context(cluster, user)
    return ClusterConfig(server=server, ssl=tls, headers=headers)


def _ssl_context(cluster: Obj, user: Obj) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if cluster.get("certificate-authority-data"):
        ctx.load_verify_locations(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    elif cluster.get("certificate-authority"):
        ctx.load_verify_locations(cafile=cluster["certificate-authority"])
    if cluster.get("insecure-skip-tls-verify"):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    cert, key = user.get("client-certificate-data"), user.get("client-key-data")
    if cert and key:
        # ssl only loads client certificates from files: write them out for the call.
        with tempfile.TemporaryDirectory() as tmp:
            cert_path, key_path = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
            for target, data in ((cert_path, cert), (key_path, key)):
                with open(target, "wb") as fh:
                    fh.write(base64.b64decode(data))
            ctx.load_cert_chain(cert_path, key_path)
    elif user.get("client-certificate") and user.get("client-key"):
        ctx.load_cert_chain(user["client-certificate"], user["client-key"])
    return ctx
