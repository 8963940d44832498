"""The server as real kubectl exercises it: apply with server-side field validation (no
--validate=false), Table output with printer columns, short names and categories, watch."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

WIDGET = """\
apiVersion: kubesim.test/v1
kind: Widget
metadata: {name: %s}
spec: {size: %d}
"""


def test_apply_get_patch_delete(kubectl, namespace, widget_crd):
    out = kubectl("apply", "-n", namespace, "-f", "-", input=WIDGET % ("k1", 3)).stdout
    assert out == "widget.kubesim.test/k1 created\n"
    again = kubectl("apply", "-n", namespace, "-f", "-", input=WIDGET % ("k1", 3)).stdout
    assert again == "widget.kubesim.test/k1 unchanged\n"
    table = kubectl("get", "wd", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "SIZE", "PHASE", "AGE"]
    assert table[1].split()[:2] == ["k1", "3"]
    assert "k1" in kubectl("get", "gadgets", "-n", namespace).stdout  # category
    assert "k1" in kubectl("get", "widget", "-n", namespace).stdout  # singular
    kubectl("patch", "wd", "k1", "-n", namespace, "--type", "merge", "-p",
            '{"spec":{"size":5}}')
    got = json.loads(kubectl("get", "wd", "k1", "-n", namespace, "-o", "json").stdout)
    assert got["spec"] == {"size": 5, "color": "red"} and got["metadata"]["generation"] == 2
    out = kubectl("delete", "wd", "k1", "-n", namespace).stdout
    assert out.startswith('widget.kubesim.test "k1" deleted')
    assert kubectl("get", "wd", "k1", "-n", namespace, check=False).returncode != 0


def test_apply_reports_schema_errors_from_the_server(kubectl, namespace, widget_crd):
    result = kubectl("apply", "-n", namespace, "-f", "-", input=WIDGET % ("bad", 0),
                     check=False)
    assert result.returncode != 0
    assert ('The Widget "bad" is invalid: spec.size: Invalid value: 0: spec.size in body '
            "should be greater than or equal to 1") in result.stderr


def test_apply_rejects_unknown_fields_server_side(kubectl, namespace, widget_crd):
    manifest = WIDGET.replace("spec: {size: %d}", "spec: {size: %d, bogus: 1}") % ("u", 1)
    result = kubectl("apply", "-n", namespace, "-f", "-", check=False, input=manifest)
    assert result.returncode != 0
    assert 'unknown field "spec.bogus"' in result.stderr


def test_get_watch_streams_rows(kubectl, kubeconfig, namespace, widget_crd, tmp_path):
    kubectl("apply", "-n", namespace, "-f", "-", input=WIDGET % ("w", 1))
    kubectl_bin = Path(sys.executable).parent / "kubectl"
    proc = subprocess.Popen([str(kubectl_bin), f"--kubeconfig={kubeconfig}",
                             f"--cache-dir={tmp_path}", "get", "wd", "-n", namespace, "-w",
                             "--request-timeout=30s"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        header = proc.stdout.readline()
        assert header.split() == ["NAME", "SIZE", "PHASE", "AGE"]
        assert proc.stdout.readline().split()[:2] == ["w", "1"]
        deadline = time.monotonic() + 30
        kubectl("patch", "wd", "w", "-n", namespace, "--type", "merge", "-p",
                '{"spec":{"size":7}}')
        line = proc.stdout.readline()
        assert line.split()[:2] == ["w", "7"] and time.monotonic() < deadline
    finally:
        proc.kill()
        proc.wait()
