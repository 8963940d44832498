"""The pass's copy of a rental's status: equal to the original, and sharing no dict or list
with it, so the steps that change the copy in place never change the cached status."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gpurental.lifecycle.draft import json_copy

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30)


def _containers(value: Any) -> list[int]:
    if isinstance(value, dict):
        return [id(value), *(i for item in value.values() for i in _containers(item))]
    if isinstance(value, list):
        return [id(value), *(i for item in value for i in _containers(item))]
    return []


@given(JSON)
def test_a_copy_is_equal_and_shares_no_container(document: Any) -> None:
    copied = json_copy(document)
    assert copied == document == copy.deepcopy(document)
    assert not set(_containers(copied)) & set(_containers(document))
