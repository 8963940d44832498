"""Reading the operator's /metrics as a test would read a dashboard: one namespace at a time.

A scrape is parsed with prometheus_client's own text parser into {(sample name, labels): value},
so tests compare series by name and label set, never by matching text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests
from e2e_support import GROUP, VERSION, Rentals
from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]


class Scrape:
    """One parsed scrape of the operator's /metrics."""

    def __init__(self, text: str) -> None:
        self.samples: dict[tuple[str, Labels], float] = {}
        self.families: dict[str, set[frozenset[str]]] = {}
        for family in text_string_to_metric_families(text):
            label_sets = self.families.setdefault(family.name, set())
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
                label_sets.add(frozenset(sample.labels))

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, frozenset(labels.items())))

    def series(self, name: str, **labels: str) -> Iterator[tuple[dict[str, str], float]]:
        """Samples of `name` whose labels include `labels`."""
        wanted = set(labels.items())
        for (sample, label_set), value in self.samples.items():
            if sample == name and wanted <= label_set:
                yield dict(label_set), value

    def total(self, name: str, **labels: str) -> float:
        return sum(value for _, value in self.series(name, **labels))


def scrape(url: str) -> Scrape:
    response = requests.get(url, timeout=30)
    response.raise_for_status()
    return Scrape(response.text)


def wallet(rentals: Rentals, name: str, budget: str) -> None:
    rentals.custom.create_namespaced_custom_object(GROUP, VERSION, rentals.namespace, "wallets", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Wallet", "metadata": {"name": name},
        "spec": {"budget": budget}})


def wallet_status(rentals: Rentals, name: str) -> dict[str, Any]:
    body = rentals.custom.get_namespaced_custom_object(GROUP, VERSION, rentals.namespace,
                                                       "wallets", name)
    return dict(body.get("status") or {})


def charged(status: dict[str, Any]) -> int:
    """What a rental's status says it has been charged: the meter less refunds."""
    return int(status.get("totalChargeCents") or 0) - int(status.get("refundedCents") or 0)
