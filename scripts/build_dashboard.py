#!/usr/bin/env python3
"""Builds the Grafana dashboard shipped in the chart: charts/gpu-rental-operator/dashboards/.

The JSON is generated so that panel layout, ids, datasource and filters are uniform; edit this
script, run it, commit both (tests/platform/test_dashboard.py checks they are in sync and that every
query names a metric the operator exports).

    python scripts/build_dashboard.py          # write the JSON
    python scripts/build_dashboard.py --check  # exit 1 if the committed JSON is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

OUTPUT = (
    Path(__file__).resolve().parents[1]
    / "charts" / "gpu-rental-operator" / "dashboards" / "gpu-rentals.json"
)

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Filters every panel applies to series carrying the label.
NS = 'namespace=~"$namespace"'
NS_OFFER = 'namespace=~"$namespace", offer=~"$offer"'
RATE = "$__rate_interval"

Panel = dict[str, Any]


def target(expr: str, legend: str = "", ref: str = "A", **extra: Any) -> dict[str, Any]:
    return {
        "datasource": DATASOURCE,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": not extra.get("instant", False),
        "refId": ref,
        **extra,
    }


def thresholds(*steps: tuple[str, float | None]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


def stat(
    title: str, description: str, targets: list[dict[str, Any]], unit: str = "short",
    decimals: int | None = None, steps: tuple[tuple[str, float | None], ...] = (("green", None),),
    graph: bool = True,
) -> Panel:
    defaults: dict[str, Any] = {
        "unit": unit,
        "color": {"mode": "thresholds"},
        "thresholds": thresholds(*steps),
        "mappings": [],
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area" if graph else "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "auto",
            "wideLayout": True,
            "showPercentChange": False,
        },
    }


def timeseries(
    title: str, description: str, targets: list[dict[str, Any]], unit: str = "short",
    stack: bool = False, bars: bool = False, decimals: int | None = None,
    steps: tuple[tuple[str, float | None], ...] | None = None,
) -> Panel:
    custom: dict[str, Any] = {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 1,
        "fillOpacity": 80 if bars else (25 if stack else 10),
        "gradientMode": "none",
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "axisSoftMin": 0,
    }
    defaults: dict[str, Any] = {
        "unit": unit, "custom": custom, "color": {"mode": "palette-classic"},
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    if steps:
        defaults["thresholds"] = thresholds(*steps)
        custom["thresholdsStyle"] = {"mode": "dashed"}
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {
                "displayMode": "table",
                "placement": "bottom",
                "showLegend": True,
                "calcs": ["lastNotNull", "max"],
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def table(
    title: str, description: str, targets: list[dict[str, Any]], rename: dict[str, str],
    units: dict[str, str],
) -> Panel:
    return {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "transformations": [
            {"id": "merge", "options": {}},
            {
                "id": "organize",
                "options": {
                    "excludeByName": {"Time": True},
                    "renameByName": rename,
                    "indexByName": {},
                },
            },
        ],
        "fieldConfig": {
            "defaults": {"custom": {"align": "auto", "cellOptions": {"type": "auto"}}},
            "overrides": [
                {
                    "matcher": {"id": "byName", "options": name},
                    "properties": [{"id": "unit", "value": unit}],
                }
                for name, unit in units.items()
            ],
        },
        "options": {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}},
    }


def row(title: str) -> Panel:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


# The seed's status filter chips: All / Running / In progress / Stopped / Failed (+ our Paused).
PHASE_FILTERS = [
    ("All", f"sum(gpurental_rentals{{{NS}}})"),
    ("Running", f'sum(gpurental_rentals{{{NS}, phase="Running"}})'),
    ("In progress", f'sum(gpurental_rentals{{{NS}, phase=~"Pending|Provisioning"}})'),
    ("Paused", f'sum(gpurental_rentals{{{NS}, phase="Paused"}})'),
    ("Stopped", f'sum(gpurental_rentals{{{NS}, phase="Stopped"}})'),
    ("Failed", f'sum(gpurental_rentals{{{NS}, phase="Failed"}})'),
]


def layout() -> list[tuple[Panel, int, int]]:
    """(panel, width, height) in reading order; rows take the full width."""
    refs = "ABCDEFGH"
    return [
        (row("Overview"), 24, 1),
        (stat(
            "Active instances", "Rentals currently Running (the seed's first KPI card).",
            [target(f"sum(gpurental_active_rentals{{{NS_OFFER}}}) or vector(0)", "Running")],
            decimals=0,
        ), 6, 5),
        (stat(
            "Hourly burn", "Combined hourly rate of every Running rental.",
            [target(f"sum(gpurental_hourly_burn_dollars{{{NS_OFFER}}}) or vector(0)", "USD/h")],
            unit="currencyUSD", decimals=2,
        ), 6, 5),
        (stat(
            "Session spend",
            "Total charged since the operator started (the seed's billing session).",
            [target(f"sum(gpurental_charged_cents_total{{{NS_OFFER}}}) / 100 or vector(0)", "USD")],
            unit="currencyUSD", decimals=2,
        ), 6, 5),
        (stat(
            "Failed rentals", "Rentals that did not provision; their charge is refunded.",
            [target(f'sum(gpurental_rentals{{{NS}, phase="Failed"}}) or vector(0)', "Failed")],
            decimals=0, steps=(("green", None), ("red", 1)),
        ), 6, 5),

        (row("Spend"), 24, 1),
        (timeseries(
            "Hourly burn by namespace and offer",
            "Sum of the locked hourly rates of Running rentals.",
            [target(
                f"sum by (namespace, offer) (gpurental_hourly_burn_dollars{{{NS_OFFER}}})",
                "{{namespace}} / {{offer}}",
            )],
            unit="currencyUSD", stack=True,
        ), 12, 8),
        (timeseries(
            "Spend rate by namespace and offer",
            "Cents charged per second, shown as USD per hour; follows the burn while metered.",
            [target(
                f"sum by (namespace, offer) (rate(gpurental_charged_cents_total{{{NS_OFFER}}}"
                f"[{RATE}])) * 3600 / 100",
                "{{namespace}} / {{offer}}",
            )],
            unit="currencyUSD", stack=True,
        ), 12, 8),
        (timeseries(
            "Session spend by namespace and offer",
            "Cumulative charge since the operator started, in USD.",
            [target(
                f"sum by (namespace, offer) (gpurental_charged_cents_total{{{NS_OFFER}}}) / 100",
                "{{namespace}} / {{offer}}",
            )],
            unit="currencyUSD", stack=True,
        ), 12, 8),
        (timeseries(
            "Spend per interval by namespace and offer",
            "USD charged in each interval of the graph.",
            [target(
                f"sum by (namespace, offer) (increase(gpurental_charged_cents_total{{{NS_OFFER}}}"
                f"[{RATE}])) / 100",
                "{{namespace}} / {{offer}}",
            )],
            unit="currencyUSD", stack=True, bars=True,
        ), 12, 8),

        (row("Rentals"), 24, 1),
        (stat(
            "Rentals by phase", "The seed's status filter: All / Running / In progress / "
            "Paused / Stopped / Failed.",
            [target(expr, name, refs[n], instant=True) for n, (name, expr) in
             enumerate(PHASE_FILTERS)],
            decimals=0, graph=False,
        ), 24, 4),
        (timeseries(
            "Rentals by phase", "How many rentals are in each phase over time.",
            [target(f"sum by (phase) (gpurental_rentals{{{NS}}})", "{{phase}}")],
            stack=True, decimals=0,
        ), 12, 8),
        (timeseries(
            "Phase transitions", "Transitions between phases per interval.",
            [target(
                f"sum by (from_phase, to_phase) (increase(gpurental_transitions_total{{{NS}}}"
                f"[{RATE}]))",
                "{{from_phase}} → {{to_phase}}",
            )],
            bars=True, stack=True,
        ), 12, 8),

        (row("Wallets"), 24, 1),
        (table(
            "Wallets", "Each wallet's budget left, current burn and time to exhaustion.",
            [
                target(f"sum by (namespace, wallet) (gpurental_wallet_remaining_cents{{{NS}}}) "
                       "/ 100", "", "A", instant=True, format="table"),
                target(f"sum by (namespace, wallet) "
                       f"(gpurental_wallet_burn_cents_per_hour{{{NS}}}) / 100",
                       "", "B", instant=True, format="table"),
                target(f"min by (namespace, wallet) "
                       f"(gpurental_wallet_seconds_to_exhaustion{{{NS}}})",
                       "", "C", instant=True, format="table"),
            ],
            rename={"Value #A": "Remaining", "Value #B": "Burn per hour",
                    "Value #C": "Time to exhaustion"},
            units={"Remaining": "currencyUSD", "Burn per hour": "currencyUSD",
                   "Time to exhaustion": "s"},
        ), 24, 7),
        (timeseries(
            "Wallet remaining budget", "Budget left per wallet, USD.",
            [target(
                f"sum by (namespace, wallet) (gpurental_wallet_remaining_cents{{{NS}}}) / 100",
                "{{namespace}} / {{wallet}}",
            )],
            unit="currencyUSD",
        ), 12, 8),
        (timeseries(
            "Wallet time to exhaustion",
            "At the current burn; below one hour the GpuRentalWalletNearlyExhausted alert fires.",
            [target(
                f"min by (namespace, wallet) (gpurental_wallet_seconds_to_exhaustion{{{NS}}})",
                "{{namespace}} / {{wallet}}",
            )],
            unit="s", steps=(("green", None), ("red", 3600)),
        ), 12, 8),

        (row("Failures"), 24, 1),
        (timeseries(
            "Provisioning failures by reason",
            "Rentals that failed to provision (unschedulable, image pull, volume, timeout).",
            [target(
                f"sum by (namespace, offer, reason) "
                f"(increase(gpurental_provisioning_failures_total{{{NS_OFFER}}}[{RATE}]))",
                "{{namespace}} / {{offer}}: {{reason}}",
            )],
            bars=True, stack=True,
        ), 12, 8),
        (timeseries(
            "Disruptions by reason",
            "Pods and volumes taken away without the user asking: NodeLost (the node stopped "
            "reporting), VolumeLost (a claim deleted outside the operator; the "
            "GpuRentalVolumeLost alert fires), PodDeleted, Evicted, Preempted. Billing stops "
            "when the GPU was lost; the rental is brought back on a new pod.",
            [target(
                f"sum by (namespace, offer, reason) "
                f"(increase(gpurental_disruptions_total{{{NS_OFFER}}}[{RATE}]))",
                "{{namespace}} / {{offer}}: {{reason}}",
            )],
            bars=True, stack=True,
        ), 12, 8),
        (timeseries(
            "Interruptions (interruptible offers)",
            "Interruptible rentals' pods the scheduler preempted to place on-demand rentals. "
            "Each was billed to the second its container stopped and waits for capacity on "
            "its volume (spec.onInterruption: Resume), or paused or stopped.",
            [target(
                f"sum by (namespace, offer) "
                f"(increase(gpurental_interruptions_total{{{NS_OFFER}}}[{RATE}]))",
                "{{namespace}} / {{offer}}",
            )],
            bars=True, stack=True,
        ), 24, 8),

        (row("Idle GPUs"), 24, 1),
        (timeseries(
            "GPU utilisation per rental",
            "From NVIDIA's dcgm-exporter (pod mapping on): the busiest GPU of each rental's pod "
            "(DCGM_FI_DEV_GPU_UTIL), and the graphics-engine activity that also works on MIG "
            "slices (DCGM_FI_PROF_GR_ENGINE_ACTIVE, as percent). The idle auto-pause reads "
            "the same series.",
            [
                target(f'max by (namespace, pod) (DCGM_FI_DEV_GPU_UTIL{{{NS}, pod!=""}})',
                       "{{namespace}}/{{pod}}", "A"),
                target("100 * max by (namespace, pod) "
                       f'(DCGM_FI_PROF_GR_ENGINE_ACTIVE{{{NS}, pod!=""}})',
                       "{{namespace}}/{{pod}} engine", "B"),
            ],
            unit="percent",
        ), 12, 8),
        (stat(
            "Saved by idle pauses",
            "What idle-paused rentals would have cost had they kept running, over the "
            "dashboard's time range: their hourly rates integrated minute by minute. Storage "
            "is still billed while paused and is not counted.",
            [target("sum(sum_over_time(gpurental_idle_paused_burn_dollars"
                    f"{{{NS_OFFER}}}[$__range:1m])) / 60 or vector(0)", "USD")],
            unit="currencyUSD", decimals=2,
        ), 4, 8),
        (timeseries(
            "Idle pauses and their avoided burn",
            "Rentals paused because their GPU sat idle, and the hourly rate those paused "
            "rentals no longer burn.",
            [
                target(f"sum by (namespace, offer) "
                       f"(increase(gpurental_idle_pauses_total{{{NS_OFFER}}}[{RATE}]))",
                       "pauses {{namespace}} / {{offer}}", "A"),
                target(f"sum by (namespace, offer) "
                       f"(gpurental_idle_paused_burn_dollars{{{NS_OFFER}}})",
                       "avoided USD/h {{namespace}} / {{offer}}", "B"),
            ],
        ), 8, 8),

        (row("Operator health"), 24, 1),
        (timeseries(
            "Reconcile duration", "p50 and p99 of one rental's reconcile, by result.",
            [
                target("histogram_quantile(0.99, sum by (le, result) "
                       f"(rate(gpurental_reconcile_duration_seconds_bucket[{RATE}])))",
                       "p99 {{result}}", "A"),
                target("histogram_quantile(0.5, sum by (le, result) "
                       f"(rate(gpurental_reconcile_duration_seconds_bucket[{RATE}])))",
                       "p50 {{result}}", "B"),
            ],
            unit="s",
        ), 12, 8),
        (timeseries(
            "Reconciles and errors", "Reconciles per second by result, reconcile errors and "
            "Kubernetes API errors by verb and code.",
            [
                target("sum by (result) "
                       f"(rate(gpurental_reconcile_duration_seconds_count[{RATE}]))",
                       "reconciles {{result}}", "A"),
                target(f"sum(rate(gpurental_reconcile_errors_total[{RATE}]))",
                       "reconcile errors", "B"),
                target(f"sum by (verb, code) (rate(gpurental_api_errors_total[{RATE}]))",
                       "API {{verb}} {{code}}", "C"),
            ],
            unit="ops",
        ), 12, 8),
        (timeseries(
            "Kubernetes API latency", "p99 of the operator's API calls by verb.",
            [target("histogram_quantile(0.99, sum by (le, verb) "
                    f"(rate(gpurental_api_request_duration_seconds_bucket[{RATE}])))",
                    "p99 {{verb}}")],
            unit="s",
        ), 12, 8),
        (timeseries(
            "Stop and pause latency",
            "p99 from a stop or pause request to the pod's deletion call; the seed promises "
            "100 ms.",
            [target("histogram_quantile(0.99, sum by (le, action) "
                    f"(rate(gpurental_stop_latency_seconds_bucket[{RATE}])))",
                    "p99 {{action}}")],
            unit="s", steps=(("green", None), ("red", 0.1)),
        ), 12, 8),
        (timeseries(
            "Garbage collector pauses",
            "p99 pause of the operator's event loop per collected generation, and how often "
            "each runs; a full (2) collection delays every stop by as long as it lasts.",
            [target("histogram_quantile(0.99, sum by (le, generation) "
                    f"(rate(gpurental_gc_pause_seconds_bucket[{RATE}])))",
                    "p99 gen {{generation}}"),
             target(f"sum by (generation) (rate(gpurental_gc_pause_seconds_count[{RATE}]))",
                    "collections/s gen {{generation}}", ref="B")],
            unit="s", steps=(("green", None), ("red", 0.1)),
        ), 12, 8),
        (timeseries(
            "Event loop lag",
            "p50 and p99 wait of the operator's one event loop before it runs what is due "
            "(a 100 ms probe); every stop waits this long at each of its steps.",
            [target("histogram_quantile(0.99, sum by (le) "
                    f"(rate(gpurental_event_loop_lag_seconds_bucket[{RATE}])))", "p99"),
             target("histogram_quantile(0.5, sum by (le) "
                    f"(rate(gpurental_event_loop_lag_seconds_bucket[{RATE}])))", "p50",
                    ref="B")],
            unit="s", steps=(("green", None), ("red", 0.05)),
        ), 12, 8),
        (timeseries(
            "Retries by work queue",
            "Keys re-queued with backoff after a failed pass (rentals, wallets, offers); "
            "steady retries mean the API server refuses something.",
            [target(f"sum by (queue) (rate(gpurental_work_retries_total[{RATE}]))",
                    "{{queue}}")],
            unit="ops",
        ), 12, 8),
    ]


def place(panels: list[tuple[Panel, int, int]]) -> list[Panel]:
    """Give every panel an id and a gridPos, filling 24 columns left to right."""
    placed: list[Panel] = []
    x = y = row_height = 0
    for n, (panel, w, h) in enumerate(panels, start=1):
        if x + w > 24 or panel["type"] == "row":
            x, y, row_height = 0, y + row_height, 0
        placed.append({"id": n, "gridPos": {"h": h, "w": w, "x": x, "y": y}, **panel})
        x += w
        row_height = max(row_height, h)
    return placed


def variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"{name}-variable"},
        "definition": query,
        "refresh": 2,  # on time range change: new namespaces and offers appear
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "sort": 1,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "hide": 0,
    }


def build() -> dict[str, Any]:
    return {
        "title": "GPU rentals",
        "uid": "gpurental-overview",
        "description": "gpu-rental-operator: active rentals, burn, spend, wallets, failures and "
        "operator health.",
        "tags": ["gpu-rental-operator", "gpu", "cost"],
        "editable": True,
        "graphTooltip": 1,
        "id": None,
        "links": [],
        "liveNow": False,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "weekStart": "",
        "fiscalYearStartMonth": 0,
        "annotations": {"list": [{
            "builtIn": 1,
            "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True,
            "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts",
            "type": "dashboard",
        }]},
        "templating": {"list": [
            {
                "name": "datasource",
                "label": "Data source",
                "type": "datasource",
                "query": "prometheus",
                "regex": "",
                "refresh": 1,
                "hide": 0,
                "includeAll": False,
                "multi": False,
                "current": {"selected": False, "text": "default", "value": "default"},
                "options": [],
            },
            variable("namespace", "Namespace", "label_values(gpurental_rentals, namespace)"),
            variable(
                "offer", "Offer",
                'label_values(gpurental_charged_cents_total{namespace=~"$namespace"}, offer)',
            ),
        ]},
        "panels": place(layout()),
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the JSON is out of date")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT} is stale: run python scripts/build_dashboard.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
