"""Motion rules on the per-record path: derived speed, unexpected_stop, overspeed and their cool-downs.

Speed is the reported SOG when plausible, otherwise derived from displacement
over at least ``speed.window_s`` (:mod:`geofence.rules.motion`). The anchor of
that derivation is, for almost every subject, its last position; only a subject
whose SOG is missing keeps an explicit anchor (the lazy ``spd_*`` columns), so
feeds with SOG never pay for it.

A durational alert whose condition ends is *closing* for the rule's cool-down
(the closed line is withheld; if the condition returns the incident simply
continues). The ``os_state``/``stop_state`` columns mirror each subject's open
alert so the vectorised path can classify subjects without touching Python
objects; :meth:`MotionRules.sync` keeps them in step with the lifecycle.
"""

from __future__ import annotations

import numpy as np

from geofence._engine_core import NAN, T_CLOSE, Core
from geofence._engine_time import iso, rnd
from geofence._geo import haversine_m
from geofence._state import OS_CLOSING, OS_CRIT, OS_OPEN
from geofence.alerts import AlertType
from geofence.lifecycle import OpenAlert
from geofence.rules.motion import StopWindow, implied_kn, sog_valid

__all__ = ["MotionRules"]


class MotionRules:
    """Per-record motion rules (see the module docstring)."""

    def __init__(self, core: Core) -> None:
        self.c = core

    # ------------------------------------------------------------------ speed
    def speed(self, s: int, ts: float, lon: float, lat: float, sog: float) -> tuple[bool, float]:
        """Update the derived-speed anchor with a vessel report; return (SOG trusted, speed to use)."""
        c = self.c
        cols = c.cols
        valid = sog_valid(sog, c.maxkn(s))
        spd = cols.opt("spd_ts")
        explicit = spd is not None and spd[s] == spd[s]
        if valid:
            cols.der_kn[s] = sog
            if explicit:
                assert spd is not None
                spd[s] = NAN
            return True, sog
        if explicit:
            assert spd is not None
            a_ts = float(spd[s])
            a_lon, a_lat = float(cols.lazy("spd_lon")[s]), float(cols.lazy("spd_lat")[s])
        else:
            a_ts = float(cols.last_ts[s])
            a_lon, a_lat = float(np.float32(cols.last_lon[s])), float(np.float32(cols.last_lat[s]))
        if a_ts != a_ts:
            pass  # first report: it becomes the anchor (the last position, implicitly)
        elif ts - a_ts >= c.spd_window_s:
            _d, v = implied_kn(a_lon, a_lat, a_ts, lon, lat, ts)
            cols.der_kn[s] = v
            if explicit:
                assert spd is not None
                spd[s] = NAN
        elif not explicit:  # the anchor stays behind while the subject moves on: make it explicit
            cols.lazy("spd_ts")[s] = a_ts
            cols.lazy("spd_lon")[s] = a_lon
            cols.lazy("spd_lat")[s] = a_lat
        return False, float(cols.der_kn[s])

    # ------------------------------------------------------------------ unexpected_stop
    def stop_step(
        self, s: int, e: float, ts: float, lon: float, lat: float, sog: float, der_kn: float, raw: tuple[int, ...]
    ) -> None:
        """Stop candidate, open after ``min_duration_s`` where stopping is not allowed, close when under way."""
        c = self.c
        if sog != sog:
            self._stop_window_step(s, e, ts, lon, lat, raw)
            return
        if c.stop_win and s in c.stop_win:
            del c.stop_win[s]  # the feed reports SOG now: the SOG rule takes over
        cols = c.cols
        sid = c.sid(s)
        start = c.cols.get("stop_start", s)
        oa = c.life.get(AlertType.UNEXPECTED_STOP, sid)
        touched = oa is not None
        if start == start:
            d = haversine_m(float(cols.lazy("stop_lon")[s]), float(cols.lazy("stop_lat")[s]), lon, lat)
            if d > c.stop_d_m / 2 or sog > c.resume_kn:
                cols.lazy("stop_start")[s] = NAN
                start = NAN
                if oa is not None:
                    oa.lon, oa.lat = lon, lat
                    self.request_close(oa, s, e, c.stop_cool_s, AlertType.UNEXPECTED_STOP)
            elif oa is None and ts - start >= c.stop_min_s:
                oa = self._stop_open(s, sid, e, ts, lon, lat, start, raw, sog)
                touched = oa is not None
        slow = sog < c.stop_kn
        if start != start and slow:
            cols.lazy("stop_start")[s] = ts
            cols.lazy("stop_lon")[s] = lon
            cols.lazy("stop_lat")[s] = lat
            self.resume(oa, s, e, AlertType.UNEXPECTED_STOP)
        if touched:
            self.sync(s, AlertType.UNEXPECTED_STOP)

    def _stop_open(
        self, s: int, sid: str, e: float, ts: float, lon: float, lat: float, start: float, raw: tuple[int, ...],
        sog: float,
    ) -> OpenAlert | None:
        """Open the stop alert if the zones where the vessel lies forbid stopping (None: allowed here)."""
        c = self.c
        cols = c.cols
        tb = c.tables
        allowed, fdec = tb.stop_rule(raw)
        if c.plans is not None and allowed is False:
            stops = c.plans.stop_allowed_zones(sid, ts)
            if stops and any(tb.ids[f] in stops for f in raw):
                allowed = True
        if not (allowed is False or (allowed is None and c.stop_outside)):
            return None
        fid = tb.ids[fdec] if fdec >= 0 else None
        sev = "critical" if fdec >= 0 and tb.is_restricted(fdec) else "warning"
        figures: dict[str, object] = {
            "started": iso(start),
            "duration_s": rnd(ts - start, 3),
            "diameter_m": c.stop_d_m,
            "anchor": [
                round(float(cols.lazy("stop_lon")[s]), 6),
                round(float(cols.lazy("stop_lat")[s]), 6),
            ],
        }
        if sog == sog:
            figures["speed_kn"] = sog
        return c.life.open_(
            AlertType.UNEXPECTED_STOP,
            sev,
            sid,
            "vessel",
            fid,
            tb.version,
            start,
            e,
            lon,
            lat,
            c.details(s, figures, ts, e),
            key_zone="",
        )

    def _stop_window_step(self, s: int, e: float, ts: float, lon: float, lat: float, raw: tuple[int, ...]) -> None:
        """``unexpected_stop`` from positions alone (no SOG), as movingpandas' ``TrajectoryStopDetector``.

        The subject's recent reports form a window: while not stopped, the reports of the last
        ``min_duration_s`` (at least two); the vessel is stopped while every report of the window
        lies within ``diameter_m`` (the diagonal of their minimum rotated rectangle, geodesic), and
        the stop began at the window's first report. Once stopped the window only grows (kept as
        its convex hull, so a stop of days costs a few points), until a report does not fit: the
        stop ended at the report before, and the alert closes at this one (after the cool-down); a
        stop that lasted ``min_duration_s`` restarts the window at this report.
        """
        c = self.c
        cols = c.cols
        sid = c.sid(s)
        win = c.stop_win.get(s)
        if win is None:
            win = c.stop_win[s] = StopWindow()
        start = c.cols.get("stop_start", s)
        stopped = start == start
        oa = c.life.get(AlertType.UNEXPECTED_STOP, sid)
        touched = oa is not None
        win.add(ts, lon, lat, trim_s=None if stopped else c.stop_min_s)
        if win.fits(c.stop_d_m):
            if not stopped:
                start, first_lon, first_lat = win.first
                cols.lazy("stop_start")[s] = start
                cols.lazy("stop_lon")[s] = first_lon
                cols.lazy("stop_lat")[s] = first_lat
                self.resume(oa, s, e, AlertType.UNEXPECTED_STOP)
            if oa is None and ts - start >= c.stop_min_s:
                oa = self._stop_open(s, sid, e, ts, lon, lat, start, raw, NAN)
                touched = oa is not None
            if ts - start >= c.stop_min_s:
                win.compact()
        elif stopped:
            cols.lazy("stop_start")[s] = NAN
            if win.prev_ts - start >= c.stop_min_s:
                win.restart()
            if oa is not None:
                oa.lon, oa.lat = lon, lat
                self.request_close(oa, s, e, c.stop_cool_s, AlertType.UNEXPECTED_STOP)
        if touched:
            self.sync(s, AlertType.UNEXPECTED_STOP)

    # ------------------------------------------------------------------ overspeed
    def overspeed_step(
        self, s: int, e: float, ts: float, lon: float, lat: float, speed: float, raw: tuple[int, ...]
    ) -> None:
        """Candidate above the applicable limit, open after ``min_duration_s``, escalate above the critical factor."""
        if speed != speed:
            return
        c = self.c
        cols = c.cols
        tb = c.tables
        lim = tb.limit_kn(raw)
        sid = c.sid(s)
        oa = c.life.get(AlertType.OVERSPEED, sid)
        if lim is None or speed <= lim:
            os_start0 = cols.opt("os_start")
            if os_start0 is not None:
                os_start0[s] = NAN
            if oa is not None:
                oa.lon, oa.lat = lon, lat
                self.request_close(oa, s, e, c.os_cool_s, AlertType.OVERSPEED)
                self.sync(s, AlertType.OVERSPEED)
            return
        os_start = cols.lazy("os_start")
        os_max = cols.lazy("os_max")
        start = float(os_start[s])
        if start != start:
            os_start[s] = start = ts
            os_max[s] = speed
        else:
            os_max[s] = max(os_max[s], speed)
        self.resume(oa, s, e, AlertType.OVERSPEED)
        figures = {
            "speed_kn": rnd(speed, 2),
            "limit_kn": lim,
            "max_speed_kn": rnd(float(os_max[s]), 2),
            "started": iso(start),
            "duration_s": rnd(ts - start, 3),
        }
        crit = speed > lim * c.os_cf
        if oa is None:
            if ts - start >= c.os_min_s:
                inside = [f for f in raw if tb.speed_limit_kn[f] == lim]
                fid = tb.ids[inside[0]] if inside else None
                c.life.open_(
                    AlertType.OVERSPEED,
                    "critical" if crit else "warning",
                    sid,
                    "vessel",
                    fid,
                    tb.version,
                    start,
                    e,
                    lon,
                    lat,
                    c.details(s, figures, ts, e),
                    key_zone="",
                )
                self.sync(s, AlertType.OVERSPEED)
        else:
            if crit and oa.severity == "warning":
                oa.severity = "critical"
                c.life.update(oa, e, lon, lat, c.details(s, figures, ts, e))
            self.sync(s, AlertType.OVERSPEED)

    # ------------------------------------------------------------------ cool-downs
    def request_close(self, oa: OpenAlert, s: int, e: float, cooldown_s: float, type_: AlertType) -> None:
        """The condition ended at ``e``: close after the cool-down unless it returns."""
        if oa.closing_ts is not None:
            return
        c = self.c
        oa.closing_ts = e
        c.retro[f"c{s}|{type_.value}"] = e
        c.timers.push(e + cooldown_s, T_CLOSE, s, type_.value)

    def resume(self, oa: OpenAlert | None, s: int, e: float, type_: AlertType) -> None:
        """The condition returned at ``e`` during the cool-down: the incident continues.

        Only *during* it: ``e - closing_ts < cooldown_s``. With ``cooldown_s = 0`` a stop broken by
        a report that is itself slow closes, and that report starts a new candidate (it used to
        cancel the close at the same instant, so the open alert slid on with a moved anchor).
        """
        cool = self.c.stop_cool_s if type_ is AlertType.UNEXPECTED_STOP else self.c.os_cool_s
        if oa is not None and oa.closing_ts is not None and e - oa.closing_ts < cool:
            oa.closing_ts = None
            self.c.retro.pop(f"c{s}|{type_.value}", None)

    def close_timer(self, t: float, s: int, type_value: str) -> None:
        """The cool-down ran out: write the closed line, dated when the condition ended."""
        c = self.c
        type_ = AlertType(type_value)
        oa = c.life.get(type_, c.sid(s))
        cool = c.stop_cool_s if type_ is AlertType.UNEXPECTED_STOP else c.os_cool_s
        if oa is None or oa.closing_ts is None or oa.closing_ts + cool != t:
            return
        c.retro.pop(f"c{s}|{type_value}", None)
        end = oa.closing_ts
        figures = dict(oa.details)
        figures.pop("track", None)
        figures["duration_s"] = rnd(end - oa.start_ts, 3)
        c.life.close(oa, end, oa.lon, oa.lat, figures | {"track": oa.details.get("track", [])})
        self.sync(s, type_)

    def sync(self, s: int, type_: AlertType) -> None:
        """Mirror the subject's open stop/overspeed alert into the ``stop_state``/``os_state`` column."""
        c = self.c
        oa = c.life.get(type_, c.sid(s))
        name = "os_state" if type_ is AlertType.OVERSPEED else "stop_state"
        if oa is None:
            v = 0
        elif type_ is AlertType.OVERSPEED:
            v = (
                OS_OPEN
                | (OS_CRIT if oa.severity == "critical" else 0)
                | (OS_CLOSING if oa.closing_ts is not None else 0)
            )
        else:
            v = 1 if oa.closing_ts is None else 2
        col = c.cols.opt(name)
        if v or col is not None:
            c.cols.lazy(name)[s] = v
