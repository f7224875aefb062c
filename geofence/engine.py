"""The deterministic event-time alerting engine (implements :class:`geofence.engine_api.Engine`).

Pipeline per call: lateness and effective times (:mod:`geofence._timeline`), then
the complete prefix of the one total processing order (records by (eff, slot,
seq) merged with timers) is processed; one fence-index query per released
chunk, then a per-record pass that only does real work for subjects whose state
changes; finally alert lines below the release horizon are handed out in output
order (:mod:`geofence.lifecycle`). The same input therefore gives the same lines
whatever the micro-batch size. Rules and defaults: ``docs/rules.md``.
"""

from __future__ import annotations

import functools
import heapq
import io
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from geofence._detectors import DetectorRules, PostRow
from geofence._fastpath import group_prev, last_per_group, per_record_tables, push_tracks
from geofence._fastpath import implied_kn as fast_implied_kn
from geofence._geo import haversine_m
from geofence._state import GAP_HELD, GAP_NONE, GAP_OPEN, TRACK_LEN, Memberships, SubjectColumns
from geofence._timeline import Reorder
from geofence.alerts import Alert, AlertType
from geofence.deadletter import DeadLetter
from geofence.engine_api import EngineOutput, EngineStats
from geofence.errors import ConfigError
from geofence.fence import ZoneSet
from geofence.index import FenceIndex
from geofence.lifecycle import Lifecycle, OpenAlert, alert_from_json, alert_to_json
from geofence.positions import PositionBatch, StaticReport, SubjectKind
from geofence.rules.config import RulesConfig
from geofence.rules.gaps import RING, Feed
from geofence.rules.motion import implied_kn, is_jump, sog_valid
from geofence.rules.route import Plans
from geofence.rules.zones_rules import Baseline, ZoneTables, segment_crossings
from geofence.timefmt import iso_utc

__all__ = ["Engine"]

NAN = float("nan")
_SNAPSHOT_FORMAT = 1

# Timer kinds; the rank is the tie-break between timers due at the same instant.
_T_MININ, _T_DWELL, _T_CLOSE, _T_SUSPECT, _T_GAP, _T_FEED = range(6)
#: A quarantined position not confirmed within this time is discarded.
_SUSPECT_EXPIRY_S = 900.0

Timer = tuple[float, int, int, str]


@functools.lru_cache(maxsize=1 << 16)
def _iso(ts_s: float) -> str:
    return iso_utc(ts_s)


def _r6(x: float) -> float:
    return round(float(x), 6)


class Engine:
    """Event-time engine over one zone set.

    Parameters
    ----------
    zones
        The fences to decide under.
    config
        Rule parameters (:class:`~geofence.rules.config.RulesConfig`); built-in defaults when None.
    baseline
        Learned dwell baseline ``(zone_id, ship_type) -> {"p99": minutes}`` for percentile
        ``max_dwell_min`` values; a percentile without a baseline is a :class:`ConfigError`.
    tolerance_s
        Reorder tolerance; overrides ``[defaults.engine] tolerance_s`` (60 s).
    """

    def __init__(
        self,
        zones: ZoneSet,
        config: RulesConfig | None = None,
        *,
        baseline: Baseline | None = None,
        plans: Plans | None = None,
        tolerance_s: float | None = None,
        fast: bool = True,
    ) -> None:
        self.config = config if config is not None else RulesConfig.default()
        tol = float(self.config.get("engine", "tolerance_s") if tolerance_s is None else tolerance_s)
        if not math.isfinite(tol) or tol < 0:
            raise ConfigError(f"tolerance_s = {tol!r} is invalid; expected a number of seconds >= 0")
        self._baseline = baseline
        self._zones = zones
        self._tables = ZoneTables(zones, self.config, baseline)
        self._index = FenceIndex(zones)
        self._cols = SubjectColumns()
        self._reorder = Reorder(tol)
        self._life = Lifecycle()
        self._timers: list[Timer] = []
        self._members = Memberships(self._cols)
        self._suspects: dict[int, list[Any]] = {}
        self._retro: dict[str, float] = {}
        self._feeds: dict[str, Feed] = {}
        self._feed_names: list[str] = []
        self._feed_idx: dict[str, int] = {}
        self._statics: dict[str, dict[str, Any]] = {}
        self._positions = 0
        self._late = 0
        self._stale = 0
        self._cog = NAN
        self._segments: list[tuple[int, float, float, float, float, float, float]] = []
        self._post: list[PostRow] = []
        self._post_arrays: list[tuple[npt.NDArray[Any], ...]] = []
        self._seg_arrays: list[npt.NDArray[np.float64]] = []
        self._pin: set[int] = set()
        self._slot_timers: dict[int, list[float]] = {}
        self._seq = 0
        self._run_w = float("-inf")
        self._run_final = False
        self._dcache: dict[tuple[float, float, int], float] = {}
        self._grp: tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]] | None = None
        self._prev: tuple[npt.NDArray[np.float64], ...] = ()
        #: Use the vectorised fast path for cold subjects (False: every record takes the exact per-record path).
        self.fast = fast
        self._cache_params()
        self._plans = plans
        self._det = DetectorRules(self._on, plans)
        self._det.set_zones(zones)

    # ------------------------------------------------------------------ configuration
    def _cache_params(self) -> None:
        c = self.config
        self._on = {t.value: c.enabled(t.value) for t in AlertType}
        self._stop_kn = float(c.get("unexpected_stop", "stop_kn"))
        self._resume_kn = float(c.get("unexpected_stop", "resume_kn"))
        self._stop_d_m = float(c.get("unexpected_stop", "diameter_m"))
        self._stop_min_s = float(c.get("unexpected_stop", "min_duration_s"))
        self._stop_outside = bool(c.get("unexpected_stop", "outside_zones"))
        self._stop_cool_s = float(c.get("unexpected_stop", "cooldown_s"))
        self._os_min_s = float(c.get("overspeed", "min_duration_s"))
        self._os_cf = float(c.get("overspeed", "critical_factor"))
        self._os_cool_s = float(c.get("overspeed", "cooldown_s"))
        self._jump_min_m = float(c.get("position_jump", "min_distance_m"))
        self._jump_cool_s = float(c.get("position_jump", "cooldown_s"))
        self._gap_near_m = float(c.get("ais_gap", "near_m"))
        self._feed_factor = float(c.get("feed_outage", "rate_factor"))
        self._feed_min_s = float(c.get("feed_outage", "min_silence_s"))
        self._feed_min_n = float(c.get("feed_outage", "min_reports"))
        self._feed_min_orphans = float(c.get("feed_outage", "min_subjects"))
        self._spd_window_s = float(c.get("speed", "window_s"))
        self._maxkn_cache: dict[int | None, float] = {}
        self._gapthr_cache: dict[int | None, float] = {}

    def _ship_type(self, sid: str) -> int | None:
        st = self._statics.get(sid)
        return None if st is None else st.get("ship_type")

    def _gap_thr(self, s: int, raw: tuple[int, ...] | None = None) -> float:
        v = float(self._cols.cols["gthr"][s])
        inside = raw if raw is not None else tuple(self._members.get(s, ()))
        for f in inside:
            z = self._tables.gap_threshold_s[f]
            if z is not None and z < v:
                v = z
        return v

    def _init_slots(self, lo: int, hi: int) -> None:
        """Per-subject thresholds of new slots from the static registry (ship type)."""
        cols = self._cols.cols
        for s in range(lo, hi):
            t = self._ship_type(self._cols.ids[s])
            cols["maxkn"][s] = self._max_kn_t(t)
            cols["gthr"][s] = self._gap_thr_t(t)

    def _max_kn_t(self, t: int | None) -> float:
        v = self._maxkn_cache.get(t)
        if v is None:
            v = self._maxkn_cache[t] = self.config.for_ship_type("position_jump", t)
        return v

    def _gap_thr_t(self, t: int | None) -> float:
        v = self._gapthr_cache.get(t)
        if v is None:
            v = self._gapthr_cache[t] = self.config.for_ship_type("ais_gap", t)
        return v

    # ------------------------------------------------------------------ public API
    def add_statics(self, reports: Sequence[StaticReport]) -> None:
        """Merge static reports into the vessel registry (type 24 parts combine)."""
        for r in reports:
            entry = self._statics.setdefault(r.subject_id, {})
            for key in ("name", "ship_type", "length_m", "beam_m", "destination", "imo", "callsign"):
                v = getattr(r, key)
                if v is not None:
                    entry[key] = v
            slot = self._cols.slot_of.get(r.subject_id)
            if slot is not None:
                self._init_slots(slot, slot + 1)

    def process(self, batch: PositionBatch) -> EngineOutput:
        """Ingest one micro-batch; return the alert lines that became final and the late records."""
        out = EngineOutput()
        if len(batch):
            lo = self._cols.n
            slots = self._cols.slots(batch.subject_id)
            if self._cols.n > lo:
                self._init_slots(lo, self._cols.n)
            late = self._reorder.accept(batch, slots, self._cols.cols["arr_max_ts"])
            if late.any():
                out.dead.extend(self._dead_letters(batch, np.flatnonzero(late)))
        self._run(final=False)
        out.alerts = self._life.release(self._horizon())
        return out

    def finish(self) -> EngineOutput:
        """End of input: process every pending record, fire timers up to the final watermark, flush."""
        self._run(final=True)
        return EngineOutput(alerts=self._life.release(self._reorder.watermark, final=True))

    def open_alerts(self) -> list[Alert]:
        """The last line of every alert still open, in output order."""
        return self._life.open_alert_lines()

    def set_zones(self, zones: ZoneSet) -> None:
        """Swap the zone set and index; memberships carry over by fence id, vanished fences are dropped."""
        old_ids = self._tables.ids
        tables = ZoneTables(zones, self.config, self._baseline)
        new_idx = {fid: i for i, fid in enumerate(tables.ids)}
        old = self._members.items()
        self._members = Memberships(self._cols)
        self._cols.cols["mem1_f"][:] = -1
        self._zones, self._tables, self._index = zones, tables, FenceIndex(zones)
        self._cols.cols["mem_sig"][:] = 0
        for s, mem in old:
            m2 = {new_idx[old_ids[f]]: st for f, st in mem.items() if old_ids[f] in new_idx}
            if m2:
                self._members[s] = m2
            self._member_sig(s)
        for sus in self._suspects.values():
            sus[5] = ()
        self._det.set_zones(zones)
        for oa in self._life.open.values():
            oa.zone_version = zones.version

    def stats(self) -> EngineStats:
        """Current figures (event time)."""
        mx = self._reorder.max_ts
        return EngineStats(
            watermark_s=None if not math.isfinite(mx) else self._reorder.watermark,
            max_event_ts_s=None if not math.isfinite(mx) else mx,
            open_alerts=len(self._life.open),
            subjects=self._cols.n,
            positions=self._positions,
            late=self._late,
        )

    # ------------------------------------------------------------------ helpers
    def _dead_letters(self, batch: PositionBatch, idx: npt.NDArray[np.int64]) -> list[DeadLetter]:
        self._late += int(idx.size)
        out = []
        for i in idx.tolist():
            sid = str(batch.subject_id[i])
            ts = float(batch.ts_s[i])
            raw = json.dumps(
                {"subject_id": sid, "ts": iso_utc(ts), "lon": float(batch.lon_deg[i]), "lat": float(batch.lat_deg[i])}
            )
            out.append(
                DeadLetter(
                    source=str(batch.source[i]),
                    line=int(batch.line[i]),
                    reason="late",
                    detail=f"subject {sid} at {iso_utc(ts)} is older than its latest report by more than "
                    f"the {self._reorder.tolerance_s:g} s reorder tolerance",
                    raw=raw,
                )
            )
        return out

    def _horizon(self) -> float:
        w = self._reorder.watermark
        if self._retro:
            w = min(w, min(self._retro.values()))
        return w

    def _push(self, t: float, kind: int, slot: int, key: str) -> None:
        heapq.heappush(self._timers, (t, kind, slot, key))
        if slot >= 0 and kind != _T_GAP:
            self._slot_timers.setdefault(slot, []).append(t)

    def _details(
        self, s: int, figures: Mapping[str, Any], ts: float | None = None, eff: float | None = None
    ) -> dict[str, Any]:
        d = dict(figures)
        if ts is not None and eff is not None and ts != eff:
            d["report_ts"] = iso_utc(ts)
        sid = self._cols.ids[s]
        st = self._statics.get(sid)
        if st:
            d["vessel"] = dict(st)
        d["track"] = [[_r6(lo), _r6(la), _iso(t)] for lo, la, t in self._cols.track(s)]
        return d

    def _kind(self, s: int) -> str:
        return SubjectKind(int(self._cols.cols["kind"][s])).label

    # ------------------------------------------------------------------ the processing loop
    def _run(self, final: bool) -> None:
        batch, slots, eff, seq = self._reorder.release(final)
        w = self._reorder.watermark
        self._run_w, self._run_final = w, final
        self._scan_gaps()
        timers = self._timers
        n = len(batch)
        if n:
            cols = self._cols.cols
            cols["kind"][slots] = batch.kind
            tb = self._tables
            pi, fi = self._index.query(batch.lon_deg, batch.lat_deg)
            sig, rec_lim, rec_gthr, rec_moor, starts_a = per_record_tables(
                n, pi, fi, tb.keys, tb.limit_arr, tb.gap_arr, tb.moor_arr
            )
            rec_feed, busy = self._feed_prepass(batch, eff, w)
            cold = self._cold_mask(batch, slots, eff, sig, rec_lim, rec_feed, busy) if self.fast else None
            if cold is not None and cold.any():
                self._apply_cold(np.flatnonzero(cold), batch, slots, eff, seq, rec_gthr, rec_moor, rec_feed)
                hot = np.flatnonzero(~cold)
            else:
                hot = np.arange(n)
            starts = starts_a.tolist()
            fl = fi.tolist()
            names = self._feed_names
            self._prefetch_dist(hot, batch, slots, sig, starts, fl)
            for i in hot.tolist():
                e = float(eff[i])
                while timers and timers[0][0] < e and (timers[0][0] < w or (final and timers[0][0] <= w)):
                    self._fire(heapq.heappop(timers))
                a, b = starts[i], starts[i + 1]
                raw = tuple(fl[a:b]) if b > a else ()
                f = int(rec_feed[i])
                self._cog = float(batch.cog_deg[i])
                self._seq = int(seq[i])
                self._record(
                    int(slots[i]),
                    e,
                    float(batch.ts_s[i]),
                    float(batch.lon_deg[i]),
                    float(batch.lat_deg[i]),
                    float(batch.sog_kn[i]),
                    int(batch.kind[i]),
                    names[f] if f >= 0 else "",
                    not busy[i],
                    raw,
                )
        while timers and (timers[0][0] < w or (final and timers[0][0] <= w)):
            self._fire(heapq.heappop(timers))
        self._dcache = {}
        self._flush_segments()
        self._flush_post(w)

    def _due(self, t: float) -> bool:
        """Whether a timer at ``t`` fires in the current run (``T < W``; ``T <= W`` at the end)."""
        return t < self._run_w or (self._run_final and t <= self._run_w)

    def _scan_gaps(self) -> None:
        """Put the gap timers that fall due in this run on the heap (the deadline column is the wheel)."""
        if not self._on["ais_gap"] or not self._cols.n:
            return
        cols = self._cols.cols
        n = self._cols.n
        dl = cols["gap_deadline"][:n]
        with np.errstate(invalid="ignore"):
            due = (dl <= self._run_w) if self._run_final else (dl < self._run_w)
        due &= np.isnan(cols["gap_timer"][:n]) & (cols["gap_state"][:n] == GAP_NONE)
        for s in np.flatnonzero(due).tolist():
            t = float(dl[s])
            cols["gap_timer"][s] = t
            self._push(t, _T_GAP, s, "")

    def _flush_post(self, w: float) -> None:
        post, self._post = self._post, []
        arrays, self._post_arrays = self._post_arrays, []
        if post:
            arrays.append(
                (
                    np.array([r[0] for r in post], dtype=np.int64),
                    np.array([r[1] for r in post], dtype=np.float64),
                    np.array([r[2] for r in post], dtype=np.float64),
                    np.array([r[3] for r in post], dtype=np.float64),
                    np.array([r[4] for r in post], dtype=np.float64),
                    np.array([r[5] for r in post], dtype=np.float64),
                    np.array([r[6] for r in post], dtype=np.float64),
                    np.array([r[7] for r in post], dtype=bool),
                )
            )
        if arrays:
            cat = [np.concatenate([a[k] for a in arrays]) for k in range(8)]
            order = np.lexsort((cat[2], cat[1]))
            slot, _e, _seq, lon, lat, cog, spd, moor = (c[order] for c in cat)
            ids = self._cols.ids
            sid = np.array([ids[s] for s in slot.tolist()], dtype=object)
            self._det.run(slot, sid, _e, lon, lat, cog, spd, moor, w, self._life, self._tables.version, self._details)
        else:
            self._det.run(
                None, None, None, None, None, None, None, None, w, self._life, self._tables.version, self._details
            )

    def _feed_prepass(
        self, batch: PositionBatch, eff: npt.NDArray[np.float64], w: float
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """Feed index per record; update *busy* feeds in bulk (their timers cannot fire in this chunk)."""
        n = len(batch)
        names = batch.receiver.copy()
        empty = names == ""
        if empty.any():
            src = batch.source[empty]
            if (src == src[0]).all():
                names[empty] = "source:" + src[0] if src[0] else ""
            else:
                us, inv_s = np.unique(src, return_inverse=True)
                mapped = np.empty(len(us), dtype=object)
                mapped[:] = ["source:" + u if u else "" for u in us.tolist()]
                names[empty] = mapped[inv_s]
        if (names == names[0]).all():
            un = np.array([names[0]], dtype=object)
            first_idx = np.zeros(1, dtype=np.int64)
            inv = np.zeros(n, dtype=np.int64)
        else:
            un, first_idx, inv = np.unique(names, return_index=True, return_inverse=True)
        rec_feed = np.full(n, -1, dtype=np.int64)
        busy = np.ones(n, dtype=bool)
        on = self._on["feed_outage"]
        for j in np.argsort(first_idx, kind="stable").tolist():
            name = str(un[j])
            if not name:
                continue
            fd = self._feeds.get(name)
            if fd is None:
                fd = self._feeds[name] = Feed(name)
                self._feed_idx[name] = len(self._feed_names)
                self._feed_names.append(name)
            rows = np.flatnonzero(inv == j) if len(un) > 1 else np.arange(n)
            rec_feed[rows] = self._feed_idx[name]
            e = eff[rows]
            ok = fd.n > 0 and not fd.outage and not fd.held
            if ok and on:
                bounds = np.concatenate(([fd.last_ts], e, [w]))
                ok = bool(np.max(np.diff(bounds)) < self._feed_min_s)
            if not ok:
                busy[rows] = False
                continue
            gaps = np.maximum(np.diff(np.concatenate(([fd.last_ts], e))), 0.0)
            fd.gaps.extend(gaps[-RING:].tolist())
            if len(fd.gaps) > RING:
                del fd.gaps[: len(fd.gaps) - RING]
            fd.last_ts = float(e[-1])
            fd.n += int(e.size)
            if on and fd.timer_at != fd.timer_at:
                fd.timer_at = float(e[0]) + self._feed_min_s
                self._push(fd.timer_at, _T_FEED, -1, name)
        return rec_feed, busy

    def _cold_mask(
        self,
        batch: PositionBatch,
        slots: npt.NDArray[np.int64],
        eff: npt.NDArray[np.float64],
        sig: npt.NDArray[np.int64],
        rec_lim: npt.NDArray[np.float64],
        rec_feed: npt.NDArray[np.int64],
        busy: npt.NDArray[np.bool_],
    ) -> npt.NDArray[np.bool_]:
        """Rows of subjects provably unaffected by every rule in this chunk (see :mod:`geofence._fastpath`)."""
        cols = self._cols.cols
        n = len(batch)
        order = np.argsort(slots, kind="stable")
        sls = slots[order]
        first = np.ones(n, dtype=bool)
        first[1:] = sls[1:] != sls[:-1]
        self._grp = (order, first)
        ts = batch.ts_s
        prev_ts = group_prev(order, first, ts, cols["last_ts"][sls])
        prev_lon = group_prev(order, first, batch.lon_deg, cols["last_lon"][sls])
        prev_lat = group_prev(order, first, batch.lat_deg, cols["last_lat"][sls])
        self._prev = (prev_ts, prev_lon, prev_lat)
        sog = batch.sog_kn
        maxkn = cols["maxkn"][slots]
        with np.errstate(invalid="ignore"):
            ok = (batch.kind == 0) & busy & (sog >= 0) & (sog <= maxkn) & ~(ts < prev_ts)
            ok &= (sig == cols["mem_sig"][slots]) & (cols["gap_state"][slots] == GAP_NONE)
            col_feed = cols["feed"][slots]
            ok &= (rec_feed < 0) | (rec_feed == col_feed) | (col_feed < 0)
            if self._on["position_jump"]:
                d, v = fast_implied_kn(prev_lon, prev_lat, prev_ts, batch.lon_deg, batch.lat_deg, ts)
                ok &= ~((d > self._jump_min_m) & (v > maxkn))
            if self._on["unexpected_stop"]:
                ok &= (sog >= self._stop_kn) & np.isnan(cols["stop_start"][slots])
            if self._on["overspeed"]:
                lim = rec_lim
                if self._tables.global_limit_kn is not None:
                    lim = np.minimum(lim, float(self._tables.global_limit_kn))
                ok &= (sog <= lim) & np.isnan(cols["os_start"][slots])
        bad = np.zeros(self._cols.n, dtype=bool)
        bad[slots[~ok]] = True
        last, _rank = last_per_group(order, first)
        us = slots[last]
        maxeff = eff[last]
        with np.errstate(invalid="ignore"):
            gt = cols["gap_timer"][us]
            bad[us[(gt <= maxeff) & (cols["gap_deadline"][us] <= gt)]] = True
        for s in self._suspects:
            bad[s] = True
        for s in self._pin:
            bad[s] = True
        slot_of = self._cols.slot_of
        for key in self._life.open:
            if key[0] in ("unexpected_stop", "overspeed") and key[1] in slot_of:
                bad[slot_of[key[1]]] = True
        if self._slot_timers:
            for s, m in zip(us.tolist(), maxeff.tolist(), strict=True):
                lst = self._slot_timers.get(s)
                if lst and min(lst) <= m:
                    bad[s] = True
        cold: npt.NDArray[np.bool_] = ~bad[slots]
        return cold

    def _apply_cold(
        self,
        ci: npt.NDArray[np.int64],
        batch: PositionBatch,
        slots: npt.NDArray[np.int64],
        eff: npt.NDArray[np.float64],
        seq: npt.NDArray[np.int64],
        rec_gthr: npt.NDArray[np.float64],
        rec_moor: npt.NDArray[np.bool_],
        rec_feed: npt.NDArray[np.int64],
    ) -> None:
        """Bookkeeping of cold rows in bulk: positions, evidence ring, speed anchor, gap deadline, post rows."""
        cols = self._cols.cols
        self._positions += int(ci.size)
        sl = slots[ci]
        ts = batch.ts_s[ci]
        lon = batch.lon_deg[ci]
        lat = batch.lat_deg[ci]
        sog = batch.sog_kn[ci]
        prev_ts, prev_lon, prev_lat = (p[ci] for p in self._prev)
        order = np.argsort(sl, kind="stable")
        sls = sl[order]
        first = np.ones(ci.size, dtype=bool)
        first[1:] = sls[1:] != sls[:-1]
        last, rank = last_per_group(order, first)
        count = np.diff(np.append(np.flatnonzero(first), ci.size))
        cnt = np.empty(ci.size, dtype=np.int64)
        cnt[order] = np.repeat(count, count)
        push_tracks(cols, sl, rank, cnt, lon, lat, ts)
        ul = sl[last]
        cols["trk_head"][ul] = (cols["trk_head"][ul].astype(np.int64) + count) % TRACK_LEN
        cols["trk_n"][ul] = np.minimum(cols["trk_n"][ul].astype(np.int64) + count, TRACK_LEN)
        cols["last_ts"][ul] = ts[last]
        cols["last_lon"][ul] = lon[last]
        cols["last_lat"][ul] = lat[last]
        cols["spd_ts"][ul] = ts[last]
        cols["spd_lon"][ul] = lon[last]
        cols["spd_lat"][ul] = lat[last]
        cols["der_kn"][ul] = sog[last]
        fl_ = rec_feed[ci][last]
        has_feed = fl_ >= 0
        cols["feed"][ul[has_feed]] = fl_[has_feed]
        if self._on["ais_gap"]:
            thr = np.minimum(cols["gthr"][ul], rec_gthr[ci][last])
            dl = ts[last] + thr
            cols["gap_deadline"][ul] = dl
            due = (dl <= self._run_w) if self._run_final else (dl < self._run_w)
            need = np.isnan(cols["gap_timer"][ul]) & due
            if need.any():
                for s, t in zip(ul[need].tolist(), dl[need].tolist(), strict=True):
                    cols["gap_timer"][s] = t
                    self._push(t, _T_GAP, s, "")
        if self._on["zone_cross"]:
            seg = np.stack([sl.astype(np.float64), eff[ci], ts, prev_lon, prev_lat, lon, lat], axis=1)
            self._seg_arrays.append(seg[np.isfinite(prev_ts)])
        self._post_arrays.append(
            (sl, eff[ci], seq[ci].astype(np.float64), lon, lat, batch.cog_deg[ci], sog, rec_moor[ci])
        )

    def _fire(self, timer: Timer) -> None:
        t, kind, s, key = timer
        if s >= 0 and kind != _T_GAP:
            lst = self._slot_timers[s]
            lst.remove(t)
            if not lst:
                del self._slot_timers[s]
        if kind == _T_GAP:
            self._gap_timer(t, s)
        elif kind == _T_FEED:
            self._feed_timer(t, key)
        elif kind == _T_MININ:
            self._minin_timer(t, s, key)
        elif kind == _T_DWELL:
            self._dwell_timer(t, s, key)
        elif kind == _T_CLOSE:
            self._close_timer(t, s, key)
        elif kind == _T_SUSPECT:
            sus = self._suspects.get(s)
            if sus is not None and sus[0] + _SUSPECT_EXPIRY_S == t:
                del self._suspects[s]
                self._retro.pop(f"j{s}", None)

    # ------------------------------------------------------------------ one record
    def _record(
        self,
        s: int,
        e: float,
        ts: float,
        lon: float,
        lat: float,
        sog: float,
        kind: int,
        feed: str,
        arrival: bool,
        raw: tuple[int, ...],
    ) -> None:
        cols = self._cols.cols
        last_ts = cols["last_ts"][s]
        if ts < last_ts:  # older than what this subject already processed (arrived behind the watermark)
            self._stale += 1
            return
        self._positions += 1
        vessel = kind == SubjectKind.VESSEL
        if feed:
            self._feed_seen(s, e, feed, last_ts, arrival)
        if vessel:
            gs = cols["gap_state"][s]
            if gs != GAP_NONE:
                cols["gap_state"][s] = GAP_NONE
                if gs == GAP_OPEN:
                    self._gap_close(s, e, ts, lon, lat)
        if self._on["position_jump"] and last_ts == last_ts:
            sid = self._cols.ids[s]
            maxkn = float(cols["maxkn"][s])
            d, v = implied_kn(cols["last_lon"][s], cols["last_lat"][s], last_ts, lon, lat, ts)
            sus = self._suspects.get(s)
            if is_jump(d, v, self._jump_min_m, maxkn):
                if sus is not None:
                    ds, vs = implied_kn(sus[2], sus[3], sus[1], lon, lat, ts)
                    del self._suspects[s]
                    self._retro.pop(f"j{s}", None)
                    if not is_jump(ds, vs, self._jump_min_m, maxkn):
                        # the suspect is confirmed by this report: apply it, then this one
                        self._apply(s, sus[0], sus[1], sus[2], sus[3], sus[4], kind, tuple(sus[5]), post=False)
                        self._apply(s, e, ts, lon, lat, sog, kind, raw)
                        return
                self._suspects[s] = [e, ts, lon, lat, sog, list(raw)]
                self._retro[f"j{s}"] = e
                self._push(e + _SUSPECT_EXPIRY_S, _T_SUSPECT, s, "")
                jt = cols["jump_ts"][s]
                if not (e - jt < self._jump_cool_s):
                    cols["jump_ts"][s] = e
                    self._life.event(
                        AlertType.POSITION_JUMP,
                        "warning",
                        sid,
                        self._kind(s),
                        None,
                        self._tables.version,
                        e,
                        lon,
                        lat,
                        self._details(
                            s,
                            {
                                "distance_m": round(d, 1),
                                "implied_speed_kn": round(v, 1),
                                "max_speed_kn": maxkn,
                                "from": [_r6(cols["last_lon"][s]), _r6(cols["last_lat"][s]), iso_utc(last_ts)],
                            },
                            ts,
                            e,
                        ),
                    )
                return
            if sus is not None:
                del self._suspects[s]
                self._retro.pop(f"j{s}", None)
        self._apply(s, e, ts, lon, lat, sog, kind, raw)

    def _apply(
        self,
        s: int,
        e: float,
        ts: float,
        lon: float,
        lat: float,
        sog: float,
        kind: int,
        raw: tuple[int, ...],
        post: bool = True,
    ) -> None:
        """Apply a trusted position to the subject's state and rules."""
        cols = self._cols.cols
        last_ts = cols["last_ts"][s]
        vessel = kind == SubjectKind.VESSEL
        self._cols.push_track(s, lon, lat, ts)
        if raw or s in self._members:
            self._zones_step(s, e, ts, lon, lat, raw)
        if last_ts == last_ts and self._on["zone_cross"]:
            self._segments.append((s, e, ts, cols["last_lon"][s], cols["last_lat"][s], lon, lat))
        if vessel:
            maxkn = float(cols["maxkn"][s])
            valid = sog_valid(sog, maxkn)
            spd_ts = cols["spd_ts"][s]
            if valid:  # a trusted SOG resets the derived-speed anchor
                cols["spd_ts"][s], cols["spd_lon"][s], cols["spd_lat"][s] = ts, lon, lat
                cols["der_kn"][s] = sog
            elif spd_ts != spd_ts:
                cols["spd_ts"][s], cols["spd_lon"][s], cols["spd_lat"][s] = ts, lon, lat
            elif ts - spd_ts >= self._spd_window_s:
                _d, v = implied_kn(cols["spd_lon"][s], cols["spd_lat"][s], spd_ts, lon, lat, ts)
                cols["der_kn"][s] = v
                cols["spd_ts"][s], cols["spd_lon"][s], cols["spd_lat"][s] = ts, lon, lat
            speed = sog if valid else float(cols["der_kn"][s])
            if self._on["unexpected_stop"]:
                self._stop_step(s, e, ts, lon, lat, sog if valid else NAN, float(cols["der_kn"][s]), raw)
            if self._on["overspeed"]:
                self._overspeed_step(s, e, ts, lon, lat, speed, raw)
            if post:
                self._post.append((s, e, self._seq, lon, lat, self._cog, speed, self._tables.mooring(raw)))
        cols["last_ts"][s], cols["last_lon"][s], cols["last_lat"][s] = ts, lon, lat
        if vessel and self._on["ais_gap"]:
            dl = ts + self._gap_thr(s, raw)
            cols["gap_deadline"][s] = dl
            if cols["gap_timer"][s] != cols["gap_timer"][s] and self._due(dl):
                cols["gap_timer"][s] = dl
                self._push(dl, _T_GAP, s, "")

    # ------------------------------------------------------------------ zones
    def _prefetch_dist(
        self,
        hot: npt.NDArray[np.int64],
        batch: PositionBatch,
        slots: npt.NDArray[np.int64],
        sig: npt.NDArray[np.int64],
        starts: list[int],
        fl: list[int],
    ) -> None:
        """Boundary distances the hysteresis may need for this chunk's hot rows, in one index call."""
        self._dcache = {}
        mem_sig = self._cols.cols["mem_sig"]
        rows = hot[sig[hot] != mem_sig[slots[hot]]].tolist()
        pairs: list[tuple[int, int]] = []
        members = self._members
        for i in rows:
            raw = fl[starts[i] : starts[i + 1]]
            pairs.extend((i, f) for f in raw)
            mem = members.get(int(slots[i]))
            if mem:
                pairs.extend((i, f) for f in mem if f not in raw)
        if not pairs:
            return
        ii = np.array([p[0] for p in pairs], dtype=np.int64)
        ff = np.array([p[1] for p in pairs], dtype=np.int64)
        d = self._index.distance_m(batch.lon_deg[ii], batch.lat_deg[ii], ff)
        self._dcache = {
            (lo, la, f): v
            for lo, la, f, v in zip(
                batch.lon_deg[ii].tolist(), batch.lat_deg[ii].tolist(), ff.tolist(), d.tolist(), strict=True
            )
        }

    def _dist(self, lon: float, lat: float, f: int) -> float:
        hit = self._dcache.get((lon, lat, f))
        if hit is not None:
            return hit
        return float(self._index.distance_m(np.array([lon]), np.array([lat]), np.array([f]))[0])

    def _zones_step(self, s: int, e: float, ts: float, lon: float, lat: float, raw: tuple[int, ...]) -> None:
        tb = self._tables
        mem = self._members.get(s)
        if mem is None:
            mem = {}
        for f in raw:
            if f in mem:
                continue
            h = tb.hysteresis_m[f]
            if h > 0 and self._dist(lon, lat, f) > -h:
                continue
            mi = tb.min_inside_s[f]
            if mi > 0:
                mem[f] = ["c", e, lon, lat, ts]
                self._retro[f"m{s}|{tb.ids[f]}"] = e
                self._push(e + mi, _T_MININ, s, tb.ids[f])
            else:
                mem[f] = ["i", e]
                self._enter(s, f, e, lon, lat, ts)
        for f in [f for f in mem if f not in raw]:
            h = tb.hysteresis_m[f]
            if h > 0 and self._dist(lon, lat, f) < h:
                continue
            st = mem.pop(f)
            if st[0] == "c":
                self._retro.pop(f"m{s}|{tb.ids[f]}", None)
            else:
                self._exit(s, f, e, lon, lat, ts, st[1])
        if mem:
            self._members[s] = mem
        else:
            self._members.pop(s, None)
        self._member_sig(s)

    def _member_sig(self, s: int) -> None:
        """Refresh the subject's membership signature and candidate pin (fast path bookkeeping)."""
        mem = self._members.get(s)
        sig = 0
        cand = False
        if mem:
            keys = self._tables.keys
            for f, st in mem.items():
                sig ^= int(keys[f])
                cand = cand or st[0] == "c"
        self._cols.cols["mem_sig"][s] = sig
        if cand:
            self._pin.add(s)
        else:
            self._pin.discard(s)

    def _enter(self, s: int, f: int, e: float, lon: float, lat: float, ts: float | None) -> None:
        tb = self._tables
        sid = self._cols.ids[s]
        kind = self._kind(s)
        fid = tb.ids[f]
        figures = {"zone_kind": tb.kinds[f].value}
        if self._on["zone_enter"]:
            self._life.event(
                AlertType.ZONE_ENTER,
                "info",
                sid,
                kind,
                fid,
                tb.version,
                e,
                lon,
                lat,
                self._details(s, figures, ts, e),
            )
        if tb.is_restricted(f) and self._on["restricted_entry"]:
            self._life.event(
                AlertType.RESTRICTED_ENTRY,
                "critical",
                sid,
                kind,
                fid,
                tb.version,
                e,
                lon,
                lat,
                self._details(s, figures, ts, e),
            )
        if self._on["dwell_exceeded"] and kind == "vessel":
            lim = tb.dwell_limit_s(f, self._ship_type(sid))
            if lim is not None:
                self._push(e + lim, _T_DWELL, s, f"{fid}|1")

    def _exit(self, s: int, f: int, e: float, lon: float, lat: float, ts: float, since: float) -> None:
        tb = self._tables
        sid = self._cols.ids[s]
        fid = tb.ids[f]
        if self._on["zone_exit"]:
            self._life.event(
                AlertType.ZONE_EXIT,
                "info",
                sid,
                self._kind(s),
                fid,
                tb.version,
                e,
                lon,
                lat,
                self._details(
                    s,
                    {"zone_kind": tb.kinds[f].value, "dwell_s": round(e - since, 3), "started": iso_utc(since)},
                    ts,
                    e,
                ),
            )
        oa = self._life.get(AlertType.DWELL_EXCEEDED, sid, fid)
        if oa is not None:
            self._life.close(
                oa, e, lon, lat, self._details(s, {"dwell_s": round(e - since, 3), "started": iso_utc(since)}, ts, e)
            )

    def _minin_timer(self, t: float, s: int, fid: str) -> None:
        tb = self._tables
        try:
            f = tb.ids.index(fid)
        except ValueError:
            return
        st = self._members.get(s, {}).get(f)
        if st is None or st[0] != "c" or st[1] + tb.min_inside_s[f] != t:
            return
        self._retro.pop(f"m{s}|{fid}", None)
        mem = self._members[s]
        mem[f] = ["i", st[1]]
        self._members[s] = mem
        self._member_sig(s)
        self._enter(s, f, st[1], st[2], st[3], st[4])

    def _dwell_timer(self, t: float, s: int, key: str) -> None:
        fid, mult_s = key.rsplit("|", 1)
        mult = int(mult_s)
        tb = self._tables
        try:
            f = tb.ids.index(fid)
        except ValueError:
            return
        st = self._members.get(s, {}).get(f)
        sid = self._cols.ids[s]
        lim = tb.dwell_limit_s(f, self._ship_type(sid))
        if st is None or st[0] != "i" or lim is None or st[1] + mult * lim != t:
            return
        cols = self._cols.cols
        lon, lat = float(cols["last_lon"][s]), float(cols["last_lat"][s])
        figures = {
            "dwell_s": round(t - st[1], 3),
            "max_dwell_s": lim,
            "started": iso_utc(st[1]),
            "zone_kind": tb.kinds[f].value,
        }
        if mult == 1:
            self._life.open_(
                AlertType.DWELL_EXCEEDED,
                tb.severity[f] or "warning",
                sid,
                self._kind(s),
                fid,
                tb.version,
                st[1],
                t,
                lon,
                lat,
                self._details(s, figures),
            )
        else:
            oa = self._life.get(AlertType.DWELL_EXCEEDED, sid, fid)
            if oa is None:
                return
            if mult >= 2 and oa.severity == "warning":
                oa.severity = "critical"
            self._life.update(oa, t, lon, lat, self._details(s, figures))
        self._push(st[1] + 2 * mult * lim, _T_DWELL, s, f"{fid}|{2 * mult}")

    def _flush_segments(self) -> None:
        arrays, self._seg_arrays = self._seg_arrays, []
        if self._segments:
            arrays.append(np.array(self._segments, dtype=np.float64).reshape(-1, 7))
            self._segments = []
        if not arrays:
            return
        arr = np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
        si, fi = segment_crossings(self._tables, arr[:, 3], arr[:, 4], arr[:, 5], arr[:, 6])
        tb = self._tables
        for k, f in zip(si.tolist(), fi.tolist(), strict=True):
            s_f, e, ts, lon0, lat0, lon1, lat1 = arr[k].tolist()
            s = int(s_f)
            self._life.event(
                AlertType.ZONE_CROSS,
                "critical" if tb.is_restricted(f) else "info",
                self._cols.ids[s],
                self._kind(s),
                tb.ids[f],
                tb.version,
                e,
                lon1,
                lat1,
                {
                    "zone_kind": tb.kinds[f].value,
                    "from": [_r6(lon0), _r6(lat0)],
                    "to": [_r6(lon1), _r6(lat1)],
                    "distance_m": round(haversine_m(lon0, lat0, lon1, lat1), 1),
                }
                | ({"report_ts": iso_utc(ts)} if ts != e else {}),
            )

    # ------------------------------------------------------------------ motion
    def _request_close(self, oa: OpenAlert, s: int, e: float, cooldown_s: float, type_: AlertType) -> None:
        if oa.closing_ts is not None:
            return
        oa.closing_ts = e
        self._retro[f"c{s}|{type_.value}"] = e
        self._push(e + cooldown_s, _T_CLOSE, s, type_.value)

    def _resume(self, oa: OpenAlert | None, s: int, type_: AlertType) -> None:
        if oa is not None and oa.closing_ts is not None:
            oa.closing_ts = None
            self._retro.pop(f"c{s}|{type_.value}", None)

    def _close_timer(self, t: float, s: int, type_value: str) -> None:
        type_ = AlertType(type_value)
        sid = self._cols.ids[s]
        oa = self._life.get(type_, sid)
        cool = self._stop_cool_s if type_ is AlertType.UNEXPECTED_STOP else self._os_cool_s
        if oa is None or oa.closing_ts is None or oa.closing_ts + cool != t:
            return
        self._retro.pop(f"c{s}|{type_value}", None)
        end = oa.closing_ts
        figures = dict(oa.details)
        figures.pop("track", None)
        figures["duration_s"] = round(end - oa.start_ts, 3)
        self._life.close(oa, end, oa.lon, oa.lat, figures | {"track": oa.details.get("track", [])})

    def _stop_step(
        self, s: int, e: float, ts: float, lon: float, lat: float, sog: float, der_kn: float, raw: tuple[int, ...]
    ) -> None:
        cols = self._cols.cols
        sid = self._cols.ids[s]
        start = cols["stop_start"][s]
        has_sog = sog == sog
        oa = self._life.get(AlertType.UNEXPECTED_STOP, sid)
        if start == start:
            d = haversine_m(cols["stop_lon"][s], cols["stop_lat"][s], lon, lat)
            if d > self._stop_d_m / 2 or (has_sog and sog > self._resume_kn):
                cols["stop_start"][s] = NAN
                start = NAN
                if oa is not None:
                    oa.lon, oa.lat = lon, lat
                    self._request_close(oa, s, e, self._stop_cool_s, AlertType.UNEXPECTED_STOP)
            elif oa is None and ts - start >= self._stop_min_s:
                allowed, fdec = self._tables.stop_rule(raw)
                if self._plans is not None and allowed is False:
                    stops = self._plans.stop_allowed_zones(sid, ts)
                    if stops and any(self._tables.ids[f] in stops for f in raw):
                        allowed = True
                if allowed is False or (allowed is None and self._stop_outside):
                    fid = self._tables.ids[fdec] if fdec >= 0 else None
                    sev = "critical" if fdec >= 0 and self._tables.is_restricted(fdec) else "warning"
                    figures = {
                        "started": iso_utc(start),
                        "duration_s": round(ts - start, 3),
                        "diameter_m": self._stop_d_m,
                        "anchor": [_r6(cols["stop_lon"][s]), _r6(cols["stop_lat"][s])],
                    }
                    if has_sog:
                        figures["speed_kn"] = sog
                    self._life.open_(
                        AlertType.UNEXPECTED_STOP,
                        sev,
                        sid,
                        "vessel",
                        fid,
                        self._tables.version,
                        start,
                        e,
                        lon,
                        lat,
                        self._details(s, figures, ts, e),
                        key_zone="",
                    )
        slow = sog < self._stop_kn if has_sog else not der_kn >= self._resume_kn
        if start != start and slow:
            cols["stop_start"][s], cols["stop_lon"][s], cols["stop_lat"][s] = ts, lon, lat
            self._resume(oa, s, AlertType.UNEXPECTED_STOP)

    def _overspeed_step(
        self, s: int, e: float, ts: float, lon: float, lat: float, speed: float, raw: tuple[int, ...]
    ) -> None:
        if speed != speed:
            return
        cols = self._cols.cols
        lim = self._tables.limit_kn(raw)
        sid = self._cols.ids[s]
        oa = self._life.get(AlertType.OVERSPEED, sid)
        if lim is None or speed <= lim:
            cols["os_start"][s] = NAN
            if oa is not None:
                oa.lon, oa.lat = lon, lat
                self._request_close(oa, s, e, self._os_cool_s, AlertType.OVERSPEED)
            return
        start = cols["os_start"][s]
        if start != start:
            cols["os_start"][s] = start = ts
            cols["os_max"][s] = speed
        else:
            cols["os_max"][s] = max(cols["os_max"][s], speed)
        self._resume(oa, s, AlertType.OVERSPEED)
        figures = {
            "speed_kn": round(speed, 2),
            "limit_kn": lim,
            "max_speed_kn": round(float(cols["os_max"][s]), 2),
            "started": iso_utc(start),
            "duration_s": round(ts - start, 3),
        }
        crit = speed > lim * self._os_cf
        if oa is None:
            if ts - start >= self._os_min_s:
                inside = [f for f in raw if self._tables.speed_limit_kn[f] == lim]
                fid = self._tables.ids[inside[0]] if inside else None
                self._life.open_(
                    AlertType.OVERSPEED,
                    "critical" if crit else "warning",
                    sid,
                    "vessel",
                    fid,
                    self._tables.version,
                    start,
                    e,
                    lon,
                    lat,
                    self._details(s, figures, ts, e),
                    key_zone="",
                )
        elif crit and oa.severity == "warning":
            oa.severity = "critical"
            self._life.update(oa, e, lon, lat, self._details(s, figures, ts, e))

    # ------------------------------------------------------------------ gaps and feeds
    def _feed_seen(self, s: int, e: float, name: str, last_ts: float, arrival: bool) -> None:
        fd = self._feeds[name]
        cols = self._cols.cols
        if not arrival:
            pass
        elif fd.outage:
            fd.outage = False
            oa = self._life.get(AlertType.FEED_OUTAGE, name)
            if oa is not None:
                self._life.close(
                    oa, e, oa.lon, oa.lat, {"started": iso_utc(oa.start_ts), "duration_s": round(e - oa.start_ts, 3)}
                )
        if arrival and fd.held:
            for h in fd.held:
                if cols["gap_state"][h] == GAP_HELD:
                    cols["gap_state"][h] = GAP_NONE
                    dl = e + self._gap_thr(h)
                    cols["gap_deadline"][h] = dl
                    if cols["gap_timer"][h] != cols["gap_timer"][h] and self._due(dl):
                        cols["gap_timer"][h] = dl
                        self._push(dl, _T_GAP, h, "")
            fd.held = []
        if arrival:
            fd.seen(e)
        if arrival and self._on["feed_outage"] and fd.timer_at != fd.timer_at:
            fd.timer_at = e + self._feed_min_s
            self._push(fd.timer_at, _T_FEED, -1, name)
        fi = self._feed_idx[name]
        prev = cols["feed"][s]
        if prev != fi:
            if prev >= 0:
                cols["other_ts"][s] = last_ts
            cols["feed"][s] = fi

    def _feed_silence(self, fd: Feed) -> float | None:
        return fd.silence_s(self._feed_factor, self._feed_min_s, self._feed_min_n)

    def _feed_timer(self, t: float, name: str) -> None:
        fd = self._feeds[name]
        fd.timer_at = NAN
        if fd.outage:
            return
        thr = self._feed_silence(fd)
        if thr is None:
            return
        if fd.last_ts + thr <= t:
            others = any(g.last_ts > fd.last_ts for g in self._feeds.values() if g is not fd)
            if others:
                # a receiver that fell quiet because the traffic sailed out of its range is not out: require
                # subjects it was the last to hear shortly before the silence (they went quiet with it)
                cols = self._cols.cols
                n = self._cols.n
                fi = self._feed_idx[name]
                orphans = np.count_nonzero((cols["feed"][:n] == fi) & (cols["last_ts"][:n] >= fd.last_ts - thr))
                others = bool(orphans >= self._feed_min_orphans)
            if not others:
                fd.timer_at = t + thr
                self._push(fd.timer_at, _T_FEED, -1, name)
                return
            fd.outage = True
            self._life.open_(
                AlertType.FEED_OUTAGE,
                "warning",
                name,
                "feed",
                None,
                self._tables.version,
                fd.last_ts,
                t,
                NAN,
                NAN,
                {
                    "started": iso_utc(fd.last_ts),
                    "silent_s": round(t - fd.last_ts, 3),
                    "threshold_s": round(thr, 3),
                    "reports": fd.n,
                },
            )
        else:
            fd.timer_at = fd.last_ts + thr
            self._push(fd.timer_at, _T_FEED, -1, name)

    def _gap_timer(self, t: float, s: int) -> None:
        cols = self._cols.cols
        cols["gap_timer"][s] = NAN
        if cols["gap_state"][s] != GAP_NONE:
            return
        dl = cols["gap_deadline"][s]
        if dl > t:
            if self._due(dl):
                cols["gap_timer"][s] = dl
                self._push(dl, _T_GAP, s, "")
            return
        last_ts = float(cols["last_ts"][s])
        lon, lat = float(cols["last_lon"][s]), float(cols["last_lat"][s])
        if s not in self._members:
            pt, _fe, _d = self._index.query_within(np.array([lon]), np.array([lat]), self._gap_near_m)
            if pt.size == 0:
                cols["gap_deadline"][s] = np.inf  # out of the monitored area: not dark; the next report re-arms
                return
        thr = self._gap_thr(s)
        fi = int(cols["feed"][s])
        if fi >= 0 and self._on["feed_outage"]:
            fd = self._feeds[self._feed_names[fi]]
            alone = not (cols["other_ts"][s] > last_ts - thr)
            if fd.outage and alone:
                cols["gap_state"][s] = GAP_HELD
                fd.held.append(s)
                return
        cols["gap_state"][s] = GAP_OPEN
        sid = self._cols.ids[s]
        self._life.open_(
            AlertType.AIS_GAP,
            "warning",
            sid,
            self._kind(s),
            None,
            self._tables.version,
            last_ts,
            t,
            lon,
            lat,
            self._details(s, {"started": iso_utc(last_ts), "silent_s": round(t - last_ts, 3), "threshold_s": thr}),
        )

    def _gap_close(self, s: int, e: float, ts: float, lon: float, lat: float) -> None:
        cols = self._cols.cols
        sid = self._cols.ids[s]
        oa = self._life.get(AlertType.AIS_GAP, sid)
        if oa is None:
            return
        last_ts = float(cols["last_ts"][s])
        jump = haversine_m(cols["last_lon"][s], cols["last_lat"][s], lon, lat)
        self._life.close(
            oa,
            e,
            lon,
            lat,
            self._details(
                s, {"started": iso_utc(last_ts), "gap_s": round(ts - last_ts, 3), "jump_m": round(jump, 1)}, ts, e
            ),
        )

    # ------------------------------------------------------------------ snapshot / restore
    def snapshot(self) -> bytes:
        """All state as bytes: an in-memory ``.npz`` of the numeric columns plus a JSON document."""
        arrays = {f"col_{k}": v for k, v in self._cols.to_arrays().items()}
        rmeta, rarrays = self._reorder.to_state()
        objects: dict[str, list[Any]] = {}
        for k, v in rarrays.items():
            if v.dtype == object:
                objects[k] = v.tolist()
            else:
                arrays[k] = v
        meta = {
            "format": _SNAPSHOT_FORMAT,
            "zone_version": self._tables.version,
            "ids": self._cols.ids,
            "reorder": rmeta,
            "objects": objects,
            "timers": self._timers,
            "members": [[s, [[self._tables.ids[f], st] for f, st in m.items()]] for s, m in self._members.items()],
            "suspects": [[s, [*v[:5], [self._tables.ids[f] for f in v[5]]]] for s, v in self._suspects.items()],
            "retro": self._retro,
            "feeds": [self._feeds[n].to_json() for n in self._feed_names],
            "statics": self._statics,
            "open": [oa.to_json() for oa in self._life.open.values()],
            "buffer": [alert_to_json(a) for a in self._life.buffer],
            "horizon": self._life.horizon_s,
            "counts": [self._positions, self._late, self._stale],
            "detectors": self._det.snapshot(),
        }
        buf = io.BytesIO()
        np.savez(buf, **arrays)  # type: ignore[arg-type]
        blob = buf.getvalue()
        head = json.dumps(meta).encode("utf-8")
        return len(head).to_bytes(8, "little") + head + blob

    @classmethod
    def restore(
        cls,
        data: bytes,
        zones: ZoneSet,
        config: RulesConfig | None = None,
        *,
        baseline: Baseline | None = None,
        plans: Plans | None = None,
        tolerance_s: float | None = None,
        fast: bool = True,
    ) -> Engine:
        """Rebuild an engine from :meth:`snapshot`; it continues exactly as the uninterrupted one."""
        n = int.from_bytes(data[:8], "little")
        meta = json.loads(data[8 : 8 + n].decode("utf-8"))
        if meta.get("format") != _SNAPSHOT_FORMAT:
            raise ConfigError(f"snapshot format {meta.get('format')!r} is not supported (expected {_SNAPSHOT_FORMAT})")
        with np.load(io.BytesIO(data[8 + n :]), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        eng = cls(zones, config, baseline=baseline, plans=plans, tolerance_s=tolerance_s, fast=fast)
        eng._cols = SubjectColumns.from_arrays(
            meta["ids"], {k[4:]: v for k, v in arrays.items() if k.startswith("col_")}
        )
        eng._cols.cols["mem1_f"][:] = -1
        rarr: dict[str, Any] = {k: v for k, v in arrays.items() if not k.startswith("col_")}
        for k, v in meta["objects"].items():
            o = np.empty(len(v), dtype=object)
            o[:] = v
            rarr[k] = o
        eng._reorder = Reorder.from_state(meta["reorder"], rarr)
        eng._timers = [(float(t[0]), int(t[1]), int(t[2]), str(t[3])) for t in meta["timers"]]
        heapq.heapify(eng._timers)
        for t, kind, slot, _key in eng._timers:
            if slot >= 0 and kind != _T_GAP:
                eng._slot_timers.setdefault(slot, []).append(t)
        idx = {fid: i for i, fid in enumerate(eng._tables.ids)}
        eng._members = Memberships(eng._cols)
        for s, m in meta["members"]:
            mm = {idx[fid]: st for fid, st in m if fid in idx}
            if mm:
                eng._members[int(s)] = mm
        for s in list(eng._members):
            eng._member_sig(s)
        eng._suspects = {int(s): [*v[:5], [idx[f] for f in v[5] if f in idx]] for s, v in meta["suspects"]}
        eng._retro = dict(meta["retro"])
        eng._feeds = {}
        eng._feed_names = []
        for fj in meta["feeds"]:
            fd = Feed.from_json(fj)
            eng._feeds[fd.name] = fd
            eng._feed_idx[fd.name] = len(eng._feed_names)
            eng._feed_names.append(fd.name)
        eng._statics = meta["statics"]
        for oj in meta["open"]:
            oa = OpenAlert.from_json(oj)
            oa.zone_version = zones.version if meta["zone_version"] != zones.version else oa.zone_version
            eng._life.open[(oa.type, oa.subject_id, oa.key_zone)] = oa
        eng._life.buffer = [alert_from_json(a) for a in meta["buffer"]]
        eng._life.horizon_s = meta["horizon"]
        eng._positions, eng._late, eng._stale = meta["counts"]
        eng._det.restore(meta["detectors"])
        return eng
