"""The bench's profile summary charges each sample to the innermost package on its stack."""

from __future__ import annotations

from pathlib import Path

from gpurental_bench import profile

LOOP = "_run (asyncio/events.py:80)"
KOPF = "process_resource_event (kopf/_core/reactor/processing.py:96)"
RAW = "\n".join([
    f"{LOOP};{KOPF};cache_rental (gpurental/handlers/rentals.py:14);"
    "put_rental (gpurental/world.py:105) 30",
    f"{LOOP};{KOPF};loads (json/__init__.py:346) 30",
    "_bootstrap (threading.py:995);_run (gpurental/k8s.py:86);"
    "request (urllib3/poolmanager.py:443) 15",
    "select (selectors.py:468) 5",
    # The loop's own work under kopf's runner is the loop's, not kopf's.
    f"run (kopf/_core/reactor/running.py:81);run_forever (asyncio/base_events.py:607);"
    f"{LOOP};read (ssl.py:921) 10",
    "run (kopf/_core/reactor/running.py:81);_run_once (asyncio/base_events.py:1906) 10",
])


def test_samples_are_charged_to_the_innermost_known_package(tmp_path: Path) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_text(RAW)
    lines = profile.summary(raw)
    assert lines[0] == ("profile: 100 samples; by package: operator (gpurental) 30%, kopf 30%, "
                        "event loop, gc and other 25%, kubernetes client 15%")
    assert "profile: self 30.0% loads (json/__init__.py)" in lines
    assert "profile: self 30.0% put_rental (gpurental/world.py)" in lines


def test_an_empty_profile_says_so(tmp_path: Path) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_text("")
    assert profile.summary(raw) == ["profile: no samples"]


def test_a_profile_py_spy_never_wrote_says_so(tmp_path: Path) -> None:
    assert profile.summary(tmp_path / "missing.txt")[0].startswith("profile: py-spy recorded")
