"""Helpers for end-to-end tests: waiting on conditions, reading rentals through the API."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import client

GROUP, VERSION = "gpurental.dev", "v1alpha1"
T = TypeVar("T")


def eventually(check: Callable[[], T], timeout: float = 60.0, interval: float = 0.1) -> T:
    """Retry `check` until it neither raises AssertionError nor returns False."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result is not False:
                return result
            error: Exception = AssertionError(f"{check} returned {result!r}")
        except AssertionError as exc:
            error = exc
        if time.monotonic() > deadline:
            raise error
        time.sleep(interval)


def eventually_found(check: Callable[[], T | None], timeout: float = 60.0,
                     interval: float = 0.1) -> T:
    """`eventually`, None meaning "not there yet" (a 404 read as None, a field not set):
    plain `eventually` takes None as a pass, so a read that finds nothing would return at
    once."""
    def found() -> T:
        value = check()
        assert value is not None, f"{check}: nothing yet"
        return value
    return eventually(found, timeout=timeout, interval=interval)


class Rentals:
    """Read and write GpuRentals of one namespace through the API."""

    def __init__(self, custom: client.CustomObjectsApi, core: client.CoreV1Api,
                 namespace: str) -> None:
        self.custom, self.core, self.namespace = custom, core, namespace

    def create(self, name: str, **spec: Any) -> dict[str, Any]:
        spec.setdefault("offer", "rtx4090")
        spec.setdefault("image", "busybox:1.36")
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "GpuRental",
                "metadata": {"name": name}, "spec": spec}
        return dict(self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "gpurentals", body))

    def get(self, name: str) -> dict[str, Any]:
        return dict(self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "gpurentals", name))

    def patch(self, name: str, **spec: Any) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "gpurentals", name, {"spec": spec},
            _content_type="application/merge-patch+json")

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace,
                                                    "gpurentals", name)

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).get("status") or {})

    def wait_phase(self, name: str, phase: str, timeout: float = 60.0) -> dict[str, Any]:
        def check() -> dict[str, Any]:
            status = self.status(name)
            assert status.get("phase") == phase, f"{name}: {status.get('phase')} != {phase}"
            return status
        return eventually(check, timeout)

    def condition(self, name: str, type_: str) -> dict[str, Any] | None:
        conditions = self.status(name).get("conditions") or []
        return next((c for c in conditions if c["type"] == type_), None)

    def pods(self) -> list[client.V1Pod]:
        return list(self.core.list_namespaced_pod(self.namespace).items)

    def pvcs(self) -> list[client.V1PersistentVolumeClaim]:
        return list(self.core.list_namespaced_persistent_volume_claim(self.namespace).items)

    def events(self, name: str) -> list[client.CoreV1Event]:
        return list(self.core.list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={name}").items)

    def event_reasons(self, name: str) -> list[str]:
        return [e.reason for e in self.events(name)
                if e.involved_object.kind == "GpuRental"]

    def await_events(self, name: str, *reasons: str, timeout: float = 30.0) -> None:
        """Wait until the rental has an Event of each reason. Events are posted after the
        status write that records the transition, from a queue (kopf's poster, as client-go's
        broadcaster does), so a test that saw the status may not see its Event yet."""
        def posted() -> None:
            missing = set(reasons) - set(self.event_reasons(name))
            assert not missing, f"no {sorted(missing)} Event on {name}"
        eventually(posted, timeout=timeout)
