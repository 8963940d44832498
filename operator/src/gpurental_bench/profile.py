"""Where the operator's CPU goes during a steady-state window: py-spy, summarised.

`py-spy record --nonblocking` samples the operator process from outside (it never pauses it,
so the stop latencies measured meanwhile are not the profiler's); its collapsed stacks are
summed by leaf frame (self time) and by the package each stack spends its time in.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

# A stack's time is charged to the innermost of these found from its leaf up: JSON decoding
# called by kopf's watch is kopf's, the operator's handler called by kopf is the operator's.
PACKAGES = (("gpurental/", "operator (gpurental)"), ("kopf/", "kopf"),
            ("kubernetes/", "kubernetes client"), ("urllib3/", "kubernetes client"),
            ("aiohttp/", "aiohttp"))


def py_spy() -> str | None:
    found = Path(sys.executable).parent / "py-spy"
    return str(found) if found.exists() else shutil.which("py-spy")


def start(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    exe = py_spy()
    if exe is None:
        return None
    return subprocess.Popen(
        [exe, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "100",
         "--nonblocking", "--format", "raw", "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summary(raw: Path, top: int = 8) -> list[str]:
    """Self time by leaf frame and total by package, as percentages of all samples."""
    if not raw.exists():
        return ["profile: py-spy recorded nothing (on this machine it intermittently cannot "
                "read the Python version of a running process)"]
    leaves: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames, n = stack.split(";"), int(count)
        total += n
        leaves[_short(frames[-1])] += n
        packages[_package(frames)] += n
    if not total:
        return ["profile: no samples"]
    lines = [f"profile: {total} samples; by package: " + ", ".join(
        f"{name} {100 * n / total:.0f}%" for name, n in packages.most_common())]
    lines += [f"profile: self {100 * n / total:4.1f}% {frame}"
              for frame, n in leaves.most_common(top)]
    return lines


def _package(frames: list[str]) -> str:
    for frame in reversed(frames):
        for marker, name in PACKAGES:
            if marker in frame:
                return name
    return "event loop, gc and other"


def _short(frame: str) -> str:
    # py-spy frames read "function (path/to/module.py:line)".
    function, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{function} ({'/'.join(path.split('/')[-2:])})"
