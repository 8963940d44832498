"""Fault injection and the request record (both off by default), via /_kubesim/ endpoints.

Each test runs its own emulator so that injected faults never leak into other tests.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from kubesim.launch import Emulator, start_emulator


@pytest.fixture
def emu(tmp_path):
    with start_emulator(tmp_path) as emulator:
        yield emulator


def _cm(emu: Emulator, name: str) -> requests.Response:
    return requests.post(f"{emu.url}/api/v1/namespaces/default/configmaps",
                         json={"metadata": {"name": name}}, timeout=30)


def test_record_is_off_by_default_then_records(emu):
    _cm(emu, "before")
    assert requests.get(f"{emu.url}/_kubesim/requests", timeout=30).json() == {
        "enabled": False, "requests": []}
    requests.post(f"{emu.url}/_kubesim/requests", json={"enabled": True}, timeout=30)
    t0 = time.time()
    _cm(emu, "after")
    entries = requests.get(f"{emu.url}/_kubesim/requests", timeout=30).json()["requests"]
    mine = [e for e in entries if e["path"].endswith("/configmaps")]
    assert len(mine) == 1
    entry = mine[0]
    assert entry["method"] == "POST" and entry["status"] == 201 and entry["verb"] == "create"
    assert isinstance(entry["timestamp"], float) and t0 - 1 <= entry["timestamp"] <= time.time()
    requests.delete(f"{emu.url}/_kubesim/requests", timeout=30)
    assert requests.get(f"{emu.url}/_kubesim/requests", timeout=30).json()["requests"] == []


def test_error_fault_with_retry_after(emu):
    requests.post(f"{emu.url}/_kubesim/faults", timeout=30, json={
        "verb": "create", "resource": "configmaps", "code": 429, "retry_after": 2, "count": 1})
    first = _cm(emu, "x")
    assert first.status_code == 429
    assert first.headers["Retry-After"] == "2"
    assert first.json()["reason"] == "TooManyRequests"
    assert _cm(emu, "x").status_code == 201  # count exhausted


def test_fault_rate_and_clear(emu):
    requests.post(f"{emu.url}/_kubesim/faults", json={"verb": "*", "resource": "configmaps",
                                                      "code": 500, "rate": 1.0}, timeout=30)
    assert _cm(emu, "y").status_code == 500
    assert requests.get(f"{emu.url}/api/v1/namespaces", timeout=30).status_code == 200
    requests.delete(f"{emu.url}/_kubesim/faults", timeout=30)
    assert _cm(emu, "y").status_code == 201


def test_latency_fault(emu):
    requests.post(f"{emu.url}/_kubesim/faults", json={"verb": "get", "latency_ms": 300},
                  timeout=30)
    _cm(emu, "slow")
    started = time.monotonic()
    assert requests.get(f"{emu.url}/api/v1/namespaces/default/configmaps/slow",
                        timeout=30).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_response_latency_fault_applies_the_write_before_answering(emu):
    requests.post(f"{emu.url}/_kubesim/faults", json={"verb": "create", "resource": "configmaps",
                                                      "response_latency_ms": 1500, "count": 1},
                  timeout=30)
    seen: list[int] = []

    def watch_for_it() -> None:
        seen.append(_wait_exists(emu, "late", timeout=10))

    watcher = threading.Thread(target=watch_for_it)
    started = time.monotonic()
    watcher.start()
    assert _cm(emu, "late").status_code == 201
    answered = time.monotonic() - started
    watcher.join()
    assert answered >= 1.5
    # the object existed well before its creator heard back
    assert seen and seen[0] < answered - 0.3, (seen, answered)
    started = time.monotonic()
    assert _cm(emu, "late2").status_code == 201
    # count 1: the next create is answered without the 1.5 s the fault held the first
    assert time.monotonic() - started < 1.5


def _wait_exists(emu, name: str, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if requests.get(f"{emu.url}/api/v1/namespaces/default/configmaps/{name}",
                        timeout=30).status_code == 200:
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"configmap {name} never appeared")


def test_watch_dropped_with_410(emu):
    _cm(emu, "w1")
    requests.post(f"{emu.url}/_kubesim/faults", json={"verb": "watch", "watch": "gone",
                                                      "after_events": 1}, timeout=30)
    rsp = requests.get(f"{emu.url}/api/v1/namespaces/default/configmaps",
                       params={"watch": "true", "timeoutSeconds": "20",
                               "fieldSelector": "metadata.name=w1"}, stream=True, timeout=30)
    lines = [json.loads(line) for line in rsp.iter_lines() if line]
    assert [e["type"] for e in lines] == ["ADDED", "ERROR"]
    assert lines[1]["object"]["code"] == 410


def test_watch_dropped_silently(emu):
    requests.post(f"{emu.url}/_kubesim/faults", json={"verb": "watch", "watch": "drop"},
                  timeout=30)
    started = time.monotonic()
    rsp = requests.get(f"{emu.url}/api/v1/namespaces/default/configmaps",
                       params={"watch": "true", "timeoutSeconds": "20",
                               "resourceVersion": "1"}, stream=True, timeout=30)
    assert [line for line in rsp.iter_lines() if line] == []
    assert time.monotonic() - started < 15


def test_stats(emu):
    stats = requests.get(f"{emu.url}/_kubesim/stats", timeout=30).json()
    assert stats["objects"] >= 2 and stats["rssBytes"] > 0


def test_fault_flag_on_command_line(tmp_path):
    rule = json.dumps({"verb": "list", "resource": "secrets", "code": 503})
    with start_emulator(tmp_path, extra_args=("--fault", rule)) as emulator:
        rsp = requests.get(f"{emulator.url}/api/v1/secrets", timeout=30)
        assert rsp.status_code == 503


def test_tls_lets_kubectl_authenticate(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from kubernetes import client, config

    with start_emulator(tmp_path, extra_args=("--tls",)) as emulator:
        assert emulator.url.startswith("https://")
        api = config.new_client_from_config(config_file=str(emulator.kubeconfig))
        assert client.CoreV1Api(api).read_namespace("default").metadata.name == "default"
        api.close()
        admin = emulator.url + "/_kubesim/requests"
        ca = tmp_path / "kubesim-tls" / "server.crt"
        requests.post(admin, json={"enabled": True}, verify=str(ca), timeout=30)
        kubectl = Path(sys.executable).parent / "kubectl"
        subprocess.run([str(kubectl), f"--kubeconfig={emulator.kubeconfig}",
                        f"--cache-dir={tmp_path / 'cache'}", "get", "ns", "default"],
                       check=True, capture_output=True, timeout=60)
        entries = requests.get(admin, verify=str(ca), timeout=30).json()["requests"]
        users = {e["user"] for e in entries if e["path"] == "/api/v1/namespaces/default"}
        assert users == {"kubesim-admin"}
