#!/usr/bin/env python3
"""Writes examples/gitops/argocd-cm-patch.yaml from the chart's Argo CD health checks
(charts/gpu-rental-operator/health/*.lua), so the Lua has one source.

    python scripts/sync_gitops_example.py          # write
    python scripts/sync_gitops_example.py --check  # exit 1 if stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEALTH = REPO / "charts" / "gpu-rental-operator" / "health"
OUTPUT = REPO / "examples" / "gitops" / "argocd-cm-patch.yaml"
SCRIPTS = {"GpuRental": "gpurental.lua", "Wallet": "wallet.lua", "GpuOffer": "gpuoffer.lua"}

HEADER = """\
# Argo CD health checks for gpu-rental-operator's kinds, as a patch of argocd-cm.
# Generated from charts/gpu-rental-operator/health/*.lua by scripts/sync_gitops_example.py.
#
#   kubectl -n argocd patch configmap argocd-cm --patch-file argocd-cm-patch.yaml
# or, with Argo CD installed by its Helm chart, put the same keys under configs.cm.
#
# GpuRental: Running -> Healthy; Pending/Provisioning -> Progressing (Degraded if not Accepted);
# Paused -> Suspended; Stopped -> Healthy if spec.state is Stopped, else Degraded;
# Failed -> Degraded. Wallet: exhausted -> Degraded. Everything waits for observedGeneration.
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
  labels:
    app.kubernetes.io/name: argocd-cm
    app.kubernetes.io/part-of: argocd
data:
"""


def render() -> str:
    out = [HEADER]
    for kind, script in SCRIPTS.items():
        lua = (HEALTH / script).read_text()
        out.append(f"  resource.customizations.health.gpurental.dev_{kind}: |\n")
        out.extend(f"    {line}\n" if line else "\n" for line in lua.splitlines())
    return "".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT} is stale: run python {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
