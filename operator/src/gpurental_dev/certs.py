"""Throwaway TLS material for tests and demos: a CA and a serving certificate it signed.

Made with the openssl CLI (as kubesim.tls does), written with the file names a cert-manager
Secret of type kubernetes.io/tls mounts: ca.crt, tls.crt, tls.key. Never for production use.
"""

from __future__ import annotations

import base64
import subprocess
from dataclasses import dataclass
from pathlib import Path

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class ServingCert:
    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def cert(self) -> Path:
        return self.directory / "tls.crt"

    @property
    def key(self) -> Path:
        return self.directory / "tls.key"

    @property
    def ca_bundle(self) -> str:
        """The CA as a webhook's clientConfig.caBundle (base64 of the PEM)."""
        return base64.b64encode(self.ca.read_bytes()).decode()


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_serving_cert(directory: Path, dns_names: tuple[str, ...] = ("localhost",),
                      ips: tuple[str, ...] = ("127.0.0.1",)) -> ServingCert:
    """A fresh CA, and a serverAuth certificate for the names and IPs, signed by it."""
    directory.mkdir(parents=True, exist_ok=True)
    out = ServingCert(directory)
    ca_key = directory / "ca.key"
    _openssl("req", "-x509", *_EC, "-days", "2", "-subj", "/CN=gpurental-test-ca",
             "-keyout", str(ca_key), "-out", str(out.ca),
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    csr = directory / "tls.csr"
    _openssl("req", *_EC, "-subj", f"/CN={dns_names[0] if dns_names else ips[0]}",
             "-keyout", str(out.key), "-out", str(csr))
    names = [f"DNS:{n}" for n in dns_names] + [f"IP:{ip}" for ip in ips]
    ext = directory / "tls.ext"
    ext.write_text(f"subjectAltName={','.join(names)}\nextendedKeyUsage=serverAuth\n"
                   "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                   "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(out.ca), "-CAkey", str(ca_key),
             "-CAcreateserial", "-days", "2", "-out", str(out.cert), "-extfile", str(ext))
    return out
