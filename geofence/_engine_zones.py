"""Zone rules on the per-record path: hysteresis, min_inside_s, enter/exit/restricted events, dwell timers.

A subject enters fence *f* when a report lies inside *f* at least ``hysteresis_m``
from its boundary (and, with ``min_inside_s``, stays a candidate that long), and
leaves when a report lies outside at least ``hysteresis_m`` from it; a report in
the band between changes nothing. Boundary distances come from
:meth:`geofence.index.FenceIndex.boundary_distance_m` (exact within the band,
``inf`` beyond), prefetched for a chunk's records in one call.

Dwell deadlines are not pushed on the timer heap at the enter (a vessel can sit in
an anchorage for days): the ``dwell_due`` column holds each subject's earliest
deadline not yet on the heap, and :meth:`ZoneRules.scan_dwell` moves the ones that
fall due before the watermark onto the heap at the start of each run, so the heap
holds exactly the timers the per-record order needs and no object per subject.
The vectorised counterpart for whole chunks is :mod:`geofence._engine_zonebatch`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from geofence._engine_core import NAN, T_DWELL, T_MININ, Core, dwell_key, parse_dwell_key
from geofence._engine_time import iso, rnd
from geofence.alerts import AlertType
from geofence.positions import SubjectKind

__all__ = ["ZoneRules"]

_CONTAINER = int(SubjectKind.CONTAINER)


class ZoneRules:
    """Per-record zone transitions and the zone timers (see the module docstring)."""

    def __init__(self, core: Core) -> None:
        self.c = core
        self.dcache: dict[tuple[float, float, int], float] = {}
        #: container exits go here too (``container_zone_exit``; set by the engine)
        self.container_exit: Callable[[int, int, float, float, float, float], None] | None = None

    # ------------------------------------------------------------------ distances
    def prefetch(
        self, lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64], pairs: list[tuple[int, int]]
    ) -> None:
        """Boundary distances for (row, fence) pairs of the coming per-record pass, in one index call."""
        self.dcache = {}
        if not pairs:
            return
        tb = self.c.tables
        hyst = np.asarray(tb.hysteresis_m, dtype=np.float64)
        ii = np.array([p[0] for p in pairs], dtype=np.int64)
        ff = np.array([p[1] for p in pairs], dtype=np.int64)
        keep = hyst[ff] > 0
        ii, ff = ii[keep], ff[keep]
        if ii.size == 0:
            return
        d = self.c.index.boundary_distance_m(lon[ii], lat[ii], ff, hyst[ff])
        self.dcache = dict(
            zip(zip(lon[ii].tolist(), lat[ii].tolist(), ff.tolist(), strict=True), d.tolist(), strict=True)
        )

    def dist(self, lon: float, lat: float, f: int, h: float) -> float:
        """Unsigned distance to the boundary of fence ``f`` (``inf`` when at least ``h``)."""
        hit = self.dcache.get((lon, lat, f))
        if hit is not None:
            return hit
        return float(self.c.index.boundary_distance_m(np.array([lon]), np.array([lat]), np.array([f]), h)[0])

    # ------------------------------------------------------------------ one record
    def step(self, s: int, e: float, ts: float, lon: float, lat: float, raw: tuple[int, ...]) -> None:
        """Apply one trusted report's containing fences ``raw`` to the subject's memberships."""
        c = self.c
        tb = c.tables
        mem = c.members.get(s)
        if mem is None:
            mem = {}
        changed = False
        for f in raw:
            if f in mem:
                continue
            h = tb.hysteresis_m[f]
            if h > 0 and not self.dist(lon, lat, f, h) >= h:
                continue
            mi = tb.min_inside_s[f]
            if mi > 0:
                mem[f] = ["c", e, lon, lat, ts]
                c.retro[f"m{s}|{tb.ids[f]}"] = e
                c.timers.push(e + mi, T_MININ, s, tb.ids[f])
            else:
                mem[f] = ["i", e]
                self.enter(s, f, e, lon, lat, ts)
            changed = True
        for f in [f for f in mem if f not in raw]:
            h = tb.hysteresis_m[f]
            if h > 0 and not self.dist(lon, lat, f, h) >= h:
                continue
            st = mem.pop(f)
            if st[0] == "c":
                c.retro.pop(f"m{s}|{tb.ids[f]}", None)
            else:
                self.exit(s, f, e, lon, lat, ts, st[1])
            changed = True
        if changed:
            c.members.set(s, mem)
            self.refresh_pin(s)

    def refresh_pin(self, s: int) -> None:
        """Pin subjects with a min_inside_s candidate to the per-record path."""
        m = self.c.members.multi.get(s)
        if m is not None and any(st[0] == "c" for st in m.values()):
            self.c.pin.add(s)
        else:
            self.c.pin.discard(s)

    def enter(self, s: int, f: int, e: float, lon: float, lat: float, ts: float | None) -> None:
        """The enter events of fence ``f`` and its dwell deadline."""
        c = self.c
        tb = c.tables
        sid = c.sid(s)
        kind = c.kind_label(s)
        fid = tb.ids[f]
        figures = {"zone_kind": tb.kinds[f].value}
        if c.on["zone_enter"]:
            c.life.event(
                AlertType.ZONE_ENTER, "info", sid, kind, fid, tb.version, e, lon, lat, c.details(s, figures, ts, e)
            )
        if tb.is_restricted(f) and c.on["restricted_entry"]:
            c.life.event(
                AlertType.RESTRICTED_ENTRY,
                "critical",
                sid,
                kind,
                fid,
                tb.version,
                e,
                lon,
                lat,
                c.details(s, figures, ts, e),
            )
        if c.on["dwell_exceeded"] and kind == "vessel":
            lim = tb.dwell_limit_s(f, c.ship_type(s))
            if lim is not None:
                self.schedule_dwell(s, fid, e + lim, lim)

    def schedule_dwell(self, s: int, fid: str, due: float, lim: float) -> None:
        """A first dwell deadline: on the heap when due in this run, else in the ``dwell_due`` column."""
        c = self.c
        if c.timers.due(due):
            c.timers.push(due, T_DWELL, s, dwell_key(fid, 1, lim))
        else:
            cur = c.cols.dwell_due[s]
            if not cur <= due:
                c.cols.dwell_due[s] = due
                c.dwell_floor = min(c.dwell_floor, due)

    def exit(self, s: int, f: int, e: float, lon: float, lat: float, ts: float, since: float) -> None:
        """The exit event of fence ``f``; closes its dwell alert."""
        c = self.c
        tb = c.tables
        sid = c.sid(s)
        fid = tb.ids[f]
        if c.on["zone_exit"]:
            c.life.event(
                AlertType.ZONE_EXIT,
                "info",
                sid,
                c.kind_label(s),
                fid,
                tb.version,
                e,
                lon,
                lat,
                c.details(
                    s, {"zone_kind": tb.kinds[f].value, "dwell_s": rnd(e - since, 3), "started": iso(since)}, ts, e
                ),
            )
        oa = c.life.get(AlertType.DWELL_EXCEEDED, sid, fid)
        if oa is not None:
            c.life.close(oa, e, lon, lat, c.details(s, {"dwell_s": rnd(e - since, 3), "started": iso(since)}, ts, e))
        if self.container_exit is not None and int(c.cols.kind[s]) == _CONTAINER:
            self.container_exit(s, f, e, lon, lat, ts)

    # ------------------------------------------------------------------ timers
    def minin_timer(self, t: float, s: int, fid: str) -> None:
        """A min_inside_s candidate that is still inside becomes a member, dated at its first inside report."""
        c = self.c
        tb = c.tables
        f = tb.index_of(fid)
        if f < 0:
            return
        mem = c.members.get(s) or {}
        st = mem.get(f)
        if st is None or st[0] != "c" or st[1] + tb.min_inside_s[f] != t:
            return
        c.retro.pop(f"m{s}|{fid}", None)
        mem[f] = ["i", st[1]]
        c.members.set(s, mem)
        self.refresh_pin(s)
        self.enter(s, f, st[1], st[2], st[3], st[4])

    def dwell_timer(self, t: float, s: int, key: str) -> None:
        """Open (at the limit) or escalate (at each doubling) the dwell alert of a fence.

        The timer is valid only if it was scheduled with the limit that applies now (the
        subject's current ship type): after new static data changed the limit,
        :meth:`ship_type_changed` scheduled the right deadline and the old timers drop out here.
        """
        fid, mult, key_lim, since = parse_dwell_key(key)
        c = self.c
        tb = c.tables
        f = tb.index_of(fid)
        if f < 0:
            return
        mem = c.members.get(s) or {}
        st = mem.get(f)
        lim, source = tb.dwell_limit(f, c.ship_type(s))
        if st is None or st[0] != "i" or lim is None or (key_lim is not None and key_lim != lim):
            return
        if since is None:
            if st[1] + mult * lim != t:
                return
        elif since != st[1] or t < since + mult * lim:
            return
        sid = c.sid(s)
        oa = c.life.get(AlertType.DWELL_EXCEEDED, sid, fid)
        if (mult == 1) != (oa is None) or (oa is not None and oa.last_ts >= t):
            return  # an open already raised, an update of a closed alert, or one already written: a duplicate
        if t - float(c.cols.last_ts[s]) > c.gap_thr(s):
            # silent beyond the ais_gap threshold: nothing says it is still there; decide at its next report
            c.dwell_wait.setdefault(s, {})[f] = mult
            return
        self._dwell_line(s, f, t, float(st[1]), mult, lim, source, oa)

    def _dwell_line(
        self, s: int, f: int, t: float, since: float, mult: int, lim: float, source: str, oa: Any
    ) -> None:
        """The open (``oa`` None) or update line of a dwell alert at ``t``, and the next doubling's timer."""
        c = self.c
        tb = c.tables
        sid = c.sid(s)
        fid = tb.ids[f]
        lon, lat = float(c.cols.last_lon[s]), float(c.cols.last_lat[s])
        figures = {
            "dwell_s": rnd(t - since, 3),
            "max_dwell_s": lim,
            "threshold_source": source,
            "started": iso(since),
            "zone_kind": tb.kinds[f].value,
        }
        if oa is None:
            c.life.open_(
                AlertType.DWELL_EXCEEDED,
                tb.severity[f] or "warning",
                sid,
                c.kind_label(s),
                fid,
                tb.version,
                since,
                t,
                lon,
                lat,
                c.details(s, figures),
            )
        else:
            if oa.severity == "warning":
                oa.severity = "critical"
            c.life.update(oa, t, lon, lat, c.details(s, figures))
        nxt = 2 * mult
        while since + nxt * lim <= t:
            nxt *= 2
        c.timers.push(since + nxt * lim, T_DWELL, s, dwell_key(fid, nxt, lim))

    def dwell_reappear(self, s: int, e: float) -> None:
        """A report of a subject whose dwell deadline passed while it was silent (after its zone step).

        Still a member: the open (or the skipped update) is written now, dated at this report;
        a report outside has already closed the stay, with no dwell claimed for the silence.
        """
        c = self.c
        waiting = c.dwell_wait.pop(s, None)
        if not waiting:
            return
        tb = c.tables
        mem = c.members.get(s) or {}
        sid = c.sid(s)
        for f, mult in sorted(waiting.items()):
            st = mem.get(f)
            if st is None or st[0] != "i":
                continue
            lim, source = tb.dwell_limit(f, c.ship_type(s))
            if lim is None or e < st[1] + mult * lim:
                continue
            oa = c.life.get(AlertType.DWELL_EXCEEDED, sid, tb.ids[f])
            if (mult == 1) != (oa is None):
                continue
            self._dwell_line(s, f, e, float(st[1]), mult, lim, source, oa)

    def ship_type_changed(self, s: int) -> None:
        """New static data changed a subject's ship type: reschedule its dwell deadlines (:meth:`reschedule_dwell`)."""
        self.reschedule_dwell(s)

    def reschedule_dwell(self, s: int) -> None:
        """The dwell limits of a subject may have changed (new static data, a zone reload): reschedule.

        The limit is the one for the ship type known when a deadline falls due, so a limit
        learned per ship type follows the static data. A first deadline that is still ahead
        goes back to the ``dwell_due`` column; one that has already passed fires at the
        watermark (nothing before it can be decided again). An open alert gets its next
        doubling under the new limit. Timers scheduled under the old limit no longer match
        (:meth:`dwell_timer`); one scheduled twice writes its line once.
        """
        c = self.c
        if not c.on["dwell_exceeded"] or c.kind_label(s) != "vessel":
            return
        mem = c.members.get(s)
        if not mem:
            return
        tb = c.tables
        w = c.reorder.watermark
        sid = c.sid(s)
        for f, st in mem.items():
            if st[0] != "i":
                continue
            lim = tb.dwell_limit_s(f, c.ship_type(s))
            if lim is None:
                continue
            fid = tb.ids[f]
            since = float(st[1])
            if c.life.get(AlertType.DWELL_EXCEEDED, sid, fid) is None:
                d = since + lim
                if math.isfinite(w) and d < w:
                    c.timers.push(w, T_DWELL, s, dwell_key(fid, 1, lim, since))
                else:
                    if not c.cols.dwell_due[s] <= d:
                        c.cols.dwell_due[s] = d
                    c.dwell_floor = min(c.dwell_floor, d)
            else:
                mult = 2
                while math.isfinite(w) and since + mult * lim < w:
                    mult *= 2
                c.timers.push(since + mult * lim, T_DWELL, s, dwell_key(fid, mult, lim))

    def scan_dwell(self) -> None:
        """Put the first dwell deadlines that fall due in this run on the heap (the column is the wheel)."""
        c = self.c
        n = c.cols.n
        if not c.on["dwell_exceeded"] or not n or not c.timers.due(c.dwell_floor):
            return
        due_col = c.cols.dwell_due[:n]
        w = c.timers.run_w
        with np.errstate(invalid="ignore"):
            due = (due_col <= w) if c.timers.run_final else (due_col < w)
            later = due_col[~due & ~np.isnan(due_col)]
        c.dwell_floor = float(later.min()) if later.size else math.inf
        if not due.any():
            return
        tb = c.tables
        for s in np.flatnonzero(due).tolist():
            floor_t = float(due_col[s])
            nxt = NAN
            for f, st in (c.members.get(s) or {}).items():
                if st[0] != "i":
                    continue
                lim = tb.dwell_limit_s(f, c.ship_type(s))
                if lim is None:
                    continue
                d = st[1] + lim
                if d < floor_t:
                    continue  # on the heap already
                if c.timers.due(d):
                    c.timers.push(d, T_DWELL, s, dwell_key(tb.ids[f], 1, lim))
                elif not nxt <= d:
                    nxt = d
            c.cols.dwell_due[s] = nxt
            if nxt < c.dwell_floor:
                c.dwell_floor = nxt

    # ------------------------------------------------------------------ zone reload
    def remap(self, old_ids: list[str], new_index: dict[str, int]) -> None:
        """Carry memberships over to a new zone set by fence id; vanished fences are dropped."""
        c = self.c
        mp = np.array([new_index.get(fid, -1) for fid in old_ids] or [-1], dtype=np.int64)
        n = c.cols.n
        mf = c.cols.mem_f[:n]
        mapped = np.where(mf >= 0, mp[np.maximum(mf, 0)], -1)
        mt = np.where(mapped >= 0, c.cols.mem_t[:n], NAN)
        # keep the surviving fences first
        order = np.argsort(mapped < 0, axis=1, kind="stable")
        c.cols.mem_f[:n] = np.take_along_axis(mapped, order, axis=1)
        c.cols.mem_t[:n] = np.take_along_axis(mt, order, axis=1)
        c.dwell_wait = {
            s: w2 for s, w in c.dwell_wait.items() if (w2 := {int(mp[f]): m for f, m in w.items() if mp[f] >= 0})
        }
        multi = c.members.multi
        c.members.multi = {}
        for s, mem in multi.items():
            m2: dict[int, list[Any]] = {}
            for f, st in mem.items():
                g = int(mp[f])
                if g >= 0:
                    m2[g] = st
            c.members.set(s, m2)
            self.refresh_pin(s)
