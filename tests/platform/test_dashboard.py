"""The Grafana dashboard in the chart: in sync with its generator, every query real PromQL over
metrics the operator exports, filtered by the template variables."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
from exported_metrics import EXPORTED_METRICS, EXTERNAL_METRICS, labels_of, series_names
from promql import grafana_to_promql, metric_names, promtool_check_exprs, selectors

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "charts" / "gpu-rental-operator" / "dashboards" / "gpu-rentals.json"
BUILDER = REPO / "scripts" / "build_dashboard.py"
# Values for the parser: `.*` is what "All" sends.
TEMPLATE_VALUES = {"namespace": ".*", "offer": ".*", "datasource": "prometheus"}


def load_builder():
    spec = importlib.util.spec_from_file_location("build_dashboard", BUILDER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels(dashboard: dict) -> list[dict]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def queries(dashboard: dict) -> dict[str, str]:
    """Every PromQL query of the dashboard: panel targets and variable queries."""
    found = {}
    for panel in panels(dashboard):
        for t in panel["targets"]:
            found[f"{panel['title']} [{t['refId']}]"] = t["expr"]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", var["definition"])
            assert m, f"variable {var['name']}: expected label_values(selector, label)"
            found[f"${var['name']}"] = m.group(1)
    return found


def test_dashboard_is_generated_from_the_script():
    assert DASHBOARD.read_text() == load_builder().render(), (
        "dashboards/gpu-rentals.json is stale: run python scripts/build_dashboard.py"
    )


def test_every_query_names_only_exported_metrics(dashboard):
    known = series_names()
    used: set[str] = set()
    for where, expr in queries(dashboard).items():
        names = metric_names(expr)
        assert names, f"{where}: no metric in {expr!r}"
        unknown = names - known.keys()
        assert not unknown, f"{where}: {sorted(unknown)} not exported (see exported_metrics.py)"
        used |= {known[n] for n in names}
    # Everything the operator exports is on the dashboard somewhere (external ones may be).
    assert used - set(EXTERNAL_METRICS) == set(EXPORTED_METRICS)


def test_every_query_parses_with_prometheus(dashboard, promtool, tmp_path):
    exprs = {w: grafana_to_promql(e, TEMPLATE_VALUES) for w, e in queries(dashboard).items()}
    promtool_check_exprs(promtool, exprs, tmp_path)


def test_queries_group_and_filter_only_by_labels_the_metric_has(dashboard):
    for where, expr in queries(dashboard).items():
        for sel in selectors(expr):
            labels = set(labels_of(sel.metric))
            assert set(sel.matchers) <= labels, f"{where}: {sel} matches a label it lacks"
            # The namespace and offer variables apply wherever the series has those labels.
            for var in ("namespace", "offer"):
                if var in labels and where != f"${var}":
                    assert sel.matchers.get(var) == ("=~", f"${var}"), (
                        f"{where}: {sel.metric} ignores ${var}"
                    )
        for grouping in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
            wanted = {g.strip() for g in grouping.split(",") if g.strip()}
            available = set().union(*(labels_of(s.metric) for s in selectors(expr)))
            assert wanted <= available, f"{where}: groups by {wanted - available}"


def test_the_seeds_kpi_cards(dashboard):
    stats = {p["title"]: p for p in panels(dashboard) if p["type"] == "stat"}
    expected = {
        "Active instances": "sum(gpurental_active_rentals{...}) or vector(0)",
        "Hourly burn": "sum(gpurental_hourly_burn_dollars{...}) or vector(0)",
        "Session spend": "sum(gpurental_charged_cents_total{...}) / 100 or vector(0)",
    }
    for title, shape in expected.items():
        (t,) = stats[title]["targets"]
        assert re.sub(r"\{[^}]*\}", "{...}", t["expr"]) == shape
    assert stats["Hourly burn"]["fieldConfig"]["defaults"]["unit"] == "currencyUSD"
    assert stats["Session spend"]["fieldConfig"]["defaults"]["unit"] == "currencyUSD"
    # The three cards sit side by side at the top.
    tops = [stats[t]["gridPos"]["y"] for t in expected]
    assert len(set(tops)) == 1 and tops[0] == min(p["gridPos"]["y"] for p in panels(dashboard))


def test_rentals_by_phase_covers_the_seeds_status_filter(dashboard):
    (panel,) = [
        p for p in panels(dashboard) if p["type"] == "stat" and p["title"] == "Rentals by phase"
    ]
    legends = [t["legendFormat"] for t in panel["targets"]]
    assert {"All", "Running", "In progress", "Stopped", "Failed"} <= set(legends)
    in_progress = next(t["expr"] for t in panel["targets"] if t["legendFormat"] == "In progress")
    assert 'phase=~"Pending|Provisioning"' in in_progress


def test_panels_cover_the_issue(dashboard):
    titles = {p["title"] for p in panels(dashboard)}
    for wanted in (
        "Hourly burn by namespace and offer", "Spend rate by namespace and offer",
        "Rentals by phase", "Wallets", "Wallet remaining budget", "Wallet time to exhaustion",
        "Provisioning failures by reason", "Reconcile duration", "Reconciles and errors",
        "Stop and pause latency", "Kubernetes API latency",
    ):
        assert wanted in titles


def test_template_variables(dashboard):
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert set(variables) == {"datasource", "namespace", "offer"}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("namespace", "offer"):
        assert variables[name]["includeAll"] and variables[name]["multi"]
        assert variables[name]["allValue"] == ".*"


def test_layout_and_datasources(dashboard):
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"] and dashboard["id"] is None
    occupied: set[tuple[int, int]] = set()
    for p in dashboard["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        xs, ys = range(g["x"], g["x"] + g["w"]), range(g["y"], g["y"] + g["h"])
        cells = {(x, y) for x in xs for y in ys}
        assert not cells & occupied, f"{p['title']} overlaps another panel"
        occupied |= cells
    for p in panels(dashboard):
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p.get("description"), f"{p['title']} has no description"
        for t in p["targets"]:
            assert t["datasource"] == p["datasource"]


def test_scanner_tells_metrics_from_functions_and_labels():
    expr = (
        'histogram_quantile(0.99, sum by (le, result) (rate(a_bucket{x="}", y=~"a|b"}[5m])))'
        " / on (namespace) group_left(offer) b offset 1d > bool 2 and c"
    )
    assert [s.metric for s in selectors(expr)] == ["a_bucket", "b", "c"]
    assert selectors(expr)[0].matchers == {"x": ("=", "}"), "y": ("=~", "a|b")}
