"""An Event the server gave no answer for is tried again, under the name it was first sent
with: a dropped connection does not erase the record, and a lost answer to a create that
was applied does not post a twin. A refusal is final. Driven over real HTTP against a
server scripted per request."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import kubernetes
import pytest

from gpurental import events
from gpurental.clock import ManualClock
from gpurental.events import EventPoster
from gpurental.k8s import Kube
from gpurental.lifecycle import Event
from gpurental.observed import RentalView

DROP = "drop"  # close the connection, nothing applied
APPLY_AND_DROP = "apply-and-drop"  # store the Event, then close without answering
REFUSE = "refuse"  # 422, nothing applied
ANSWER = "answer"  # 201, or 409 for a name already stored


@dataclass
class EventServer:
    """Answers event creates as the script says, one entry per request (then ANSWER)."""

    script: Iterator[str]
    names_sent: list[str] = field(default_factory=list)
    stored: list[str] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        name = json.loads(await reader.readexactly(length))["metadata"]["name"]
        self.names_sent.append(name)
        step = next(self.script, ANSWER)
        if step in (APPLY_AND_DROP, ANSWER) and name not in self.stored:
            self.stored.append(name)
            status = "201 Created"
        else:
            status = "409 Conflict" if step == ANSWER else "422 Unprocessable Entity"
        if step not in (DROP, APPLY_AND_DROP):
            body = b"{}"
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            await writer.drain()
        writer.close()


def post_one(script: list[str], requests: int) -> EventServer:
    """Queue one Event, run the poster until the server saw `requests` requests (and a
    moment more, for any request that should not come), and return what it saw."""
    server = EventServer(iter(script))
    view = RentalView(namespace="team-a", name="job", uid="u1", generation=1, deleting=False,
                      finalizers=(), spec={})

    async def run() -> None:
        listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        port = listening.sockets[0].getsockname()[1]
        kube = Kube(kubernetes.client.Configuration(host=f"http://127.0.0.1:{port}"))
        poster = EventPoster(kube, ManualClock(), "test_1", retry_after=0.01)
        posting = asyncio.create_task(poster.run())
        poster.post(view, [Event("Normal", "Running", "pod job is running")])
        async with asyncio.timeout(10):
            while len(server.names_sent) < requests:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        posting.cancel()
        await kube.close()
        listening.close()

    asyncio.run(run())
    return server


def test_dropped_connections_are_tried_again_until_the_event_is_posted() -> None:
    server = post_one([DROP, DROP], requests=3)
    assert len(server.names_sent) == 3
    assert len(set(server.names_sent)) == 1 and server.names_sent[0].startswith("job.")
    assert server.stored == server.names_sent[:1]


def test_a_lost_answer_to_an_applied_create_posts_no_twin(
        caplog: pytest.LogCaptureFixture) -> None:
    server = post_one([APPLY_AND_DROP], requests=2)
    assert len(server.names_sent) == 2  # the second try met 409 and stopped there
    assert server.stored == server.names_sent[:1]
    assert "could not post" not in caplog.text  # the 409 is the earlier try's success


def test_a_refused_event_is_not_tried_again(caplog: pytest.LogCaptureFixture) -> None:
    server = post_one([REFUSE], requests=1)
    assert len(server.names_sent) == 1
    assert server.stored == []
    assert "could not post Event Running" in caplog.text


def test_a_server_that_never_answers_is_given_up_on_after_client_gos_twelve_tries() -> None:
    server = post_one([DROP] * 50, requests=events.TRIES)
    assert events.TRIES == 12
    assert len(server.names_sent) == 12
    assert server.stored == []
