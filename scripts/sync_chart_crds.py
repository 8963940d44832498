#!/usr/bin/env python3
"""Copies the CRDs of crds/ into the chart as templates (templates/crds/ of the chart),
gated by `crds.enabled` and kept on uninstall (`crds.keep`), as cert-manager does.

crds/ stays the one source (`kubectl apply -f crds/` installs the same thing); run this after
changing it. tests/platform/test_chart.py fails while the chart's copies are stale.

    python scripts/sync_chart_crds.py          # write
    python scripts/sync_chart_crds.py --check  # exit 1 if stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "crds"
TARGET = REPO / "charts" / "gpu-rental-operator" / "templates" / "crds"

HEADER = """\
{{{{- if .Values.crds.enabled }}}}
# Generated from crds/{source} by scripts/sync_chart_crds.py: edit crds/{source}, not this file.
apiVersion: {api_version}
kind: CustomResourceDefinition
metadata:
  name: {name}
  labels:
    {{{{- include "gpu-rental-operator.labels" . | nindent 4 }}}}
  {{{{- if .Values.crds.keep }}}}
  annotations:
    helm.sh/resource-policy: keep
  {{{{- end }}}}
"""


class _Dumper(yaml.SafeDumper):
    """Block style, keys in source order, long strings unwrapped."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(source: Path) -> str:
    docs = [d for d in yaml.safe_load_all(source.read_text()) if d]
    if len(docs) != 1 or docs[0].get("kind") != "CustomResourceDefinition":
        raise SystemExit(f"{source}: expected exactly one CustomResourceDefinition")
    crd = docs[0]
    extra_metadata = set(crd["metadata"]) - {"name", "labels", "annotations"}
    if extra_metadata or crd["metadata"].get("annotations"):
        raise SystemExit(f"{source}: metadata other than name and labels is not carried over")
    body = yaml.dump(
        {"spec": crd["spec"]}, Dumper=_Dumper, sort_keys=False, width=10**6,
        default_flow_style=False, allow_unicode=True,
    )
    if "{{" in body or "}}" in body:
        raise SystemExit(f"{source}: '{{{{' would be read as a Helm template")
    header = HEADER.format(
        source=source.name, api_version=crd["apiVersion"], name=crd["metadata"]["name"]
    )
    return header + body + "{{- end }}\n"


def expected() -> dict[Path, str]:
    return {TARGET / src.name: render(src) for src in sorted(SOURCE.glob("*.yaml"))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    wanted = expected()
    present = set(TARGET.glob("*.yaml"))
    if args.check:
        stale = [p for p, text in wanted.items() if not p.exists() or p.read_text() != text]
        stale += sorted(present - set(wanted))
        for path in stale:
            print(f"{path.relative_to(REPO)} is stale: run python scripts/sync_chart_crds.py",
                  file=sys.stderr)
        return 1 if stale else 0
    TARGET.mkdir(parents=True, exist_ok=True)
    for path in present - set(wanted):
        path.unlink()
    for path, text in wanted.items():
        path.write_text(text)
        print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
