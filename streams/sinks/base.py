"""The sink contract shared by every alert output.

A sink receives alert lines in output order, one micro-batch at a time. The
runner calls :meth:`Sink.flush` after each batch and writes a checkpoint only
after every sink's flush has returned, so ``flush`` must make the batch
*durable*: delivered, committed, or spooled to disk. That is what makes the
embedded runner at-least-once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from geofence.alerts import Alert

__all__ = ["Sink"]


@runtime_checkable
class Sink(Protocol):
    """An alert output (stdout, JSONL file, SQLite store, Kafka topic, webhook)."""

    name: str

    async def start(self) -> None:
        """Open files, connections or producers; deliver anything left from a previous run."""
        ...

    async def write(self, alerts: Sequence[Alert]) -> None:
        """Accept one micro-batch of alert lines (in output order)."""
        ...

    async def flush(self) -> None:
        """Make everything written so far durable (delivered, committed or spooled)."""
        ...

    async def close(self) -> None:
        """Flush and release resources; idempotent."""
        ...
