"""The control plane's one binary: built from `testbed/` with Go, cached by what it is built from.

The cache key hashes the module's go.mod, go.sum, Go sources, the build flags and the Go
version, so a second build (another `make test`, CI on the same machine) links nothing. The
result lives outside the work tree (`$GPURENTAL_CACHE`, else `$XDG_CACHE_HOME` or ~/.cache),
next to Go's own module and build caches.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
MODULE = ROOT / "testbed"
NAME = "k8s-testbed"

# The version the module pins (go.mod); /version reports it through the -X flags below.
KUBERNETES_VERSION = "v1.37.2"
_MAJOR, _MINOR = KUBERNETES_VERSION.lstrip("v").split(".")[:2]
_X = "k8s.io/component-base/version"
LDFLAGS = " ".join([
    "-s", "-w",
    f"-X {_X}.gitVersion={KUBERNETES_VERSION}", f"-X {_X}.gitMajor={_MAJOR}",
    f"-X {_X}.gitMinor={_MINOR}", f"-X {_X}.gitTreeState=clean",
])
# Upstream's tags for these binaries (hack/lib/golang.sh).
TAGS = "selinux,notest,grpcnotrace"


@dataclass(frozen=True)
class Built:
    path: Path
    cached: bool
    seconds: float


def cache_root() -> Path:
    explicit = os.environ.get("GPURENTAL_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gpu-rental-operator"


def go() -> str:
    """The Go toolchain: on PATH, else where the machine image installs it."""
    found = shutil.which("go") or ("/usr/local/go/bin/go"
                                   if Path("/usr/local/go/bin/go").exists() else None)
    if found is None:
        raise RuntimeError("Go is required to build the Kubernetes control plane (testbed/)")
    return found


def _go_version() -> str:
    result = subprocess.run([go(), "env", "GOVERSION"], capture_output=True, text=True,
                            check=True)
    return result.stdout.strip()


def cache_key() -> str:
    digest = hashlib.sha256()
    for path in sorted([MODULE / "go.mod", MODULE / "go.sum", *MODULE.glob("*.go")]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(f"{LDFLAGS}\0{TAGS}\0{_go_version()}".encode())
    return digest.hexdigest()[:20]


def binary_path() -> Path:
    return cache_root() / "testbed" / cache_key() / NAME


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """One builder at a time (make test and make demo may race on a fresh machine)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_binary(log: bool = True) -> Built:
    """The cached binary, building it first when this go.sum has none yet."""
    target = binary_path()
    if target.exists():
        return Built(target, cached=True, seconds=0.0)
    with _lock(target.parent.parent / ".build.lock"):
        if target.exists():
            return Built(target, cached=True, seconds=0.0)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        cmd = [go(), "build", "-trimpath", "-buildvcs=false", "-tags", TAGS,
               "-ldflags", LDFLAGS, "-o", str(partial), "."]
        env = {**os.environ, "CGO_ENABLED": "0"}
        if log:
            print(f"k8s: building {NAME} ({KUBERNETES_VERSION}) into {target.parent}; "
                  "a cold build takes minutes", file=sys.stderr, flush=True)
        started = time.monotonic()
        subprocess.run(cmd, cwd=MODULE, env=env, check=True)
        partial.rename(target)  # atomic: a reader never sees half a binary
        return Built(target, cached=False, seconds=time.monotonic() - started)
