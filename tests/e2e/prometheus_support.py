"""A real Prometheus (Debian's `prometheus`, via `make tools`) scraping the session operator.

Owns the Prometheus process only: its temp config and data directory, its free port, and
PromQL queries over its HTTP API. It scrapes every second and evaluates the chart's alert
rules, with `for:` of the alerts a test waits on shortened (see `alert_rules`).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import requests
import yaml

from gpurental_dev.cluster import ROOT, free_port

PROMETHEUS = ROOT / ".tools" / "bin" / "prometheus"
ALERTS = ROOT / "charts" / "gpu-rental-operator" / "files" / "alerts.yaml"
JOB = "gpu-rental-operator"


def alert_rules(shortened: dict[str, str]) -> dict[str, Any]:
    """The chart's rules file as is, but with `for:` of the named alerts replaced: a test
    cannot wait out a production hold-off under load."""
    rules = yaml.safe_load(ALERTS.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") in shortened:
                rule["for"] = shortened[rule["alert"]]
    return dict(rules)


class Prometheus:
    def __init__(self, workdir: Path, target: str, rules: dict[str, Any]) -> None:
        if not PROMETHEUS.exists():
            raise AssertionError(f"{PROMETHEUS} is missing: run `make tools`")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (workdir / "alerts.yaml").write_text(yaml.safe_dump(rules))
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s",
                       "scrape_timeout": "1s"},
            "rule_files": [str(workdir / "alerts.yaml")],
            "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [target]}]}],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = workdir / "prometheus.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(PROMETHEUS), f"--config.file={workdir / 'prometheus.yml'}",
                 f"--storage.tsdb.path={workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log.read_text()[-2000:]}")
            try:
                if requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise TimeoutError("prometheus did not become ready")

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = requests.get(f"{self.url}/api/v1/query", params={"query": promql},
                                timeout=30)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def scalar(self, promql: str) -> float | None:
        """The value of a one-series result, or None when there is no series."""
        result = self.query(promql)
        assert len(result) <= 1, f"{promql}: {result}"
        return float(result[0]["value"][1]) if result else None

    def alerts(self) -> list[dict[str, Any]]:
        response = requests.get(f"{self.url}/api/v1/alerts", timeout=30)
        response.raise_for_status()
        return list(response.json()["data"]["alerts"])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
