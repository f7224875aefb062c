"""The encounter stage of the workers: encounters between vessels of different partitions.

The partition engines run with the encounter rule off and forward the rows their
encounter detector would have been fed (``streams.worker_core.feed_mask``), each feed
record with that partition's watermark. :class:`EncounterStage` merges the partitions
in event time and runs the engine's own detector glue and alert lifecycle on them, so
its lines are those of one engine over all subjects. ``docs/streams.md`` explains why
this single stage rather than one keyed by spatial cell.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from geofence._detectors import DetectorRules
from geofence.alerts import Alert
from geofence.lifecycle import Lifecycle, OpenAlert, alert_from_json, alert_to_json
from geofence.rules.encounter import EncounterParams
from streams import wire

__all__ = ["EncounterStage"]

_Rows = tuple[npt.NDArray[Any], ...]


def _no_details(_slot: int, figures: Mapping[str, Any], *_args: Any) -> dict[str, Any]:
    return dict(figures)


class EncounterStage:
    """Encounters across partitions: merge the subject stage's feeds in event time, run the detector.

    Rows of a partition arrive in processing order with that partition's watermark
    ``W_p``; no later row of ``p`` has an earlier effective time. Rows with ``eff <
    min_p W_p`` are therefore final and are fed to the same detector glue
    (:class:`~geofence._detectors.DetectorRules`) and alert lifecycle the engine
    uses, so the lines are the ones one engine over all subjects would write.
    Feed records are deduplicated by (source partition, source offset): a replayed
    subject stage sends identical records again.
    """

    def __init__(self, params: EncounterParams | None = None) -> None:
        """``params``: the encounter thresholds of the rules in force (built-in defaults when None)."""
        on = {"encounter": True, "approach_warning": False, "route_deviation": False}
        self._rules = DetectorRules(on, None, encounter=params)
        self._life = Lifecycle()
        self.offset = -1  # last feed-topic offset applied
        self.partitions = 0
        self.watermarks: dict[int, float] = {}
        self.applied: dict[int, int] = {}
        self.final: set[int] = set()
        self.zone_version = ""
        self._seq = 0
        self._pending: list[_Rows] = []  # sid, eff, lon, lat, speed, mooring, seq
        self.dirty_since: float | None = None

    def handle(self, offset: int, feed: wire.EncounterFeed) -> list[Alert]:
        """Apply one feed record (read at ``offset`` of the feed topic); return released alert lines."""
        if offset <= self.offset:
            return []
        self.offset = offset
        if self.dirty_since is None:
            self.dirty_since = time.monotonic()
        p = feed.partition
        if feed.offset <= self.applied.get(p, -1):
            return []
        self.applied[p] = feed.offset
        self.partitions = max(self.partitions, feed.partitions)
        if feed.zone_version and feed.zone_version != self.zone_version:
            self.zone_version = feed.zone_version
            for oa in self._life.open.values():
                oa.zone_version = feed.zone_version
        rows = feed.rows
        n = len(rows)
        if n:
            seq = self._seq + np.arange(n, dtype=np.int64)
            self._seq += n
            self._pending.append(
                (rows.subject_id, rows.eff_s, rows.lon_deg, rows.lat_deg, rows.speed_kn, rows.mooring, seq)
            )
        if feed.watermark_s is not None:
            self.watermarks[p] = max(self.watermarks.get(p, -math.inf), feed.watermark_s)
        if feed.final:
            self.final.add(p)
        else:
            self.final.discard(p)
        return self._release()

    def _release(self) -> list[Alert]:
        parts = range(self.partitions)
        if not self.partitions:
            return []
        final = all(p in self.final for p in parts)
        if not final and any(p not in self.watermarks for p in parts):
            return []  # a partition has not reported yet: nothing is final
        w = min((self.watermarks[p] for p in parts if p in self.watermarks), default=-math.inf)
        rows = self._take(None if final else w)
        n = 0 if rows is None else len(rows[0])
        if rows is None:
            self._rules.run(
                None, None, None, None, None, None, None, None, w, self._life, self.zone_version, _no_details
            )
        else:
            self._rules.run(
                np.arange(n),
                rows[0],
                rows[1],
                rows[2],
                rows[3],
                np.full(n, math.nan),
                rows[4],
                rows[5],
                w,
                self._life,
                self.zone_version,
                _no_details,
            )
        if final:
            self.final.clear()  # a later input starts a new end-of-stream round
            return self._life.release(w, final=True)
        return self._life.release(w)

    def _take(self, below: float | None) -> _Rows | None:
        if not self._pending:
            return None
        cat = tuple(np.concatenate([r[k] for r in self._pending]) for k in range(7))
        ready = np.ones(cat[1].shape[0], dtype=bool) if below is None else cat[1] < below
        self._pending = [] if ready.all() else [tuple(c[~ready] for c in cat)]
        if not ready.any():
            return None
        idx = np.flatnonzero(ready)
        order = idx[np.lexsort((cat[6][idx], cat[1][idx]))]
        return tuple(c[order] for c in cat[:6])

    def snapshot(self) -> bytes:
        """All state as JSON bytes (NaN and infinities allowed)."""
        pend = tuple(np.concatenate([r[k] for r in self._pending]) for k in range(7)) if self._pending else None
        names = ("subject_id", "eff_s", "lon_deg", "lat_deg", "speed_kn", "mooring", "seq")
        doc = {
            "v": 1,
            "offset": self.offset,
            "partitions": self.partitions,
            "watermarks": {str(k): v for k, v in self.watermarks.items()},
            "applied": {str(k): v for k, v in self.applied.items()},
            "final": sorted(self.final),
            "zone_version": self.zone_version,
            "seq": self._seq,
            "rules": self._rules.snapshot(),
            "open": [oa.to_json() for oa in self._life.open.values()],
            "buffer": [alert_to_json(a) for a in self._life.buffer],
            "horizon": self._life.horizon_s,
            "pending": None if pend is None else {k: v.tolist() for k, v in zip(names, pend, strict=True)},
        }
        self.dirty_since = None
        return json.dumps(doc).encode("utf-8")

    @classmethod
    def restore(cls, data: bytes, params: EncounterParams | None = None) -> EncounterStage:
        """Inverse of :meth:`snapshot` (``params`` as for the constructor)."""
        doc = json.loads(data)
        if doc.get("v") != 1:
            raise wire.WireError(f"encounter state version {doc.get('v')!r} is not 1")
        st = cls(params)
        st.offset = int(doc["offset"])
        st.partitions = int(doc["partitions"])
        st.watermarks = {int(k): float(v) for k, v in doc["watermarks"].items()}
        st.applied = {int(k): int(v) for k, v in doc["applied"].items()}
        st.final = {int(p) for p in doc["final"]}
        st.zone_version = str(doc["zone_version"])
        st._seq = int(doc["seq"])
        st._rules.restore(doc["rules"])
        for oj in doc["open"]:
            oa = OpenAlert.from_json(oj)
            st._life.open[(oa.type, oa.subject_id, oa.key_zone)] = oa
        st._life.buffer = [alert_from_json(a) for a in doc["buffer"]]
        st._life.horizon_s = float(doc["horizon"])
        pend = doc["pending"]
        if pend is not None:
            sid = np.empty(len(pend["subject_id"]), dtype=object)
            sid[:] = pend["subject_id"]
            st._pending = [
                (
                    sid,
                    np.asarray(pend["eff_s"], dtype=np.float64),
                    np.asarray(pend["lon_deg"], dtype=np.float64),
                    np.asarray(pend["lat_deg"], dtype=np.float64),
                    np.asarray(pend["speed_kn"], dtype=np.float64),
                    np.asarray(pend["mooring"], dtype=bool),
                    np.asarray(pend["seq"], dtype=np.int64),
                )
            ]
        return st
