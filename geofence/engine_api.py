"""The interface every driver (embedded runner, faust worker, replay) uses to drive the core.

Drivers only move data: they decode input into :class:`~geofence.positions.PositionBatch`
micro-batches, hand them to an :class:`Engine`, and write what comes back. The
same engine therefore yields the same alerts in all three drivers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from geofence.alerts import Alert
from geofence.deadletter import DeadLetter
from geofence.fence import ZoneSet
from geofence.positions import PositionBatch, StaticReport

__all__ = ["EncounterRows", "Engine", "EngineOutput", "EngineStats"]


@dataclass(frozen=True, slots=True)
class EncounterRows:
    """The vessel rows an engine's detectors saw, in processing order (for an encounter stage outside it).

    A partitioned deployment runs the encounter rule on rows of every partition
    (``streams.encounter_stage``): each engine hands out the rows its own detectors
    were fed, with the speed they used (reported SOG, or the derived one) and whether
    the row lay in a mooring zone (port, berth, anchorage).
    """

    subject_id: npt.NDArray[np.object_]
    eff_s: npt.NDArray[np.float64]
    lon_deg: npt.NDArray[np.float64]
    lat_deg: npt.NDArray[np.float64]
    speed_kn: npt.NDArray[np.float64]
    mooring: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.eff_s.size)

    @classmethod
    def concat(cls, parts: Sequence[EncounterRows]) -> EncounterRows:
        """The rows of ``parts`` one after the other."""
        if len(parts) == 1:
            return parts[0]
        cols: list[Any] = [np.concatenate([getattr(p, f) for p in parts]) for f in _ROW_FIELDS]
        return cls(*cols)


_ROW_FIELDS = ("subject_id", "eff_s", "lon_deg", "lat_deg", "speed_kn", "mooring")


@dataclass(slots=True)
class EngineOutput:
    """What one call into the engine produced: alert lines in output order, and rejected records.

    ``encounter_rows`` is set only by an engine asked for them (``Engine(..., encounter_rows=True)``),
    and then to the rows its detectors saw during the call (None when there were none).
    """

    alerts: list[Alert] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    encounter_rows: EncounterRows | None = None


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
