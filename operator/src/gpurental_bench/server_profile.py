"""Where kube-apiserver's CPU goes over a steady window: its own pprof profile, summarised.

kube-apiserver serves `/debug/pprof/profile` (`--profiling`, on by default) to an
administrator; the bench fetches one over the largest level's window with `--profile` on the
real control plane and sums it by stage of a request with `go tool pprof` (the Go toolchain
that built the control plane). The stages are cumulative and overlap (a status write's
decoding is inside the status write): they say what a write costs, not a partition.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from gpurental_dev.k8s import binary

from .api import Api

# (what a platform engineer reads, a frame every sample of that stage passes through)
STAGES = (
    ("a custom resource's /status write", "customresource.(*StatusREST).Update"),
    ("  of which the patch applied and decoded", "(*defaultUpdatedObjectInfo).UpdatedObject"),
    ("  of which validation", "rest.ValidateUpdate"),
    ("  of which managedFields", "(*FieldManager).UpdateNoErrors"),
    ("objects encoded to JSON (stored, answered)", "versioning.(*codec).doEncode"),
    ("every request's authentication (client certificates verified)",
     "(*unionAuthRequestHandler).AuthenticateRequest"),
    ("watch events decoded for the watch cache", "etcd3.(*watchChan).transform"),
    ("objects encoded once for all watchers", "cacher.(*cachingObject).CacheEncode"),
    ("Go's garbage collector (background marking)", "runtime.gcBgMarkWorker"),
)


async def capture(api: Api, seconds: float, dest: Path) -> Path:
    """A CPU profile of kube-apiserver over the next `seconds`, written to `dest`."""
    raw = await api.raw(f"/debug/pprof/profile?seconds={max(int(seconds), 1)}",
                        timeout=seconds + 60)
    dest.write_bytes(raw)
    return dest


def summary(profile: Path, writes_per_s: float) -> list[str]:
    """Each stage's share of kube-apiserver's samples, and its CPU per operator write."""
    result = subprocess.run([binary.go(), "tool", "pprof", "-top", "-cum", "-nodecount=100000",
                             str(profile)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return [f"kube-apiserver profile: go tool pprof failed: {result.stderr.strip()[-300:]}"]
    total, duration, cumulative = parse_top(result.stdout)
    if not total or not duration:
        return ["kube-apiserver profile: no samples"]
    lines = [f"kube-apiserver profile: {total / duration:.3f} cores over {duration:.0f}s "
             f"({profile.name}); {1000 * total / duration / max(writes_per_s, 1e-9):.1f} ms "
             "of CPU per operator write"]
    for label, frame in STAGES:
        seconds = next((s for name, s in cumulative if frame in name), 0.0)
        lines.append(f"kube-apiserver profile: {100 * seconds / total:5.1f}% {label} "
                     f"({1000 * seconds / duration / max(writes_per_s, 1e-9):.2f} ms a write)")
    return lines


def parse_top(text: str) -> tuple[float, float, list[tuple[str, float]]]:
    """(samples' seconds, profile's duration, [(function, cumulative seconds)]) from the text
    of `go tool pprof -top -cum`."""
    total = duration = 0.0
    rows: list[tuple[str, float]] = []
    for line in text.splitlines():
        if line.startswith("Duration:"):
            # "Duration: 50.67s, Total samples = 50.51s (99.68%)"
            parts = line.replace(",", " ").split()
            duration = _seconds(parts[1])
            total = _seconds(parts[parts.index("=") + 1])
            continue
        fields = line.split(None, 5)
        if len(fields) == 6 and fields[0][0].isdigit() and fields[1].endswith("%"):
            rows.append((fields[5], _seconds(fields[3])))
    return total, duration, rows


def _seconds(text: str) -> float:
    """pprof's durations: "1.2s", "340ms", "12us", "1.5mins", "2hrs"."""
    for suffix, scale in (("mins", 60.0), ("hrs", 3600.0), ("ms", 1e-3), ("us", 1e-6),
                          ("ns", 1e-9), ("s", 1.0)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * scale
    return float(text)
