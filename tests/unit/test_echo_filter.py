"""The echo of the operator's own write is recognised once; everything else is news."""

from __future__ import annotations

from gpurental.world import EchoFilter


def body(version: str, name: str = "r") -> dict[str, object]:
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": version}}


def test_the_echo_of_our_latest_write_is_recognised_once() -> None:
    echoes = EchoFilter()
    echoes.wrote(("ns", "r"), body("7"))
    assert echoes.is_echo(body("7"))
    assert not echoes.is_echo(body("7"))  # a replay after a relist is not swallowed twice


def test_a_newer_or_foreign_version_is_news() -> None:
    echoes = EchoFilter()
    echoes.wrote(("ns", "r"), body("7"))
    assert not echoes.is_echo(body("8"))  # somebody else wrote after us
    assert not echoes.is_echo(body("7", name="other"))
    echoes.forget(("ns", "r"))
    assert not echoes.is_echo(body("7"))
