"""A fake DCGM exporter the test controls, and a real Prometheus scraping it.

The exporter serves real Prometheus exposition text with dcgm-exporter's metric names and
labels (gpu, UUID, modelName, Hostname, namespace, pod, container: what it sets with pod
mapping on). Prometheus is Debian's binary, on 127.0.0.1 with its own config and data dir.
"""

from __future__ import annotations

import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from gpurental_dev.cluster import ROOT, free_port

PROMETHEUS = ROOT / ".tools" / "bin" / "prometheus"
GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"
ENGINE_ACTIVE = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"


@dataclass
class PodGpus:
    """What the exporter reports for one pod's GPUs; `present` may hide the series."""

    namespace: str
    pod: str
    util: float = 0.0  # DCGM_FI_DEV_GPU_UTIL, percent
    engine_active: float = 0.0  # DCGM_FI_PROF_GR_ENGINE_ACTIVE, 0-1
    gpus: int = 1
    present: Callable[[], bool] = lambda: True


class FakeDcgmExporter:
    def __init__(self) -> None:
        self.pods: dict[tuple[str, str], PodGpus] = {}
        self.down = False  # answer 503: a failed scrape, every series goes stale
        self.lock = threading.Lock()
        self.port = free_port()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if exporter.down:
                    self.send_error(503, "DCGM unavailable")
                    return
                body = exporter.exposition().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def set(self, gpus: PodGpus) -> None:
        with self.lock:
            self.pods[(gpus.namespace, gpus.pod)] = gpus

    def exposition(self) -> str:
        lines = {GPU_UTIL: [f"# HELP {GPU_UTIL} GPU utilization (in %).",
                            f"# TYPE {GPU_UTIL} gauge"],
                 ENGINE_ACTIVE: [f"# HELP {ENGINE_ACTIVE} Ratio of time the graphics engine "
                                 "is active.", f"# TYPE {ENGINE_ACTIVE} gauge"]}
        with self.lock:
            pods = list(self.pods.values())
        for index, pod in enumerate(pods):
            if not pod.present():
                continue
            for gpu in range(pod.gpus):
                labels = (f'gpu="{gpu}",UUID="GPU-{index:04d}-{gpu:04d}",'
                          f'modelName="NVIDIA A100-SXM4-80GB",Hostname="gpu-node-0",'
                          f'container="main",namespace="{pod.namespace}",pod="{pod.pod}"')
                lines[GPU_UTIL].append(f"{GPU_UTIL}{{{labels}}} {pod.util}")
                lines[ENGINE_ACTIVE].append(f"{ENGINE_ACTIVE}{{{labels}}} {pod.engine_active}")
        return "\n".join(lines[GPU_UTIL] + lines[ENGINE_ACTIVE]) + "\n"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class PrometheusProcess:
    """Debian's Prometheus scraping `target` every second."""

    def __init__(self, workdir: Path, target: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: dcgm\n"
            f"    static_configs: [{{targets: ['{target}']}}]\n")
        self.log = open(workdir / "prometheus.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [str(PROMETHEUS), f"--config.file={config}",
             f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError("prometheus did not become ready")

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
