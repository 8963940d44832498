"""The real control plane's request record: its audit log, parsed once, line by line.

The bench polls the record many times in a run whose log grows to hundreds of megabytes, so
`ControlPlane.audit_events` reads on from where its last call stopped; a line the API server is
still writing waits for the next call, and a new log (a restarted server) is read from its top.
No server is started: the log is written here as kube-apiserver writes it (one JSON per line).
"""

from __future__ import annotations

import json
from pathlib import Path

from gpurental_dev.k8s.controlplane import ControlPlane


def line(verb: str, uri: str, stage: str = "ResponseComplete") -> str:
    return json.dumps({
        "stage": stage, "verb": verb, "requestURI": uri, "user": {"username": "admin"},
        "responseStatus": {"code": 200}, "objectRef": {"resource": "pods"},
        "requestReceivedTimestamp": "2026-12-02T01:00:00.000001Z",
        "stageTimestamp": "2026-12-02T01:00:00.002000Z"}) + "\n"


def test_each_line_is_read_once_and_a_half_written_one_waits(tmp_path: Path) -> None:
    plane = ControlPlane(tmp_path)
    assert plane.audit_events() == []  # no log yet
    first, second = line("create", "/api/v1/pods/a"), line("delete", "/api/v1/pods/a")
    plane.audit_log.write_text(first + line("watch", "/w", stage="ResponseStarted")
                               + second[:40])
    assert [e.uri for e in plane.audit_events()] == ["/api/v1/pods/a"]
    with open(plane.audit_log, "a") as log:
        log.write(second[40:])
    events = plane.audit_events()
    assert [e.verb for e in events] == ["create", "delete"]
    assert events[1].code == 200 and events[1].resource == "pods"
    assert (events[1].completed - events[1].received).total_seconds() == 0.001999


def test_a_new_log_is_read_from_its_top(tmp_path: Path) -> None:
    plane = ControlPlane(tmp_path)
    plane.audit_log.write_text(line("create", "/a") + line("patch", "/b") + line("patch", "/c"))
    assert len(plane.audit_events()) == 3
    plane.audit_log.write_text(line("update", "/d"))  # the server restarted with a fresh log
    assert [e.verb for e in plane.audit_events()] == ["update"]
