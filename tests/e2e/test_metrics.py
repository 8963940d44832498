"""The operator's /metrics through the API: every contract metric, for one namespace, as its
rentals move through Running, Paused, Stopped and Failed and its wallet is charged."""

from __future__ import annotations

from decimal import Decimal

from e2e_support import Rentals, eventually
from metrics_support import Scrape, charged, scrape, wallet, wallet_status

from gpurental_dev.cluster import OperatorProcess

# Every label the operator may put on a series: bounded sets, never a rental or a time.
BOUNDED_LABELS = {"namespace", "offer", "phase", "wallet", "action", "result", "verb", "code",
                  "from_phase", "to_phase", "reason", "le",
                  "queue", "generation"}  # rentals|wallets|offers; the collector's 0|1|2


def stop_count(metrics: Scrape, action: str) -> float:
    return metrics.value("gpurental_stop_latency_seconds_count", action=action) or 0.0


def test_contract_metrics_follow_a_namespace_through_every_phase(
        rentals: Rentals, operator: OperatorProcess) -> None:
    ns, url = rentals.namespace, operator.metrics_url
    wallet(rentals, "team", "100.00")
    rentals.create("gpu", wallet="team")
    rentals.create("mig", offer="a100-mig", wallet="team")
    rentals.create("doomed", offer="nowhere")
    rates = {"rtx4090": rentals.wait_phase("gpu", "Running")["ratePerHour"],
             "a100-mig": rentals.wait_phase("mig", "Running")["ratePerHour"]}

    def running_gauges() -> None:
        metrics = scrape(url)
        for offer, rate in rates.items():
            assert metrics.value("gpurental_active_rentals", namespace=ns, offer=offer) == 1
            assert metrics.value("gpurental_hourly_burn_dollars", namespace=ns,
                                 offer=offer) == float(Decimal(rate))
        assert metrics.value("gpurental_rentals", namespace=ns, phase="Running") == 2
    eventually(running_gauges, timeout=30)

    rentals.wait_phase("doomed", "Failed", timeout=60)

    def failure_counted() -> None:
        metrics = scrape(url)
        assert metrics.value("gpurental_rentals", namespace=ns, phase="Failed") == 1
        assert metrics.value("gpurental_provisioning_failures_total", namespace=ns,
                             offer="nowhere", reason="Unschedulable") == 1
        assert metrics.total("gpurental_transitions_total", namespace=ns, to_phase="Failed") == 1
    eventually(failure_counted, timeout=30)

    before = scrape(url)
    rentals.patch("gpu", state="Paused")
    rentals.wait_phase("gpu", "Paused")
    rentals.patch("mig", state="Stopped")
    rentals.wait_phase("mig", "Stopped")

    def settled_gauges() -> Scrape:
        metrics = scrape(url)
        assert not list(metrics.series("gpurental_active_rentals", namespace=ns))
        assert not list(metrics.series("gpurental_hourly_burn_dollars", namespace=ns))
        phases = {labels["phase"]: value for labels, value
                  in metrics.series("gpurental_rentals", namespace=ns)}
        assert phases == {"Paused": 1, "Stopped": 1, "Failed": 1}
        assert metrics.value("gpurental_wallet_remaining_cents", namespace=ns,
                             wallet="team") == wallet_status(rentals, "team")["remainingCents"]
        return metrics
    after = eventually(settled_gauges, timeout=30)

    # Health: each stop and pause timed from request to the pod's deletion call.
    assert stop_count(after, "paused") >= stop_count(before, "paused") + 1
    assert stop_count(after, "stopped") >= stop_count(before, "stopped") + 1
    assert after.total("gpurental_reconcile_duration_seconds_count") > 0
    transitions = {(labels["from_phase"], labels["to_phase"]) for labels, _ in
                   after.series("gpurental_transitions_total", namespace=ns)}
    assert {("Running", "Paused"), ("Running", "Stopped")} <= transitions
    assert_bounded(after, names={"gpu", "mig", "doomed"})


def assert_bounded(metrics: Scrape, names: set[str]) -> None:
    """No series is labelled by anything unbounded: no rental names, no unknown labels."""
    for family, label_sets in metrics.families.items():
        if not family.startswith("gpurental_"):
            continue
        for labels in label_sets:
            assert labels <= BOUNDED_LABELS, f"{family}: unbounded labels {labels}"
    for (sample, labels), _ in metrics.samples.items():
        if sample.startswith("gpurental_"):
            assert not {value for _, value in labels} & names, f"{sample} names a rental"
            assert all(len(value) <= 63 for _, value in labels)


def consistent_reading(rentals: Rentals, url: str, name: str, offer: str) -> tuple[int, float]:
    """(the rental's charge, the counter) read with no status write in between."""
    first = charged(rentals.status(name))
    counter = scrape(url).value("gpurental_charged_cents_total", namespace=rentals.namespace,
                                offer=offer)
    assert counter is not None, "no charged-cents series yet"
    assert charged(rentals.status(name)) == first, "status moved during the scrape"
    return first, counter


def test_charged_cents_grow_with_charges_and_never_count_a_restarts_baseline(
        rentals: Rentals, operator: OperatorProcess) -> None:
    url = operator.metrics_url
    rentals.create("burner", offer="pricey")  # 10 cents a second, unbudgeted
    rentals.wait_phase("burner", "Running")

    def charged_since_start() -> tuple[int, float]:
        cents, counter = consistent_reading(rentals, url, "burner", "pricey")
        assert cents >= 30
        # Created after this operator started: its whole charge is session spend.
        assert counter == cents
        return cents, counter
    eventually(charged_since_start, timeout=60)

    operator.restart()

    def counting_again() -> tuple[int, float]:
        cents, counter = consistent_reading(rentals, url, "burner", "pricey")
        assert counter > 0
        return cents, counter
    cents, counter = eventually(counting_again, timeout=60)
    assert counter < cents, "the restart counted the rental's earlier charge as session spend"

    def grew() -> None:
        later_cents, later_counter = consistent_reading(rentals, url, "burner", "pricey")
        assert later_cents >= cents + 30
        assert later_counter - counter == later_cents - cents
    eventually(grew, timeout=60)

    rentals.patch("burner", state="Stopped")
    final = charged(rentals.wait_phase("burner", "Stopped"))
    eventually(lambda: consistent_reading(rentals, url, "burner", "pricey")[1]
               == counter + final - cents, timeout=30)
