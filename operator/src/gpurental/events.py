"""Posting a plan's Events on its rental, from the workers.

kopf.event() finds its poster through context variables that kopf sets only while it
processes a watch event; the workers run outside any such context, so they post inside a
copy of the first handler's context (captured when the first key is queued).
"""

from __future__ import annotations

import contextvars
import logging

import kopf

from gpurental.constants import API_VERSION
from gpurental.lifecycle import Event
from gpurental.observed import RentalView

log = logging.getLogger(__name__)


class EventPoster:
    def __init__(self) -> None:
        self._context: contextvars.Context | None = None

    def capture(self) -> None:
        """Called from kopf's handlers: the first call keeps their context for posting."""
        if self._context is None:
            self._context = contextvars.copy_context()

    def post(self, view: RentalView, events: tuple[Event, ...] | list[Event]) -> None:
        if not events:
            return
        ref = kopf.Body({"apiVersion": API_VERSION, "kind": "GpuRental",
                         "metadata": {"name": view.name, "namespace": view.namespace,
                                      "uid": view.uid}})
        for event in events:
            log.info("%s/%s: %s %s", view.namespace, view.name, event.reason, event.message)
            if self._context is not None:
                self._context.run(kopf.event, ref, type=event.type, reason=event.reason,
                                  message=event.message)
