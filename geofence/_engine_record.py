"""The exact per-record path: one report at a time, in processing order, through every rule.

This is the reference semantics. The engine sends a subject's records here when
its chunk holds a real state change the vectorised path does not handle (a
position jump, a stop, a gap, a feed change, a min_inside_s candidate, a timer
falling between its records, mixed overspeed, a container...), and every record
when built with ``fast=False``; the tests compare both paths record for record.

Besides the rules, the path records what the end of the chunk needs: a segment
per move (``zone_cross``), and per record the speed and evidence position of the
detectors' rows (``post_*``), so that their alerts quote the evidence as it was
at that record and not at the end of the chunk.
"""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt

from geofence._engine_core import T_GAP, T_HOLD, T_SUSPECT, Core
from geofence._engine_gaps import GapRules
from geofence._engine_motion import MotionRules
from geofence._engine_time import iso, rnd
from geofence._engine_zones import ZoneRules
from geofence._state import GAP_NONE, GAP_OPEN
from geofence.alerts import AlertType
from geofence.positions import SubjectKind
from geofence.rules.motion import implied_kn, is_jump

__all__ = [
    "SUSPECT_EXPIRY_MAX_S",
    "SUSPECT_EXPIRY_S",
    "SUSPECT_HOLD_S",
    "SUSPECT_INTERVALS",
    "RecordPath",
    "suspect_expiry_s",
]

#: A quarantined position not confirmed within this time is discarded (at least; see :func:`suspect_expiry_s`).
SUSPECT_EXPIRY_S = 900.0
#: ... or within this many of the subject's usual reporting intervals, whichever is longer ...
SUSPECT_INTERVALS = 4.0
#: ... but never later than this.
SUSPECT_EXPIRY_MAX_S = 7200.0
#: How long (in watermark time) a pending suspect holds back the release of every subject's alert lines.
#: A suspect still pending then is decided later all the same, but a confirmation dates its consequences at
#: the confirming report (their lines up to the horizon are out already), with ``details.report_ts``.
SUSPECT_HOLD_S = SUSPECT_EXPIRY_S


def suspect_expiry_s(ring_ms: list[int]) -> float:
    """How long a quarantined position waits for its confirmation, from the subject's evidence ring.

    ``SUSPECT_INTERVALS`` times the median interval between the subject's last (up to five) trusted
    reports, within [``SUSPECT_EXPIRY_S``, ``SUSPECT_EXPIRY_MAX_S``]: a class-B boat reporting every
    25-90 min gets the time to send the report that confirms its jump, a class-A ship every few
    seconds keeps the 15 min.
    """
    steps = sorted((b - a) / 1000.0 for a, b in itertools.pairwise(ring_ms) if b > a)
    if not steps:
        return SUSPECT_EXPIRY_S
    k = len(steps)
    median = steps[k // 2] if k % 2 else (steps[k // 2 - 1] + steps[k // 2]) / 2
    return min(max(SUSPECT_EXPIRY_S, SUSPECT_INTERVALS * median), SUSPECT_EXPIRY_MAX_S)


_VESSEL = int(SubjectKind.VESSEL)


class RecordPath:
    """Per-record processing (see the module docstring)."""

    def __init__(self, core: Core, zones: ZoneRules, motion: MotionRules, gaps: GapRules) -> None:
        self.c = core
        self.zones = zones
        self.motion = motion
        self.gaps = gaps
        self.segments: list[tuple[float, ...]] = []
        self.hot_log: dict[int, list[tuple[float, float, float]]] = {}
        self.post_row = -1
        self.post_speed: npt.NDArray[np.float64] = np.zeros(0)
        self.post_k: npt.NDArray[np.int64] = np.zeros(0, np.int64)
        self.post_mask: npt.NDArray[np.bool_] = np.zeros(0, bool)
        self.row_cls: npt.NDArray[np.int64] = np.zeros(0, np.int64)
        self.row_bits: npt.NDArray[np.int64] = np.zeros(0, np.int64)

    def begin(self, n: int, cls: npt.NDArray[np.int64], bits: npt.NDArray[np.int64]) -> None:
        """A new chunk of ``n`` records (``cls``, ``bits``: their grid cell classes and exact-test outcomes)."""
        self.row_cls = cls
        self.row_bits = bits
        self.hot_log = {}
        self.post_speed = np.zeros(n)
        self.post_k = np.zeros(n, np.int64)
        self.post_mask = np.zeros(n, bool)

    def record(
        self,
        row: int,
        s: int,
        e: float,
        ts: float,
        lon: float,
        lat: float,
        sog: float,
        kind: int,
        fi: int,
        arrival: bool,
        raw: tuple[int, ...],
    ) -> None:
        """One released record (``row`` in the chunk; ``fi`` its feed or -1)."""
        c = self.c
        cols = c.cols
        last_ts = float(cols.last_ts[s])
        if ts < last_ts:  # older than what this subject already processed (arrived behind the watermark)
            c.stale += 1
            return
        c.positions += 1
        vessel = kind == _VESSEL
        if fi >= 0:
            self.gaps.feed_seen(s, e, fi, last_ts, arrival)
        if vessel:
            gs = cols.gap_state[s]
            if gs != GAP_NONE:
                cols.gap_state[s] = GAP_NONE
                if gs == GAP_OPEN:
                    self.gaps.gap_close(s, e, ts, lon, lat)
        if c.on["position_jump"] and last_ts == last_ts:
            maxkn = c.maxkn(s)
            last_lon, last_lat = float(cols.last_lon[s]), float(cols.last_lat[s])
            d, v = implied_kn(last_lon, last_lat, last_ts, lon, lat, ts)
            sus = c.suspects.get(s)
            if is_jump(d, v, c.jump_min_m, maxkn):
                if sus is not None:
                    ds, vs = implied_kn(sus[2], sus[3], sus[1], lon, lat, ts)
                    del c.suspects[s]
                    held = c.retro.pop(f"j{s}", None) is not None
                    if not is_jump(ds, vs, c.jump_min_m, maxkn):
                        # the suspect is confirmed by this report: apply it, then this one. Its consequences are
                        # dated at the suspect while the release hold keeps that time open, else at this report
                        # (``details.report_ts`` keeps the suspect's own time)
                        self.apply(-1, s, sus[0] if held else e, sus[1], sus[2], sus[3], sus[4], kind, tuple(sus[5]))
                        self.apply(row, s, e, ts, lon, lat, sog, kind, raw)
                        return
                c.suspects[s] = [e, ts, lon, lat, sog, list(raw)]
                c.retro[f"j{s}"] = e
                expiry = suspect_expiry_s([int(m) for _x, _y, m in cols.track(s)])
                c.timers.push(e + expiry, T_SUSPECT, s, repr(expiry))
                if expiry > SUSPECT_HOLD_S:
                    c.timers.push(e + SUSPECT_HOLD_S, T_HOLD, s, "")
                jt = c.cols.get("jump_ts", s)
                if not (e - jt < c.jump_cool_s):
                    cols.lazy("jump_ts")[s] = e
                    c.life.event(
                        AlertType.POSITION_JUMP,
                        "warning",
                        c.sid(s),
                        c.kind_label(s),
                        None,
                        c.tables.version,
                        e,
                        lon,
                        lat,
                        c.details(
                            s,
                            {
                                "distance_m": rnd(d, 1),
                                "implied_speed_kn": rnd(v, 1),
                                "max_speed_kn": maxkn,
                                "from": [rnd(last_lon, 6), rnd(last_lat, 6), iso(last_ts)],
                            },
                            ts,
                            e,
                        ),
                    )
                return
            if sus is not None:
                del c.suspects[s]
                c.retro.pop(f"j{s}", None)
        self.apply(row, s, e, ts, lon, lat, sog, kind, raw)

    def apply(
        self, row: int, s: int, e: float, ts: float, lon: float, lat: float, sog: float, kind: int, raw: tuple[int, ...]
    ) -> None:
        """Apply a trusted position to the subject's state and rules (``row`` -1: a confirmed suspect, no post row)."""
        c = self.c
        cols = c.cols
        last_ts = float(cols.last_ts[s])
        vessel = kind == _VESSEL
        cols.push_track(s, lon, lat, ts)
        log = self.hot_log.get(s)
        if log is None:
            log = self.hot_log[s] = []
        log.append((lon, lat, ts))
        if raw or s in c.members:
            self.zones.step(s, e, ts, lon, lat, raw)
        if last_ts == last_ts and c.on["zone_cross"]:
            self.segments.append(
                (s, e, ts, float(cols.last_lon[s]), float(cols.last_lat[s]), lon, lat, -1.0, -1.0, -1.0, -1.0, 0.0, 0.0)
            )
        if vessel:
            valid, speed = self.motion.speed(s, ts, lon, lat, sog)
            if c.on["unexpected_stop"]:
                self.motion.stop_step(s, e, ts, lon, lat, sog if valid else float("nan"), float(cols.der_kn[s]), raw)
            if c.on["overspeed"]:
                self.motion.overspeed_step(s, e, ts, lon, lat, speed, raw)
            if row >= 0:
                self.post_mask[row] = True
                self.post_speed[row] = speed
                self.post_k[row] = len(log)
        cols.last_ts[s], cols.last_lon[s], cols.last_lat[s] = ts, lon, lat
        cols.last_cls[s] = self.row_cls[row] if row >= 0 else -1
        cols.last_bits[s] = self.row_bits[row] if row >= 0 else 0
        if c.dwell_wait and s in c.dwell_wait:
            self.zones.dwell_reappear(s, e)
        if vessel and c.on["ais_gap"]:
            dl = ts + c.gap_thr(s, raw)
            cols.gap_deadline[s] = dl
            if dl < c.gap_floor:
                c.gap_floor = dl
            if s not in c.timers.gap_due and c.timers.due(dl):
                c.timers.push(dl, T_GAP, s, "")
