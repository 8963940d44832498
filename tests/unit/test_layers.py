"""Every operator module sits in one of the layers the import-linter contract orders, so a
new module cannot escape `make lint`'s one-way-dependency check by being left out."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "src" / "gpurental"


def _layers() -> list[list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    (layers,) = [c["layers"] for c in contracts if c["type"] == "layers"]
    return [[m.strip() for m in re.split(r"[|:]", layer)] for layer in layers]


def _top_level_modules() -> set[str]:
    found = {f"gpurental.{p.stem}" for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    found |= {f"gpurental.{p.parent.name}" for p in PACKAGE.glob("*/__init__.py")}
    return found


def test_every_module_is_in_exactly_one_layer() -> None:
    placed = [module for layer in _layers() for module in layer]
    assert len(placed) == len(set(placed)), "a module is named in two layers"
    assert _top_level_modules() == set(placed)
