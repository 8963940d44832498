"""The alert rules (charts/gpu-rental-operator/files/alerts.yaml) with the real promtool:
they load, every alert is unit-tested firing and staying quiet, and they use exported metrics."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from exported_metrics import series_names
from promql import metric_names

HERE = Path(__file__).resolve().parent
RULES = HERE.parents[1] / "charts" / "gpu-rental-operator" / "files" / "alerts.yaml"
UNIT_TESTS = HERE / "alerts_test.yaml"
# Series Prometheus itself produces.
PROMETHEUS_SERIES = {"up"}
REQUIRED_ALERTS = {
    "GpuRentalWalletNearlyExhausted",
    "GpuRentalWalletExhausted",
    "GpuRentalProvisioningFailures",
    "GpuRentalBurnRateSpike",
    "GpuRentalOperatorDown",
    "GpuRentalReconcileErrors",
}


def alerts() -> dict[str, dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, check=False)


def test_promtool_check_rules(promtool):
    proc = run(promtool, "check", "rules", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in proc.stdout


def test_promtool_unit_tests(promtool):
    proc = run(promtool, "test", "rules", str(UNIT_TESTS))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_the_issue_alerts_exist_with_severity_and_annotations():
    found = alerts()
    assert set(found) >= REQUIRED_ALERTS
    for name, rule in found.items():
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}, name
        for key in ("summary", "description", "runbook_url"):
            assert rule["annotations"].get(key), f"{name} has no {key}"
        assert rule["annotations"]["runbook_url"].endswith("#" + name.lower())


@pytest.mark.parametrize("name", sorted(alerts()))
def test_every_alert_is_unit_tested_firing_and_quiet(name):
    cases = [
        case
        for group in yaml.safe_load(UNIT_TESTS.read_text())["tests"]
        for case in group.get("alert_rule_test", [])
        if case["alertname"] == name
    ]
    assert any(case.get("exp_alerts") for case in cases), f"{name}: no test that it fires"
    assert any(not case.get("exp_alerts") for case in cases), f"{name}: no test that it is quiet"


def test_alerts_use_only_exported_metrics():
    known = set(series_names()) | PROMETHEUS_SERIES
    for name, rule in alerts().items():
        used = metric_names(rule["expr"])
        assert used and used <= known, f"{name}: {sorted(used - known)} not exported"


def test_thresholds_match_the_issue():
    found = alerts()
    nearly = found["GpuRentalWalletNearlyExhausted"]["expr"]
    assert "gpurental_wallet_seconds_to_exhaustion < 3600" in nearly
    assert "increase(gpurental_provisioning_failures_total[15m]) > 0" in (
        found["GpuRentalProvisioningFailures"]["expr"]
    )
    burn = found["GpuRentalBurnRateSpike"]["expr"]
    assert "> 2 * " in burn and "avg_over_time(gpurental_hourly_burn_dollars[1d])" in burn
    # The job regex is the literal the chart rewrites from prometheusRule.operatorJobRegex.
    down = found["GpuRentalOperatorDown"]["expr"]
    assert 'absent(up{job=~".*gpu-rental-operator.*"} == 1)' in down
