"""Silence: ``ais_gap`` for subjects, ``feed_outage`` for receivers and sources, and the hold-back between them.

A subject's gap deadline (last report + its threshold) lives in the
``gap_deadline`` column, which is the timer wheel: each run scans it and puts only
the deadlines due before the watermark on the heap. A gap opens while the subject
is still silent, unless it was last seen far from every zone (sailed out of the
monitored area) or only a feed that is out heard it (held back until the feed
speaks again). Feeds are identified per record by receiver (tag-block ``s:``) or,
without one, by source; the chunk's records of a *busy* feed (never silent long
enough for its timer to find it out) update its statistics in bulk.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from geofence._engine_core import NAN, T_FEED, T_GAP, Core
from geofence._engine_time import iso, rnd
from geofence._geo import haversine_m
from geofence._state import GAP_HELD, GAP_NONE, GAP_OPEN
from geofence._timeline import Records
from geofence.alerts import AlertType
from geofence.rules.gaps import RING, Feed

__all__ = ["GapRules"]

I64 = npt.NDArray[np.int64]


class GapRules:
    """Feeds, gap timers and outage timers (see the module docstring)."""

    def __init__(self, core: Core) -> None:
        self.c = core
        self.feeds: list[Feed] = []
        self.index: dict[str, int] = {}

    # ------------------------------------------------------------------ feeds
    def feed_of(self, name: str) -> int:
        """The index of a feed name (created on first use); -1 for no name."""
        if not name:
            return -1
        i = self.index.get(name)
        if i is None:
            i = self.index[name] = len(self.feeds)
            self.feeds.append(Feed(name))
        return i

    def feed_indices(self, receiver: npt.NDArray[np.object_], source: npt.NDArray[np.object_]) -> I64:
        """Feed index per record: the receiver, else ``source:<source>``; -1 when neither is known."""
        n = receiver.shape[0]
        if n == 0:
            return np.zeros(0, np.int64)
        # one name for the whole batch (the usual case): list.count compares by identity first, so this is
        # much cheaper than an element-wise comparison of object arrays
        rl = receiver.tolist()
        r0 = rl[0]
        if rl.count(r0) == n:
            if r0:
                return np.full(n, self.feed_of(str(r0)), dtype=np.int64)
            sl = source.tolist()
            s0 = sl[0]
            if sl.count(s0) == n:
                return np.full(n, self.feed_of("source:" + s0 if s0 else ""), dtype=np.int64)
        names = receiver
        empty = names == ""
        if empty.any():
            names = names.copy()
            src = source[empty]
            if (src == src[0]).all():
                names[empty] = "source:" + src[0] if src[0] else ""
            else:
                us, inv_s = np.unique(src, return_inverse=True)
                mapped = np.empty(len(us), dtype=object)
                mapped[:] = ["source:" + u if u else "" for u in us.tolist()]
                names[empty] = mapped[inv_s]
        if (names == names[0]).all():
            return np.full(n, self.feed_of(str(names[0])), dtype=np.int64)
        un, inv = np.unique(names, return_inverse=True)
        idx = np.array([self.feed_of(str(u)) for u in un.tolist()], dtype=np.int64)
        out: I64 = idx[inv.reshape(-1)]
        return out

    def prepass(self, recs: Records, w: float) -> npt.NDArray[np.bool_]:
        """Update *busy* feeds in bulk (their timers cannot fire in this chunk); return the busy mask."""
        c = self.c
        n = len(recs)
        busy = np.ones(n, dtype=bool)
        fe = recs.feed
        if n == 0:
            return busy
        groups: list[tuple[int, I64 | None]]
        if (fe == fe[0]).all():
            groups = [(int(fe[0]), None)]
        else:
            order = np.argsort(fe, kind="stable")
            sf = fe[order]
            cut = np.flatnonzero(sf[1:] != sf[:-1]) + 1
            groups = [(int(sf[a]), order[a:b]) for a, b in zip([0, *cut.tolist()], [*cut.tolist(), n], strict=True)]
        on = c.on["feed_outage"]
        for fi, rows in groups:
            if fi < 0:
                continue
            fd = self.feeds[fi]
            e = recs.eff if rows is None else recs.eff[rows]
            ok = not fd.outage and not fd.held
            if ok and on:
                if fd.n:
                    bounds = np.concatenate(([fd.last_ts], e, [w]))
                else:  # a new feed: its first timer (first arrival + min_silence_s) must come after the chunk
                    bounds = np.concatenate((e, [w]))
                    ok = bool(e[-1] - e[0] < c.feed_min_s)
                ok = ok and bool(np.max(np.diff(bounds)) < c.feed_min_s)
            if not ok:
                if rows is None:
                    busy[:] = False
                else:
                    busy[rows] = False
                continue
            gaps = np.maximum(np.diff(np.concatenate(([fd.last_ts], e))) if fd.n else np.diff(e), 0.0)
            fd.gaps.extend(gaps[-RING:].tolist())
            if len(fd.gaps) > RING:
                del fd.gaps[: len(fd.gaps) - RING]
            fd.last_ts = float(e[-1])
            fd.n += int(e.size)
            if on and fd.timer_at != fd.timer_at:
                fd.timer_at = float(e[0]) + c.feed_min_s
                c.timers.push(fd.timer_at, T_FEED, -1, fd.name)
        return busy

    def feed_seen(self, s: int, e: float, fi: int, last_ts: float, arrival: bool) -> None:
        """One report heard by feed ``fi`` (``arrival``: not yet counted by the prepass)."""
        c = self.c
        fd = self.feeds[fi]
        cols = c.cols
        if arrival and fd.outage:
            fd.outage = False
            oa = c.life.get(AlertType.FEED_OUTAGE, fd.name)
            if oa is not None:
                c.life.close(
                    oa, e, oa.lon, oa.lat, {"started": iso(oa.start_ts), "duration_s": rnd(e - oa.start_ts, 3)}
                )
        if arrival and fd.held:
            for h in fd.held:
                if cols.gap_state[h] == GAP_HELD:
                    cols.gap_state[h] = GAP_NONE
                    dl = e + c.gap_thr(h)
                    cols.gap_deadline[h] = dl
                    c.gap_floor = min(c.gap_floor, dl)
                    if h not in c.timers.gap_due and c.timers.due(dl):
                        c.timers.push(dl, T_GAP, h, "")
            fd.held = []
        if arrival:
            fd.seen(e)
        if arrival and c.on["feed_outage"] and fd.timer_at != fd.timer_at:
            fd.timer_at = e + c.feed_min_s
            c.timers.push(fd.timer_at, T_FEED, -1, fd.name)
        prev = int(cols.feed[s])
        if prev != fi:
            if prev >= 0:
                cols.lazy("other_ts")[s] = last_ts
            cols.feed[s] = fi

    def feed_timer(self, t: float, name: str) -> None:
        """Is the feed silent beyond its usual rate? Then it is out (``feed_outage`` opens)."""
        c = self.c
        fd = self.feeds[self.index[name]]
        fd.timer_at = NAN
        if fd.outage:
            return
        thr = fd.silence_s(c.feed_factor, c.feed_min_s, c.feed_min_n)
        if thr is None:
            return
        if fd.last_ts + thr <= t:
            others = any(g.last_ts > fd.last_ts for g in self.feeds if g is not fd)
            if others:
                # a receiver that fell quiet because the traffic sailed out of its range is not out: require
                # subjects it was the last to hear shortly before the silence (they went quiet with it)
                cols = c.cols
                n = cols.n
                fi = self.index[name]
                orphans = np.count_nonzero((cols.feed[:n] == fi) & (cols.last_ts[:n] >= fd.last_ts - thr))
                others = bool(orphans >= c.feed_min_orphans)
            if not others:
                fd.timer_at = t + thr
                c.timers.push(fd.timer_at, T_FEED, -1, name)
                return
            fd.outage = True
            c.life.open_(
                AlertType.FEED_OUTAGE,
                "warning",
                name,
                "feed",
                None,
                c.tables.version,
                fd.last_ts,
                t,
                NAN,
                NAN,
                {
                    "started": iso(fd.last_ts),
                    "silent_s": rnd(t - fd.last_ts, 3),
                    "threshold_s": rnd(thr, 3),
                    "reports": fd.n,
                },
            )
        else:
            fd.timer_at = fd.last_ts + thr
            c.timers.push(fd.timer_at, T_FEED, -1, name)

    # ------------------------------------------------------------------ subjects
    def scan(self) -> None:
        """Put the gap timers that fall due in this run on the heap (the deadline column is the wheel)."""
        c = self.c
        n = c.cols.n
        w = c.timers.run_w
        if not c.on["ais_gap"] or not n or not c.timers.due(c.gap_floor):
            return
        dl = c.cols.gap_deadline[:n]
        quiet = c.cols.gap_state[:n] == GAP_NONE
        with np.errstate(invalid="ignore"):
            due = (dl <= w) if c.timers.run_final else (dl < w)
            later = dl[quiet & ~due & ~np.isnan(dl)]
        due &= quiet
        c.gap_floor = float(later.min()) if later.size else math.inf
        if not due.any():
            return
        pending = c.timers.gap_due
        for s in np.flatnonzero(due).tolist():
            if s not in pending:
                c.timers.push(float(dl[s]), T_GAP, s, "")

    def gap_timer(self, t: float, s: int) -> None:
        """The subject's deadline passed: open ``ais_gap`` (or hold it back, or ignore a departed subject)."""
        c = self.c
        cols = c.cols
        if cols.gap_state[s] != GAP_NONE:
            return
        dl = float(cols.gap_deadline[s])
        if dl > t:
            if c.timers.due(dl):
                c.timers.push(dl, T_GAP, s, "")
            return
        last_ts = float(cols.last_ts[s])
        lon, lat = float(cols.last_lon[s]), float(cols.last_lat[s])
        if s not in c.members:
            pt, _fe, _d = c.index.query_within(np.array([lon]), np.array([lat]), c.gap_near_m)
            if pt.size == 0:
                cols.gap_deadline[s] = np.inf  # out of the monitored area: not dark; the next report re-arms
                return
        thr = c.gap_thr(s)
        fi = int(cols.feed[s])
        if fi >= 0 and c.on["feed_outage"]:
            fd = self.feeds[fi]
            alone = not (c.cols.get("other_ts", s) > last_ts - thr)
            if fd.outage and alone:
                cols.gap_state[s] = GAP_HELD
                fd.held.append(s)
                return
        cols.gap_state[s] = GAP_OPEN
        c.life.open_(
            AlertType.AIS_GAP,
            "warning",
            c.sid(s),
            c.kind_label(s),
            None,
            c.tables.version,
            last_ts,
            t,
            lon,
            lat,
            c.details(s, {"started": iso(last_ts), "silent_s": rnd(t - last_ts, 3), "threshold_s": thr}),
        )

    def gap_close(self, s: int, e: float, ts: float, lon: float, lat: float) -> None:
        """The silent subject reported again: close its gap with the duration and the distance jumped."""
        c = self.c
        cols = c.cols
        oa = c.life.get(AlertType.AIS_GAP, c.sid(s))
        if oa is None:
            return
        last_ts = float(cols.last_ts[s])
        jump = haversine_m(float(cols.last_lon[s]), float(cols.last_lat[s]), lon, lat)
        c.life.close(
            oa,
            e,
            lon,
            lat,
            c.details(s, {"started": iso(last_ts), "gap_s": rnd(ts - last_ts, 3), "jump_m": rnd(jump, 1)}, ts, e),
        )
