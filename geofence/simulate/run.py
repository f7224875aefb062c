"""The simulation run: fleet, anomalies, reports, containers, labels and plans as data.

:func:`simulate` is pure and deterministic for a :class:`SimConfig`; the CLI
writes its result with the encoders of :mod:`geofence.simulate.encode`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

from geofence import geodesy
from geofence.errors import ConfigError
from geofence.fence import ZoneKind, ZoneSet
from geofence.simulate.anomalies import ANOMALY_TYPES, Injected, Planner
from geofence.simulate.containers import ContainerRows, ContainerSpec, container_id, container_reports
from geofence.simulate.network import Network, build_network
from geofence.simulate.outages import Outage, choose_outages
from geofence.simulate.tracks import sample
from geofence.simulate.traffic import Vessel, conflicting_pairs, make_vessel, normal_track, rng_for
from geofence.timefmt import iso_utc

__all__ = ["DEFAULT_START_S", "Reports", "SimConfig", "Simulation", "simulate"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Obj = npt.NDArray[np.object_]

#: 2026-06-01T00:00:00Z, the default simulation start.
DEFAULT_START_S = 1_780_272_000.0
_STATIC_S = 360
_TRACK_ANOMALIES = ("unexpected_stop", "dwell_exceeded", "route_deviation", "restricted_entry", "overspeed")


@dataclass(frozen=True)
class SimConfig:
    """Options of a simulation run (validated on construction).

    Attributes
    ----------
    vessels, hours, seed
        Fleet size, duration and random seed.
    start_s
        UTC epoch seconds of the first report.
    downsample_s
        Shore-aggregator model: forward at most one report per vessel per this many seconds (0 = off).
    anomalies_per_type
        Injected anomalies of each type; None = about 3 % of the fleet (at least 1) when vessels >= 12, else 0.
    plan_fraction
        Share of normal vessels that also declare a plan (they must not deviate from it).
    gps_noise_m
        Standard deviation of the position noise per axis.
    receiver_outages
        Shore stations that fall silent for 60-90 min (``feed_outage`` labels, see
        :mod:`geofence.simulate.outages`); None = 1 when anomalies are injected, else 0.
    """

    vessels: int = 50
    hours: float = 6.0
    seed: int = 0
    start_s: float = DEFAULT_START_S
    downsample_s: float = 0.0
    anomalies_per_type: int | None = None
    plan_fraction: float = 0.1
    gps_noise_m: float = 5.0
    receiver_outages: int | None = None

    def __post_init__(self) -> None:
        if self.vessels < 1:
            raise ConfigError(f"vessels={self.vessels}: simulate at least one vessel")
        if not 0 < self.hours <= 24 * 14:
            raise ConfigError(f"hours={self.hours}: give a duration between 0 and 336 hours")
        if self.downsample_s < 0:
            raise ConfigError(f"downsample_s={self.downsample_s}: must be >= 0 (0 turns downsampling off)")
        if self.anomalies_per_type is not None and self.anomalies_per_type < 0:
            raise ConfigError(f"anomalies_per_type={self.anomalies_per_type}: must be >= 0")
        if self.receiver_outages is not None and self.receiver_outages < 0:
            raise ConfigError(f"receiver_outages={self.receiver_outages}: must be >= 0 (0 turns outages off)")

    def per_type(self) -> int:
        if self.anomalies_per_type is not None:
            return self.anomalies_per_type
        return max(1, int(self.vessels * 0.03 + 0.5)) if self.vessels >= 12 else 0


@dataclass
class Reports:
    """Vessel position reports, one array per field, sorted by (ts, mmsi)."""

    ts: I64
    mmsi: I64
    vessel: I64
    lon: F64
    lat: F64
    sog: F64
    cog: F64
    heading: I64
    status: npt.NDArray[np.uint8]
    receiver: Obj

    def __len__(self) -> int:
        return len(self.ts)


@dataclass
class Simulation:
    """Everything a run produced; encoders turn it into feed lines."""

    config: SimConfig
    vessels: list[Vessel]
    reports: Reports
    statics: list[tuple[int, int, str]]  # (ts, vessel index, destination)
    containers: dict[str, Any]
    labels: list[dict[str, Any]]
    plans: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    stations: list[tuple[str, float, float]] = field(default_factory=list)


def _stations(net: Network, zones: ZoneSet) -> list[tuple[str, float, float]]:
    ports = [f for f in zones.fences if f.kind is ZoneKind.PORT]
    plon = np.array([f.geometry.centroid.x for f in ports]) if ports else np.zeros(0)
    plat = np.array([f.geometry.centroid.y for f in ports]) if ports else np.zeros(0)
    out: list[tuple[str, float, float]] = []
    count: dict[str, int] = {}
    for lon, lat in zip(net.cl_lon, net.cl_lat, strict=True):
        seg = geodesy.distance_m(lon[:-1], lat[:-1], lon[1:], lat[1:])
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        for s in np.arange(0.0, cum[-1] + 1, 60_000.0):
            x, y = float(np.interp(s, cum, lon)), float(np.interp(s, cum, lat))
            prefix = "st"
            if len(plon):
                d = geodesy.distance_m(x, y, plon, plat)
                k = int(np.argmin(d))
                prefix = ports[k].id.split("-")[0] if d[k] < 200_000 else "st"
            count[prefix] = count.get(prefix, 0) + 1
            out.append((f"{prefix}-{count[prefix]:02d}", x, y))
    return out


def _receivers(stations: list[tuple[str, float, float]], lon: F64, lat: F64) -> Obj:
    names = np.array([s[0] for s in stations], dtype=object)
    slon = np.array([s[1] for s in stations])
    slat = np.array([s[2] for s in stations])
    coslat = np.cos(np.radians(np.mean(slat)))
    best = np.zeros(len(lon), dtype=np.int64)
    best_d = np.full(len(lon), np.inf)
    for k in range(len(stations)):
        d = ((lon - slon[k]) * coslat) ** 2 + (lat - slat[k]) ** 2
        better = d < best_d
        best[better], best_d[better] = k, d[better]
    return np.asarray(names[best], dtype=object)


def _downsample(ts: I64, every_s: float) -> npt.NDArray[np.bool_]:
    keep = np.zeros(len(ts), dtype=bool)
    last = -np.inf
    for i, t in enumerate(ts.tolist()):
        if t - last >= every_s:
            keep[i] = True
            last = t
    return keep


def _fences_at(zones: ZoneSet, lon: float, lat: float) -> bool:
    return any(bool(shapely.contains_xy(f.geometry, lon, lat)) for f in zones.fences)


def simulate(zones: ZoneSet, config: SimConfig) -> Simulation:
    """Simulate Yangtze traffic over ``zones`` and return reports, containers, labels and plans.

    Raises :class:`ConfigError` when the catalogue has no usable fairway or stops.
    """
    cfg = config
    t0, t_end = cfg.start_s, cfg.start_s + cfg.hours * 3600.0
    try:
        net = build_network(zones, rng_for(cfg.seed, 1 << 30))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    notes = list(net.notes)
    if len(net.stops) < 2:
        raise ConfigError("the catalogue needs at least two reachable ports or anchorages to simulate traffic")
    vessels = [make_vessel(i, rng_for(cfg.seed, i, 0)) for i in range(cfg.vessels)]
    planner = Planner(net, zones, t0, t_end)
    per = cfg.per_type()
    need = per * (len(ANOMALY_TYPES) + 1)
    while per > 0 and need > cfg.vessels // 2:
        per -= 1
        need = per * (len(ANOMALY_TYPES) + 1)
    injected: list[Injected] = []
    fixed: set[int] = set()
    pair_ok: set[tuple[int, int]] = set()
    container_roles: list[tuple[int, str]] = []
    nxt = cfg.vessels - 1

    def take() -> Vessel:
        nonlocal nxt
        v = vessels[nxt]
        nxt -= 1
        return v

    for name in _TRACK_ANOMALIES:
        for _ in range(per):
            v = take()
            got = getattr(planner, name)(v, rng_for(cfg.seed, v.index, 1000))
            if got is None:
                notes.append(f"anomaly {name} skipped: the catalogue/window offers no place for it")
                v.visits.clear()
                continue
            v.anomaly = name
            injected.append(got)
            fixed.add(v.index)
    for _ in range(per):
        v1, v2 = take(), take()
        got2 = planner.encounter(v1, v2, rng_for(cfg.seed, v1.index, 1000))
        if got2 is None:
            notes.append("anomaly encounter skipped: no mid-river place")
            v1.visits.clear()
            v2.visits.clear()
            continue
        injected.extend(got2)
        v1.anomaly = v2.anomaly = "encounter"
        fixed |= {v1.index, v2.index}
        pair_ok.add((min(v1.index, v2.index), max(v1.index, v2.index)))
    for name, customs in (("container_separation", False), ("container_zone_exit", True)):
        for _ in range(per):
            v = take()
            k = planner.moored_start(v, rng_for(cfg.seed, v.index, 1000), customs)
            if k is None:
                notes.append(f"anomaly {name} skipped: no suitable port stop")
                v.visits.clear()
                continue
            v.anomaly = name
            fixed.add(v.index)
            container_roles.append((v.index, name))

    attempts = dict.fromkeys(range(cfg.vessels), 0)
    normal = [v.index for v in vessels if v.index not in fixed]
    for i in normal:
        vessels[i].visits.clear()
        normal_track(net, vessels[i], rng_for(cfg.seed, i, 0), t0, t_end)
    dropped: set[int] = set()
    for _round in range(8):
        active = [v for v in vessels if v.index not in dropped]
        pairs = conflicting_pairs(zones, [v.track for v in active], t0, t_end)
        redo: set[int] = set()
        for a, b in pairs:
            ia, ib = active[a].index, active[b].index
            if (min(ia, ib), max(ia, ib)) in pair_ok:
                continue
            cands = [x for x in (ib, ia) if x not in fixed]
            if cands and not (redo & {ia, ib}):
                redo.add(cands[0])
        if not redo:
            break
        for i in sorted(redo):
            attempts[i] += 1
            if _round == 7:
                dropped.add(i)
                continue
            vessels[i].visits.clear()
            vessels[i].plan_width_m = 0.0
            normal_track(net, vessels[i], rng_for(cfg.seed, i, attempts[i]), t0, t_end)
    if dropped:
        notes.append(f"{len(dropped)} normal vessels dropped: could not keep 500 m from other traffic")

    # -- sample ------------------------------------------------------------------
    samples = {}
    for v in vessels:
        if v.index in dropped or not v.track.t:
            continue
        r = rng_for(cfg.seed, v.index, 5000)
        samples[v.index] = sample(v.track, v.cls, t0, t_end, int(r.integers(0, 180)))
    keep_mask = {i: np.ones(len(s.ts), dtype=bool) for i, s in samples.items()}
    # report-level anomalies on normal vessels
    order = [i for i in normal if i not in dropped]
    rng_pick = rng_for(cfg.seed, 777)
    rng_pick.shuffle(order)
    supervised = [f for f in zones.fences if f.kind in (ZoneKind.PORT, ZoneKind.ANCHORAGE)]
    near = shapely.union_all([geodesy.buffer_m(f.geometry, 1500.0) for f in supervised]) if supervised else None
    used: set[int] = set()
    gap_count = 0
    for i in order:
        if gap_count >= per or near is None:
            break
        s = samples[i]
        ok = (s.sog > 2) & (s.ts > t0 + 1200) & shapely.contains_xy(near, s.lon, s.lat)
        gap_s = float(rng_for(cfg.seed, i, 6000).uniform(60, 120) * 60)
        ok &= s.ts < t_end - gap_s - 1200
        if not ok.any():
            continue
        tg = float(s.ts[int(np.argmax(ok))])
        cut = (s.ts > tg) & (s.ts <= tg + gap_s)
        if (s.ts > tg + gap_s).sum() < 3:
            continue
        keep_mask[i] &= ~cut
        zone = next(
            (
                f.id
                for f in supervised
                if shapely.contains_xy(
                    geodesy.buffer_m(f.geometry, 1500.0),
                    float(s.lon[int(np.argmax(ok))]),
                    float(s.lat[int(np.argmax(ok))]),
                )
            ),
            None,
        )
        injected.append(Injected("ais_gap", i, tg, tg + gap_s, zone))
        vessels[i].anomaly = "ais_gap"
        used.add(i)
        gap_count += 1
    if gap_count < per:
        notes.append(f"ais_gap: only {gap_count} of {per} injected (few vessels near ports/anchorages)")
    # noise, downsample
    reports_parts = []
    for i, s in samples.items():
        r = rng_for(cfg.seed, i, 7000)
        n = len(s.ts)
        noise = r.normal(0.0, cfg.gps_noise_m, size=(2, n))
        lat = s.lat + noise[1] / 110_574.0
        lon = s.lon + noise[0] / (111_320.0 * np.cos(np.radians(s.lat)))
        moving = s.sog > 0.2
        sog = np.where(moving, np.clip(s.sog + r.normal(0, 0.1, n), 0, None), np.abs(r.normal(0, 0.04, n)))
        over = moving & (s.sog < 40)
        sog = np.where(over, sog, sog)
        cog = np.mod(s.cog + r.normal(0, 1.0, n), 360.0)
        heading = np.mod(np.round(cog + r.normal(0, 2.0, n)), 360).astype(np.int64)
        keep = keep_mask[i]
        if cfg.downsample_s > 0:
            keep = keep & _downsample(np.where(keep, s.ts, -(10**12)), cfg.downsample_s)
        reports_parts.append(
            (
                i,
                s.ts[keep],
                lon[keep],
                lat[keep],
                np.round(sog[keep], 1),
                np.round(cog[keep], 1),
                heading[keep],
                s.status[keep],
            )
        )
    # position jumps on fresh normal vessels
    jump_count = 0
    for i in order:
        if jump_count >= per:
            break
        if i in used:
            continue
        k = next(idx for idx, part in enumerate(reports_parts) if part[0] == i)
        _, ts, lon, lat, sog, *_ = reports_parts[k]
        mid = np.flatnonzero((sog > 2) & (ts > t0 + 1800) & (ts < t_end - 1800))
        if len(mid) < 5:
            continue
        r = rng_for(cfg.seed, i, 8000)
        j = int(mid[len(mid) // 2])
        for _ in range(12):
            jl, ja = geodesy.destination(lon[j], lat[j], r.uniform(0, 360), r.uniform(60_000, 100_000))
            if not _fences_at(zones, float(jl[0]), float(ja[0])):
                lon[j], lat[j] = float(jl[0]), float(ja[0])
                injected.append(Injected("position_jump", i, float(ts[j]), float(ts[j])))
                vessels[i].anomaly = "position_jump"
                used.add(i)
                jump_count += 1
                break
    stations = _stations(net, zones)
    cat = [np.concatenate([p[c] for p in reports_parts]) for c in range(1, 8)]
    vid = np.concatenate([np.full(len(p[1]), p[0], dtype=np.int64) for p in reports_parts])
    mmsi = np.array([v.mmsi for v in vessels], dtype=np.int64)[vid]
    o = np.lexsort((mmsi, cat[0]))
    reports = Reports(
        ts=cat[0][o].astype(np.int64),
        mmsi=mmsi[o],
        vessel=vid[o],
        lon=cat[1][o],
        lat=cat[2][o],
        sog=cat[3][o],
        cog=cat[4][o],
        heading=cat[5][o].astype(np.int64),
        status=cat[6][o].astype(np.uint8),
        receiver=_receivers(stations, cat[1][o], cat[2][o]),
    )
    # receiver outages: a station falls silent (after every vessel anomaly is placed, so it can avoid them)
    n_out = cfg.receiver_outages if cfg.receiver_outages is not None else (1 if per > 0 else 0)
    windows: dict[int, list[tuple[float, float]]] = {}
    for inj in injected:
        windows.setdefault(vessels[inj.vessel].mmsi, []).append((inj.start_s, inj.end_s))
    for ci, _role in container_roles:
        windows.setdefault(vessels[ci].mmsi, []).append((-np.inf, np.inf))
    keep_rep, outages = choose_outages(
        reports.ts, reports.mmsi, reports.receiver, windows, n_out, t0, t_end, rng_for(cfg.seed, 888)
    )
    if len(outages) < n_out:
        notes.append(
            f"receiver outage: only {len(outages)} of {n_out} injected (no station heard enough vessels "
            "free of other anomalies)"
        )
    if not keep_rep.all():
        reports = _take(reports, keep_rep)
    rows = _rows_by_vessel(reports)
    statics = _drop_silenced_statics(_statics(vessels, reports, net, rows), vessels, outages)
    containers, c_labels = _containers(cfg, vessels, zones, t0, t_end, container_roles, dropped)
    labels = _labels(vessels, reports, injected, zones, rows) + c_labels + [_outage_label(x) for x in outages]
    labels.sort(key=lambda d: (d["start"], d["subject_id"], d.get("anomaly", ""), d.get("visit_zone", "")))
    plans = _plans(cfg, vessels, injected, normal, dropped, reports, used, rows)
    notes = list(dict.fromkeys(notes))
    return Simulation(cfg, vessels, reports, statics, containers, labels, plans, notes, stations)


def _take(r: Reports, keep: npt.NDArray[np.bool_]) -> Reports:
    return Reports(
        ts=r.ts[keep],
        mmsi=r.mmsi[keep],
        vessel=r.vessel[keep],
        lon=r.lon[keep],
        lat=r.lat[keep],
        sog=r.sog[keep],
        cog=r.cog[keep],
        heading=r.heading[keep],
        status=r.status[keep],
        receiver=r.receiver[keep],
    )


def _drop_silenced_statics(
    statics: list[tuple[int, int, str]], vessels: list[Vessel], outages: list[Outage]
) -> list[tuple[int, int, str]]:
    """A silent station forwards no static messages either."""
    if not outages:
        return statics
    out = []
    for t, vi, dest in statics:
        m = str(vessels[vi].mmsi)
        if not any(o.start_s <= t < o.end_s and m in o.silence_s for o in outages):
            out.append((t, vi, dest))
    return out


def _outage_label(o: Outage) -> dict[str, Any]:
    return {
        "subject_id": o.station,
        "types": ANOMALY_TYPES["feed_outage"],
        "start": iso_utc(o.last_before_s),
        "end": iso_utc(o.first_after_s),
        "anomaly": "feed_outage",
        "silenced": o.silenced(),
        "silence_s": {m: o.silence_s[m] for m in sorted(o.silence_s)},
    }


def _rows_by_vessel(reports: Reports) -> dict[int, npt.NDArray[np.intp]]:
    """Row indices of each vessel's reports, in time order (the reports are sorted by time)."""
    order = np.argsort(reports.vessel, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(reports.vessel[order])) + 1)
    return {int(reports.vessel[g[0]]): g for g in groups if len(g)}


def _statics(
    vessels: list[Vessel], reports: Reports, net: Network, rows: dict[int, npt.NDArray[np.intp]]
) -> list[tuple[int, int, str]]:
    out: list[tuple[int, int, str]] = []
    empty = np.zeros(0, dtype=np.intp)
    for v in vessels:
        ts = reports.ts[rows.get(v.index, empty)]
        if len(ts) == 0:
            continue
        t_knots = np.asarray(v.track.t)
        t = np.arange(int(ts[0]) + 1, int(ts[-1]), _STATIC_S, dtype=np.int64)
        # no statics while the transmitter is silent (gap): need a position report within 200 s
        k = np.searchsorted(ts, t)
        near = np.minimum(np.abs(t - ts[np.minimum(k, len(ts) - 1)]), np.abs(t - ts[np.maximum(k - 1, 0)]))
        t = t[near <= 200]
        seg = np.maximum(np.searchsorted(t_knots, t, side="right") - 1, 0)
        dests = np.asarray(v.track.dest)[np.minimum(seg, len(v.track.dest) - 1)]
        for tt, dest in zip(t.tolist(), dests.tolist(), strict=True):
            out.append((tt, v.index, net.stops[dest].destination if dest >= 0 else ""))
    out.sort(key=lambda x: (x[0], vessels[x[1]].mmsi))
    return out


def _containers(
    cfg: SimConfig,
    vessels: list[Vessel],
    zones: ZoneSet,
    t0: float,
    t_end: float,
    roles: list[tuple[int, str]],
    dropped: set[int],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    rows = ContainerRows()
    labels: list[dict[str, Any]] = []
    role = dict(roles)
    for v in vessels:
        if not v.containership or v.index in dropped or not v.track.t:
            continue
        r = rng_for(cfg.seed, v.index, 9000)
        specs: list[ContainerSpec] = []
        for _ in range(int(r.integers(2, 5))):
            specs.append(ContainerSpec(container_id(r), v.index, v.mmsi, t0))
        for visit in v.visits:
            if visit.stop.customs_zone and t0 < visit.arrive_s + 1800 < min(visit.depart_s - 900, t_end):
                specs.append(ContainerSpec(container_id(r), v.index, v.mmsi, visit.arrive_s + r.uniform(600, 1800)))
        if role.get(v.index) == "container_separation":
            specs[0].left_behind_after_s = v.visits[0].depart_s
        if role.get(v.index) == "container_zone_exit":
            specs[0].suppress_release = True
        for spec in specs:
            for lab in container_reports(spec, v.track, zones, t_end, r, rows):
                labels.append(
                    {
                        "subject_id": spec.id,
                        "types": ANOMALY_TYPES[lab["anomaly"]],
                        "start": iso_utc(lab["start"]),
                        "end": iso_utc(lab["end"]),
                        "anomaly": lab["anomaly"],
                        **({"zone_id": lab["zone_id"]} if "zone_id" in lab else {}),
                        "carrier": str(v.mmsi),
                    }
                )
    if rows.ts:
        cols = {k: np.concatenate(getattr(rows, k)) for k in ("ts", "id", "lon", "lat", "carrier", "event", "zone")}
        o = np.lexsort((cols["id"].astype(str), cols["ts"]))
        cols = {k: a[o] for k, a in cols.items()}
    else:
        cols = {k: np.zeros(0) for k in ("ts", "id", "lon", "lat", "carrier", "event", "zone")}
    return cols, labels


def _labels(
    vessels: list[Vessel],
    reports: Reports,
    injected: list[Injected],
    zones: ZoneSet,
    rows: dict[int, npt.NDArray[np.intp]],
) -> list[dict[str, Any]]:
    by_id = zones.by_id()
    out: list[dict[str, Any]] = []
    empty = np.zeros(0, dtype=np.intp)
    for inj in injected:
        v = vessels[inj.vessel]
        mask = rows.get(v.index, empty)
        ts, lon, lat = reports.ts[mask], reports.lon[mask], reports.lat[mask]
        start, end = inj.start_s, inj.end_s
        exact = inj.anomaly in ("ais_gap", "overspeed", "dwell_exceeded", "position_jump")
        if inj.anomaly == "ais_gap":
            before, after = ts[ts <= inj.start_s], ts[ts > inj.start_s]
            if len(before) == 0 or len(after) == 0:
                continue
            start, end = float(before[-1]), float(after[0])
        elif inj.anomaly in ("overspeed", "dwell_exceeded") and inj.zone_id in by_id:
            inside = shapely.contains_xy(by_id[inj.zone_id].geometry, lon, lat)
            win = inside & (ts >= inj.start_s - 900) & (ts <= inj.end_s + 900)
            if not win.any():
                continue
            start, end = float(ts[win][0]), float(ts[win][-1])
        lab: dict[str, Any] = {
            "subject_id": str(v.mmsi),
            "types": ANOMALY_TYPES[inj.anomaly],
            # truth windows [T0, T1): the first report in the state is at ceil(T0), the last before T1
            "start": iso_utc(start if exact else float(np.ceil(start))),
            "end": iso_utc(end if exact else float(max(np.ceil(end) - 1, np.ceil(start)))),
            "anomaly": inj.anomaly,
        }
        if inj.zone_id:
            lab["zone_id"] = inj.zone_id
        if inj.anomaly == "encounter" and inj.extra.get("other") is not None:
            lab["other_id"] = str(vessels[inj.extra["other"]].mmsi)
        out.append(lab)
    for v in vessels:
        mask = rows.get(v.index, empty)
        if not len(mask):
            continue
        ts, lon, lat = reports.ts[mask], reports.lon[mask], reports.lat[mask]
        for visit in v.visits:
            if visit.stop.visit_zone is None:
                continue
            inside = shapely.contains_xy(visit.stop.fence.geometry, lon, lat)
            win = inside & (ts >= visit.arrive_s - 900) & (ts <= visit.depart_s + 900)
            if not win.any():
                continue
            first, last = float(ts[win][0]), float(ts[win][-1])
            out.append(
                {
                    "subject_id": str(v.mmsi),
                    "types": [],
                    "visit_zone": visit.stop.visit_zone,
                    "dwell_s": last - first,
                    "start": iso_utc(first),
                    "end": iso_utc(last),
                }
            )
    return out


def _plans(
    cfg: SimConfig,
    vessels: list[Vessel],
    injected: list[Injected],
    normal: list[int],
    dropped: set[int],
    reports: Reports,
    used: set[int],
    rows: dict[int, npt.NDArray[np.intp]],
) -> list[dict[str, Any]]:
    plans: list[dict[str, Any]] = []
    for inj in injected:
        if inj.anomaly != "route_deviation":
            continue
        v = vessels[inj.vessel]
        if v.plan_path is None:
            continue
        line = shapely.simplify(shapely.LineString(np.column_stack(v.plan_path)), 0.0001)
        plans.append(
            {
                "subject_id": str(v.mmsi),
                "corridor": {"type": "LineString", "coordinates": [[round(x, 6), round(y, 6)] for x, y in line.coords]},
                "width_m": float(v.plan_width_m),
                "stops": [inj.extra["stop"]],
                "valid_from": iso_utc(float(np.floor(max(inj.extra["plan_from"], cfg.start_s)))),
                "valid_to": iso_utc(float(np.ceil(inj.extra["plan_to"]))),
            }
        )
    r = rng_for(cfg.seed, 4242)
    for i in normal:
        if i in dropped or i in used or r.uniform() >= cfg.plan_fraction:
            continue
        v = vessels[i]
        ts = reports.ts[rows.get(i, np.zeros(0, dtype=np.intp))]
        if len(ts) < 2:
            continue
        t, lon, lat = v.track.arrays()
        # the track's knots within an hour of the reports, and one more on each side; when no knot falls
        # in that window (one long leg spans it), the leg's two ends
        lo = max(int(np.searchsorted(t, ts[0] - 3600, side="left")) - 1, 0)
        hi = min(int(np.searchsorted(t, ts[-1] + 3600, side="right")), len(t) - 1)
        coords = np.column_stack([lon[lo : hi + 1], lat[lo : hi + 1]])
        if len(coords) < 2 or np.all(coords == coords[0]):
            continue
        line = shapely.simplify(shapely.LineString(coords), 0.0001)
        stops = sorted(
            {x.stop.visit_zone or x.stop.id for x in v.visits if x.depart_s >= ts[0] and x.arrive_s <= ts[-1]}
        )
        plans.append(
            {
                "subject_id": str(v.mmsi),
                "corridor": {"type": "LineString", "coordinates": [[round(x, 6), round(y, 6)] for x, y in line.coords]},
                "width_m": float(v.plan_width_m or 400.0),
                "stops": stops,
                "valid_from": iso_utc(float(ts[0])),
                "valid_to": iso_utc(float(ts[-1])),
            }
        )
    plans.sort(key=lambda p: p["subject_id"])
    return plans
