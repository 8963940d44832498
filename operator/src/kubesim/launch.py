"""Starting the emulator as a subprocess (its own GIL) and waiting until it is ready."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType


class Emulator:
    """A running `python -m kubesim serve`; stop() or leave the `with` block to end it."""

    def __init__(self, process: subprocess.Popen[str], url: str, kubeconfig: Path) -> None:
        self.process = process
        self.url = url
        self.kubeconfig = kubeconfig

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def start_emulator(workdir: Path, *, port: int = 0, extra_args: tuple[str, ...] | list[str] = (),
                   timeout: float = 60.0) -> Emulator:
    """Spawn the server, wait for its ready line, return the handle."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    kubeconfig = workdir / "kubeconfig"
    log = open(workdir / "kubesim.log", "w")  # noqa: SIM115 - handed to the child process
    src = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, "-m", "kubesim", "serve", "--port", str(port),
           "--kubeconfig", str(kubeconfig), *extra_args]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    log.close()
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(process.stdout.readline()
                                                         if process.stdout else ""),
                              daemon=True)
    reader.start()
    reader.join(timeout)
    if not line or not line[0].strip():
        process.kill()
        process.wait()
        raise RuntimeError(f"kubesim did not start; see {workdir / 'kubesim.log'}")
    ready = json.loads(line[0])
    return Emulator(process, ready["url"], Path(ready["kubeconfig"]))
