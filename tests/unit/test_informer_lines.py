"""A watch stream's bytes into its events' lines, however the chunks fall."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from hypothesis import given
from hypothesis import strategies as st

from gpurental.informers import Resource, _lines

EVENTS = [b'{"type":"ADDED","object":{"metadata":{"name":"a"}}}',
          b'{"type":"MODIFIED","object":{"metadata":{"name":"\xc3\xa9"}}}',
          b'{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}}']


def lines_of(chunks: list[bytes]) -> list[bytes]:
    async def feed() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    async def collect() -> list[bytes]:
        return [line async for line in _lines(feed())]
    return asyncio.run(collect())


@given(st.lists(st.integers(min_value=0, max_value=200), max_size=12))
def test_every_line_comes_out_whole_wherever_the_chunks_are_cut(cuts: list[int]) -> None:
    data = b"\n".join(EVENTS) + b"\n"
    points = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert lines_of(chunks) == EVENTS


def test_blank_lines_are_skipped_and_a_cut_off_last_line_is_not_an_event() -> None:
    assert lines_of([EVENTS[0] + b"\n\n", b"\r\n", EVENTS[1][:10]]) == [EVENTS[0]]


def test_paths_of_namespaced_cluster_scoped_and_core_kinds() -> None:
    pods = Resource("", "v1", "pods", "Pod", label_selector="a=b")
    rentals = Resource("gpurental.dev", "v1alpha1", "gpurentals", "GpuRental")
    offers = Resource("gpurental.dev", "v1alpha1", "gpuoffers", "GpuOffer", namespaced=False)
    assert pods.path(None) == "/api/v1/pods"
    assert pods.path("team-a") == "/api/v1/namespaces/team-a/pods"
    assert pods.query() == {"labelSelector": "a=b"} and rentals.query() == {}
    assert rentals.path("t") == "/apis/gpurental.dev/v1alpha1/namespaces/t/gpurentals"
    assert offers.path("t") == "/apis/gpurental.dev/v1alpha1/gpuoffers"
