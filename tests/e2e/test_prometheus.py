"""A real Prometheus scrapes the session operator: PromQL answers must match the rentals' and
wallets' status, and the chart's alert rules must fire on a real exhausted wallet.

The chart's rules file is loaded as is except GpuRentalWalletExhausted's `for: 1m`, shortened
to 3s so that the test does not wait out a production hold-off (see prometheus_support)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from e2e_support import GROUP, VERSION, Rentals, eventually
from metrics_support import charged, wallet, wallet_status
from prometheus_support import JOB, Prometheus, alert_rules

from gpurental_dev.cluster import OperatorProcess

# Prometheus stores floats; dollars and cents are compared to the exact Decimal with this slack.
FLOAT_SLACK = 1e-9


@pytest.fixture(scope="module")
def prometheus(operator: OperatorProcess,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    workdir: Path = tmp_path_factory.mktemp("prometheus")
    server = Prometheus(workdir, f"127.0.0.1:{operator.port}",
                        alert_rules({"GpuRentalWalletExhausted": "3s"}))
    try:
        server.wait_ready()
        eventually(lambda: server.scalar(f'up{{job="{JOB}"}}') == 1, timeout=60)
        yield server
    finally:
        server.stop()


def running_rates(rentals: Rentals) -> list[Decimal]:
    items = rentals.custom.list_namespaced_custom_object(
        GROUP, VERSION, rentals.namespace, "gpurentals")["items"]
    return [Decimal(r["status"]["ratePerHour"]) for r in items
            if (r.get("status") or {}).get("phase") == "Running"]


def test_burn_active_wallets_and_spend_match_status(rentals: Rentals,
                                                    prometheus: Prometheus) -> None:
    ns = rentals.namespace
    wallet(rentals, "team", "100.00")
    wallet(rentals, "lab", "50.00")
    rentals.create("train", wallet="team")
    rentals.create("burner", offer="pricey", wallet="team")  # 10 cents a second
    rentals.create("mig", offer="a100-mig", wallet="lab")
    rentals.create("parked", state="Paused", wallet="lab")
    for name in ("train", "burner", "mig"):
        rentals.wait_phase(name, "Running")

    expected_burn = sum(running_rates(rentals), Decimal(0))
    assert expected_burn == Decimal("0.69") + Decimal("360.00") + Decimal("0.40")

    def gauges_converged() -> None:
        burn = prometheus.scalar(f'sum(gpurental_hourly_burn_dollars{{namespace="{ns}"}})')
        assert burn is not None and abs(burn - float(expected_burn)) < FLOAT_SLACK, burn
        assert prometheus.scalar(f'sum(gpurental_active_rentals{{namespace="{ns}"}})') == 3
    eventually(gauges_converged, timeout=60)

    # While "burner" runs the wallet moves every metering interval: Prometheus must hold a
    # value the wallet's status really had, within the scrape lag.
    seen: set[int] = set()

    def wallet_scraped_as_it_was() -> None:
        seen.add(wallet_status(rentals, "team")["remainingCents"])
        scraped = prometheus.scalar(
            f'gpurental_wallet_remaining_cents{{namespace="{ns}",wallet="team"}}')
        assert scraped is not None and int(scraped) in seen, (scraped, sorted(seen))
        assert len(seen) >= 3, "the wallet has not moved yet"
    eventually(wallet_scraped_as_it_was, timeout=60, interval=0.2)

    # Spend grows as the rentals are charged: rate and increase over 20 s against their rates
    # (the counter moves in 20-cent steps at each 2 s heartbeat, hence the wide slack).
    def spend_rate_matches_burn() -> tuple[float, float]:
        # A series younger than the window makes rate() under-extrapolate: wait until it
        # reaches past the window's start.
        samples = prometheus.scalar(f'count_over_time(gpurental_charged_cents_total'
                                    f'{{namespace="{ns}",offer="pricey"}}[30s])')
        assert samples is not None and samples >= 27, samples
        per_second = prometheus.scalar(
            f'sum(rate(gpurental_charged_cents_total{{namespace="{ns}"}}[20s]))')
        increase = prometheus.scalar(
            f'sum(increase(gpurental_charged_cents_total{{namespace="{ns}"}}[20s]))')
        assert per_second is not None and increase is not None
        dollars_per_hour = per_second * 3600 / 100
        assert abs(dollars_per_hour - float(expected_burn)) < 0.25 * float(expected_burn), \
            dollars_per_hour
        expected_cents = float(expected_burn) * 100 / 3600 * 20
        assert abs(increase - expected_cents) < 0.25 * expected_cents, increase
        return dollars_per_hour, increase
    rate, increase = eventually(spend_rate_matches_burn, timeout=60, interval=1)
    print(f"\nwhile burning: rate = ${rate:.2f}/h, increase[20s] = {increase:.1f} cents; "
          f"status: ${expected_burn}/h, {expected_burn * 100 / 180:.1f} cents per 20s; "
          f"wallet values seen {len(seen)}, Prometheus held one of them")

    for name in ("train", "burner", "mig"):
        rentals.patch(name, state="Paused")
    charges = {name: charged(rentals.wait_phase(name, "Paused"))
               for name in ("train", "burner", "mig", "parked")}

    def settled_everywhere() -> None:
        assert prometheus.scalar(f'sum(gpurental_hourly_burn_dollars{{namespace="{ns}"}})') \
            in (None, 0)
        assert prometheus.scalar(f'sum(gpurental_active_rentals{{namespace="{ns}"}})') in (None, 0)
        spend = prometheus.scalar(f'sum(gpurental_charged_cents_total{{namespace="{ns}"}})')
        assert spend == sum(charges.values()), (spend, charges)
        remaining = {w: wallet_status(rentals, w)["remainingCents"] for w in ("team", "lab")}
        total = prometheus.scalar(f'sum by (namespace) '
                                  f'(gpurental_wallet_remaining_cents{{namespace="{ns}"}})')
        assert total == sum(remaining.values()), (total, remaining)
        for name, cents in remaining.items():
            assert prometheus.scalar(f'gpurental_wallet_remaining_cents'
                                     f'{{namespace="{ns}",wallet="{name}"}}') == cents
    eventually(settled_everywhere, timeout=60, interval=0.5)
    print(f"settled: Prometheus == status exactly: charges {charges}")


def test_wallet_exhausted_alert_fires(rentals: Rentals, prometheus: Prometheus) -> None:
    ns = rentals.namespace
    wallet(rentals, "tiny", "0.50")  # five seconds of "pricey"
    rentals.create("spender", offer="pricey", wallet="tiny")
    rentals.wait_phase("spender", "Paused", timeout=90)
    # The rental pauses at the exhaustion moment it scheduled itself; the wallet's own status
    # write of that moment is another queue's pass and may land a moment later.
    eventually(lambda: wallet_status(rentals, "tiny")["remainingCents"] <= 0)
    started = time.monotonic()

    def firing() -> dict[str, object]:
        alerts = [a for a in prometheus.alerts()
                  if a["labels"].get("alertname") == "GpuRentalWalletExhausted"
                  and a["labels"].get("namespace") == ns]
        assert alerts, "no GpuRentalWalletExhausted alert for the namespace yet"
        assert alerts[0]["state"] == "firing", alerts[0]["state"]
        return dict(alerts[0])
    alert = eventually(firing, timeout=60, interval=0.5)
    assert alert["labels"]["wallet"] == "tiny"
    assert alert["labels"]["severity"] == "critical"
    assert f"{ns}/tiny" in alert["annotations"]["summary"]
    print(f"\nGpuRentalWalletExhausted firing {time.monotonic() - started:.1f}s after the pause")
