"""Event time: per-subject lateness, the watermark, effective times and the reorder buffer.

Definitions (batch-independent by construction, see ``docs/rules.md``):

* record *i* is **late** iff ``ts_i < max(ts of earlier-arrived records of its subject) - tolerance``;
* the **watermark** after record *i* is ``W_i = max(ts of all records up to i) - tolerance``;
* an accepted record's **effective time** is ``eff_i = max(ts_i, W_{i-1})``;
* the processing order is ``(eff, slot, seq)`` (slot: first-seen order of the subject, seq: global
  input sequence), timers at ``T`` run after every record with ``eff <= T``.

After each batch the engine processes the records with ``eff < W`` and the timers with ``T < W``.
A future record *k* has ``eff_k >= W_{k-1} >= W``, so that prefix never changes when more input
arrives: the output does not depend on how the input was cut into batches.

Cost: input that arrives in time order (the normal case) needs no sort at all. Lateness is first
bounded with the running maximum over the whole batch (a row at or above ``max(its subject's
arrival maximum, every earlier row) - tolerance`` cannot be late); only the rows that fail that
bound get the exact per-subject test. The released chunk is sorted only when it is not already in
processing order, and pending rows are kept as the chunks they arrived in (a released prefix is a
view, not a copy).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Records", "Reorder", "group_exclusive_cummax"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def group_exclusive_cummax(groups: I64, values: F64, initial: F64) -> F64:
    """For each row, the max of ``initial[group]`` and the values of earlier rows of the same group.

    Rows are in arrival order; computed without a Python loop by cumulative max over
    ``group * n + rank(value)`` in (group, row) order.
    """
    n = values.shape[0]
    if n == 0:
        return np.empty(0)
    order = np.argsort(groups, kind="stable")
    g_sorted = groups[order]
    v_sorted = values[order]
    ranks_order = np.argsort(v_sorted, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[ranks_order] = np.arange(n)
    start = np.ones(n, dtype=bool)
    start[1:] = g_sorted[1:] != g_sorted[:-1]
    gid = np.cumsum(start) - 1
    key = gid.astype(np.int64) * n + rank
    cm = np.maximum.accumulate(key)
    prev = np.empty(n, dtype=np.int64)
    prev[0] = -1
    prev[1:] = cm[:-1]
    prev_val = np.full(n, -np.inf)
    ok = ~start
    prev_val[ok] = v_sorted[ranks_order[prev[ok] - gid[ok] * n]]
    res_sorted = np.fmax(prev_val, initial[g_sorted])
    out = np.empty(n)
    out[order] = res_sorted
    return out


@dataclass(frozen=True, slots=True)
class Records:
    """The columns of accepted records that the rules need (a slimmed :class:`PositionBatch`)."""

    slot: I64
    eff: F64
    seq: I64
    ts: F64
    lon: F64
    lat: F64
    sog: F64
    cog: F64
    kind: npt.NDArray[np.uint8]
    feed: I64
    sid: npt.NDArray[np.object_]  # the subject id strings as they arrived (saves decoding them for alerts)

    def __len__(self) -> int:
        return int(self.eff.shape[0])

    def take(self, index: Any) -> Records:
        """Rows selected by an integer index, boolean mask or slice."""
        return Records(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @classmethod
    def concat(cls, parts: list[Records]) -> Records:
        """Row-wise concatenation."""
        if len(parts) == 1:
            return parts[0]
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})

    @classmethod
    def empty(cls) -> Records:
        """No rows."""
        z = np.zeros(0)
        zi = np.zeros(0, np.int64)
        return cls(zi, z, zi, z, z, z, z, z, np.zeros(0, np.uint8), zi, np.zeros(0, dtype=object))

    def to_arrays(self) -> dict[str, npt.NDArray[Any]]:
        """Columns by name (snapshot)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _in_order(eff: F64, slot: I64, seq: I64) -> bool:
    """Whether rows are already sorted by (eff, slot, seq)."""
    if eff.size < 2:
        return True
    de = eff[1:] - eff[:-1]
    if (de > 0).all():
        return True
    ds = slot[1:] - slot[:-1]
    dq = seq[1:] - seq[:-1]
    return bool(((de > 0) | ((de == 0) & ((ds > 0) | ((ds == 0) & (dq > 0))))).all())


class Reorder:
    """Accepts records, assigns eff/seq, holds them until the watermark releases them."""

    def __init__(self, tolerance_s: float) -> None:
        self.tolerance_s = float(tolerance_s)
        self.max_ts: float = -np.inf
        self.seq: int = 0
        self.pending: list[Records] = []
        self._pending_min: list[float] = []  # min eff of each pending part: parts at or above W are not scanned

    @property
    def watermark(self) -> float:
        """``max ts seen - tolerance`` (-inf before any record)."""
        return self.max_ts - self.tolerance_s

    def late_mask(self, slots: I64, ts: F64, arr_max_ts: F64) -> npt.NDArray[np.bool_]:
        """Which rows are late; updates the per-subject arrival maximum ``arr_max_ts`` in place."""
        tol = self.tolerance_s
        prior = arr_max_ts[slots]
        run = np.maximum.accumulate(ts)
        gprev = np.empty_like(ts)
        gprev[0] = -np.inf
        gprev[1:] = run[:-1]
        with np.errstate(invalid="ignore"):
            maybe = ts < np.fmax(prior, gprev) - tol
        late = np.zeros(ts.shape[0], dtype=bool)
        if maybe.any():
            rows = np.flatnonzero(np.isin(slots, slots[maybe]))
            exact = group_exclusive_cummax(slots[rows], ts[rows], arr_max_ts)
            late[rows] = ts[rows] < exact - tol
        # per-subject arrival max (late rows are older than the max, so including them changes nothing)
        np.fmax.at(arr_max_ts, slots, ts)
        return late

    def accept(
        self,
        ts_all: F64,
        keep: I64,
        slot: I64,
        lon: F64,
        lat: F64,
        sog: F64,
        cog: F64,
        kind: npt.NDArray[np.uint8],
        feed: I64,
        sid: npt.NDArray[np.object_],
    ) -> None:
        """Queue the accepted rows ``keep`` of a batch whose arrival times are ``ts_all``.

        Every arrived row (late ones included) moves the watermark and takes a sequence
        number; the other columns are those of the accepted rows only.
        """
        run = np.maximum.accumulate(np.concatenate(([self.max_ts], ts_all)))
        w_prev = run[:-1] - self.tolerance_s
        seq0 = self.seq
        self.max_ts = float(run[-1])
        self.seq += int(ts_all.shape[0])
        if keep.size == 0:
            return
        ts = ts_all[keep]
        eff = np.maximum(ts, w_prev[keep])
        self._push(Records(slot, eff, seq0 + keep, ts, lon, lat, sog, cog, kind, feed, sid))

    def _push(self, part: Records) -> None:
        self.pending.append(part)
        self._pending_min.append(float(part.eff.min()) if len(part) else np.inf)

    def release(self, final: bool) -> Records:
        """Pop the records with ``eff < W`` (all when ``final``), sorted by (eff, slot, seq)."""
        if not self.pending:
            return Records.empty()
        w = self.watermark
        ready: list[Records] = []
        pending, mins = self.pending, self._pending_min
        self.pending, self._pending_min = [], []
        for p, lo in zip(pending, mins, strict=True):
            if final:
                ready.append(p)
                continue
            if lo >= w:  # nothing of this part is released yet (with live micro-batches, most parts)
                self.pending.append(p)
                self._pending_min.append(lo)
                continue
            r = p.eff < w
            k = int(r.sum())
            if k == len(p):
                ready.append(p)
            elif r[:k].all():  # a released prefix: views, no copy
                ready.append(p.take(slice(0, k)))
                self._push(p.take(slice(k, None)))
            else:
                ready.append(p.take(r))
                self._push(p.take(~r))
        if not ready:
            return Records.empty()
        out = Records.concat(ready)
        if not _in_order(out.eff, out.slot, out.seq):
            # ties in eff between subjects are broken by slot (first-seen order, itself fixed by the input order)
            out = out.take(np.lexsort((out.seq, out.slot, out.eff)))
        return out

    def to_state(self) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
        """JSON part and array part of the state (snapshot)."""
        meta: dict[str, Any] = {"max_ts": self.max_ts, "seq": self.seq, "tolerance_s": self.tolerance_s}
        arrays: dict[str, npt.NDArray[Any]] = {}
        if self.pending:
            for k, v in Records.concat(self.pending).to_arrays().items():
                if k == "sid":
                    meta["pend_sid"] = v.tolist()
                else:
                    arrays[f"pend_{k}"] = v
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, npt.NDArray[Any]]) -> Reorder:
        """Inverse of :meth:`to_state`."""
        out = cls(meta["tolerance_s"])
        out.max_ts = float(meta["max_ts"])
        out.seq = int(meta["seq"])
        if "pend_eff" in arrays:
            sid = np.empty(len(meta["pend_sid"]), dtype=object)
            sid[:] = meta["pend_sid"]
            cols = {f.name: arrays[f"pend_{f.name}"] for f in fields(Records) if f.name != "sid"}
            out._push(Records(**cols, sid=sid))
        return out
