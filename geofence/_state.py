"""Columnar per-subject state: one dense slot per subject, compact numpy columns grown by doubling.

Budget (rules issue): at most 300 bytes per tracked subject, evidence included.
Every subject pays for the *eager* columns below (about 190 bytes with the id
map of :mod:`geofence._engine_ids`); state that only some subjects ever have (a stop
or overspeed candidate, an explicit derived-speed anchor, a second feed, a
position jump) lives in *lazy* columns allocated on first use, so a feed with
SOG and one receiver never allocates them. No Python object is kept per subject:
memberships beyond two fences or with a pending ``min_inside_s`` candidate go to
a dict, which only those (rare) subjects enter.

Dtypes follow what each value needs to reproduce the alert bytes exactly:
times and last positions float64 (``started``, ``from``, jump distances), the
evidence ring lon/lat float32 (as documented in ``docs/rules.md``), speeds
float32, codes uint8/uint16/int32. ``nbytes_by_column`` reports what each
column costs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from geofence._engine_time import ms_of, ms_of1

__all__ = ["GAP_HELD", "GAP_NONE", "GAP_OPEN", "MEM_SLOTS", "TRACK_LEN", "Memberships", "SubjectColumns"]

#: Points kept per subject as evidence (``details.track``).
TRACK_LEN = 5
#: Fence memberships kept in columns per subject; more go to :attr:`Memberships.multi` (a dict, about 500
#: bytes a subject: with 2 slots 7 % of the benchmark's subjects needed it, with 3 slots under 1 %).
MEM_SLOTS = 3

GAP_NONE = 0
GAP_HELD = 1
GAP_OPEN = 2

NAN = float("nan")

#: name -> (dtype, fill, trailing shape, lazy)
_SPEC: dict[str, tuple[str, float, tuple[int, ...], bool]] = {
    "arr_max_ts": ("f8", NAN, (), False),  # max ts by arrival order (lateness)
    "last_ts": ("f8", NAN, (), False),  # last accepted position: time ...
    "last_lon": ("f8", NAN, (), False),  # ... and place
    "last_lat": ("f8", NAN, (), False),
    "gap_deadline": ("f8", NAN, (), False),  # when the subject becomes silent
    "dwell_due": ("f8", NAN, (), False),  # earliest dwell deadline not yet on the timer heap
    "last_cls": ("i4", -1, (), False),  # grid cell class of the last position (-1: unknown), for zone_cross ...
    "last_bits": ("u2", 0, (), False),  # ... and its exact-test outcomes there (FenceIndex.query_classes)
    "der_kn": ("f4", NAN, (), False),  # derived (or last trusted) speed
    "stype": ("u2", 0, (), False),  # ship-type code (0: unknown), see Core.type_code
    "feed": ("i4", -1, (), False),  # feed that heard the subject last
    "kind": ("u1", 0, (), False),  # SubjectKind
    "gap_state": ("u1", GAP_NONE, (), False),
    "mem_f": ("i4", -1, (MEM_SLOTS,), False),  # fences the subject is confirmed inside ...
    "mem_t": ("f8", NAN, (MEM_SLOTS,), False),  # ... since when
    "trk_lon": ("f4", 0.0, (TRACK_LEN,), False),  # evidence ring
    "trk_lat": ("f4", 0.0, (TRACK_LEN,), False),
    "trk_sec": ("u4", 0, (TRACK_LEN,), False),  # ... its times as whole seconds and milliseconds (what ISO shows)
    "trk_ms": ("u2", 0, (TRACK_LEN,), False),
    "trk_n": ("u1", 0, (), False),
    "trk_head": ("u1", 0, (), False),
    # lazy: allocated for every slot the first time any subject needs them
    "stop_start": ("f8", NAN, (), True),  # stop candidate start ...
    "stop_lon": ("f4", NAN, (), True),  # ... and anchor
    "stop_lat": ("f4", NAN, (), True),
    "stop_state": ("u1", 0, (), True),  # open unexpected_stop: 0 none, 1 open, 2 closing
    "os_start": ("f8", NAN, (), True),  # overspeed candidate start
    "os_max": ("f4", NAN, (), True),
    "os_state": ("u1", 0, (), True),  # open overspeed: OS_OPEN | OS_CRIT | OS_CLOSING bits
    "spd_ts": ("f8", NAN, (), True),  # explicit derived-speed anchor (NaN: the anchor is the last position)
    "spd_lon": ("f4", NAN, (), True),
    "spd_lat": ("f4", NAN, (), True),
    "jump_ts": ("f8", NAN, (), True),  # last position_jump event (cool-down)
    "other_ts": ("f8", NAN, (), True),  # last time a feed other than the current one heard the subject
    "trk_ts": ("f8", 0.0, (TRACK_LEN,), True),  # evidence times as floats, once a time outside 1970..2106 arrived
}

#: Evidence times held as uint32 seconds: 1970 to 2106.
_SEC_MAX = float(2**32)

OS_OPEN = 1
OS_CRIT = 2
OS_CLOSING = 4


class SubjectColumns:
    """Dense per-subject columns (attributes named as in ``_SPEC``); lazy ones are None until used."""

    arr_max_ts: npt.NDArray[np.float64]
    last_ts: npt.NDArray[np.float64]
    last_lon: npt.NDArray[np.float64]
    last_lat: npt.NDArray[np.float64]
    gap_deadline: npt.NDArray[np.float64]
    dwell_due: npt.NDArray[np.float64]
    last_cls: npt.NDArray[np.int32]
    last_bits: npt.NDArray[np.uint16]
    der_kn: npt.NDArray[np.float32]
    stype: npt.NDArray[np.uint16]
    feed: npt.NDArray[np.int32]
    kind: npt.NDArray[np.uint8]
    gap_state: npt.NDArray[np.uint8]
    mem_f: npt.NDArray[np.int32]
    mem_t: npt.NDArray[np.float64]
    trk_lon: npt.NDArray[np.float32]
    trk_lat: npt.NDArray[np.float32]
    trk_sec: npt.NDArray[np.uint32]
    trk_ms: npt.NDArray[np.uint16]
    trk_n: npt.NDArray[np.uint8]
    trk_head: npt.NDArray[np.uint8]

    def __init__(self, capacity: int = 1024) -> None:
        self.n = 0
        self.cap = max(16, capacity)
        self.lazy_names = [k for k, v in _SPEC.items() if v[3]]
        for name, (_dt, _fill, _shape, lazy) in _SPEC.items():
            setattr(self, name, None if lazy else self._new(name, self.cap))

    def _new(self, name: str, cap: int) -> npt.NDArray[Any]:
        """A column of ``cap`` slots; only the used ones are written (the rest stays unbacked memory)."""
        dt, fill, shape, _lazy = _SPEC[name]
        col = np.empty((cap, *shape), dtype=dt)
        col[: self.n] = fill
        return col

    def opt(self, name: str) -> npt.NDArray[Any] | None:
        """A lazy column, or None when no subject has needed it yet."""
        col: npt.NDArray[Any] | None = getattr(self, name)
        return col

    def lazy(self, name: str) -> npt.NDArray[Any]:
        """A lazy column, allocated (filled with its 'unset' value) on first use."""
        col: npt.NDArray[Any] | None = getattr(self, name)
        if col is None:
            col = self._new(name, self.cap)
            setattr(self, name, col)
        return col

    def get(self, name: str, s: int) -> float:
        """One value of a (possibly unallocated) column; the fill value when unallocated."""
        col: npt.NDArray[Any] | None = getattr(self, name)
        return float(_SPEC[name][1]) if col is None else float(col[s])

    def columns(self) -> dict[str, npt.NDArray[Any]]:
        """Every allocated column by name."""
        return {k: v for k in _SPEC if (v := getattr(self, k)) is not None}

    def nbytes_by_column(self) -> dict[str, int]:
        """Bytes per subject slot of every allocated column (the memory breakdown)."""
        return {k: int(v.itemsize * int(np.prod(v.shape[1:], dtype=np.int64))) for k, v in self.columns().items()}

    def ensure(self, n: int) -> None:
        """Make room for ``n`` slots (doubling) and account them as used (filled with their unset values)."""
        if n > self.cap:
            cap = self.cap
            while cap < n:
                cap *= 2
            for col in self.columns().values():
                # in place (realloc): a freed copy of a large column would make glibc serve later
                # temporaries from its heap, which fragments and keeps RSS up; no view of a column
                # outlives a call into the engine, so nothing points into the old buffer
                col.resize((cap, *col.shape[1:]), refcheck=False)
            self.cap = cap
        if n > self.n:
            for name, col in self.columns().items():
                col[self.n : n] = _SPEC[name][1]
            self.n = n

    # ------------------------------------------------------------------ evidence ring
    def ring_ms(self, idx: Any, pos: Any) -> npt.NDArray[np.int64]:
        """Times of ring entries (broadcast index arrays) as the integer milliseconds ISO shows."""
        wide = self.opt("trk_ts")
        if wide is not None:
            t = wide[idx, pos]
            return ms_of(np.where(np.isfinite(t), t, 0.0))  # a non-finite time (never valid input) shows as 1970
        out: npt.NDArray[np.int64] = self.trk_sec[idx, pos].astype(np.int64) * 1000 + self.trk_ms[idx, pos]
        return out

    def ring_rows_ms(self, idx: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """:meth:`ring_ms` of whole rings, ``(len(idx), TRACK_LEN)`` (row gathers: several times cheaper)."""
        wide = self.opt("trk_ts")
        if wide is not None:
            return self.ring_ms(idx[:, None], np.arange(TRACK_LEN)[None, :])
        out: npt.NDArray[np.int64] = self.trk_sec.take(idx, axis=0).astype(np.int64) * 1000 + self.trk_ms.take(
            idx, axis=0
        )
        return out

    def set_ring(self, idx: Any, pos: Any, lon: Any, lat: Any, ts: npt.NDArray[np.float64]) -> None:
        """Write ring entries (index arrays of equal shape: slot and ring position)."""
        flat = np.asarray(idx, dtype=np.int64) * TRACK_LEN + pos  # flat scatters: cheaper than 2-D fancy indexing
        self.trk_lon.put(flat, lon)
        self.trk_lat.put(flat, lat)
        wide = self.opt("trk_ts")
        if wide is None:
            ts = np.asarray(ts, dtype=np.float64)
            if ts.size == 0:
                return
            if np.isfinite(ts).all() and ts.min() >= 0.0 and ts.max() < _SEC_MAX - 1:
                m = ms_of(ts)
                self.trk_sec.put(flat, m // 1000)
                self.trk_ms.put(flat, m % 1000)
                return
            wide = self._widen_ring()
        wide[idx, pos] = ts

    def _widen_ring(self) -> npt.NDArray[np.float64]:
        """Keep evidence times as floats from now on (a time outside what 32-bit seconds hold arrived)."""
        wide = self.lazy("trk_ts")
        n = self.n
        wide[:n] = self.trk_sec[:n] + self.trk_ms[:n] / 1000.0
        return wide

    def push_track(self, s: int, lon: float, lat: float, ts: float) -> None:
        """Append a point to the subject's evidence ring."""
        h = int(self.trk_head[s])
        wide = self.opt("trk_ts")
        if wide is None and 0.0 <= ts < _SEC_MAX - 1:
            self.trk_lon[s, h] = lon
            self.trk_lat[s, h] = lat
            m = ms_of1(ts)
            self.trk_sec[s, h] = m // 1000
            self.trk_ms[s, h] = m % 1000
        else:
            if wide is None:
                wide = self._widen_ring()
            self.trk_lon[s, h] = lon
            self.trk_lat[s, h] = lat
            wide[s, h] = ts
        self.trk_head[s] = (h + 1) % TRACK_LEN
        if self.trk_n[s] < TRACK_LEN:
            self.trk_n[s] += 1

    def track(self, s: int) -> list[tuple[float, float, int]]:
        """The evidence ring oldest first as (lon, lat, time in ms)."""
        n = int(self.trk_n[s])
        h = int(self.trk_head[s])
        j = [(h - n + k) % TRACK_LEN for k in range(n)]
        ms = self.ring_ms(s, j).tolist()
        return list(zip(self.trk_lon[s, j].tolist(), self.trk_lat[s, j].tolist(), ms, strict=True))

    # ------------------------------------------------------------------ snapshot
    def to_arrays(self) -> dict[str, npt.NDArray[Any]]:
        """The used part of every allocated column."""
        return {k: v[: self.n].copy() for k, v in self.columns().items()}

    @classmethod
    def from_arrays(cls, n: int, arrays: dict[str, npt.NDArray[Any]]) -> SubjectColumns:
        """Inverse of :meth:`to_arrays`."""
        out = cls(capacity=max(1024, n))
        out.ensure(n)
        for k, v in arrays.items():
            if k in _SPEC:
                out.lazy(k)[:n] = v
        return out


class Memberships:
    """Confirmed fence memberships ``{fence: ["i", since]}`` and ``min_inside_s`` candidates ``["c", ...]``.

    Up to :data:`MEM_SLOTS` confirmed fences live in the ``mem_f``/``mem_t``
    columns; a subject with more, or with a candidate, keeps a dict in
    :attr:`multi` (and its columns are cleared). ``get`` returns a fresh dict for
    the column case, so callers write changes back with ``set``.
    """

    def __init__(self, cols: SubjectColumns) -> None:
        self.cols = cols
        self.multi: dict[int, dict[int, list[Any]]] = {}

    def get(self, s: int) -> dict[int, list[Any]] | None:
        """The memberships of a subject, or None when it is in no fence."""
        m = self.multi.get(s)
        if m is not None:
            return m
        f = self.cols.mem_f[s]
        if f[0] < 0:
            return None
        t = self.cols.mem_t[s]
        out: dict[int, list[Any]] = {int(f[0]): ["i", float(t[0])]}
        for k in range(1, MEM_SLOTS):
            if f[k] >= 0:
                out[int(f[k])] = ["i", float(t[k])]
        return out

    def __contains__(self, s: int) -> bool:
        return s in self.multi or bool(self.cols.mem_f[s, 0] >= 0)

    def set(self, s: int, mem: dict[int, list[Any]] | None) -> None:
        """Replace a subject's memberships (None or empty: none)."""
        cf, ct = self.cols.mem_f, self.cols.mem_t
        cf[s] = -1
        ct[s] = NAN
        if not mem:
            self.multi.pop(s, None)
            return
        if len(mem) <= MEM_SLOTS and all(st[0] == "i" for st in mem.values()):
            for k, (f, st) in enumerate(mem.items()):
                cf[s, k] = f
                ct[s, k] = st[1]
            self.multi.pop(s, None)
            return
        self.multi[s] = mem

    def items(self) -> list[tuple[int, dict[int, list[Any]]]]:
        """Every subject with memberships (dict subjects first, then column subjects by slot)."""
        out = list(self.multi.items())
        for s in np.flatnonzero(self.cols.mem_f[: self.cols.n, 0] >= 0).tolist():
            m = self.get(s)
            if m is not None:
                out.append((s, m))
        return out

    def pairs(
        self, us: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Confirmed memberships of the (sorted, unique) slots ``us``: (slot, fence, since) arrays sorted by slot.

        Subjects in :attr:`multi` contribute their confirmed ("i") entries; the caller
        treats subjects with candidates separately.
        """
        f = self.cols.mem_f.take(us, axis=0)
        t = self.cols.mem_t.take(us, axis=0)
        k = f >= 0
        s_out: npt.NDArray[np.int64] = np.repeat(us, k.sum(axis=1))
        f_out: npt.NDArray[np.int64] = f[k].astype(np.int64)
        t_out: npt.NDArray[np.float64] = t[k]
        if self.multi:
            ms = np.fromiter(self.multi, dtype=np.int64, count=len(self.multi))
            ms = ms[np.isin(ms, us)]
            extra = [(s, g, st[1]) for s in ms.tolist() for g, st in self.multi[s].items() if st[0] == "i"]
            if extra:
                es = np.array([x[0] for x in extra], dtype=np.int64)
                ef = np.array([x[1] for x in extra], dtype=np.int64)
                et = np.array([x[2] for x in extra], dtype=np.float64)
                s_out = np.concatenate([s_out, es])
                f_out = np.concatenate([f_out, ef])
                t_out = np.concatenate([t_out, et])
                o = np.argsort(s_out, kind="stable")
                s_out, f_out, t_out = s_out[o], f_out[o], t_out[o]
        return s_out, f_out, t_out

    def write(self, us: npt.NDArray[np.int64], s: npt.NDArray[np.int64], f: npt.NDArray[np.int64], t: Any) -> None:
        """Replace the memberships of slots ``us`` by confirmed (slot, fence, since) rows sorted by slot."""
        cf, ct = self.cols.mem_f, self.cols.mem_t
        cf[us] = -1
        ct[us] = NAN
        if self.multi:
            for x in self.multi.keys() & us.tolist():
                del self.multi[x]
        if s.size == 0:
            return
        first = np.ones(s.size, dtype=bool)
        first[1:] = s[1:] != s[:-1]
        starts = np.flatnonzero(first)
        grp = np.cumsum(first) - 1
        k = np.arange(s.size) - starts[grp]
        counts = np.diff(np.append(starts, s.size))
        fit = counts[grp] <= MEM_SLOTS
        cf[s[fit], k[fit]] = f[fit]
        ct[s[fit], k[fit]] = t[fit]
        if not fit.all():
            for i in np.flatnonzero(~fit).tolist():
                self.multi.setdefault(int(s[i]), {})[int(f[i])] = ["i", float(t[i])]
