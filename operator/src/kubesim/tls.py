"""Optional HTTPS: a throwaway self-signed certificate made with the openssl CLI.

Over plain HTTP kubectl (client-go) does not send the kubeconfig's bearer token, so serving TLS
is what lets the per-request identity reach the hooks (hooks.py) for every client.
"""

from __future__ import annotations

import base64
import ssl
import subprocess
from pathlib import Path


def make_certificate(directory: Path, host: str) -> tuple[Path, Path]:
    """Write server.crt/server.key valid for `host`, localhost and 127.0.0.1."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "server.crt", directory / "server.key"
    names = {"DNS:localhost", "IP:127.0.0.1"}
    names.add(f"IP:{host}" if host.replace(".", "").isdigit() else f"DNS:{host}")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
         "-subj", "/CN=kubesim", "-keyout", str(key), "-out", str(cert),
         "-addext", "subjectAltName=" + ",".join(sorted(names)),
         "-addext", "basicConstraints=critical,CA:TRUE"],
        check=True, capture_output=True)
    return cert, key


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def ca_data(cert: Path) -> str:
    """The certificate as kubeconfig's `certificate-authority-data`."""
    return base64.b64encode(cert.read_bytes()).decode()
