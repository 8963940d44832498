"""The collector tuning: pauses are timed per generation, survivors freeze, a thaw unfreezes."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from gpurental import gc_tuning, metrics


@pytest.fixture
def tuned() -> Iterator[None]:
    thresholds, callbacks = gc.get_threshold(), list(gc.callbacks)
    gc_tuning.install()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        gc.callbacks[:] = callbacks


def _pauses(generation: str) -> float:
    for sample in metrics.GC_PAUSE.collect()[0].samples:
        if sample.name.endswith("_count") and sample.labels["generation"] == generation:
            return sample.value
    return 0.0


def test_every_collection_is_timed_by_its_generation(tuned: None) -> None:
    before = _pauses("2"), _pauses("0")
    gc.collect(2)
    gc.collect(0)
    assert _pauses("2") == before[0] + 1 and _pauses("0") == before[1] + 1
    gc_tuning.install()  # twice: still one timer
    assert sum(isinstance(cb, gc_tuning.PauseTimer) for cb in gc.callbacks) == 1


def test_survivors_freeze_and_a_thaw_unfreezes(tuned: None) -> None:
    cache = [{"status": {"phase": "Running"}} for _ in range(1000)]
    gc_tuning.freeze_survivors()
    assert gc.get_freeze_count() >= len(cache)
    assert gc.get_count()[0] < 100  # the young generation starts (nearly) empty after a freeze
    gc_tuning.thaw()
    assert gc.get_freeze_count() == 0
