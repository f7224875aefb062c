"""The deterministic event-time alerting engine (implements :class:`geofence.engine_api.Engine`).

Pipeline per call: lateness and effective times (:mod:`geofence._timeline`), then
the complete prefix of the one total processing order (records by (eff, slot,
seq) merged with timers) is processed as one chunk: one fence-index query, one
grouping by subject, then the vectorised path for every subject whose records
cause no state change it cannot compute in bulk (:mod:`geofence._fastpath`,
:mod:`geofence._engine_zonebatch`) and the exact per-record path for the rest
(:mod:`geofence._engine_record`), timers interleaved; finally zone crossings,
the detectors (:mod:`geofence._detectors`) and the alert lines below the release
horizon, in output order (:mod:`geofence.lifecycle`). The same input therefore
gives the same lines whatever the micro-batch size. Rules and defaults:
``docs/rules.md``; state layout and memory: :mod:`geofence._state`.

Modules, one job each: :mod:`geofence._engine_core` (shared state, timers),
:mod:`geofence._engine_zones` (memberships, dwell), :mod:`geofence._engine_motion`
(speed, stop, overspeed), :mod:`geofence._engine_gaps` (ais_gap, feeds),
:mod:`geofence._engine_snapshot` (snapshot/restore), :mod:`geofence._engine_containers`
(container_separation, container_zone_exit).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from geofence._detectors import DetectorRules
from geofence._engine_containers import ContainerRules
from geofence._engine_core import T_CLOSE, T_DWELL, T_FEED, T_GAP, T_HOLD, T_MININ, T_SUSPECT, Core, Timer
from geofence._engine_gaps import GapRules
from geofence._engine_motion import MotionRules
from geofence._engine_record import SUSPECT_EXPIRY_S, SUSPECT_HOLD_S, RecordPath
from geofence._engine_snapshot import restore_state, snapshot_state
from geofence._engine_time import iso, isos, remember, rnd, round6
from geofence._engine_zonebatch import ZoneBatch
from geofence._engine_zones import ZoneRules
from geofence._fastpath import Chunk, FastPath
from geofence._gcpause import gc_paused
from geofence._geo import haversine_m
from geofence.alerts import Alert, AlertType, Severity, Status
from geofence.deadletter import DeadLetter
from geofence.engine_api import EncounterRows, EngineOutput, EngineStats
from geofence.fence import ZoneSet
from geofence.index import FenceIndex
from geofence.lifecycle import new_alert
from geofence.positions import PositionBatch, StaticReport, SubjectKind
from geofence.rules.config import RulesConfig
from geofence.rules.route import Plans
from geofence.rules.zones_rules import Baseline, ZoneTables, segment_crossings

__all__ = ["Engine"]

I64 = npt.NDArray[np.int64]

_KIND = {int(k): k.label for k in SubjectKind}
_CONTAINER = int(SubjectKind.CONTAINER)


class _RowDetails:
    """Details of a detector alert with the evidence as of its row (see :meth:`DetectorRules.run`)."""

    wants_row = True

    def __init__(self, engine: Engine, rows: I64, hot: npt.NDArray[np.bool_], ch: Chunk | None) -> None:
        self.engine = engine
        self.rows = rows
        self.hot = hot
        self.ch = ch

    def __call__(self, s: int, figures: dict[str, Any], k: int | None = None) -> dict[str, Any]:
        c = self.engine._c
        if k is None or self.ch is None:
            return c.details(s, figures)
        row = int(self.rows[k])
        d = dict(figures)
        if c.statics:
            st = c.statics.get(c.sid(s))
            if st:
                d["vessel"] = dict(st)
        if self.hot[row]:
            rec = self.engine._rec
            d["track"] = self.ch.track_hot(s, int(rec.post_k[row]), rec.hot_log.get(s, []))
        else:
            d["track"] = self.ch.tracks(np.array([row]))[0]
        return d


def _split_antimeridian(arr: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], I64 | None]:
    """Split the moves (rows of ``arr``, ends in columns 3-6) that hop over the antimeridian.

    Two reports at -179.99E and 179.70E are 18.5 km apart over the antimeridian, not a line
    across the globe: such a move (|Δlon| > 180°) becomes two segments meeting at ±180° at the
    interpolated latitude, whose new ends have unknown grid classes. Returns the segments and,
    when any move was split, the move each segment belongs to.
    """
    dx = arr[:, 5] - arr[:, 3]
    hop = np.flatnonzero(np.abs(dx) > 180.0)
    if hop.size == 0:
        return arr, None
    a = arr[hop].copy()
    b = arr[hop].copy()
    x0, y0, x1, y1 = a[:, 3], a[:, 4], a[:, 5], a[:, 6]
    edge = np.where(x0 > 0, 180.0, -180.0)
    x1u = x1 + np.where(x0 > 0, 360.0, -360.0)  # the far end, unwrapped to the near side
    frac = np.clip((edge - x0) / (x1u - x0), 0.0, 1.0)
    ym = y0 + (y1 - y0) * frac
    a[:, 5], a[:, 6], a[:, 10], a[:, 12] = edge, ym, -1.0, 0.0
    b[:, 3], b[:, 4], b[:, 9], b[:, 11] = -edge, ym, -1.0, 0.0
    keep = np.ones(arr.shape[0], dtype=bool)
    keep[hop] = False
    rest = np.flatnonzero(keep)
    out = np.concatenate([arr[rest], a, b])
    of = np.concatenate([rest, hop, hop]).astype(np.int64)
    return out, of


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
        ``max_dwell_min`` values; a percentile the baseline does not answer (or without a baseline)
        falls back to the next numeric value in precedence order (``details.threshold_source``).
    plans
        Declared route plans (``route_deviation``, stop zones).
    tolerance_s
        Reorder tolerance; overrides ``[defaults.engine] tolerance_s`` (60 s).
    fast
        Use the vectorised path (False: every record takes the exact per-record path; for tests).
    encounter_rows
        Also return the vessel rows the detectors saw (:attr:`EngineOutput.encounter_rows`), for an
        encounter stage outside the engine (the partitioned faust worker runs the rule that way, with
        ``encounter`` switched off in ``config``).
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
        encounter_rows: bool = False,
    ) -> None:
        c = self._c = Core(zones, config, baseline, plans, tolerance_s, fast)
        self._enc_rows: list[EncounterRows] | None = [] if encounter_rows else None
        self._zones = ZoneRules(c)
        self._motion = MotionRules(c)
        self._gaps = GapRules(c)
        self._rec = RecordPath(c, self._zones, self._motion, self._gaps)
        self._zb = ZoneBatch(c, self._zones)
        self._fast = FastPath(c, self._zb, self._motion)
        self._det = DetectorRules(c.on, plans, c.config)
        self._det.set_zones(zones)
        self._cont = ContainerRules(c)
        self._zones.container_exit = self._cont.zone_exit

    @property
    def config(self) -> RulesConfig:
        """The rule parameters in force."""
        return self._c.config

    @property
    def fast(self) -> bool:
        """Whether the vectorised path is used."""
        return self._c.fast

    @fast.setter
    def fast(self, value: bool) -> None:
        self._c.fast = bool(value)

    # ------------------------------------------------------------------ public API
    def add_statics(self, reports: Sequence[StaticReport]) -> None:
        """Merge static reports into the vessel registry (type 24 parts combine)."""
        c = self._c
        for r in reports:
            entry = c.statics.setdefault(r.subject_id, {})
            for key in ("name", "ship_type", "length_m", "beam_m", "destination", "imo", "callsign"):
                v = getattr(r, key)
                if v is not None:
                    entry[key] = v
            slot = c.ids.get(r.subject_id)
            if slot is not None:
                code = c.type_code(entry.get("ship_type"))
                if int(c.cols.stype[slot]) != code:
                    c.cols.stype[slot] = code
                    self._zones.ship_type_changed(slot)

    def process(self, batch: PositionBatch) -> EngineOutput:
        """Ingest one micro-batch; return the alert lines that became final and the late records.

        The cyclic garbage collector is paused for the call (:func:`geofence._gcpause.gc_paused`).
        """
        with gc_paused():
            return self._process(batch)

    def _process(self, batch: PositionBatch) -> EngineOutput:
        c = self._c
        out = EngineOutput()
        if len(batch):
            slots, _new = c.ids.lookup(batch.subject_id)
            lo = c.cols.n
            c.cols.ensure(c.ids.n)
            if c.cols.n > lo:
                c.apply_statics(lo, c.cols.n)
            ts = batch.ts_s
            late = c.reorder.late_mask(slots, ts, c.cols.arr_max_ts)
            if late.any():
                keep = np.flatnonzero(~late)
                out.dead.extend(self._dead_letters(batch, np.flatnonzero(late)))
                sel: Any = keep
            else:
                keep = np.arange(len(batch))
                sel = slice(None)
            feed = self._gaps.feed_indices(batch.receiver[sel], batch.source[sel])
            self._cont.accept(batch, keep, c.reorder.seq)
            c.reorder.accept(
                ts,
                keep,
                slots[sel],
                batch.lon_deg[sel],
                batch.lat_deg[sel],
                batch.sog_kn[sel],
                batch.cog_deg[sel],
                batch.kind[sel],
                feed,
                batch.subject_id[sel],
            )
        self._run(final=False)
        out.alerts = c.life.release(self._horizon())
        out.encounter_rows = self._drain_rows()
        return out

    def _drain_rows(self) -> EncounterRows | None:
        rows = self._enc_rows
        if not rows:
            return None
        self._enc_rows = []
        return EncounterRows.concat(rows)

    def finish(self) -> EngineOutput:
        """End of input: process every pending record, fire timers up to the final watermark, flush."""
        c = self._c
        with gc_paused():
            self._run(final=True)
        return EngineOutput(
            alerts=c.life.release(c.reorder.watermark, final=True), encounter_rows=self._drain_rows()
        )

    def advance_watermark(self, ts_s: float) -> None:
        """Raise the largest event time seen to ``ts_s`` (a partitioned worker learns the input's end).

        Only moves the watermark forward; records and timers below it are processed by
        the next :meth:`process` or :meth:`finish`.
        """
        r = self._c.reorder
        r.max_ts = max(r.max_ts, float(ts_s))

    def open_alerts(self) -> list[Alert]:
        """The last line of every alert still open, in output order."""
        return self._c.life.open_alert_lines()

    def set_zones(self, zones: ZoneSet) -> None:
        """Swap the zone set and index; memberships carry over by fence id, vanished fences are dropped."""
        c = self._c
        old_ids = c.tables.ids
        c.tables = ZoneTables(zones, c.config, c.baseline)
        c.zones = zones
        c.index = FenceIndex.for_zones(zones)
        c.cols.last_cls[: c.cols.n] = -1  # grid classes of the old index mean nothing now
        self._zones.remap(old_ids, {fid: i for i, fid in enumerate(c.tables.ids)})
        for sus in c.suspects.values():
            sus[5] = ()
        self._det.set_zones(zones)
        self._cont.set_zones(zones)
        self._zb.reset()
        for oa in c.life.open.values():
            oa.zone_version = zones.version
        # dwell deadlines under the new limits (a lowered limit already exceeded opens at the watermark)
        w = c.reorder.watermark
        n = c.cols.n
        if n and np.isfinite(w) and c.on["dwell_exceeded"]:
            has = c.cols.mem_f[:n, 0] >= 0
            for s in c.members.multi:
                has[s] = True
            for s in np.flatnonzero(has).tolist():
                self._zones.reschedule_dwell(s)

    def stats(self) -> EngineStats:
        """Current figures (event time)."""
        c = self._c
        mx = c.reorder.max_ts
        fin = bool(np.isfinite(mx))
        return EngineStats(
            watermark_s=c.reorder.watermark if fin else None,
            max_event_ts_s=mx if fin else None,
            open_alerts=len(c.life.open),
            subjects=c.cols.n,
            positions=c.positions,
            late=c.late,
        )

    def memory_breakdown(self) -> dict[str, int]:
        """Bytes per tracked-subject slot: every allocated column, the id map, and the membership overflow."""
        c = self._c
        out = {k: v for k, v in c.cols.nbytes_by_column().items()}
        out["id_map"] = round(c.ids.nbytes / max(1, c.ids.n))
        return out

    # ------------------------------------------------------------------ snapshot / restore
    def snapshot(self) -> bytes:
        """All state as bytes: a JSON head and an in-memory ``.npz`` of the columns (format 2)."""
        return snapshot_state(self)

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
        encounter_rows: bool = False,
    ) -> Engine:
        """Rebuild an engine from :meth:`snapshot`; it continues exactly as the uninterrupted one."""
        eng = cls(
            zones,
            config,
            baseline=baseline,
            plans=plans,
            tolerance_s=tolerance_s,
            fast=fast,
            encounter_rows=encounter_rows,
        )
        restore_state(eng, data)
        return eng

    # ------------------------------------------------------------------ helpers
    def _dead_letters(self, batch: PositionBatch, idx: I64) -> list[DeadLetter]:
        c = self._c
        c.late += int(idx.size)
        out = []
        for i in idx.tolist():
            sid = str(batch.subject_id[i])
            ts = float(batch.ts_s[i])
            raw = json.dumps(
                {"subject_id": sid, "ts": iso(ts), "lon": float(batch.lon_deg[i]), "lat": float(batch.lat_deg[i])}
            )
            out.append(
                DeadLetter(
                    source=str(batch.source[i]),
                    line=int(batch.line[i]),
                    reason="late",
                    detail=f"subject {sid} at {iso(ts)} is older than its latest report by more than "
                    f"the {c.reorder.tolerance_s:g} s reorder tolerance",
                    raw=raw,
                )
            )
        return out

    def _horizon(self) -> float:
        c = self._c
        w = c.reorder.watermark
        if c.retro:
            w = min(w, min(c.retro.values()))
        return w

    # ------------------------------------------------------------------ the processing loop
    def _run(self, final: bool) -> None:
        c = self._c
        recs = c.reorder.release(final)
        w = c.reorder.watermark
        timers = c.timers
        timers.run_w, timers.run_final = w, final
        self._gaps.scan()
        self._zones.scan_dwell()
        heap = timers.heap
        n = len(recs)
        ch: Chunk | None = None
        hot_g = np.zeros(0, dtype=bool)
        if n:
            c.cols.kind[recs.slot] = recs.kind
            pi, fi, cls, bits = c.index.query_classes(recs.lon, recs.lat)
            ch = Chunk(c, recs, pi, fi, cls, bits)
            busy = self._gaps.prepass(recs, w)
            self._rec.begin(n, ch.cls, ch.bits)
            hot_g = self._fast.run(ch, busy) if c.fast else np.ones(ch.us.size, dtype=bool)
            hot = np.flatnonzero(hot_g[ch.gid])
            if hot.size:
                self._prefetch(ch, hot)
                rec = self._rec
                raws = [ch.raw(i) for i in hot.tolist()]
                cols = zip(
                    hot.tolist(),
                    recs.slot[hot].tolist(),
                    recs.eff[hot].tolist(),
                    recs.ts[hot].tolist(),
                    recs.lon[hot].tolist(),
                    recs.lat[hot].tolist(),
                    recs.sog[hot].tolist(),
                    recs.kind[hot].tolist(),
                    recs.feed[hot].tolist(),
                    (~busy[hot]).tolist(),
                    raws,
                    strict=True,
                )
                cont = self._cont
                for i, s, e, ts, lon, lat, sog, kind, fe, arrival, raw in cols:
                    while heap and heap[0][0] < e and (heap[0][0] < w or (final and heap[0][0] <= w)):
                        self._fire(timers.pop())
                    if kind == _CONTAINER and cont.aux:
                        cont.before_record(i, int(recs.seq[i]), str(recs.sid[i]), e)
                    rec.record(i, s, e, ts, lon, lat, sog, kind, fe, arrival, raw)
        while heap and (heap[0][0] < w or (final and heap[0][0] <= w)):
            self._fire(timers.pop())
        self._zones.dcache = {}
        self._flush_segments(ch)
        self._flush_post(ch, hot_g, w)
        self._cont.flush(ch.recs if ch is not None else None, w, final)

    def _prefetch(self, ch: Chunk, hot: I64) -> None:
        """Boundary distances the hysteresis may need for the hot rows, in one index call."""
        c = self._c
        memsig = self._fast.member_sigs(ch.us)
        rows = hot[ch.sig[hot] != memsig[ch.gid[hot]]]
        if rows.size == 0:
            self._zones.dcache = {}
            return
        pairs: list[tuple[int, int]] = []
        for i in rows.tolist():
            raw = ch.raw(i)
            pairs.extend((i, f) for f in raw)
            mem = c.members.get(int(ch.recs.slot[i]))
            if mem:
                pairs.extend((i, f) for f in mem if f not in raw)
        self._zones.prefetch(ch.recs.lon, ch.recs.lat, pairs)

    def _fire(self, timer: Timer) -> None:
        t, kind, s, key = timer
        if kind == T_GAP:
            self._gaps.gap_timer(t, s)
        elif kind == T_FEED:
            self._gaps.feed_timer(t, key)
        elif kind == T_MININ:
            self._zones.minin_timer(t, s, key)
        elif kind == T_DWELL:
            self._zones.dwell_timer(t, s, key)
        elif kind == T_CLOSE:
            self._motion.close_timer(t, s, key)
        elif kind == T_SUSPECT:
            c = self._c
            sus = c.suspects.get(s)
            if sus is not None and sus[0] + (float(key) if key else SUSPECT_EXPIRY_S) == t:
                del c.suspects[s]
                c.retro.pop(f"j{s}", None)
        elif kind == T_HOLD:
            # a long-pending suspect stops holding back the release; it stays pending (see RecordPath.record)
            c = self._c
            sus = c.suspects.get(s)
            if sus is not None and sus[0] + SUSPECT_HOLD_S == t:
                c.retro.pop(f"j{s}", None)

    def _flush_segments(self, ch: Chunk | None) -> None:
        """``zone_cross``: moves whose segment crosses a fence with neither end inside it."""
        c = self._c
        arrays, self._fast.seg_arrays = self._fast.seg_arrays, []
        if self._rec.segments:
            arrays.append(np.array(self._rec.segments, dtype=np.float64).reshape(-1, 13))
            self._rec.segments = []
        if not arrays:
            return
        orig = np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
        arr, of = _split_antimeridian(orig)
        cand = self._cross_candidates(arr)
        if cand[0].size == 0:
            return
        x0, y0, x1, y1 = arr[:, 3], arr[:, 4], arr[:, 5], arr[:, 6]
        # whether each end lies in the candidate fence: its grid class and exact-test outcomes say (-1: test it)
        inside = [
            c.index.inside_by_class(
                arr[cand[0], cc].astype(np.int64), arr[cand[0], cb].astype(np.int64), cand[1]
            ).astype(np.int8)
            for cc, cb in ((9, 11), (10, 12))
        ]
        si, fi = segment_crossings(c.tables, x0, y0, x1, y1, cand, inside, c.index.segments_meet_boundary)
        if si.size == 0:
            return
        if of is not None:  # back to the moves (both halves of a move over the antimeridian may cross a fence)
            nf = max(1, len(c.tables.ids))
            key = np.unique(of[si] * nf + fi)
            si, fi = key // nf, key % nf
        tb = c.tables
        sel = orig[si]
        slots = sel[:, 0].astype(np.int64)
        rows_b = sel[:, 8].astype(np.int64)
        sids = ch.recs.sid[rows_b].tolist() if ch is not None and (rows_b >= 0).all() else c.ids.ids_of(slots)
        kinds = c.cols.kind[slots].tolist()
        e_a, ts_a = sel[:, 1], sel[:, 2]
        eiso = isos(e_a)
        remember(e_a.tolist(), eiso)
        # the scalar haversine, as the per-record path (numpy's sin/cos may differ from libm in the last ulp)
        dist = [haversine_m(a, b, x, y) for a, b, x, y in sel[:, 3:7].tolist()]
        r0, r1 = round6(sel[:, 3]), round6(sel[:, 4])
        r2, r3 = round6(sel[:, 5]), round6(sel[:, 6])
        late = np.flatnonzero(ts_a != e_a)
        report = dict(zip(late.tolist(), isos(ts_a[late]), strict=True)) if late.size else {}
        buf = c.life.buffer
        version = tb.version
        t_cross, event = AlertType.ZONE_CROSS, Status.EVENT
        sha = hashlib.sha256
        for k, (f, e, lon1, lat1, d) in enumerate(
            zip(fi.tolist(), e_a.tolist(), sel[:, 5].tolist(), sel[:, 6].tolist(), dist, strict=True)
        ):
            sid = sids[k]
            fid = tb.ids[f]
            figures: dict[str, Any] = {
                "zone_kind": tb.kind_values[f],
                "from": [r0[k], r1[k]],
                "to": [r2[k], r3[k]],
                "distance_m": rnd(d, 1),
            }
            if report and k in report:
                figures["report_ts"] = report[k]
            sev = Severity.CRITICAL if tb.restricted[f] else Severity.INFO
            aid = sha(f"zone_cross|{sid}|{fid}|{eiso[k]}".encode()).hexdigest()[:16]
            buf.append(new_alert(aid, t_cross, event, sev, sid, _KIND[kinds[k]], fid, version, e, lon1, lat1, figures))

    def _cross_candidates(self, arr: npt.NDArray[np.float64]) -> tuple[I64, I64]:
        """(segment, fence) pairs where the fence's boundary may cross the move (a superset of the crossings).

        A fence can only be crossed where its boundary passes through the grid cells of the
        move. A move within one cell or between two side by side with known cell classes
        (the fence query of its records gave them) takes the fences whose boundary passes
        through those classes' cells; the others are looked up cell by cell.
        """
        c = self._c
        ixa, iya = c.index.cells(arr[:, 3], arr[:, 4])
        ixb, iyb = c.index.cells(arr[:, 5], arr[:, 6])
        ca, cb = arr[:, 9].astype(np.int64), arr[:, 10].astype(np.int64)
        dx, dy = np.abs(ixa - ixb), np.abs(iya - iyb)
        known = (ca >= 0) & (cb >= 0)
        near = known & (dx + dy <= 1)
        diag = known & (dx == 1) & (dy == 1)
        nf = max(1, len(c.tables.ids))
        # both ends in cells of one class: that class's boundary fences, each once (no dedupe needed)
        one = np.flatnonzero(near & (ca == cb))
        item, fence = c.index.boundary_fences(ca[one])
        one_s, one_f = one[item], fence
        segs: list[I64] = []
        fens: list[I64] = []
        sn = np.flatnonzero((near & (ca != cb)) | diag)
        for cls in (ca[sn], cb[sn]):
            item, fence = c.index.boundary_fences(cls)
            segs.append(sn[item])
            fens.append(fence)
        sd = np.flatnonzero(diag)  # a diagonal move also passes the two corner cells
        if sd.size:
            for cls in (c.index.cell_class(ixa[sd], iyb[sd]), c.index.cell_class(ixb[sd], iya[sd])):
                item, fence = c.index.boundary_fences(cls)
                segs.append(sd[item])
                fens.append(fence)
        near |= diag
        far = np.flatnonzero(~near)
        if far.size:
            s2, f2 = c.index.boundary_candidates(arr[far, 3], arr[far, 4], arr[far, 5], arr[far, 6])
            segs.append(far[s2])
            fens.append(f2)
        key = np.unique(np.concatenate(segs) * nf + np.concatenate(fens))  # the other moves may list a fence twice
        return np.concatenate([one_s, key // nf]), np.concatenate([one_f, key % nf])

    def _flush_post(self, ch: Chunk | None, hot_g: npt.NDArray[np.bool_], w: float) -> None:
        """Feed the chunk's vessel rows to the detectors (encounter, approach, route) in processing order."""
        c = self._c
        det = self._det
        version = c.tables.version
        if ch is None:
            det.run(None, None, None, None, None, None, None, None, w, c.life, version, c.details)
            return
        recs = ch.recs
        hot_row = hot_g[ch.gid]
        post = ~hot_row | self._rec.post_mask
        rows = np.flatnonzero(post)
        e = recs.eff[rows]
        if rows.size > 1 and not (e[1:] > e[:-1]).all():
            # the detectors see ties in eff in input order (seq), as they always have
            rows = rows[np.lexsort((recs.seq[rows], e))]
        speed = np.where(hot_row[rows], self._rec.post_speed[rows], recs.sog[rows])
        slot = recs.slot[rows]
        details = _RowDetails(self, rows, hot_row, ch)
        args = (recs.eff[rows], recs.lon[rows], recs.lat[rows], recs.cog[rows], speed, ch.moor[rows], w, c.life)
        sid = recs.sid[rows]
        det.run_rows(slot, *args, version, details, sid)
        if self._enc_rows is not None and rows.size:
            self._enc_rows.append(EncounterRows(sid, args[0], args[1], args[2], speed, args[5].astype(bool)))
