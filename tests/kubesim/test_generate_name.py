"""generateName: a generated name that is taken is generated again, as kube-apiserver's
generic store does (createWithGenerateNameRetry), not answered with 409 AlreadyExists.
In-process store: the emulator's random names are replayed by seeding its generator."""

from __future__ import annotations

import random

import pytest

from kubesim.errors import ApiError
from kubesim.resources import ResourceType
from kubesim.store import Store


def store_with_namespace() -> tuple[Store, ResourceType]:
    """A store holding namespace team-a, and its configmaps resource."""
    store = Store(history_size=100)
    configmaps = store.registry.get("", "v1", "configmaps")
    namespaces = store.registry.get("", "v1", "namespaces")
    assert configmaps is not None and namespaces is not None
    store.create(namespaces, "", {"metadata": {"name": "team-a"}})
    return store, configmaps


def test_a_generated_name_that_is_taken_is_generated_again() -> None:
    store, configmaps = store_with_namespace()
    random.seed(17)
    first = store.create(configmaps, "team-a", {"metadata": {"generateName": "cm-"}})
    random.seed(17)  # the next generated name is the one just taken
    second = store.create(configmaps, "team-a", {"metadata": {"generateName": "cm-"}})
    taken = first.obj["metadata"]["name"]
    assert second.obj["metadata"]["name"] != taken
    assert second.obj["metadata"]["name"].startswith("cm-")


def test_an_explicit_name_that_is_taken_is_refused() -> None:
    store, configmaps = store_with_namespace()
    store.create(configmaps, "team-a", {"metadata": {"name": "cm"}})
    with pytest.raises(ApiError) as refused:
        store.create(configmaps, "team-a", {"metadata": {"name": "cm"}})
    assert refused.value.code == 409
