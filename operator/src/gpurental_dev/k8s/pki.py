"""The control plane's keys and certificates, made with the openssl CLI (as `certs` does).

One CA signs the API server's serving certificate and every client certificate; the API server
trusts it as `--client-ca-file`, so a client certificate's CN is the user and each O a group
(O=system:masters for the admin). Service-account tokens are signed with a key pair of their
own. Throwaway material for a test cluster on loopback: never for production.
"""

from __future__ import annotations

import base64
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
_DAYS = "3"
# The names the in-cluster `kubernetes` Service answers to, and its ClusterIP (the first
# address of the service CIDR the launcher gives the API server).
SERVING_DNS = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
               "kubernetes.default.svc.cluster.local")
SERVING_IPS = ("127.0.0.1", "10.0.0.1")


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


class Pki:
    """Everything under one directory; each item is made once and reused on a second call."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ca = self._ca()
        self.serving = self._signed("apiserver", "/CN=kube-apiserver", "serverAuth",
                                    [f"DNS:{n}" for n in SERVING_DNS]
                                    + [f"IP:{ip}" for ip in SERVING_IPS])
        self.service_account_key, self.service_account_pub = self._service_account_keys()

    def _ca(self) -> KeyPair:
        pair = KeyPair(self.directory / "ca.crt", self.directory / "ca.key")
        if not pair.cert.exists():
            _openssl("req", "-x509", *_EC, "-days", _DAYS, "-subj", "/CN=gpurental-testbed-ca",
                     "-keyout", str(pair.key), "-out", str(pair.cert),
                     "-addext", "basicConstraints=critical,CA:TRUE",
                     "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return pair

    def _signed(self, name: str, subject: str, usage: str, san: list[str]) -> KeyPair:
        pair = KeyPair(self.directory / f"{name}.crt", self.directory / f"{name}.key")
        if pair.cert.exists():
            return pair
        csr, ext = self.directory / f"{name}.csr", self.directory / f"{name}.ext"
        _openssl("req", *_EC, "-subj", subject, "-keyout", str(pair.key), "-out", str(csr))
        lines = [f"extendedKeyUsage={usage}", "basicConstraints=CA:FALSE",
                 "keyUsage=critical,digitalSignature", "authorityKeyIdentifier=keyid",
                 "subjectKeyIdentifier=hash"]
        if san:
            lines.insert(0, f"subjectAltName={','.join(san)}")
        ext.write_text("\n".join(lines) + "\n")
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.ca.cert),
                 "-CAkey", str(self.ca.key), "-CAcreateserial", "-days", _DAYS,
                 "-out", str(pair.cert), "-extfile", str(ext))
        return pair

    def _service_account_keys(self) -> tuple[Path, Path]:
        key, pub = self.directory / "sa.key", self.directory / "sa.pub"
        if not key.exists():
            _openssl("genrsa", "-out", str(key), "2048")
            _openssl("rsa", "-in", str(key), "-pubout", "-out", str(pub))
        return key, pub

    def client(self, user: str, groups: tuple[str, ...] = ()) -> KeyPair:
        """A client certificate the API server reads as `user` in `groups`."""
        if not re.fullmatch(r"[A-Za-z0-9:._@-]+", user) or any(
                not re.fullmatch(r"[A-Za-z0-9:._-]+", g) for g in groups):
            raise ValueError(f"unsupported characters in user {user!r} or groups {groups!r}")
        subject = "".join(f"/O={g}" for g in groups) + f"/CN={user}"
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", user)
        return self._signed(f"client-{safe}", subject, "clientAuth", [])


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(path: Path, server: str, ca: Path, *, cert: KeyPair | None = None,
                     token: str | None = None, name: str = "testbed",
                     namespace: str = "default") -> Path:
    """A kubeconfig with everything embedded (it stays valid if the PKI folder moves)."""
    user: dict[str, str] = {}
    if cert is not None:
        user = {"client-certificate-data": _b64(cert.cert), "client-key-data": _b64(cert.key)}
    if token is not None:
        user["token"] = token
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": name,
        "clusters": [{"name": name, "cluster": {"server": server,
                                                 "certificate-authority-data": _b64(ca)}}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name,
                                                 "namespace": namespace}}],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path
