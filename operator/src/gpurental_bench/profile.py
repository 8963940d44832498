"""Where the operator's CPU goes over a bench run: py-spy's stacks, summarised.

The operator runs under `py-spy record --nonblocking` (it samples from outside and never
pauses the process, so the latencies measured meanwhile are not the profiler's); its collapsed
stacks are summed by leaf frame (self time) and by the package each sample is spent in.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

# A stack's time is charged to the innermost of these found from its leaf up: JSON decoding
# called by the operator's informers is the operator's, urllib3 called by the client is the
# client's.
PACKAGES = (("gpurental/", "operator (gpurental)"), ("kopf/", "kopf"),
            ("kubernetes/", "kubernetes client"), ("urllib3/", "kubernetes client"),
            ("aiohttp/", "aiohttp"))


def summary(raw: Path, top: int = 8) -> list[str]:
    """Self time by leaf frame and total by package, as percentages of all samples."""
    if not raw.exists():
        return ["profile: py-spy recorded nothing"]
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


# The event loop's dispatch: what a stack holds above it is only the runner (kopf.run sits at
# the root of every sample), so a sample with no package below it is the loop's own (the
# selector, TLS reads, the callbacks' scheduling), not kopf's.
DISPATCH = ("_run (asyncio/events.py", "_run_once (asyncio/base_events.py")


def _package(frames: list[str]) -> str:
    for frame in reversed(frames):
        for marker, name in PACKAGES:
            if marker in frame:
                return name
        if any(marker in _short(frame) for marker in DISPATCH):
            break
    return "event loop, gc and other"


def _short(frame: str) -> str:
    # py-spy frames read "function (path/to/module.py:line)".
    function, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{function} ({'/'.join(path.split('/')[-2:])})"
