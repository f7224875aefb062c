"""Columnar per-subject state: one dense slot per subject, numpy columns grown by doubling.

Only subjects whose state changes touch Python objects (fence memberships,
quarantined positions, open alerts); everything every subject has lives here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["TRACK_LEN", "SubjectColumns"]

#: Points kept per subject as evidence (``details.track``).
TRACK_LEN = 5

_F64_COLS = (
    "arr_max_ts",  # max ts by arrival order (lateness)
    "last_ts",  # last accepted good position: time ...
    "last_lon",  # ... and place
    "last_lat",
    "stop_start",  # stop candidate start
    "os_start",  # overspeed candidate start
    "spd_ts",  # derived-speed anchor time
    "gap_deadline",  # when the subject becomes silent
    "gap_timer",  # time of its gap entry in the timer heap (only once due)
    "other_ts",  # last time a feed other than the current one heard the subject
    "jump_ts",  # last position_jump event (cool-down)
    "mem1_t",  # since when the subject is inside its single fence (see Memberships)
)
_F32_COLS = (
    "der_kn",  # derived speed
    "stop_lon",  # stop anchor
    "stop_lat",
    "spd_lon",  # derived-speed anchor
    "spd_lat",
    "os_max",  # max speed of the overspeed candidate
    "maxkn",  # the subject's maximum plausible speed (ship type)
    "gthr",  # the subject's ais_gap threshold (ship type)
)
_I32_COLS = ("feed", "mem1_f")
_I64_COLS = ("mem_sig",)
_U8_COLS = ("kind", "gap_state", "trk_n", "trk_head")

GAP_NONE = 0
GAP_HELD = 1
GAP_OPEN = 2


class SubjectColumns:
    """Dense per-subject columns; ``slot_of`` maps subject id to slot."""

    def __init__(self, capacity: int = 1024) -> None:
        self.n = 0
        self.cap = capacity
        self.ids: list[str] = []
        self.slot_of: dict[str, int] = {}
        self.cols: dict[str, npt.NDArray[Any]] = {}
        for name in _F64_COLS:
            self.cols[name] = np.full(capacity, np.nan)
        for name in _F32_COLS:
            self.cols[name] = np.full(capacity, np.nan, dtype=np.float32)
        for name in _I32_COLS:
            self.cols[name] = np.full(capacity, -1, dtype=np.int32)
        for name in _U8_COLS:
            self.cols[name] = np.zeros(capacity, dtype=np.uint8)
        for name in _I64_COLS:
            self.cols[name] = np.zeros(capacity, dtype=np.int64)
        self.cols["trk_lon"] = np.zeros((capacity, TRACK_LEN), dtype=np.float32)
        self.cols["trk_lat"] = np.zeros((capacity, TRACK_LEN), dtype=np.float32)
        self.cols["trk_ts"] = np.zeros((capacity, TRACK_LEN), dtype=np.float64)

    def __getattr__(self, name: str) -> npt.NDArray[Any]:
        try:
            return self.__dict__["cols"][name]  # type: ignore[no-any-return]
        except KeyError:
            raise AttributeError(name) from None

    def _grow(self, need: int) -> None:
        cap = self.cap
        while cap < need:
            cap *= 2
        for name, col in self.cols.items():
            shape = (cap, *col.shape[1:])
            fill: Any = np.nan if col.dtype.kind == "f" else (-1 if name in _I32_COLS else 0)
            new = np.full(shape, fill, dtype=col.dtype)
            new[: col.shape[0]] = col
            self.cols[name] = new
        self.cap = cap

    def slots(self, subject_ids: npt.NDArray[np.object_]) -> npt.NDArray[np.int64]:
        """Slots of the ids, allocating new ones in first-seen order (input order, so deterministic)."""
        slot_of = self.slot_of
        out = np.empty(len(subject_ids), dtype=np.int64)
        for i, sid in enumerate(subject_ids.tolist()):
            s = slot_of.get(sid)
            if s is None:
                s = self.n
                slot_of[sid] = s
                self.ids.append(sid)
                self.n += 1
            out[i] = s
        if self.n > self.cap:
            self._grow(self.n)
        return out

    def push_track(self, s: int, lon: float, lat: float, ts: float) -> None:
        """Append a point to the subject's evidence ring."""
        c = self.cols
        h = int(c["trk_head"][s])
        c["trk_lon"][s, h] = lon
        c["trk_lat"][s, h] = lat
        c["trk_ts"][s, h] = ts
        c["trk_head"][s] = (h + 1) % TRACK_LEN
        if c["trk_n"][s] < TRACK_LEN:
            c["trk_n"][s] += 1

    def track(self, s: int) -> list[tuple[float, float, float]]:
        """The evidence ring oldest first as (lon, lat, ts)."""
        c = self.cols
        n = int(c["trk_n"][s])
        h = int(c["trk_head"][s])
        out = []
        for k in range(n):
            j = (h - n + k) % TRACK_LEN
            out.append((float(c["trk_lon"][s, j]), float(c["trk_lat"][s, j]), float(c["trk_ts"][s, j])))
        return out

    def to_arrays(self) -> dict[str, npt.NDArray[Any]]:
        """The used part of every column (snapshot)."""
        return {k: v[: self.n].copy() for k, v in self.cols.items()}

    @classmethod
    def from_arrays(cls, ids: list[str], arrays: dict[str, npt.NDArray[Any]]) -> SubjectColumns:
        """Inverse of :meth:`to_arrays`."""
        out = cls(capacity=max(1024, len(ids)))
        out._grow(len(ids))
        out.ids = list(ids)
        out.slot_of = {sid: i for i, sid in enumerate(ids)}
        out.n = len(ids)
        for k, v in arrays.items():
            out.cols[k][: out.n] = v
        return out


class Memberships:
    """Fence memberships per subject: ``{fence_idx: [state, since, ...]}``.

    The common case, one confirmed fence, lives in two columns (``mem1_f``, ``mem1_t``); only
    subjects with several fences or a pending candidate get a Python dict. ``get`` returns a
    fresh dict for the column case, so callers write changes back with ``members[s] = mem``.
    """

    def __init__(self, cols: SubjectColumns) -> None:
        self.cols = cols
        self.multi: dict[int, dict[int, list[Any]]] = {}

    def get(self, s: int, default: Any = None) -> Any:
        m = self.multi.get(s)
        if m is not None:
            return m
        f = int(self.cols.cols["mem1_f"][s])
        if f >= 0:
            return {f: ["i", float(self.cols.cols["mem1_t"][s])]}
        return default

    def __getitem__(self, s: int) -> dict[int, list[Any]]:
        m = self.get(s)
        if m is None:
            raise KeyError(s)
        return m  # type: ignore[no-any-return]

    def __contains__(self, s: object) -> bool:
        return s in self.multi or (isinstance(s, int) and bool(self.cols.cols["mem1_f"][s] >= 0))

    def __setitem__(self, s: int, mem: dict[int, list[Any]]) -> None:
        if len(mem) == 1:
            ((f, st),) = mem.items()
            if st[0] == "i":
                self.cols.cols["mem1_f"][s] = f
                self.cols.cols["mem1_t"][s] = st[1]
                self.multi.pop(s, None)
                return
        self.cols.cols["mem1_f"][s] = -1
        self.multi[s] = mem

    def pop(self, s: int, default: Any = None) -> Any:
        out = self.get(s, default)
        self.multi.pop(s, None)
        self.cols.cols["mem1_f"][s] = -1
        return out

    def items(self) -> list[tuple[int, dict[int, list[Any]]]]:
        out = list(self.multi.items())
        col = self.cols.cols["mem1_f"][: self.cols.n]
        out += [(s, self[s]) for s in np.flatnonzero(col >= 0).tolist()]
        return out

    def __iter__(self) -> Any:
        return iter([s for s, _ in self.items()])
