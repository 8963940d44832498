"""A hold: why a rental is kept below the state its spec asks for.

A value type of its own so the layers that judge (money: expiry and budgets; idle: unused
GPUs) and the state machine that applies their verdicts share it without importing each
other. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpurental.models import DesiredState


@dataclass(frozen=True)
class Hold:
    """Keeps a rental Paused or Stopped, with the reason and message its status shows."""

    state: DesiredState  # Paused or Stopped
    reason: str  # Expired | BudgetExhausted | Idle
    message: str
