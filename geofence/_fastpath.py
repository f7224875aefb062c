"""The vectorised path: a released chunk's subjects are classified, and all but the *hot* ones updated with numpy.

Per chunk the records are grouped by subject once (one stable argsort, reused by
every step). A subject is

* **cold** when every one of its records is provably a no-op for every rule except
  the bookkeeping (last position, evidence ring, derived-speed anchor, gap
  deadline, feed counters): a vessel with a plausible SOG at or above the stop
  threshold, the same containing fences as its memberships, no implausible jump,
  no gap state, no quarantined position, no pending candidate, no rule timer due
  before its last record, one consistent feed that is *busy*, and an overspeed
  state that does not change (within the limit and no alert; or steadily above it);
* **warm** when it is cold except that its containing fences change: its zone
  transitions are computed for all such subjects at once
  (:mod:`geofence._engine_zonebatch`), and overspeed candidates that reach
  ``min_duration_s`` or the critical factor, or an alert whose condition ends,
  take a short per-subject step here;
* **hot** otherwise: its records take the exact per-record path
  (:mod:`geofence._engine_record`) in processing order.

Alert lines of cold and warm subjects quote the evidence ring as it was at their
record, reconstructed from the ring before the chunk and the chunk's records
(:meth:`Chunk.tracks`). The engine's tests compare this path with ``fast=False``
(every record per-record) on random tracks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from geofence._engine_core import NAN, T_CLOSE, T_GAP, Core
from geofence._engine_time import iso, iso_ms, isos_ms, ms_of, ms_of1, rnd, round6
from geofence._geo import EARTH_R_M, KN_PER_M_S, haversine_m_arr
from geofence._state import GAP_NONE, OS_CLOSING, OS_CRIT, OS_OPEN, TRACK_LEN
from geofence._timeline import Records
from geofence.alerts import AlertType

__all__ = ["Chunk", "FastPath", "per_record_tables"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


def _haversine_bound_m(lon1: F64, lat1: F64, lon2: F64, lat2: F64) -> F64:
    """An upper bound of :func:`haversine_m_arr`, at a fraction of its cost (no trigonometry).

    With ``a = sin²(Δφ/2) + cos φ1 cos φ2 sin²(Δλ/2) <= (Δφ² + Δλ²) / 4`` and ``asin(x) <= x π/2``
    on [0, 1], the distance ``2 R asin(√a)`` is at most ``π R √(Δφ² + Δλ²) / 2`` (Δλ unwrapped: the
    bound only grows). It is tight only near antipodes, far beyond any jump threshold. NaN where an
    end is unknown.
    """
    dphi = np.radians(lat2 - lat1)
    dlam = np.radians(lon2 - lon1)
    out: F64 = (0.5 * np.pi * EARTH_R_M) * np.sqrt(dphi * dphi + dlam * dlam)
    return out


def per_record_tables(
    n: int, pi: I64, fi: I64, keys: I64, limit_kn: F64, gap_s: F64, mooring: B
) -> tuple[I64, F64, F64, B, I64]:
    """Per record: membership signature, lowest fence speed limit, lowest gap threshold, mooring flag, starts."""
    starts: I64 = np.zeros(n + 1, dtype=np.int64)  # pi is sorted: record i's pairs are starts[i]:starts[i + 1]
    np.cumsum(np.bincount(pi, minlength=n), out=starts[1:])
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


class Chunk:
    """A released chunk: its records, fence pairs, per-record tables and subject grouping."""

    def __init__(self, core: Core, recs: Records, pi: I64, fi: I64, cls: I64, bits: I64) -> None:
        tb = core.tables
        cols = core.cols
        n = len(recs)
        self.recs = recs
        self.n = n
        self.pi, self.fi = pi, fi
        self.cls = cls  # grid cell class of each record, and its exact-test outcomes
        self.bits = bits
        self.sig, self.lim, self.gthr, self.moor, self.starts = per_record_tables(
            n, pi, fi, tb.keys, tb.limit_arr, tb.gap_arr, tb.moor_arr
        )
        slots = recs.slot
        order = np.argsort(slots, kind="stable")
        sls = slots[order]
        first = np.ones(n, dtype=bool)
        first[1:] = sls[1:] != sls[:-1]
        self.order = order
        self.gstart = np.flatnonzero(first)
        self.gcount = np.diff(np.append(self.gstart, n))
        gid_sorted = np.cumsum(first) - 1
        self.gid = np.empty(n, dtype=np.int64)
        self.gid[order] = gid_sorted
        self.rank = np.empty(n, dtype=np.int64)
        self.rank[order] = np.arange(n) - self.gstart[gid_sorted]
        self.us = sls[self.gstart]
        self.last_row = order[self.gstart + self.gcount - 1]
        self.maxeff = recs.eff[self.last_row]
        # previous report of each row's subject (the state for its first row)
        self.prev_ts = self._prev(recs.ts, cols.last_ts, first)
        self.prev_lon = self._prev(recs.lon, cols.last_lon, first)
        self.prev_lat = self._prev(recs.lat, cols.last_lat, first)
        # the evidence rings before the chunk
        us = self.us
        self.pre_lon = cols.trk_lon.take(us, axis=0)
        self.pre_lat = cols.trk_lat.take(us, axis=0)
        self.pre_ms = cols.ring_rows_ms(us)
        self.pre_n = cols.trk_n[us].astype(np.int64)
        self.pre_head = cols.trk_head[us].astype(np.int64)
        self.pre_cls = cols.last_cls[us].astype(np.int64)
        self.pre_bits = cols.last_bits[us].astype(np.int64)

    def _prev(self, values: F64, state: F64, first: B) -> F64:
        v = values[self.order]
        prev = np.empty_like(v)
        prev[1:] = v[:-1]
        prev[first] = state[self.us]
        out = np.empty_like(prev)
        out[self.order] = prev
        return out

    def group_of(self, slots: npt.ArrayLike) -> I64:
        """Group index of each slot, -1 when the slot has no record in this chunk."""
        s = np.asarray(slots, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.us, s), max(self.us.size - 1, 0))
        out: I64 = np.where(self.us[pos] == s, pos, -1) if self.us.size else np.full(s.shape, -1)
        return out

    def raw(self, row: int) -> tuple[int, ...]:
        """The fences containing a record."""
        a, b = int(self.starts[row]), int(self.starts[row + 1])
        return tuple(self.fi[a:b].tolist()) if b > a else ()

    # ------------------------------------------------------------------ evidence
    def tracks(self, rows: I64) -> list[list[Any]]:
        """``details.track`` as of each of ``rows`` (records of cold or warm subjects, all of them applied)."""
        if rows.size == 0:
            return []
        g = self.gid[rows]
        k = self.rank[rows]
        age = np.arange(TRACK_LEN - 1, -1, -1)  # oldest first
        idx = k[:, None] - age[None, :]
        in_chunk = idx >= 0
        crow = self.order[self.gstart[g][:, None] + np.maximum(idx, 0)]
        ring_age = -idx - 1
        in_ring = ~in_chunk & (ring_age < self.pre_n[g][:, None])
        pos = (self.pre_head[g][:, None] - 1 - ring_age) % TRACK_LEN
        gg = np.broadcast_to(g[:, None], idx.shape)
        r = self.recs
        lon = np.where(in_chunk, r.lon[crow].astype(np.float32), self.pre_lon[gg, pos]).astype(np.float64)
        lat = np.where(in_chunk, r.lat[crow].astype(np.float32), self.pre_lat[gg, pos]).astype(np.float64)
        valid = in_chunk | in_ring
        ms = np.where(in_chunk, ms_of(r.ts[crow]), self.pre_ms[gg, pos])
        pts = list(zip(round6(lon[valid]), round6(lat[valid]), isos_ms(ms[valid]), strict=True))
        ends = np.cumsum(valid.sum(axis=1)).tolist()
        return [pts[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]

    def track_row(self, row: int) -> list[list[Any]]:
        """:meth:`tracks` of one record, in plain Python (no array set-up for a single alert)."""
        g = int(self.gid[row])
        k = int(self.rank[row])
        start = int(self.gstart[g])
        rows = self.order[start + max(0, k + 1 - TRACK_LEN) : start + k + 1].tolist()
        pts: list[tuple[float, float, int]] = []
        missing = TRACK_LEN - len(rows)
        if missing > 0:
            n = min(int(self.pre_n[g]), missing)
            h = int(self.pre_head[g])
            for j in range(n):
                q = (h - n + j) % TRACK_LEN
                pts.append((float(self.pre_lon[g, q]), float(self.pre_lat[g, q]), int(self.pre_ms[g, q])))
        r = self.recs
        f32 = np.float32
        pts += [(float(f32(r.lon[i])), float(f32(r.lat[i])), ms_of1(float(r.ts[i]))) for i in rows]
        return [[rnd(x, 6), rnd(y, 6), iso_ms(m)] for x, y, m in pts]

    def track_hot(self, s: int, k: int, log: list[tuple[float, float, float]]) -> list[list[Any]]:
        """``details.track`` of a per-record subject after its ``k``-th apply in this chunk."""
        g = int(self.group_of([s])[0])
        pts: list[tuple[float, float, int]] = []
        if g >= 0:
            n = int(self.pre_n[g])
            h = int(self.pre_head[g])
            for j in range(n):
                q = (h - n + j) % TRACK_LEN
                pts.append((float(self.pre_lon[g, q]), float(self.pre_lat[g, q]), int(self.pre_ms[g, q])))
        pts += [(float(np.float32(x)), float(np.float32(y)), ms_of1(t)) for x, y, t in log[:k]]
        return [[rnd(x, 6), rnd(y, 6), iso_ms(m)] for x, y, m in pts[-TRACK_LEN:]]


def self_group(us: I64, slots: list[int]) -> I64:
    """Position of each slot in the sorted unique slots ``us``, -1 when absent."""
    s = np.asarray(slots, dtype=np.int64)
    if us.size == 0:
        return np.full(s.shape, -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(us, s), us.size - 1)
    out: I64 = np.where(us[pos] == s, pos, -1)
    return out


class FastPath:
    """Classification and the bulk update of cold and warm subjects (see the module docstring)."""

    def __init__(self, core: Core, zonebatch: Any, motion: Any) -> None:
        self.c = core
        self.zb = zonebatch
        self.motion = motion
        self.seg_arrays: list[F64] = []

    def run(self, ch: Chunk, busy: B) -> B:
        """Classify the chunk's subjects, apply cold and warm ones; return the mask of hot groups."""
        c = self.c
        cols = c.cols
        r = ch.recs
        slots = r.slot
        sog = r.sog
        ts = r.ts
        gid = ch.gid
        ng = ch.us.size
        maxkn = c.maxkn_tab[cols.stype[slots]]
        with np.errstate(invalid="ignore"):
            ok = (r.kind == 0) & busy & (sog >= 0) & (sog <= maxkn) & ~(ts < ch.prev_ts)
            ok &= cols.gap_state[slots] == GAP_NONE
            # one feed per subject in the chunk, the one it had (a feed change is a per-record step)
            col_feed = cols.feed[ch.us]
            ref = np.full(ng, -1, dtype=np.int64)
            np.maximum.at(ref, gid, r.feed)
            ref = np.where(col_feed >= 0, col_feed, ref)
            ok &= (r.feed < 0) | (r.feed == ref[gid])
            if c.on["position_jump"]:
                # conservative margins: numpy's sin/cos may differ from libm's in the last ulp
                thr = c.jump_min_m * (1 - 1e-9)
                # the haversine distance only where its bound reaches the jump distance (few moves do)
                far = np.flatnonzero(~(_haversine_bound_m(ch.prev_lon, ch.prev_lat, r.lon, r.lat) <= thr))
                if far.size:
                    d = haversine_m_arr(ch.prev_lon[far], ch.prev_lat[far], r.lon[far], r.lat[far])
                    v = d / np.maximum(ts[far] - ch.prev_ts[far], 1.0) * KN_PER_M_S
                    ok[far] &= ~((d > thr) & (v > maxkn[far] * (1 - 1e-9)))
            if c.on["unexpected_stop"]:
                ok &= sog >= c.stop_kn
                ss = cols.opt("stop_start")
                if ss is not None:
                    ok &= np.isnan(ss[slots])
        hot = np.zeros(ng, dtype=bool)
        hot[gid[~ok]] = True
        self._sparse_hot(ch, hot)
        os_plan = self._overspeed_plan(ch, hot) if c.on["overspeed"] else None
        # subjects whose containing fences differ from their memberships somewhere in the chunk
        memsig = self.member_sigs(ch.us)
        active = np.zeros(ng, dtype=bool)
        active[gid[ch.sig != memsig[gid]]] = True
        zb = None
        cand = np.flatnonzero(active & ~hot)
        if cand.size:
            zb = self.zb.plan(ch, cand)
            hot[cand[zb.demote]] = True
        if os_plan is not None:
            hot |= os_plan["demote"]
        keep = ~hot
        if keep.any():
            rows = np.flatnonzero(keep[gid])
            # events first: their evidence is the ring before the bulk update plus the chunk's records
            if zb is not None:
                self.zb.apply(ch, zb, keep)
            if os_plan is not None:
                self._overspeed_apply(ch, os_plan, keep)
            self._bulk(ch, rows, keep)
        return hot

    # ------------------------------------------------------------------ classification
    def _sparse_hot(self, ch: Chunk, hot: B) -> None:
        """Reasons held in dicts and lazy columns: quarantine, candidates, open stops, timers due in the chunk.

        A geometric stop window (a subject that reported without SOG) is one too: the exact path drops it at
        the subject's next report with SOG, which the bulk update would skip (the window then survived).
        """
        c = self.c
        cols = c.cols
        sparse = [*c.suspects, *c.pin, *c.dwell_wait, *c.stop_win]
        if sparse:
            g = ch.group_of(sparse)
            hot[g[g >= 0]] = True
        st = cols.opt("stop_state")
        if st is not None:
            hot |= st[ch.us] != 0
        if c.timers.slot_due:
            ks = list(c.timers.slot_due)
            g = ch.group_of(ks)
            mins = np.array([min(c.timers.slot_due[s]) for s in ks])
            sel = g >= 0
            hot[g[sel][mins[sel] <= ch.maxeff[g[sel]]]] = True
        if c.timers.gap_due:
            ks = list(c.timers.gap_due)
            g = ch.group_of(ks)
            t = np.array([c.timers.gap_due[s] for s in ks])
            sel = g >= 0
            gs, tt = g[sel], t[sel]
            dl = cols.gap_deadline[np.asarray(ks, dtype=np.int64)[sel]]
            hot[gs[(tt <= ch.maxeff[gs]) & (dl <= tt)]] = True
        with np.errstate(invalid="ignore"):
            hot |= cols.dwell_due[ch.us] <= ch.maxeff

    def member_sigs(self, us: I64) -> I64:
        """XOR signature of each subject's member fences (as ``Chunk.sig`` is of a record's containing fences)."""
        c = self.c
        keys = np.append(c.tables.keys, 0)
        mf = c.cols.mem_f.take(us, axis=0)
        sig: I64 = np.bitwise_xor.reduce(keys[mf], axis=1)
        multi = c.members.multi
        if multi:
            ks = list(multi)
            g = self_group(us, ks)
            for s, gi in zip(ks, g.tolist(), strict=True):
                if gi >= 0:
                    x = 0
                    for f in multi[s]:
                        x ^= int(c.tables.keys[f])
                    sig[gi] = x
        return sig

    # ------------------------------------------------------------------ overspeed
    def _overspeed_plan(self, ch: Chunk, hot: B) -> dict[str, Any]:
        """Per subject: steady, or one event the bulk step can take; mixed sequences are hot."""
        c = self.c
        cols = c.cols
        r = ch.recs
        ng = ch.us.size
        lim = ch.lim
        glob = c.tables.global_limit_kn
        if glob is not None:
            lim = np.minimum(lim, float(glob))
        with np.errstate(invalid="ignore"):
            over = r.sog > lim
        n_over = np.bincount(ch.gid, weights=over, minlength=ng)
        all_over = n_over == ch.gcount
        none_over = n_over == 0
        col = cols.opt("os_state")
        st = col[ch.us].astype(np.int64) if col is not None else np.zeros(ng, np.int64)
        demote = ~hot & ~all_over & ~none_over
        demote |= ~hot & all_over & ((st & OS_CLOSING) != 0)
        # a close request's cool-down timer must not fall before the subject's last record
        req = ~hot & none_over & ((st & OS_OPEN) != 0) & ((st & OS_CLOSING) == 0)
        first_row = ch.order[ch.gstart]
        demote |= req & (r.eff[first_row] + c.os_cool_s <= ch.maxeff)
        return {"over": over, "lim": lim, "all": all_over, "none": none_over, "st": st, "demote": demote}

    def _overspeed_apply(self, ch: Chunk, plan: dict[str, Any], keep: B) -> None:
        c = self.c
        cols = c.cols
        r = ch.recs
        st = plan["st"]
        none_over = plan["none"] & keep
        all_over = plan["all"] & keep
        os_start = cols.opt("os_start")
        if os_start is not None and none_over.any():
            os_start[ch.us[none_over]] = NAN
        # alerts whose condition ended: close request at the first record, position of the last
        for g in np.flatnonzero(none_over & (st != 0)).tolist():
            s = int(ch.us[g])
            oa = c.life.get(AlertType.OVERSPEED, c.sid(s))
            if oa is None:
                continue
            row_last = int(ch.last_row[g])
            oa.lon, oa.lat = float(r.lon[row_last]), float(r.lat[row_last])
            if oa.closing_ts is None:
                e0 = float(r.eff[ch.order[ch.gstart[g]]])
                oa.closing_ts = e0
                c.retro[f"c{s}|overspeed"] = e0
                c.timers.push(e0 + c.os_cool_s, T_CLOSE, s, "overspeed")
            self.motion.sync(s, AlertType.OVERSPEED)
        if not all_over.any():
            return
        # subjects steadily above the limit: the candidate start and running maximum move; events are replayed
        gs = np.flatnonzero(all_over)
        us = ch.us[gs]
        os_start = cols.lazy("os_start")
        os_max = cols.lazy("os_max")
        first_row = ch.order[ch.gstart[gs]]
        start0 = os_start[us]
        new = np.isnan(start0)
        start = np.where(new, r.ts[first_row], start0)
        gmax = np.maximum.reduceat(r.sog[ch.order], ch.gstart)  # per subject (NaN only in groups not used here)
        crit = np.zeros(ch.us.size, dtype=bool)
        crit[ch.gid[r.sog > plan["lim"] * c.os_cf]] = True
        sg = st[gs]
        reach = r.ts[ch.last_row[gs]] - start >= c.os_min_s
        ev = ((sg & OS_OPEN) == 0) & reach
        ev |= ((sg & OS_OPEN) != 0) & ((sg & OS_CRIT) == 0) & crit[gs]
        steady = ~ev
        su = us[steady]
        os_start[su] = start[steady]
        prior = np.where(new[steady], -np.inf, os_max[su].astype(np.float64))
        os_max[su] = np.maximum(prior, gmax[gs[steady]])
        if ev.any():
            self._overspeed_events(ch, gs[ev].tolist())

    def _overspeed_events(self, ch: Chunk, groups: list[int]) -> None:
        """The per-record overspeed steps of subjects steadily above their limit (an open and/or an escalation).

        The steps are replayed per record to find the events; their evidence is then built for all at once.
        """
        c = self.c
        r = ch.recs
        tb = c.tables
        os_start = c.cols.lazy("os_start")
        os_max = c.cols.lazy("os_max")
        events: list[tuple[int, int, float, float, bool, dict[str, Any], tuple[int, ...]]] = []
        st_col = c.cols.opt("os_state")
        for g in groups:
            s = int(ch.us[g])
            state = int(st_col[s]) if st_col is not None else 0
            opened = bool(state & OS_OPEN)
            severe = bool(state & OS_CRIT)
            rows = ch.order[ch.gstart[g] : ch.gstart[g] + ch.gcount[g]]
            # plain Python values: the running maximum is kept as float32, as the column holds it
            start = float(os_start[s])
            mx = float(os_max[s])
            for row, speed, speed32, ts in zip(
                rows.tolist(),
                r.sog[rows].tolist(),
                r.sog[rows].astype(np.float32).tolist(),
                r.ts[rows].tolist(),
                strict=True,
            ):
                raw = ch.raw(row)
                lim = tb.limit_kn(raw)
                assert lim is not None
                if start != start:
                    start, mx = ts, speed32
                else:
                    mx = max(mx, speed32)
                crit = speed > lim * c.os_cf
                if not opened:
                    if ts - start < c.os_min_s:
                        continue
                    opened, severe = True, crit  # the open, critical from the start when above the factor
                elif severe or not crit:
                    continue
                else:
                    severe = True  # the escalation
                figures = {
                    "speed_kn": rnd(speed, 2),
                    "limit_kn": lim,
                    "max_speed_kn": rnd(mx, 2),
                    "started": iso(start),
                    "duration_s": rnd(ts - start, 3),
                }
                events.append((g, row, start, lim, crit, figures, raw))
            os_start[s] = start
            os_max[s] = mx
        if not events:
            return
        tracks = ch.tracks(np.array([ev[1] for ev in events], dtype=np.int64))
        for (g, row, start, lim, crit, figures, raw), track in zip(events, tracks, strict=True):
            s = int(ch.us[g])
            sid = str(r.sid[row])
            ts, e = float(r.ts[row]), float(r.eff[row])
            det = self._finish_details(figures, sid, ts, e, track)
            lon, lat = float(r.lon[row]), float(r.lat[row])
            oa = c.life.get(AlertType.OVERSPEED, sid)
            if oa is None:
                inside = [f for f in raw if tb.speed_limit_kn[f] == lim]
                fid = tb.ids[inside[0]] if inside else None
                sev = "critical" if crit else "warning"
                c.life.open_(
                    AlertType.OVERSPEED, sev, sid, "vessel", fid, tb.version, start, e, lon, lat, det, key_zone=""
                )
            else:
                oa.severity = "critical"
                c.life.update(oa, e, lon, lat, det)
            self.motion.sync(s, AlertType.OVERSPEED)

    def _finish_details(
        self, figures: dict[str, Any], sid: str, ts: float, eff: float, track: list[Any]
    ) -> dict[str, Any]:
        """Figures, then ``report_ts``, the vessel's static data and the evidence (as :meth:`Core.details`)."""
        d = dict(figures)
        if ts != eff:
            d["report_ts"] = iso(ts)
        if self.c.statics:
            stat = self.c.statics.get(sid)
            if stat:
                d["vessel"] = dict(stat)
        d["track"] = track
        return d

    def details_row(
        self, ch: Chunk, row: int, s: int, figures: dict[str, Any], ts: float | None, eff: float | None
    ) -> dict[str, Any]:
        """:meth:`Core.details` with the evidence as of a cold or warm record of the chunk."""
        return self.c.details(s, figures, ts, eff, track=ch.track_row(row))

    # ------------------------------------------------------------------ bookkeeping
    def _bulk(self, ch: Chunk, rows: I64, keep: B) -> None:
        """Positions, evidence ring, last position, speed anchor, feed, gap deadline, segments of cold/warm rows."""
        c = self.c
        cols = c.cols
        r = ch.recs
        c.positions += int(rows.size)
        gs = np.flatnonzero(keep)
        us = ch.us[gs]
        cnt = ch.gcount[gs]
        # evidence ring: each row lands at head + rank; only the last TRACK_LEN of a subject survive
        sl = r.slot[rows]
        g_of = ch.gid[rows]
        count = ch.gcount[g_of]
        rank = ch.rank[rows]
        head = ch.pre_head[g_of]
        sel = rank >= count - TRACK_LEN
        pos = (head[sel] + rank[sel]) % TRACK_LEN
        s_sel = sl[sel]
        rs = rows[sel]
        cols.set_ring(s_sel, pos, r.lon[rs], r.lat[rs], r.ts[rs])
        cols.trk_head[us] = (ch.pre_head[gs] + cnt) % TRACK_LEN
        cols.trk_n[us] = np.minimum(ch.pre_n[gs] + cnt, TRACK_LEN)
        last = ch.last_row[gs]
        lts = r.ts[last]
        cols.last_ts[us] = lts
        cols.last_lon[us] = r.lon[last]
        cols.last_lat[us] = r.lat[last]
        cols.last_cls[us] = ch.cls[last]
        cols.last_bits[us] = ch.bits[last]
        spd = cols.opt("spd_ts")
        if spd is not None:
            spd[us] = NAN  # a trusted SOG: the anchor is the last position
        cols.der_kn[us] = r.sog[last]
        fl = r.feed[last]
        has = fl >= 0
        cols.feed[us[has]] = fl[has]
        if c.on["ais_gap"]:
            thr = np.minimum(c.gthr_tab[cols.stype[us]], ch.gthr[last])
            dl = lts + thr
            cols.gap_deadline[us] = dl
            if dl.size:
                c.gap_floor = min(c.gap_floor, float(dl.min()))
            due = (dl <= c.timers.run_w) if c.timers.run_final else (dl < c.timers.run_w)
            if due.any():
                pending = c.timers.gap_due
                for s, t in zip(us[due].tolist(), dl[due].tolist(), strict=True):
                    if s not in pending:
                        c.timers.push(t, T_GAP, s, "")
        if c.on["zone_cross"]:
            m = np.isfinite(ch.prev_ts[rows])
            rr = rows[m]
            rank = ch.rank[rr]
            prev_row = np.where(rank > 0, ch.order[ch.gstart[ch.gid[rr]] + np.maximum(rank - 1, 0)], -1)
            # grid cell classes of the two ends (-1: unknown): most moves stay in cells no fence boundary passes
            # through, and no fence can be crossed there (the crossing test would find no candidate)
            cls_a = np.where(prev_row >= 0, ch.cls[np.maximum(prev_row, 0)], ch.pre_cls[ch.gid[rr]])
            cls_b = ch.cls[rr]
            live = ~c.index.quiet_moves(ch.prev_lon[rr], ch.prev_lat[rr], r.lon[rr], r.lat[rr], cls_a, cls_b)
            if not live.all():
                rr, prev_row, cls_a, cls_b = rr[live], prev_row[live], cls_a[live], cls_b[live]
            if rr.size == 0:
                return
            seg = np.stack(
                [
                    r.slot[rr].astype(np.float64),
                    r.eff[rr],
                    r.ts[rr],
                    ch.prev_lon[rr],
                    ch.prev_lat[rr],
                    r.lon[rr],
                    r.lat[rr],
                    prev_row.astype(np.float64),  # chunk rows of the two ends (-1: an earlier chunk)
                    rr.astype(np.float64),
                    cls_a.astype(np.float64),  # grid cell classes of the two ends and their exact-test outcomes
                    cls_b.astype(np.float64),
                    np.where(prev_row >= 0, ch.bits[np.maximum(prev_row, 0)], ch.pre_bits[ch.gid[rr]]).astype(
                        np.float64
                    ),
                    ch.bits[rr].astype(np.float64),
                ],
                axis=1,
            )
            self.seg_arrays.append(seg)
