"""The interface every driver (embedded runner, faust worker, replay) uses to drive the core.

Drivers only move data: they decode input into :class:`~geofence.positions.PositionBatch`
micro-batches, hand them to an :class:`Engine`, and write what comes back. The
same engine therefore yields the same alerts in all three drivers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from geofence.alerts import Alert
from geofence.deadletter import DeadLetter
from geofence.fence import ZoneSet
from geofence.positions import PositionBatch, StaticReport

__all__ = ["Engine", "EngineOutput", "EngineStats"]


@dataclass(slots=True)
class EngineOutput:
    """What one call into the engine produced: alert lines in output order, and rejected records."""

    alerts: list[Alert] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class EngineStats:
    """Figures for the stats line and the run summary (event time, no wall clock)."""

    watermark_s: float | None
    max_event_ts_s: float | None
    open_alerts: int
    subjects: int
    positions: int
    late: int


class Engine(Protocol):
    """A deterministic, event-time alerting engine over one zone set."""

    def process(self, batch: PositionBatch) -> EngineOutput:
        """Ingest one micro-batch (input order matters, batch size must not)."""
        ...

    def add_statics(self, reports: Sequence[StaticReport]) -> None:
        """Update the static vessel registry (AIS types 5/24)."""
        ...

    def finish(self) -> EngineOutput:
        """End of input: fire timers up to the final watermark, never beyond."""
        ...

    def open_alerts(self) -> list[Alert]:
        """Alerts currently open (their last line), in output order."""
        ...

    def set_zones(self, zones: ZoneSet) -> None:
        """Swap the zone set (hot reload); later decisions carry its version."""
        ...

    def snapshot(self) -> bytes:
        """Serialise all state (subjects, timers, open alerts, reorder buffer)."""
        ...

    def stats(self) -> EngineStats:
        """Current figures."""
        ...
