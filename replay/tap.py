"""Taps on the runner's path: what the engine saw, for the report, the statistics and learning.

:class:`TapEngine` wraps the real engine and is handed to ``streams.runner.run``
in its place. It forwards every call unchanged (so the alerts are exactly the
embedded runner's), keeps a reference to each position batch the engine
received (no copy: the arrays already exist) and the vessels' static reports,
and, with a :class:`~replay.pacing.Pacer`, releases each batch at the pace of
its event time. Positions the engine rejects (``late``) are dropped from the
recording afterwards, so the recording holds exactly the accepted positions.

:class:`CountingDecoder` wraps each input's decoder to feed the progress bar.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from geofence.alerts import Alert
from geofence.decode.accounting import DecodeResult
from geofence.engine_api import Engine, EngineOutput, EngineStats
from geofence.fence import ZoneSet
from geofence.positions import PositionBatch, StaticReport, SubjectKind
from replay.pacing import Pacer
from replay.progress import Progress
from replay.report import Track
from streams.runner import DecoderFactory, DecoderLike

__all__ = ["CountingDecoder", "Recording", "TapEngine", "counting_factory"]

_F64 = npt.NDArray[np.float64]
_OBJ = npt.NDArray[np.object_]


@dataclass(slots=True)
class Recording:
    """The accepted positions of a replay (columns, input order) and the last known ship type per vessel."""

    subject_id: _OBJ
    ts_s: _F64
    lon_deg: _F64
    lat_deg: _F64
    sog_kn: _F64
    kind: npt.NDArray[np.uint8]
    ship_types: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.ts_s.shape[0])

    def order(self) -> npt.NDArray[np.int64]:
        """Row order by (subject, time), stable: the basis of tracks, distances and speeds."""
        ids = self.subject_id.astype(str)
        return np.lexsort((self.ts_s, ids)).astype(np.int64)

    def tracks(self) -> list[Track]:
        """One time-ordered :class:`~replay.report.Track` per subject, sorted by subject id."""
        if not len(self):
            return []
        o = self.order()
        ids = self.subject_id.astype(str)[o]
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        ends = np.r_[starts[1:], len(ids)]
        ts, lon, lat = self.ts_s[o], self.lon_deg[o], self.lat_deg[o]
        return [Track(str(ids[a]), ts[a:b], lon[a:b], lat[a:b]) for a, b in zip(starts, ends, strict=True)]

    def vessel_mask(self) -> npt.NDArray[np.bool_]:
        """True for vessel rows (containers excluded)."""
        return np.asarray(self.kind == SubjectKind.VESSEL.value)


class TapEngine:
    """An :class:`~geofence.engine_api.Engine` that forwards to ``inner`` and records what went through.

    Parameters
    ----------
    inner
        The real engine (built by the runner's engine factory).
    record
        Keep the position batches (for statistics, plots, the report, learning).
    pacer
        Release positions at the pace of event time (``--speed N``); None: as fast as possible.
    progress
        Progress bar to credit with positions and alert lines.
    """

    def __init__(
        self,
        inner: Engine,
        *,
        record: bool = True,
        pacer: Pacer | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.inner = inner
        self.record = record
        self.pacer = pacer
        self.progress = progress
        self._batches: list[PositionBatch] = []
        self._rejected: set[tuple[str, int]] = set()
        self._ship_types: dict[str, int] = {}

    # -- the Engine protocol ------------------------------------------------------------------
    def process(self, batch: PositionBatch) -> EngineOutput:
        """Forward one micro-batch (paced when a pacer is set); record it and what the engine rejected."""
        if self.record and len(batch):
            self._batches.append(batch)
        if self.pacer is not None:
            self.pacer.wait_for(batch)
        out = self.inner.process(batch)
        self._note(out, len(batch))
        return out

    def add_statics(self, reports: Sequence[StaticReport]) -> None:
        """Forward static reports; remember each vessel's latest known ship type."""
        for r in reports:
            if r.ship_type is not None:
                self._ship_types[r.subject_id] = int(r.ship_type)
        self.inner.add_statics(reports)

    def finish(self) -> EngineOutput:
        """Forward end of input."""
        out = self.inner.finish()
        self._note(out, 0)
        return out

    def open_alerts(self) -> list[Alert]:
        """Forward."""
        return self.inner.open_alerts()

    def set_zones(self, zones: ZoneSet) -> None:
        """Forward."""
        self.inner.set_zones(zones)

    def snapshot(self) -> bytes:
        """Forward."""
        return self.inner.snapshot()

    def stats(self) -> EngineStats:
        """Forward."""
        return self.inner.stats()

    # -- recording ------------------------------------------------------------------------------
    def _note(self, out: EngineOutput, positions: int) -> None:
        if self.record:
            for d in out.dead:
                if not d.is_offset:
                    self._rejected.add((d.source, d.line))
        if self.progress is not None:
            self.progress.add_output(positions, len(out.alerts))

    def recording(self) -> Recording:
        """The accepted positions seen so far, as one :class:`Recording`."""
        cols = ("subject_id", "ts_s", "lon_deg", "lat_deg", "sog_kn", "kind")
        if not self._batches:
            empty = PositionBatch.empty()
            data: dict[str, Any] = {c: getattr(empty, c) for c in cols}
        else:
            data = {c: np.concatenate([getattr(b, c) for b in self._batches]) for c in cols}
            if self._rejected:
                src = np.concatenate([b.source for b in self._batches])
                line = np.concatenate([b.line for b in self._batches])
                keep = np.ones(len(line), dtype=bool)
                by_source: dict[str, list[int]] = {}
                for s, n in self._rejected:
                    by_source.setdefault(s, []).append(n)
                for s, lines in by_source.items():
                    keep &= ~((src == s) & np.isin(line, np.asarray(lines, dtype=np.int64)))
                data = {c: v[keep] for c, v in data.items()}
        return Recording(ship_types=dict(sorted(self._ship_types.items())), **data)


class CountingDecoder:
    """Forwards to a decoder and credits the progress bar with the lines it was fed."""

    def __init__(self, inner: DecoderLike, progress: Progress) -> None:
        self.inner = inner
        self.progress = progress

    def feed(self, lines: Sequence[bytes], first_line: int, arrival_ts_s: float | None = None) -> DecodeResult:
        """Decode ``lines`` with the wrapped decoder."""
        result = self.inner.feed(lines, first_line, arrival_ts_s)
        self.progress.add_lines(len(lines), result.counts.positions)
        return result

    def close(self) -> DecodeResult:
        """End of input for the wrapped decoder."""
        result = self.inner.close()
        self.progress.add_lines(0, result.counts.positions)
        return result


def counting_factory(factory: DecoderFactory, progress: Progress) -> DecoderFactory:
    """Wrap every decoder ``factory`` builds in a :class:`CountingDecoder`."""

    def make(name: str, head: bytes, live: bool) -> DecoderLike:
        return CountingDecoder(factory(name, head, live), progress)

    return make
