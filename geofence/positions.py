"""Columnar position batches: the unit of work on the hot path.

Decoders produce :class:`PositionBatch` objects (one numpy array per field)
instead of one Python object per report, so the fence index, geodesy and rule
state can work on whole micro-batches. Coordinates are (lon, lat) degrees WGS84,
times UTC epoch seconds, speeds knots; a missing optional value is NaN.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "EventKind",
    "PositionBatch",
    "StaticReport",
    "SubjectKind",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
Obj = npt.NDArray[np.object_]


class SubjectKind(enum.IntEnum):
    """What a tracked subject is; stored as uint8 in batches."""

    VESSEL = 0
    CONTAINER = 1

    @property
    def label(self) -> str:
        """The lower-case name used in alerts and JSONL (``vessel``/``container``)."""
        return self.name.lower()


class EventKind(enum.IntEnum):
    """An event attached to a position report; stored as uint8 in batches."""

    NONE = 0
    RELEASE = 1  # customs release of a container (ingest issue)


@dataclass(frozen=True, slots=True)
class PositionBatch:
    """A micro-batch of position reports, one array per field, all of equal length.

    Attributes
    ----------
    subject_id
        Object array of ``str``: MMSI, container id or any feed id, always a string.
    ts_s
        UTC epoch seconds (float64).
    lon_deg, lat_deg
        WGS84 degrees, validated finite and in range by the decoders.
    sog_kn, cog_deg, heading_deg
        Reported speed/course/heading; NaN when absent or "not available".
    kind
        :class:`SubjectKind` codes.
    carrier_id
        For containers, the declared carrier vessel's id; ``""`` otherwise.
    event
        :class:`EventKind` codes.
    event_zone
        Zone id the event applies to; ``""`` when none is named.
    receiver
        Receiving station or source name (tag-block ``s:``); ``""`` unknown.
    source
        Name of the input the record came from (file path, URL).
    line
        1-based line number (or byte offset for streams) within ``source``.
    """

    subject_id: Obj
    ts_s: F64
    lon_deg: F64
    lat_deg: F64
    sog_kn: F64
    cog_deg: F64
    heading_deg: F64
    kind: U8
    carrier_id: Obj
    event: U8
    event_zone: Obj
    receiver: Obj
    source: Obj
    line: I64

    def __len__(self) -> int:
        return int(self.ts_s.shape[0])

    @classmethod
    def empty(cls) -> PositionBatch:
        """Return a batch with no rows."""
        return cls.from_columns(subject_id=[], ts_s=[], lon_deg=[], lat_deg=[])

    @classmethod
    def from_columns(
        cls,
        *,
        subject_id: Sequence[str] | Obj,
        ts_s: Sequence[float] | F64,
        lon_deg: Sequence[float] | F64,
        lat_deg: Sequence[float] | F64,
        sog_kn: Sequence[float] | F64 | None = None,
        cog_deg: Sequence[float] | F64 | None = None,
        heading_deg: Sequence[float] | F64 | None = None,
        kind: Sequence[int] | U8 | None = None,
        carrier_id: Sequence[str] | Obj | None = None,
        event: Sequence[int] | U8 | None = None,
        event_zone: Sequence[str] | Obj | None = None,
        receiver: Sequence[str] | Obj | None = None,
        source: Sequence[str] | Obj | None = None,
        line: Sequence[int] | I64 | None = None,
    ) -> PositionBatch:
        """Build a batch from columns, filling absent optional columns with their defaults."""
        n = len(ts_s)

        def f64(v: Any) -> F64:
            return np.full(n, np.nan) if v is None else np.asarray(v, dtype=np.float64)

        def obj(v: Any, fill: str = "") -> Obj:
            if v is None:
                out = np.empty(n, dtype=object)
                out[:] = fill
                return out
            arr = np.empty(n, dtype=object)
            arr[:] = list(v) if not isinstance(v, np.ndarray) else v
            return arr

        def u8(v: Any) -> U8:
            return np.zeros(n, dtype=np.uint8) if v is None else np.asarray(v, dtype=np.uint8)

        return cls(
            subject_id=obj(subject_id),
            ts_s=np.asarray(ts_s, dtype=np.float64),
            lon_deg=np.asarray(lon_deg, dtype=np.float64),
            lat_deg=np.asarray(lat_deg, dtype=np.float64),
            sog_kn=f64(sog_kn),
            cog_deg=f64(cog_deg),
            heading_deg=f64(heading_deg),
            kind=u8(kind),
            carrier_id=obj(carrier_id),
            event=u8(event),
            event_zone=obj(event_zone),
            receiver=obj(receiver),
            source=obj(source),
            line=np.zeros(n, dtype=np.int64) if line is None else np.asarray(line, dtype=np.int64),
        )

    def take(self, index: npt.ArrayLike) -> PositionBatch:
        """Return the rows selected by an integer index or boolean mask, as a new batch."""
        return PositionBatch(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @classmethod
    def concat(cls, batches: Sequence[PositionBatch]) -> PositionBatch:
        """Concatenate batches row-wise."""
        if not batches:
            return cls.empty()
        return cls(
            **{
                f.name: np.concatenate([getattr(b, f.name) for b in batches])
                for f in fields(cls)
            }
        )


@dataclass(frozen=True, slots=True)
class StaticReport:
    """Static and voyage data of a vessel (AIS types 5 and 24).

    Any field may be ``None`` when the message does not carry it; type 24
    arrives in two parts (A: name; B: type, dimensions).
    """

    subject_id: str
    ts_s: float | None
    name: str | None = None
    ship_type: int | None = None
    length_m: float | None = None
    beam_m: float | None = None
    destination: str | None = None
    eta: str | None = None
    imo: int | None = None
    callsign: str | None = None
