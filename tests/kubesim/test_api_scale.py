"""Holding 30,000 objects: lists stay complete, watch history stays bounded, resuming a watch
replays only the tail (in-process store, so the test is quick and not timing-dependent)."""

from __future__ import annotations

import asyncio

from kubesim.resources import ResourceType
from kubesim.store import Store
from kubesim.watch import Watcher

OBJECTS = 30_000


def _filled(history: int) -> tuple[Store, ResourceType]:
    store = Store(history_size=history)
    namespaces = store.registry.get("", "v1", "namespaces")
    configmaps = store.registry.get("", "v1", "configmaps")
    assert namespaces is not None and configmaps is not None
    store.create(namespaces, "", {"metadata": {"name": "big"}})
    for i in range(OBJECTS):
        store.create(configmaps, "big", {"metadata": {"name": f"cm-{i:05d}",
                                                      "labels": {"shard": str(i % 10)}},
                                         "data": {"k": "v" * 100}})
    return store, configmaps


def test_thirty_thousand_objects_with_bounded_history():
    store, configmaps = _filled(history=5_000)
    coll = store.collection(configmaps)
    assert coll.count() == OBJECTS
    assert len(coll.history.events) == 5_000
    assert coll.history.since(1) is None  # compacted: a watch from here gets 410
    tail = coll.history.since(store.rv - 3)
    assert tail is not None and [e.rv for e in tail] == [store.rv - 2, store.rv - 1, store.rv]
    names = [s.obj["metadata"]["name"] for s in coll.iter("big")]
    assert len(names) == OBJECTS and names == sorted(names)


def test_fan_out_reaches_every_watcher_once():
    async def scenario() -> list[int]:
        store, configmaps = _filled(history=1_000)
        coll = store.collection(configmaps)
        watchers = [Watcher("big", None) for _ in range(20)]
        coll.history.watchers.update(watchers)
        store.create(configmaps, "big", {"metadata": {"name": "late"}})
        return [w.queue.qsize() for w in watchers]
    assert asyncio.run(scenario()) == [1] * 20
