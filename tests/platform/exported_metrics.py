"""The one list of metric families the operator exports at /metrics.

The dashboard, the alert rules and (later) the operator's metrics module are all checked against
this list, so a renamed metric breaks a test instead of a panel. Names and label sets of the
contract's metrics are fixed by ../shared/CONTRACT.md; the operator-health ones are ours.
"""

from __future__ import annotations

from typing import NamedTuple


class Metric(NamedTuple):
    type: str  # gauge | counter | histogram
    labels: tuple[str, ...]
    help: str


EXPORTED_METRICS: dict[str, Metric] = {
    # The contract's metrics: what users scrape.
    "gpurental_active_rentals": Metric(
        "gauge", ("namespace", "offer"), "Rentals in phase Running."
    ),
    "gpurental_rentals": Metric("gauge", ("namespace", "phase"), "Rentals by phase."),
    "gpurental_hourly_burn_dollars": Metric(
        "gauge", ("namespace", "offer"), "Sum of ratePerHour of Running rentals, USD."
    ),
    "gpurental_charged_cents_total": Metric(
        "counter", ("namespace", "offer"), "Cents charged since the operator started."
    ),
    "gpurental_wallet_remaining_cents": Metric(
        "gauge", ("namespace", "wallet"), "Wallet budget left, cents."
    ),
    "gpurental_wallet_burn_cents_per_hour": Metric(
        "gauge", ("namespace", "wallet"), "Current burn of a wallet's running rentals."
    ),
    "gpurental_wallet_seconds_to_exhaustion": Metric(
        "gauge", ("namespace", "wallet"), "Seconds until the wallet reaches $0 at the current burn."
    ),
    "gpurental_provisioning_failures_total": Metric(
        "counter", ("namespace", "offer", "reason"), "Rentals that failed to provision."
    ),
    "gpurental_transitions_total": Metric(
        "counter", ("namespace", "from_phase", "to_phase"), "Phase transitions of rentals."
    ),
    # Faults of the world: pods and volumes taken away without the user asking.
    "gpurental_disruptions_total": Metric(
        "counter", ("namespace", "offer", "reason"),
        "Rentals whose pod or volume was taken away without the user asking, by reason.",
    ),
    "gpurental_interruptions_total": Metric(
        "counter", ("namespace", "offer"),
        "Times the scheduler preempted an interruptible rental's pod for an on-demand one.",
    ),
    # Idle auto-pause (spec.idle).
    "gpurental_idle_pauses_total": Metric(
        "counter", ("namespace", "offer"), "Rentals paused or stopped because the GPU sat idle."
    ),
    "gpurental_idle_paused_burn_dollars": Metric(
        "gauge", ("namespace", "offer"),
        "Sum of ratePerHour of idle-paused rentals: what they would burn if running, USD/h."
    ),
    # The operator's own health.
    "gpurental_reconcile_duration_seconds": Metric(
        "histogram", ("result",), "Time to reconcile one rental."
    ),
    "gpurental_reconcile_errors_total": Metric("counter", (), "Reconciles that raised."),
    "gpurental_gc_pause_seconds": Metric(
        "histogram", ("generation",),
        "Garbage collector pauses of the operator's event loop, per generation collected."
    ),
    "gpurental_event_loop_lag_seconds": Metric(
        "histogram", (),
        "How much later than due the operator's event loop ran a timer (a probe every 100 ms)."
    ),
    "gpurental_work_retries_total": Metric(
        "counter", ("queue",), "Keys re-queued with backoff after a failed pass, per work queue."
    ),
    "gpurental_api_errors_total": Metric(
        "counter", ("verb", "code"), "Kubernetes API calls that failed."
    ),
    "gpurental_api_request_duration_seconds": Metric(
        "histogram", ("verb",), "Kubernetes API call latency."
    ),
    "gpurental_stop_latency_seconds": Metric(
        "histogram", ("action",), "From a stop or pause request to the pod's deletion call."
    ),
}

# Metrics other exporters publish that dashboards may read: NVIDIA's dcgm-exporter, with the
# labels it sets when pod mapping is on (the idle auto-pause reads the same two).
DCGM_LABELS = ("gpu", "UUID", "modelName", "Hostname", "namespace", "pod", "container")
EXTERNAL_METRICS: dict[str, Metric] = {
    "DCGM_FI_DEV_GPU_UTIL": Metric("gauge", DCGM_LABELS, "GPU utilisation, percent."),
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE": Metric(
        "gauge", DCGM_LABELS, "Ratio of time the graphics engine is active (works on MIG)."
    ),
}

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def series_names() -> dict[str, str]:
    """Every series name a query may reference (the operator's and the external ones),
    mapped to its metric family."""
    names: dict[str, str] = {}
    for family, metric in {**EXPORTED_METRICS, **EXTERNAL_METRICS}.items():
        if metric.type == "histogram":
            names.update({family + suffix: family for suffix in HISTOGRAM_SUFFIXES})
        else:
            names[family] = family
    return names


def labels_of(series: str) -> tuple[str, ...]:
    """The labels a series carries (a histogram's buckets add `le`)."""
    family = series_names()[series]
    labels = {**EXPORTED_METRICS, **EXTERNAL_METRICS}[family].labels
    return (*labels, "le") if series.endswith("_bucket") else labels
