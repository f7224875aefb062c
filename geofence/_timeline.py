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
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
import numpy.typing as npt

from geofence.positions import PositionBatch

__all__ = ["Reorder", "group_exclusive_cummax"]

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
    order = np.lexsort((np.arange(n), groups))
    g_sorted = groups[order]
    v_sorted = values[order]
    ranks_order = np.argsort(v_sorted, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[ranks_order] = np.arange(n)
    _, gid = np.unique(g_sorted, return_inverse=True)
    key = gid.astype(np.int64) * n + rank
    cm = np.maximum.accumulate(key)
    prev = np.empty(n, dtype=np.int64)
    prev[0] = -1
    prev[1:] = cm[:-1]
    start = np.ones(n, dtype=bool)
    start[1:] = g_sorted[1:] != g_sorted[:-1]
    prev_val = np.full(n, -np.inf)
    ok = ~start
    prev_val[ok] = v_sorted[ranks_order[prev[ok] - gid[ok] * n]]
    res_sorted = np.fmax(prev_val, initial[g_sorted])
    out = np.empty(n)
    out[order] = res_sorted
    return out


class Reorder:
    """Accepts records, assigns eff/seq, holds them until the watermark releases them."""

    def __init__(self, tolerance_s: float) -> None:
        self.tolerance_s = float(tolerance_s)
        self.max_ts: float = -np.inf
        self.seq: int = 0
        self.pending: list[tuple[PositionBatch, I64, F64, I64]] = []  # batch, slots, eff, seq

    @property
    def watermark(self) -> float:
        """``max ts seen - tolerance`` (-inf before any record)."""
        return self.max_ts - self.tolerance_s

    def accept(self, batch: PositionBatch, slots: I64, arr_max_ts: F64) -> npt.NDArray[np.bool_]:
        """Classify the batch's rows; queue accepted ones. Returns the late mask (caller dead-letters)."""
        n = len(batch)
        ts = batch.ts_s
        prior = group_exclusive_cummax(slots, ts, arr_max_ts)
        late = ts < prior - self.tolerance_s
        # per-subject arrival max (late rows are older than the max, so including them changes nothing)
        np.fmax.at(arr_max_ts, slots, ts)
        run = np.maximum.accumulate(np.concatenate(([self.max_ts], ts)))
        w_prev = run[:-1] - self.tolerance_s
        eff = np.maximum(ts, w_prev)
        self.max_ts = float(run[-1])
        seq = self.seq + np.arange(n, dtype=np.int64)
        self.seq += n
        keep = ~late
        if keep.any():
            idx = np.flatnonzero(keep)
            self.pending.append((batch.take(idx), slots[idx], eff[idx], seq[idx]))
        return late

    def release(self, final: bool) -> tuple[PositionBatch, I64, F64, I64]:
        """Pop the records with ``eff < W`` (all when ``final``), sorted by (eff, slot, seq)."""
        if not self.pending:
            return PositionBatch.empty(), np.empty(0, np.int64), np.empty(0), np.empty(0, np.int64)
        if len(self.pending) == 1:
            batch, slots, eff, seq = self.pending[0]
        else:
            batch = PositionBatch.concat([p[0] for p in self.pending])
            slots = np.concatenate([p[1] for p in self.pending])
            eff = np.concatenate([p[2] for p in self.pending])
            seq = np.concatenate([p[3] for p in self.pending])
        ready = np.ones(eff.shape[0], dtype=bool) if final else eff < self.watermark
        if ready.all():
            self.pending = []
        else:
            rest = np.flatnonzero(~ready)
            self.pending = [(batch.take(rest), slots[rest], eff[rest], seq[rest])]
        idx = np.flatnonzero(ready)
        # ties in eff between subjects are broken by slot (first-seen order, itself fixed by the input order)
        order = idx[np.lexsort((seq[idx], slots[idx], eff[idx]))]
        return batch.take(order), slots[order], eff[order], seq[order]

    def to_state(self) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
        """JSON part and array part of the state (snapshot)."""
        meta: dict[str, Any] = {"max_ts": self.max_ts, "seq": self.seq, "tolerance_s": self.tolerance_s}
        arrays: dict[str, npt.NDArray[Any]] = {}
        if self.pending:
            b, s, e, q = self.release_all_view()
            for f in fields(PositionBatch):
                arrays[f"pend_{f.name}"] = getattr(b, f.name)
            arrays["pend_slots"], arrays["pend_eff"], arrays["pend_seq"] = s, e, q
        return meta, arrays

    def release_all_view(self) -> tuple[PositionBatch, I64, F64, I64]:
        """The pending records concatenated (not removed)."""
        return (
            PositionBatch.concat([p[0] for p in self.pending]),
            np.concatenate([p[1] for p in self.pending]),
            np.concatenate([p[2] for p in self.pending]),
            np.concatenate([p[3] for p in self.pending]),
        )

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, npt.NDArray[Any]]) -> Reorder:
        """Inverse of :meth:`to_state`."""
        out = cls(meta["tolerance_s"])
        out.max_ts = float(meta["max_ts"])
        out.seq = int(meta["seq"])
        if "pend_eff" in arrays:
            b = PositionBatch(**{f.name: arrays[f"pend_{f.name}"] for f in fields(PositionBatch)})
            out.pending = [(b, arrays["pend_slots"], arrays["pend_eff"], arrays["pend_seq"])]
        return out
