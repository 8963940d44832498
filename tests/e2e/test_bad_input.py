"""Hostile input: a corpus of 60+ manifests and hypothesis-generated specs.

Every one is either refused at admission with the field named, or stored and explained by a
condition (the operator starts nothing), or - for strings that only look dangerous - run with
those strings carried verbatim into the pod. The operator process stays alive and healthy, and
never creates a pod for a spec it cannot run. Runs on the session operator, which has no
validating webhook: admission here is the CRD schema, the rest is the operator's.
"""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest
from e2e_support import GROUP, VERSION, Rentals, eventually
from hostile_manifests import CASES, KEY, Case
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes import client

from gpurental.models import RentalSpec, SpecError, parse_spec
from gpurental_dev.cluster import OperatorProcess

pytestmark = pytest.mark.e2e


def create(rentals: Rentals, name: str, spec: Any) -> client.ApiException | None:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "GpuRental",
            "metadata": {"name": name}, "spec": spec}
    if spec is None:
        del body["spec"]
    try:
        rentals.custom.create_namespaced_custom_object(GROUP, VERSION, rentals.namespace,
                                                       "gpurentals", body)
    except client.ApiException as exc:
        return exc
    return None


def healthy(operator: OperatorProcess) -> None:
    assert operator.process is not None and operator.process.poll() is None, "operator died"
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.port}/healthz", timeout=5) as rsp:
        assert rsp.status == 200


def pod_or_none(rentals: Rentals, name: str) -> client.V1Pod | None:
    try:
        return rentals.core.read_namespaced_pod(name, rentals.namespace)
    except client.ApiException as exc:
        assert exc.status == 404
        return None


def explained(rentals: Rentals, name: str, token: str) -> str:
    """The operator has judged this generation and a False condition names the token."""
    body = rentals.get(name)
    status = body.get("status") or {}
    assert status.get("observedGeneration") == body["metadata"]["generation"], "not judged yet"
    messages = [c.get("message") or "" for c in status.get("conditions") or []
                if c.get("status") == "False"]
    assert any(token in m for m in messages), f"{name}: no condition names {token!r}: {messages}"
    return next(m for m in messages if token in m)


def check_case(rentals: Rentals, name: str, case: Case) -> None:
    error = create(rentals, name, case.body_spec())
    if case.expect == "reject":
        assert error is not None, f"{case.id}: accepted, expected a rejection naming {case.field}"
        assert error.status in (400, 422), f"{case.id}: {error.status} {error.body}"
        assert case.field in (error.body or ""), f"{case.id}: {case.field} not in {error.body}"
        return
    assert error is None, f"{case.id}: rejected ({error.status}) {error.body}"


def check_landed(rentals: Rentals, name: str, case: Case) -> str:
    if case.expect == "condition":
        message = eventually(lambda: explained(rentals, name, case.field), timeout=30)
        assert pod_or_none(rentals, name) is None, f"{case.id}: a pod was created"
        return message
    rentals.wait_phase(name, "Running", timeout=60)
    pod = pod_or_none(rentals, name)
    assert pod is not None
    container = pod.spec.containers[0]
    spec = case.body_spec()
    if "command" in spec:
        assert container.command == spec["command"], "command not carried verbatim"
    if "args" in spec:
        assert container.args == spec["args"], "args not carried verbatim"
    if "sshKeys" in spec:
        secret = rentals.core.read_namespaced_secret(f"{name}-ssh", rentals.namespace)
        assert spec["sshKeys"][0] in repr(secret.data) or secret.data, "keys missing"
    privileged = [c.security_context and c.security_context.privileged
                  for c in pod.spec.containers]
    assert not any(privileged), "an unknown spec field made the pod privileged"
    return "Running"


def test_hostile_corpus_is_rejected_explained_or_carried_verbatim(
        rentals: Rentals, operator: OperatorProcess) -> None:
    assert len(CASES) >= 50
    names = {}
    for i, case in enumerate(CASES):
        name = case.name or f"h{i:02d}-{case.id}"[:60]
        check_case(rentals, name, case)
        if case.expect != "reject":
            names[name] = case
    outcomes = {case.id: check_landed(rentals, name, case) for name, case in names.items()}
    pods = {p.metadata.name for p in rentals.pods()}
    runs = {n for n, c in names.items() if c.expect == "runs"}
    assert pods <= runs, f"pods for specs that must not run: {pods - runs}"
    healthy(operator)
    for case_id, outcome in outcomes.items():
        print(f"{case_id}: {outcome}")


def test_a_stopped_rental_set_back_to_running_stays_stopped(
        rentals: Rentals, operator: OperatorProcess) -> None:
    rentals.create("lazarus", sshKeys=[KEY])
    rentals.wait_phase("lazarus", "Running")
    rentals.patch("lazarus", state="Stopped")
    rentals.wait_phase("lazarus", "Stopped")
    rentals.patch("lazarus", state="Running")
    eventually(lambda: explained(rentals, "lazarus", "never runs again"), timeout=30)
    assert rentals.status("lazarus")["phase"] == "Stopped"
    # The pod's graceful deletion and the claim's protection finalizer take their own time.
    eventually(lambda: pod_or_none(rentals, "lazarus") is None and not rentals.pvcs(),
               timeout=60)
    healthy(operator)


# --- generated specs --------------------------------------------------------------------------

junk = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False),
                 st.text(max_size=40), st.lists(st.text(max_size=8), max_size=3))
FIELDS = {
    "offer": st.one_of(st.sampled_from(["rtx4090", "nope", "rt\u0445" + "4090", "pricey"]), junk),
    "image": st.one_of(st.sampled_from(["busybox:1.36", "busybox;id", "a" * 600]), junk),
    "gpus": st.one_of(st.integers(-3, 2000), junk),
    "state": st.one_of(st.sampled_from(["Running", "Paused", "Stopped", "running", ""]), junk),
    "duration": st.one_of(st.sampled_from(["1h", "0s", "0h0m", "90m", "1h30m", "-1h", "1d"]),
                          st.text(alphabet="0123456789hms.-d ", max_size=8), junk),
    "storage": st.one_of(st.fixed_dictionaries({"size": st.one_of(
        st.sampled_from(["1Gi", "0Gi", "50GB", "1Ti", "999999Ti"]), st.text(max_size=6))}),
        junk),
    "wallet": st.one_of(st.sampled_from(["ghost", "default\u200b", ""]), junk),
    "sshKeys": st.one_of(st.lists(st.one_of(st.just(KEY), st.text(max_size=30)), max_size=2),
                         junk),
    "command": st.one_of(st.lists(st.text(max_size=20), max_size=3), junk),
    "onExpiry": st.one_of(st.sampled_from(["Pause", "Stop", "Explode"]), junk),
}
# A valid spec with one or two fields made hostile: most examples get past the schema to the
# operator, where the interesting failures are.
specs = st.builds(
    lambda base, changes: {**base, **changes},
    st.just({"offer": "rtx4090", "image": "busybox:1.36", "storage": {"size": "1Gi"}}),
    st.dictionaries(st.sampled_from(sorted(FIELDS)), st.none(), min_size=1, max_size=2).flatmap(
        lambda keys: st.fixed_dictionaries({k: FIELDS[k] for k in keys})))


def operator_may_run(spec: dict[str, Any]) -> bool:
    """What the operator's own parser accepts; anything else must never get a pod."""
    try:
        parse_spec(RentalSpec, spec)
    except SpecError:
        return False
    return True


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec=specs)
def test_generated_specs_never_crash_the_operator_or_run_invalid(
        rentals: Rentals, operator: OperatorProcess, spec: dict[str, Any]) -> None:
    name = "gen"
    error = create(rentals, name, spec)
    if error is not None:
        assert error.status in (400, 422), error.body
        assert "spec" in (error.body or ""), f"rejection names no field: {error.body}"
        return
    try:
        def judged() -> dict[str, Any]:
            body = rentals.get(name)
            status = body.get("status") or {}
            assert status.get("observedGeneration") == body["metadata"]["generation"]
            return status
        status = eventually(judged, timeout=30)
        stored = rentals.get(name)["spec"]  # after the schema's defaults and pruning
        if not operator_may_run(stored):
            assert pod_or_none(rentals, name) is None, f"pod from invalid spec {stored}"
            messages = [c.get("message", "") for c in status.get("conditions") or []]
            assert any("spec." in m for m in messages), f"no field named: {messages}"
        healthy(operator)
    finally:
        rentals.delete(name)
        eventually(lambda: _gone(rentals, name), timeout=60)


def _gone(rentals: Rentals, name: str) -> bool:
    try:
        rentals.get(name)
    except client.ApiException as exc:
        return exc.status == 404
    return False
