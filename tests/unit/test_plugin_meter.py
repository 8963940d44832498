"""The plugin's pure parts: the seed's meter JSON, KPIs, status filters, extend, SSH keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpurental import durations
from gpurental import meter as operator_meter
from gpurental.clock import format_ts
from gpurental.plugin import meter

NOW = datetime(2026, 6, 7, 8, 42, 11, tzinfo=UTC)
KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC4ubC1PydZsVJkxkvokH0wOHgnNygeSpr1TU21sFtZx "
       "alice@laptop")
KEY_FP = "SHA256:o8aD/BT4ogy/ml1/wKUKQ3Qd46d11qjj2VTHrspS6gE"  # ssh-keygen -lf


def rental(phase: str | None = "Running", uid: str = "u-1", ns: str = "team-a",
           **status: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": "r", "namespace": ns, "uid": uid},
                           "spec": {"offer": "rtx4090"}}
    if phase is not None:
        obj["status"] = {"phase": phase, **status}
    return obj


def reference_cents(seconds: int, rate: Decimal) -> int:
    exact = Decimal(seconds) * rate * 100 / 3600
    return int(exact.quantize(Decimal(1), ROUND_HALF_UP))


# --- the meter -----------------------------------------------------------------------------------

def test_seed_sample_is_reproduced() -> None:
    obj = rental(ratePerHour="2.80", accruedSeconds=4827, secondsBilled=4827,
                 lastHeartbeatAt="2026-06-07T08:42:11Z")
    obj["metadata"]["uid"] = "rent_01H"
    text = meter.meter_json(meter.meter_document(obj, NOW))
    assert text == ('{\n  "rentalId": "rent_01H",\n  "ratePerHour": 2.80,\n'
                    '  "secondsBilled": 4827,\n  "currentChargeCents": 375,\n'
                    '  "lastHeartbeatAt": "2026-06-07T08:42:11Z"\n}')


def test_live_seconds_add_the_open_segment() -> None:
    since = format_ts(NOW - timedelta(seconds=90))
    now = NOW + timedelta(microseconds=999_999)  # whole seconds only
    status: dict[str, Any] = {"accruedSeconds": 100, "runningSince": since, "secondsBilled": 150,
              "ratePerHour": "0.69"}
    assert meter.live_seconds(status, now) == 190
    doc = meter.meter_document(rental(**status), now)
    assert doc["secondsBilled"] == 190
    assert doc["currentChargeCents"] == reference_cents(190, Decimal("0.69"))
    frozen = meter.meter_document(rental(**status, currentChargeCents=3), NOW, live=False)
    assert (frozen["secondsBilled"], frozen["currentChargeCents"]) == (150, 3)


def test_live_seconds_never_below_what_the_operator_wrote() -> None:
    ahead = format_ts(NOW + timedelta(seconds=30))  # the kubelet's clock is ahead of ours
    assert meter.live_seconds({"accruedSeconds": 10, "runningSince": ahead,
                               "secondsBilled": 12}, NOW) == 12
    assert meter.live_seconds({}, NOW) == 0


def test_a_rental_not_started_has_a_null_rate_and_no_charge() -> None:
    doc = meter.meter_document(rental(phase=None), NOW)
    assert doc == {"rentalId": "u-1", "ratePerHour": None, "secondsBilled": 0,
                   "currentChargeCents": 0, "lastHeartbeatAt": None}
    assert '"ratePerHour": null' in meter.meter_json(doc)


rates = st.decimals(min_value=0, max_value=Decimal("999999999.999999"), places=6,
                    allow_nan=False, allow_infinity=False)
rate_texts = st.from_regex(r"\A[0-9]{1,9}(\.[0-9]{1,6})?\Z")


@given(rate_texts)
def test_rate_text_round_trips_exactly_through_the_json(text: str) -> None:
    obj = rental(ratePerHour=text, accruedSeconds=1)
    raw = meter.meter_json(meter.meter_document(obj, NOW))
    parsed = json.loads(raw, parse_float=Decimal, parse_int=Decimal)
    assert parsed["ratePerHour"] == Decimal(text)
    token = raw.split('"ratePerHour": ')[1].split(",")[0]
    assert token == format(Decimal(text), "f")  # trailing zeros kept: 2.80 stays 2.80
    assert Decimal(token).as_tuple() == Decimal(text).as_tuple()


@given(st.integers(min_value=0, max_value=10 * 365 * 24 * 3600), rates)
def test_current_charge_matches_a_decimal_reference(seconds: int, rate: Decimal) -> None:
    doc = meter.meter_document(rental(ratePerHour=format(rate, "f"),
                                      accruedSeconds=seconds), NOW)
    assert doc["currentChargeCents"] == reference_cents(seconds, rate)


@pytest.mark.parametrize(("seconds", "rate", "cents"), [
    (4827, "2.80", 375), (1800, "0.01", 1), (1799, "0.01", 0), (45, "0.40", 1), (44, "0.40", 0),
])
def test_half_cent_boundaries(seconds: int, rate: str, cents: int) -> None:
    doc = meter.meter_document(rental(ratePerHour=rate, accruedSeconds=seconds), NOW)
    assert doc["currentChargeCents"] == cents


def test_decimal_json_number_refuses_non_numbers() -> None:
    with pytest.raises(ValueError):
        meter.decimal_json_number(Decimal("NaN"))
    with pytest.raises(ValueError):
        meter.decimal_json_number(Decimal("-1"))
    assert meter.decimal_json_number(Decimal("1E+2")) == "100"


def test_storage_and_refunds_in_the_reading() -> None:
    status = {"ratePerHour": "3.60", "accruedSeconds": 100,
              "storageRatePerHour": "36", "storageAccruedSeconds": 10, "refundedCents": 5}
    reading = meter.read(status, NOW)
    assert (reading.gpu_cents, reading.storage_cents) == (10, 10)
    assert (reading.total_cents, reading.charged_cents) == (20, 15)
    assert meter.read({"refundedCents": 7}, NOW).charged_cents == 0


@given(st.integers(0, 10**7), st.integers(-(10**6), 10**6), st.booleans(),
       st.integers(0, 10**7), st.one_of(st.none(), st.integers(-(10**6), 10**6)),
       rate_texts, rate_texts, st.integers(0, 10**7))
def test_the_live_reading_is_the_operators_meter(
    accrued: int, since_s: int, running: bool, storage_accrued: int, storage_since_s: int | None,
    rate: str, storage_rate: str, later_us: int,
) -> None:
    """What kubectl shows live is what the operator writes into status at the same moment:
    the same seconds, the same charges, the same rounding (one meter, gpurental.meter)."""
    status: dict[str, Any] = {
        "ratePerHour": rate, "accruedSeconds": accrued, "storageRatePerHour": storage_rate,
        "storageAccruedSeconds": storage_accrued,
        "runningSince": format_ts(NOW + timedelta(seconds=since_s)) if running else None,
        "storageSince": (None if storage_since_s is None
                         else format_ts(NOW + timedelta(seconds=storage_since_s))),
    }
    written = dict(status)
    operator_meter.refresh(written, NOW, None)  # what the operator writes at NOW
    live = meter.read(written, NOW + timedelta(microseconds=later_us))
    at = NOW + timedelta(microseconds=later_us)
    assert live.seconds == operator_meter.seconds_billed(status, at)
    assert live.gpu_cents == operator_meter.gpu_cents(status, at)
    assert live.storage_cents == operator_meter.storage_cents(status, at)
    now_reading = meter.read(written, NOW)
    assert (now_reading.seconds, now_reading.gpu_cents, now_reading.total_cents) == (
        written["secondsBilled"], written["currentChargeCents"], written["totalChargeCents"])


# --- summary -------------------------------------------------------------------------------------


def test_summary_kpis() -> None:
    since = format_ts(NOW - timedelta(seconds=100))
    rentals = [
        rental(uid="a", ratePerHour="0.69", accruedSeconds=0, runningSince=since),
        rental(uid="b", ratePerHour="1.38", accruedSeconds=3600, runningSince=since),
        rental("Paused", uid="c", ratePerHour="0.69", accruedSeconds=3600),
        rental("Failed", uid="d", ratePerHour="0.69", accruedSeconds=3600, refundedCents=69),
        rental("Stopped", uid="settled", ratePerHour="9", accruedSeconds=3600),  # in the ledger
        rental(phase=None, uid="e", ns="team-b"),
    ]
    wallets = [{"metadata": {"namespace": "team-a"},
                "status": {"settledCents": 1000, "settlements": [{"rentalUid": "settled"}]}}]
    out = meter.summarize(rentals, wallets, NOW)
    a = out.by_namespace["team-a"]
    assert a.active_instances == 2
    assert a.hourly_burn == Decimal("2.07")
    assert a.spend_cents == 2 + (138 + 4) + 69 + 0 + 1000
    assert out.by_namespace["team-b"].document() == {
        "activeInstances": 0, "hourlyBurn": Decimal("0"), "spendCents": 0}
    assert out.total.spend_cents == a.spend_cents
    assert meter.to_json(out.total.document()).splitlines()[2] == '  "hourlyBurn": 2.07,'


def test_to_json_nests_like_jq() -> None:
    text = meter.to_json({"a": 1, "n": {"x": Decimal("1.50")}, "e": {}})
    assert text == '{\n  "a": 1,\n  "n": {\n    "x": 1.50\n  },\n  "e": {}\n}'
    assert json.loads(text) == {"a": 1, "n": {"x": 1.5}, "e": {}}


# --- status filters ------------------------------------------------------------------------------


@pytest.mark.parametrize(("chip", "phases"), [
    ("all", {"Pending", "Provisioning", "Running", "Paused", "Stopped", "Failed"}),
    ("running", {"Running"}),
    ("in-progress", {"Pending", "Provisioning"}),
    ("paused", {"Paused"}),
    ("stopped", {"Stopped"}),
    ("failed", {"Failed"}),
])
def test_status_filter_chips(chip: str, phases: set[str]) -> None:
    every = ["Pending", "Provisioning", "Running", "Paused", "Stopped", "Failed"]
    assert {p for p in every if meter.matches_filter(rental(p), chip)} == phases
    assert meter.matches_filter(rental(phase=None), chip) == ("Pending" in phases)


# --- extend --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("duration", "hours", "new"), [
    ("4h", "2", "6h"), ("4h", "0.5", "4h30m"), ("1.5h", "1", "2h30m"), ("90s", "1", "1h1m30s"),
    ("4h30m", "0.25", "4h45m"),
])
def test_extend_adds_hours(duration: str, hours: str, new: str) -> None:
    ext = meter.extend(duration, Decimal(hours), billed_seconds=123)
    assert ext.new_duration == new
    assert ext.added_prepaid_seconds == int(Decimal(hours) * 3600)


@given(st.integers(min_value=0, max_value=10_000 * 3600), st.integers(1, 1000))
def test_extend_adds_exactly_what_was_asked(duration: int, hours: int) -> None:
    text = durations.format_duration_exact(duration)
    ext = meter.extend(text, Decimal(hours), billed_seconds=0)
    new = durations.parse_duration(ext.new_duration)
    assert new - duration == ext.added_prepaid_seconds == hours * 3600


def test_extend_without_a_duration_needs_from_now() -> None:
    with pytest.raises(meter.ExtendError, match="--from-now"):
        meter.extend(None, Decimal(1), billed_seconds=10)
    assert meter.extend(None, Decimal(1), 0, from_now=True).new_duration == "1h"
    assert meter.extend(None, Decimal(1), 5, from_now=True).new_duration == "2h"
    assert meter.extend("", Decimal(2), 3600, from_now=True).new_duration == "3h"
    assert meter.extend(None, Decimal(2), 3601, from_now=True).new_duration == "4h"


@pytest.mark.parametrize("hours", ["0", "-1", "0.0001", "NaN", "Infinity"])
def test_extend_rejects_bad_hours(hours: str) -> None:
    with pytest.raises(meter.ExtendError):
        meter.extend("4h", Decimal(hours), billed_seconds=0)


def test_extend_rejects_more_than_ten_years() -> None:
    with pytest.raises(meter.ExtendError, match="10 years"):
        meter.extend("87600h", Decimal(1), billed_seconds=0)


# --- SSH keys ------------------------------------------------------------------------------------


def test_fingerprint_is_ssh_keygens() -> None:
    assert meter.fingerprint(KEY) == KEY_FP
    assert meter.key_parts(KEY)[2] == "alice@laptop"
    assert meter.fingerprint("ssh-ed25519 A") == "<invalid>"


@pytest.mark.parametrize("token", [KEY, KEY.rsplit(" ", 1)[0], KEY.split()[1], KEY_FP,
                                   "alice@laptop", f"  {KEY}  "])
def test_a_key_is_named_by_line_blob_fingerprint_or_comment(token: str) -> None:
    assert meter.key_matches(KEY, token)
    assert not meter.key_matches(KEY, "bob@desk")


def test_add_and_remove_keys() -> None:
    other = "ssh-rsa AAAAB3NzaC1yc2E= bob@desk"
    assert meter.add_keys([KEY], [other, KEY.replace("alice@laptop", "renamed")]) == [KEY, other]
    assert meter.remove_keys([KEY, other], ["bob@desk"]) == ([KEY], [])
    assert meter.remove_keys([KEY], ["carol"]) == ([KEY], ["carol"])


@pytest.mark.parametrize(("status", "cause"), [
    ({"phase": "Paused", "lostClaim": {"uid": "c1"}}, "VolumeLost"),
    ({"phase": "Provisioning", "disruption": {"reason": "NodeLost", "recovering": True}},
     "NodeLost"),
    ({"phase": "Running", "disruption": {"reason": "NodeLost", "recovering": False}}, None),
    ({"phase": "Paused", "conditions": [{"type": "Paused", "status": "True",
                                         "reason": "NoCapacity"}]}, "NoCapacity"),
    ({"phase": "Paused", "conditions": [{"type": "Paused", "status": "True",
                                         "reason": "UserRequested"}]}, None),
])
def test_disrupted_rentals_show_their_cause_and_have_a_chip(status: dict[str, Any],
                                                           cause: str | None) -> None:
    obj = {"metadata": {"name": "r"}, "status": status}
    assert meter.disruption_of(obj) == cause
    assert meter.matches_filter(obj, "disrupted") == (cause is not None)
    expected = f"{status['phase']} ({cause})" if cause else status["phase"]
    assert meter.phase_text(obj) == expected


def test_interrupted_rentals_have_a_chip() -> None:
    waiting = {"metadata": {"name": "r"}, "status": {
        "phase": "Provisioning", "disruption": {"reason": "Preempted", "recovering": True},
        "conditions": [{"type": "Interrupted", "status": "True", "reason": "Preempted"}]}}
    assert meter.matches_filter(waiting, "interrupted")
    assert meter.phase_text(waiting) == "Provisioning (Preempted)"
    back = {"metadata": {"name": "r"}, "status": {
        "phase": "Running", "conditions": [{"type": "Interrupted", "status": "False"}]}}
    assert not meter.matches_filter(back, "interrupted")
