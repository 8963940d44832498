"""The kopf settings rest on the operator being level-based: no change-detecting handlers."""

from __future__ import annotations

import kopf

import gpurental.main  # noqa: F401  (registers the handlers)
from gpurental.main import LevelBasedDiffBase


def test_no_change_detecting_handlers_so_the_diff_base_may_stay_empty() -> None:
    registry = kopf.get_default_registry()
    # LevelBasedDiffBase builds an empty essence: a change handler would never see a change.
    assert list(registry._changing.get_all_handlers()) == []
    assert list(registry._watching.get_all_handlers())  # the event handlers are there


def test_the_diff_base_does_not_copy_the_object() -> None:
    storage = LevelBasedDiffBase(prefix="gpurental.dev")
    body = kopf.Body({"metadata": {"name": "r", "annotations": {"x": "y"}},
                      "spec": {"gpus": 1}, "status": {"phase": "Running"}})
    assert storage.build(body=body) == {}
    assert storage.fetch(body=body) is None  # nothing stored, nothing to compare with
