"""Injected anomalies: tracks that must raise specific alerts, each with a label.

Track-level anomalies (built here): unexpected stop, encounter (a pair), overspeed,
restricted entry (with approach), route deviation (with a declared plan) and
dwell exceeded. Report-level anomalies (AIS gap, position jump) pick a normal
vessel here and are applied to its emitted reports by the runner. Label windows
are truth windows (when the vessel actually did it); report-derived windows are
filled in by the runner where the spec says "as emitted".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

from geofence import geodesy
from geofence.fence import ZoneKind, ZoneSet
from geofence.simulate.network import Network, Path, _offset
from geofence.simulate.tracks import STATUS_UNDERWAY, Track
from geofence.simulate.traffic import (
    Vessel,
    Visit,
    continue_track,
    leg_path,
    path_speeds,
    reachable,
    status_of,
)

__all__ = ["ANOMALY_TYPES", "Injected", "Planner"]

F64 = npt.NDArray[np.float64]

#: Anomaly name -> the alert types it must raise.
ANOMALY_TYPES: dict[str, list[str]] = {
    "unexpected_stop": ["unexpected_stop"],
    "dwell_exceeded": ["dwell_exceeded"],
    "route_deviation": ["route_deviation"],
    "ais_gap": ["ais_gap"],
    "restricted_entry": ["restricted_entry", "approach_warning"],
    "overspeed": ["overspeed"],
    "position_jump": ["position_jump"],
    "encounter": ["encounter"],
    "container_separation": ["container_separation"],
    "container_zone_exit": ["container_zone_exit"],
    "feed_outage": ["feed_outage"],
}


@dataclass
class Injected:
    """One injected anomaly on a vessel: its label fields and what the runner still has to do."""

    anomaly: str
    vessel: int
    start_s: float
    end_s: float
    zone_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Planner:
    """Builds anomalous tracks on a network; every method returns None when the catalogue offers no place."""

    def __init__(self, net: Network, zones: ZoneSet, t0_s: float, t_end_s: float) -> None:
        self.net = net
        self.zones = zones
        self.t0_s = t0_s
        self.t_end_s = t_end_s
        avoid = [
            geodesy.buffer_m(f.geometry, 500.0)
            for f in zones.fences
            if f.kind in (ZoneKind.PORT, ZoneKind.BERTH, ZoneKind.ANCHORAGE, ZoneKind.LOCK, ZoneKind.CUSTOMS,
                          ZoneKind.RESTRICTED)
        ]
        self._avoid: BaseGeometry | None = shapely.union_all(avoid) if avoid else None
        fairways = [f.geometry for f in zones.fences if f.kind is ZoneKind.FAIRWAY]
        self._fairway = shapely.union_all(fairways)
        shapely.prepare(self._fairway)
        if self._avoid is not None:
            shapely.prepare(self._avoid)
        restricted = [geodesy.buffer_m(f.geometry, 150.0) for f in zones.fences if f.kind is ZoneKind.RESTRICTED]
        self._ray_target: BaseGeometry | None = shapely.union_all(restricted) if restricted else None
        self._legs = [
            (a, b, p)
            for a in range(len(net.stops))
            for b in reachable(net, a)
            if (p := leg_path(net, net.stops[a], net.stops[b])) is not None and len(p.lon) > 8
        ]

    # -- helpers -----------------------------------------------------------------
    def _mid_river(self, path: Path) -> npt.NDArray[np.bool_]:
        ok = shapely.contains_xy(self._fairway, path.lon, path.lat) & np.isfinite(np.r_[path.cap_kn, np.inf])
        if self._avoid is not None:
            ok &= ~shapely.contains_xy(self._avoid, path.lon, path.lat)
        ok[:2] = False
        ok[-3:] = False
        return np.asarray(ok)

    def _times(self, vessel: Vessel, path: Path) -> F64:
        kn = path_speeds(vessel, path)
        d = geodesy.distance_m(path.lon[:-1], path.lat[:-1], path.lon[1:], path.lat[1:])
        return np.concatenate([[0.0], np.cumsum(d / (kn * geodesy.KNOT_M_S))])

    def _rays_clear(self, lon: F64, lat: F64, kn: float) -> bool:
        """True when the 15-min projected course (x1.25) from each vertex towards the next avoids restricted fences."""
        if self._ray_target is None or len(lon) < 2:
            return True
        az = geodesy.azimuth_deg(lon[:-1], lat[:-1], lon[1:], lat[1:])
        seg = geodesy.distance_m(lon[:-1], lat[:-1], lon[1:], lat[1:])
        elon, elat = geodesy.destination(lon[:-1], lat[:-1], az, seg + kn * geodesy.KNOT_M_S * 900 * 1.25)
        rays = shapely.linestrings(np.stack([np.column_stack([lon[:-1], lat[:-1]]), np.column_stack([elon, elat])], 1))
        return not bool(shapely.intersects(rays, self._ray_target).any())

    def _limit_cap(self, line: BaseGeometry) -> float:
        """80 % of the lowest ``speed_limit_kn`` of the fences within 200 m of ``line`` (inf when none)."""
        limits = [float(f.params.speed_limit_kn) for f in self.zones.fences
                  if f.params.speed_limit_kn and line.intersects(geodesy.buffer_m(f.geometry, 200.0))]
        return 0.8 * min(limits) if limits else float("inf")

    def _event_time(self, rng: np.random.Generator, lead_min: float = 30.0, tail_min: float = 70.0) -> float | None:
        lo, hi = self.t0_s + lead_min * 60, self.t_end_s - tail_min * 60
        return float(rng.uniform(lo, hi)) if hi > lo else None

    def _pick_leg(self, rng: np.random.Generator) -> tuple[int, int, Path] | None:
        return self._legs[int(rng.integers(len(self._legs)))] if self._legs else None

    def _finish(self, vessel: Vessel, track: Track, path: Path, i_from: int, b: int, rng: np.random.Generator,
                kn: F64 | None = None) -> float:
        """Sail the rest of ``path`` from vertex ``i_from``, continue normally; return the arrival time at b."""
        speeds = path_speeds(vessel, path) if kn is None else kn
        track.sail(path.lon[i_from + 1 :], path.lat[i_from + 1 :], speeds[i_from:], b)
        arrive = track.end_t
        continue_track(self.net, vessel, track, b, rng, self.t_end_s)
        vessel.track = track
        return arrive

    def _start_at(self, vessel: Vessel, path: Path, i: int, t_at_i: float, a: int, b: int) -> Track:
        """Start a track at the path's origin so that it reaches vertex i at ``t_at_i``; sail up to vertex i."""
        times = self._times(vessel, path)
        track = Track()
        track.start(t_at_i - times[i], float(path.lon[0]), float(path.lat[0]), STATUS_UNDERWAY, b)
        kn = path_speeds(vessel, path)
        track.sail(path.lon[1 : i + 1], path.lat[1 : i + 1], kn[:i], b)
        return track

    # -- anomalies -----------------------------------------------------------------
    def unexpected_stop(self, vessel: Vessel, rng: np.random.Generator) -> Injected | None:
        for _ in range(30):
            leg, tm = self._pick_leg(rng), self._event_time(rng)
            if leg is None or tm is None:
                return None
            a, b, path = leg
            cand = np.flatnonzero(self._mid_river(path))
            if len(cand) == 0:
                continue
            i = int(cand[int(rng.integers(len(cand)))])
            dur = float(rng.uniform(25, 40) * 60)
            track = self._start_at(vessel, path, i, tm, a, b)
            track.dwell(dur, STATUS_UNDERWAY, b)
            self._finish(vessel, track, path, i, b, rng)
            return Injected("unexpected_stop", vessel.index, tm, tm + dur)
        return None

    def encounter(self, v1: Vessel, v2: Vessel, rng: np.random.Generator) -> list[Injected] | None:
        for _ in range(40):
            leg, tm = self._pick_leg(rng), self._event_time(rng, 40.0, 90.0)
            if leg is None or tm is None:
                return None
            a, b, path = leg
            ok = self._mid_river(path)
            cand = np.flatnonzero(ok)
            if len(cand) == 0 or path.width_m < 300:
                continue
            i = int(cand[int(rng.integers(len(cand)))])
            drift_s = float(rng.uniform(35, 50) * 60)
            need_m = 0.6 * geodesy.KNOT_M_S * drift_s
            seg = geodesy.distance_m(path.lon[:-1], path.lat[:-1], path.lon[1:], path.lat[1:])
            cum = np.cumsum(seg[i:])
            j = i + int(np.searchsorted(cum, need_m)) + 1
            if j >= len(path.lon) - 2 or not ok[i : j + 1].all():
                continue
            olon, olat = _offset(path.lon, path.lat, -60.0)
            p2 = Path(olon, olat, path.cap_kn, path.downstream, path.width_m)
            injected = []
            for v, p in ((v1, path), (v2, p2)):
                kn = path_speeds(v, p).copy()
                kn[i:j] = 0.6
                track = self._start_at(v, p, i, tm, a, b)
                self._finish(v, track, p, i, b, rng, kn)
                end = tm + float(np.sum(seg[i:j])) / (0.6 * geodesy.KNOT_M_S)
                injected.append(Injected("encounter", v.index, tm, end, extra={"other": None}))
            injected[0].extra["other"] = v2.index
            injected[1].extra["other"] = v1.index
            return injected
        return None

    def overspeed(self, vessel: Vessel, rng: np.random.Generator) -> Injected | None:
        zones = [f for f in self.zones.fences if f.kind is ZoneKind.SPEED_LIMIT and f.params.speed_limit_kn]
        for _ in range(60):
            leg = self._pick_leg(rng)
            if leg is None or not zones:
                return None
            _a, b, path = leg
            z = zones[int(rng.integers(len(zones)))]
            limit = float(z.params.speed_limit_kn or 0.0)
            inside = shapely.contains_xy(z.geometry, path.lon, path.lat)
            edge_in = inside[:-1] & inside[1:] & np.isfinite(path.cap_kn)
            if edge_in.sum() < 2:
                continue
            fast = min(float(rng.uniform(1.6, 1.8)) * limit, 22.0)
            seg = geodesy.distance_m(path.lon[:-1], path.lat[:-1], path.lon[1:], path.lat[1:])
            # the first contiguous inside run
            idx = np.flatnonzero(edge_in)
            run_end = idx[0]
            while run_end + 1 < len(edge_in) and edge_in[run_end + 1]:
                run_end += 1
            i0, i1 = int(idx[0]), int(run_end) + 1
            inside_s = float(seg[i0:i1].sum()) / (fast * geodesy.KNOT_M_S)
            if inside_s < 12 * 60 or not self._rays_clear(path.lon[i0 : i1 + 1], path.lat[i0 : i1 + 1], fast):
                continue
            tm = self._event_time(rng, 20.0, inside_s / 60 + 20.0)
            if tm is None:
                continue
            kn = path_speeds(vessel, path).copy()
            kn[i0:i1] = fast
            times = np.concatenate([[0.0], np.cumsum(seg / (kn * geodesy.KNOT_M_S))])
            track = Track()
            track.start(tm - times[i0], float(path.lon[0]), float(path.lat[0]), STATUS_UNDERWAY, b)
            self._finish(vessel, track, path, 0, b, rng, kn)
            return Injected("overspeed", vessel.index, tm, tm + inside_s, z.id, {"limit_kn": limit})
        return None

    def restricted_entry(self, vessel: Vessel, rng: np.random.Generator) -> Injected | None:
        fences = [f for f in self.zones.fences if f.kind is ZoneKind.RESTRICTED]
        if not fences or not self._legs:
            return None
        for _ in range(80):
            f = fences[int(rng.integers(len(fences)))]
            a, b, path = self._legs[int(rng.integers(len(self._legs)))]
            target = f.geometry.representative_point()
            d = geodesy.distance_m(path.lon, path.lat, target.x, target.y)
            cand = np.flatnonzero((d > 4000) & (d < 7000))
            cand = cand[(cand > 0) & (cand < len(path.lon) - 2)]
            if len(cand) == 0:
                continue
            i = int(cand[int(rng.integers(len(cand)))])
            approach = shapely.LineString([(path.lon[i], path.lat[i]), (target.x, target.y)])
            others = [g.geometry for g in fences if g.id != f.id]
            if any(approach.intersects(o) for o in others):
                continue
            tm = self._event_time(rng, 20.0, 70.0)
            if tm is None:
                return None
            # the incursion is the only violation: keep below any speed limit crossed on the way (the 80 % margin
            # of the lanes), so the run does not also raise an unlabelled overspeed
            cap = self._limit_cap(approach)
            out_kn, back_kn = min(8.0, cap), min(7.0, cap)
            track = self._start_at(vessel, path, i, tm, a, b)
            track.sail(np.array([target.x]), np.array([target.y]), np.array([out_kn]), b)
            t_in = track.end_t
            track.sail(np.array([path.lon[i]]), np.array([path.lat[i]]), np.array([back_kn]), b)
            depth = float(geodesy.distance_m(target.x, target.y, *shapely.get_coordinates(
                shapely.shortest_line(f.geometry.boundary, target))[0])[0])
            end = t_in + depth / (back_kn * geodesy.KNOT_M_S)
            self._finish(vessel, track, path, i, b, rng)
            return Injected("restricted_entry", vessel.index, tm, end, f.id)
        return None

    def route_deviation(self, vessel: Vessel, rng: np.random.Generator) -> Injected | None:
        for _ in range(40):
            leg = self._pick_leg(rng)
            if leg is None:
                return None
            a, b, path = leg
            ml = geodesy.MetricLine(np.column_stack([path.lon, path.lat]))
            speed_kn = float(np.median(path_speeds(vessel, path)))
            hold_m = speed_kn * geodesy.KNOT_M_S * float(rng.uniform(28, 36)) * 60
            ramp_m = 2500.0
            total = 2 * ramp_m + hold_m
            if ml.length_m < total + 6000:
                continue
            s0 = float(rng.uniform(2000, ml.length_m - total - 2000))
            along = np.arange(s0, s0 + total + 1, 250.0)
            lon, lat = ml.interpolate(along)
            alon, alat = ml.interpolate(along + 50.0)
            az = geodesy.azimuth_deg(lon, lat, alon, alat)
            peak = path.width_m / 2 + float(rng.uniform(2200, 2800))
            prof = np.clip(np.minimum(along - s0, s0 + total - along) / ramp_m, 0, 1) * peak
            side = 90.0 if rng.uniform() < 0.5 else -90.0
            dlon, dlat = geodesy.destination(lon, lat, az + side, prof)
            line = shapely.LineString(np.column_stack([dlon, dlat]))
            if self.net.restricted is not None and line.intersects(self.net.restricted):
                continue
            if not self._rays_clear(dlon, dlat, speed_kn):
                continue
            xt = ml.distance_m(dlon, dlat) - path.width_m / 2
            dev = along[xt >= 1500.0]
            if len(dev) == 0 or (dev[-1] - dev[0]) / (speed_kn * geodesy.KNOT_M_S) < 22 * 60:
                continue
            cum = np.concatenate([[0.0], np.cumsum(geodesy.distance_m(path.lon[:-1], path.lat[:-1],
                                                                      path.lon[1:], path.lat[1:]))])
            i0 = int(np.searchsorted(cum, s0)) - 1
            i1 = int(np.searchsorted(cum, s0 + total))
            if i0 < 1 or i1 >= len(path.lon) - 1:
                continue
            tm = self._event_time(rng, 25.0, 30.0 + total / (speed_kn * geodesy.KNOT_M_S) / 60)
            if tm is None:
                return None
            track = self._start_at(vessel, path, i0, tm, a, b)
            track.sail(dlon, dlat, np.full(len(dlon), speed_kn), b)
            end = track.end_t
            track.sail(np.array([path.lon[i1]]), np.array([path.lat[i1]]), np.array([speed_kn]), b)
            arrive = self._finish(vessel, track, path, i1, b, rng)
            vessel.plan_path = (path.lon.copy(), path.lat.copy())
            vessel.plan_width_m = path.width_m
            return Injected("route_deviation", vessel.index, tm, end,
                            extra={"plan_from": tm - self._times(vessel, path)[i0], "plan_to": arrive,
                                   "stop": self.net.stops[b].visit_zone or self.net.stops[b].id})
        return None

    def dwell_exceeded(self, vessel: Vessel, rng: np.random.Generator) -> Injected | None:
        window = self.t_end_s - self.t0_s
        for k, stop in enumerate(self.net.stops):
            if stop.kind is not ZoneKind.ANCHORAGE or stop.max_dwell_min is None:
                continue
            if stop.max_dwell_min * 60 * 1.15 + 40 * 60 > window:
                continue
            sources = [a for a in range(len(self.net.stops)) if k in reachable(self.net, a)]
            if not sources:
                continue
            a = sources[int(rng.integers(len(sources)))]
            path = leg_path(self.net, self.net.stops[a], stop)
            if path is None:
                continue
            times = self._times(vessel, path)
            arrive = self.t0_s + float(rng.uniform(10, 25)) * 60
            track = Track()
            track.start(arrive - times[-1], float(path.lon[0]), float(path.lat[0]), STATUS_UNDERWAY, k)
            kn = path_speeds(vessel, path)
            track.sail(path.lon[1:], path.lat[1:], kn, k)
            dwell = float(rng.uniform(2.0, 3.0)) * stop.max_dwell_min * 60
            track.dwell(dwell, status_of(stop), k)
            vessel.visits.append(Visit(stop, arrive, arrive + dwell))
            options = reachable(self.net, k)
            if options:
                nxt = options[int(rng.integers(len(options)))]
                p = leg_path(self.net, stop, self.net.stops[nxt])
                if p is not None:
                    track.sail(p.lon[1:], p.lat[1:], path_speeds(vessel, p), nxt)
                    continue_track(self.net, vessel, track, nxt, rng, self.t_end_s)
            vessel.track = track
            return Injected("dwell_exceeded", vessel.index, arrive, arrive + dwell, stop.visit_zone or stop.id,
                            {"max_dwell_min": stop.max_dwell_min})
        return None

    def moored_start(self, vessel: Vessel, rng: np.random.Generator, customs: bool) -> int | None:
        """Start ``vessel`` moored at a berth (inside a customs fence when asked), leaving 20-60 min after t0."""
        cands = [k for k, s in enumerate(self.net.stops)
                 if s.kind is ZoneKind.PORT and (s.customs_zone is not None) == customs and reachable(self.net, k)]
        if not customs:
            cands = cands or [k for k, s in enumerate(self.net.stops) if s.kind is ZoneKind.PORT]
        if not cands:
            return None
        k = cands[int(rng.integers(len(cands)))]
        stop = self.net.stops[k]
        track = Track()
        begin = self.t0_s - float(rng.uniform(10, 60)) * 60
        track.start(begin, stop.lon, stop.lat, status_of(stop), k)
        depart = self.t0_s + float(rng.uniform(20, 60)) * 60
        track.dwell(depart - begin, status_of(stop), k)
        from geofence.simulate.traffic import Visit

        vessel.visits.append(Visit(stop, begin, depart))
        options = reachable(self.net, k)
        if not options:
            return None
        nxt = options[int(rng.integers(len(options)))]
        p = leg_path(self.net, stop, self.net.stops[nxt])
        if p is None:
            return None
        track.sail(p.lon[1:], p.lat[1:], path_speeds(vessel, p), nxt)
        continue_track(self.net, vessel, track, nxt, rng, self.t_end_s)
        vessel.track = track
        vessel.containership = True
        return k
