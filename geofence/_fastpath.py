"""The vectorised fast path: subjects whose state cannot change in a chunk are updated with numpy.

A subject is *cold* in a released chunk when every one of its records there is
provably a no-op for every rule except the bookkeeping (last position, evidence
ring, derived-speed anchor, gap deadline, feed counters): a vessel with a plausible
SOG at or above the stop threshold and within its speed limit, no stop or
overspeed candidate, the same set of containing fences as its membership (the
XOR signature of fence keys), no implausible jump, no gap state, no quarantined
position, no pending candidate, no rule timer due before its last record, and a
*busy* feed (one whose reports are never ``min_silence_s`` apart in the chunk,
so no feed timer can find it silent). Everything else is *hot* and goes through
the exact per-record path in processing order. The engine's tests compare the
two paths record for record (``fast=False``) on random tracks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from geofence._geo import KN_PER_M_S, haversine_m_arr
from geofence._state import TRACK_LEN

__all__ = ["group_prev", "implied_kn", "last_per_group", "per_record_tables", "push_tracks"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def per_record_tables(
    n: int, pi: I64, fi: I64, keys: I64, limit_kn: F64, gap_s: F64, mooring: npt.NDArray[np.bool_]
) -> tuple[I64, F64, F64, npt.NDArray[np.bool_], I64]:
    """Per record: membership signature, lowest fence speed limit, lowest gap threshold, mooring flag, starts."""
    starts: I64 = np.searchsorted(pi, np.arange(n + 1)).astype(np.int64)
    cx = np.zeros(pi.size + 1, dtype=np.int64)
    if pi.size:
        cx[1:] = np.bitwise_xor.accumulate(keys[fi])
    sig: I64 = cx[starts[1:]] ^ cx[starts[:-1]]
    lim = np.full(n, np.inf)
    gthr = np.full(n, np.inf)
    moor = np.zeros(n, dtype=bool)
    if pi.size:
        np.minimum.at(lim, pi, limit_kn[fi])
        np.minimum.at(gthr, pi, gap_s[fi])
        moor[pi[mooring[fi]]] = True
    return sig, lim, gthr, moor, starts


def group_prev(order: I64, first: npt.NDArray[np.bool_], values: F64, state: F64) -> F64:
    """Previous value within each subject group (rows in ``order``), the subject's state for the first row."""
    v = values[order]
    prev = np.empty_like(v)
    prev[1:] = v[:-1]
    prev[first] = state[first]
    out = np.empty_like(prev)
    out[order] = prev
    return out


def last_per_group(order: I64, first: npt.NDArray[np.bool_]) -> tuple[I64, I64]:
    """Row index of each group's last row, and each row's rank within its group (processing order)."""
    n = order.size
    last_mask = np.empty(n, dtype=bool)
    last_mask[:-1] = first[1:]
    last_mask[-1] = True
    grp = np.cumsum(first) - 1
    start_pos = np.flatnonzero(first)
    rank_sorted = np.arange(n) - start_pos[grp]
    rank = np.empty(n, dtype=np.int64)
    rank[order] = rank_sorted
    return order[last_mask], rank


def push_tracks(cols: dict[str, Any], slots: I64, rank: I64, count: I64, lon: F64, lat: F64, ts: F64) -> None:
    """Append each row to its subject's evidence ring as sequential pushes would (rows ranked per subject)."""
    head = cols["trk_head"][slots].astype(np.int64)
    keep = rank >= count - TRACK_LEN
    pos = (head[keep] + rank[keep]) % TRACK_LEN
    s = slots[keep]
    cols["trk_lon"][s, pos] = lon[keep]
    cols["trk_lat"][s, pos] = lat[keep]
    cols["trk_ts"][s, pos] = ts[keep]


def implied_kn(lon0: F64, lat0: F64, ts0: F64, lon1: F64, lat1: F64, ts1: F64) -> tuple[F64, F64]:
    """Vectorised distance and implied speed (dt floored at 1 s)."""
    d = haversine_m_arr(lon0, lat0, lon1, lat1)
    v: F64 = d / np.maximum(ts1 - ts0, 1.0) * KN_PER_M_S
    return d, v
