"""Normal Yangtze traffic: vessels, itineraries between catalogue stops, proximity de-confliction.

Pure: every function returns data. Randomness comes from
``numpy.random.Generator(PCG64(...))`` seeded from the run seed plus the vessel
index and attempt, so a vessel's itinerary does not change when another vessel
is regenerated and the same seed gives identical output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import shapely

from geofence import geodesy
from geofence.fence import ZoneKind, ZoneSet
from geofence.simulate.network import APPROACH_KN, Network, Path, Stop
from geofence.simulate.tracks import STATUS_ANCHORED, STATUS_MOORED, Track

__all__ = [
    "ENCOUNTER_CHECK_M",
    "SLOW_CHECK_KN",
    "Vessel",
    "Visit",
    "conflicting_pairs",
    "continue_track",
    "leg_path",
    "make_vessel",
    "normal_track",
    "path_speeds",
    "reachable",
    "rng_for",
    "sail_path",
    "status_of",
    "stop_dwell_s",
]

F64 = npt.NDArray[np.float64]

#: Normal vessels never stay within this distance of each other for more than ``_CONFLICT_MIN`` minutes
#: outside port, berth and anchorage fences while either of them is slower than ``SLOW_CHECK_KN``.
ENCOUNTER_CHECK_M = 500.0
#: Under way (faster than this) vessels may pass and overtake each other freely: that is normal river traffic,
#: and it must not raise encounters. 2 kn is the encounter rule's release speed.
SLOW_CHECK_KN = 2.0
_CONFLICT_MIN = 3

_NAMES = ("CHANGJIANG", "YUXIN", "MINSHENG", "HANGJUN", "XINGANG", "JIANGHAI", "SANXIA", "CHUAN", "XIANG", "HUAHANG")
_SHIP_TYPES = ((70, 79, 0.55), (80, 89, 0.2), (60, 69, 0.1), (52, 52, 0.15))


@dataclass
class Visit:
    """A stay at a stop (berth/anchorage labels come from these)."""

    stop: Stop
    arrive_s: float
    depart_s: float


@dataclass
class Vessel:
    """Static data and the true track of one simulated vessel."""

    index: int
    mmsi: int
    name: str
    ship_type: int
    length_m: float
    beam_m: float
    cls: str  # "A" or "B"
    v_down_kn: float
    v_up_kn: float
    containership: bool
    track: Track = field(default_factory=Track)
    visits: list[Visit] = field(default_factory=list)
    anomaly: str | None = None
    plan_path: tuple[F64, F64] | None = None
    plan_width_m: float = 0.0


def rng_for(seed: int, *keys: int) -> np.random.Generator:
    """Return an independent deterministic generator for (seed, keys...)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *keys])))


def make_vessel(index: int, rng: np.random.Generator) -> Vessel:
    """Return a vessel with random static data (MMSI 412/413/414xxxxxx, ship type, size, AIS class)."""
    mmsi = int(rng.choice([412, 413, 414])) * 1_000_000 + 100_000 + index * 37 % 900_000
    r = rng.uniform()
    acc = 0.0
    ship_type = 70
    for lo, hi, p in _SHIP_TYPES:
        acc += p
        if r <= acc:
            ship_type = int(rng.integers(lo, hi + 1))
            break
    length = float(rng.uniform(25, 40) if ship_type == 52 else rng.uniform(60, 140))
    return Vessel(
        index=index,
        mmsi=mmsi,
        name=f"{_NAMES[int(rng.integers(len(_NAMES)))]} {int(rng.integers(1, 999))}",
        ship_type=ship_type,
        length_m=round(length),
        beam_m=round(length / 6.5),
        cls="A" if rng.uniform() < 0.6 else "B",
        v_down_kn=float(rng.uniform(8, 12)),
        v_up_kn=float(rng.uniform(5, 9)),
        containership=70 <= ship_type <= 79 and rng.uniform() < 0.4,
    )


def leg_path(net: Network, a: Stop, b: Stop) -> Path | None:
    """Return the path from stop a to stop b: approach leg, lanes, approach leg; None when unreachable."""
    key = (net.stops.index(a), net.stops.index(b))
    if key not in net.legs:
        net.legs[key] = _leg_path(net, a, b)
    return net.legs[key]


def _leg_path(net: Network, a: Stop, b: Stop) -> Path | None:
    nodes = net.route_nodes(a.node, b.node)
    if nodes is None or len(nodes) < 2:
        return None
    p = net.lane_path(nodes)
    if len(p.lon) < 2:
        return None
    return Path(
        lon=np.concatenate([[a.lon], p.lon, [b.lon]]),
        lat=np.concatenate([[a.lat], p.lat, [b.lat]]),
        cap_kn=np.concatenate([[APPROACH_KN], p.cap_kn, [APPROACH_KN]]),
        downstream=np.concatenate([[True], p.downstream, [True]]),
        width_m=p.width_m,
    )


def path_speeds(vessel: Vessel, path: Path) -> F64:
    """Per-edge speed of ``vessel`` on ``path``: its river speed capped by the edge caps."""
    base = np.where(path.downstream, vessel.v_down_kn, vessel.v_up_kn)
    return np.minimum(base, path.cap_kn)


def sail_path(track: Track, vessel: Vessel, path: Path, dest: int, start_vertex: int = 1) -> None:
    """Append sailing along ``path`` from vertex ``start_vertex`` to the end."""
    kn = path_speeds(vessel, path)
    vessel.plan_width_m = max(vessel.plan_width_m, path.width_m)
    track.sail(path.lon[start_vertex:], path.lat[start_vertex:], kn[start_vertex - 1 :], dest)


def stop_dwell_s(stop: Stop, rng: np.random.Generator) -> float:
    """A normal dwell: 20-60 % of a numeric max_dwell_min, else 45-180 min."""
    if stop.max_dwell_min is not None:
        return float(rng.uniform(0.2, 0.6) * stop.max_dwell_min * 60.0)
    return float(rng.uniform(45, 180) * 60.0)


def status_of(stop: Stop) -> int:
    return STATUS_ANCHORED if stop.kind is ZoneKind.ANCHORAGE else STATUS_MOORED


def reachable(net: Network, a: int) -> list[int]:
    """Indices of the stops reachable from stop index ``a``."""
    if a not in net.reach:
        net.reach[a] = [j for j, s in enumerate(net.stops) if j != a and leg_path(net, net.stops[a], s) is not None]
    return net.reach[a]


def normal_track(
    net: Network, vessel: Vessel, rng: np.random.Generator, t0_s: float, t_end_s: float, first: int | None = None
) -> bool:
    """Fill ``vessel.track`` with stops and legs covering [t0, t_end]; return False when no route exists.

    The vessel's story begins before t0 at a random point of its first dwell or leg, so at t0 the fleet is
    spread over the river, some moored, some underway.
    """
    stops = net.stops
    if first is None:
        usable = [k for k in range(len(stops)) if reachable(net, k)]
        if not usable:
            return False
        a = usable[int(rng.integers(len(usable)))]
    else:
        a = first
    options = reachable(net, a)
    if not options:
        return False
    b = options[int(rng.integers(len(options)))]
    path = leg_path(net, stops[a], stops[b])
    if path is None:
        return False
    dwell0 = stop_dwell_s(stops[a], rng)
    probe = Track()
    probe.start(0.0, float(path.lon[0]), float(path.lat[0]))
    sail_path(probe, vessel, path, b)
    offset = float(rng.uniform(0.0, dwell0 + probe.end_t))
    track = Track()
    begin = t0_s - offset
    track.start(begin, stops[a].lon, stops[a].lat, status_of(stops[a]), a)
    track.dwell(dwell0, status_of(stops[a]), a)
    vessel.visits.append(Visit(stops[a], begin, begin + dwell0))
    sail_path(track, vessel, path, b)
    continue_track(net, vessel, track, b, rng, t_end_s)
    vessel.track = track
    return True


def continue_track(
    net: Network, vessel: Vessel, track: Track, cur: int, rng: np.random.Generator, t_end_s: float
) -> None:
    """Extend ``track`` from stop ``cur`` (just arrived) with dwells and legs until past ``t_end_s``."""
    stops = net.stops
    while track.end_t < t_end_s:
        arrive = track.end_t
        d = stop_dwell_s(stops[cur], rng)
        track.dwell(d, status_of(stops[cur]), cur)
        vessel.visits.append(Visit(stops[cur], arrive, arrive + d))
        options = reachable(net, cur)
        if not options:
            break
        nxt = options[int(rng.integers(len(options)))]
        p = leg_path(net, stops[cur], stops[nxt])
        if p is None:
            break
        sail_path(track, vessel, p, nxt)
        cur = nxt


def _excluded_mask(zones: ZoneSet, lon: F64, lat: F64) -> npt.NDArray[np.bool_]:
    """True where a point lies in a port, berth or anchorage fence (proximity is normal there)."""
    mask = np.zeros(lon.shape, dtype=bool)
    for f in zones.fences:
        if f.kind in (ZoneKind.PORT, ZoneKind.BERTH, ZoneKind.ANCHORAGE):
            mask |= shapely.contains_xy(geodesy.buffer_m(f.geometry, 100.0), lon, lat)
    return mask


def conflicting_pairs(
    zones: ZoneSet,
    tracks: list[Track],
    t0_s: float,
    t_end_s: float,
    step_s: float = 60.0,
    slow_kn: float | None = SLOW_CHECK_KN,
) -> set[tuple[int, int]]:
    """Return pairs (i < j) of tracks within 500 m for more than 3 minutes outside port/berth/anchorage fences.

    Only minutes where at least one of the two is slower than ``slow_kn`` (default ``SLOW_CHECK_KN``; None: any
    speed) count: passing and overtaking under way is normal traffic (and a test that the encounter rule ignores
    it), lying together slowly is not.
    """
    n = len(tracks)
    if n < 2:
        return set()
    grid = np.arange(t0_s, t_end_s, step_s)
    lon = np.empty((len(grid), n))
    lat = np.empty((len(grid), n))
    for k, tr in enumerate(tracks):
        lon[:, k], lat[:, k] = tr.position_at(grid)
    excl = _excluded_mask(zones, lon.ravel(), lat.ravel()).reshape(lon.shape)
    lat0 = float(np.nanmean(lat))
    x = lon * 111_320.0 * np.cos(np.radians(lat0))
    y = lat * 110_574.0
    # slow = moved less than SLOW_CHECK_KN x step in the step before or after (cheap, on the grid already sampled)
    step_m = np.hypot(np.diff(x, axis=0), np.diff(y, axis=0))
    lim = (np.inf if slow_kn is None else slow_kn) * 1852.0 / 3600.0 * step_s
    slow = np.zeros(x.shape, dtype=bool)
    if slow_kn is None:
        slow[:] = True
    elif len(grid) > 1:
        slow[1:] |= step_m < lim
        slow[:-1] |= step_m < lim
    else:
        slow[:] = True
    order = np.argsort(x, axis=1)
    xs = np.take_along_axis(x, order, 1)
    hits_t: list[npt.NDArray[np.int64]] = []
    hits_a: list[npt.NDArray[np.int64]] = []
    hits_b: list[npt.NDArray[np.int64]] = []
    rows = np.arange(len(grid))[:, None]
    for k in range(1, n):
        dx = xs[:, k:] - xs[:, :-k]
        close = dx < ENCOUNTER_CHECK_M * 1.2
        if not close.any():
            break
        ti, ci = np.nonzero(close)
        a = order[ti, ci]
        b = order[ti, ci + k]
        d = np.hypot(x[ti, a] - x[ti, b], y[ti, a] - y[ti, b])
        ok = (d < ENCOUNTER_CHECK_M) & ~excl[ti, a] & ~excl[ti, b] & (slow[ti, a] | slow[ti, b])
        hits_t.append(ti[ok])
        hits_a.append(np.minimum(a, b)[ok])
        hits_b.append(np.maximum(a, b)[ok])
    del rows
    if not hits_t:
        return set()
    t_idx = np.concatenate(hits_t)
    key = np.concatenate(hits_a) * n + np.concatenate(hits_b)
    if len(key) == 0:
        return set()
    o = np.lexsort((t_idx, key))
    key, t_idx = key[o], t_idx[o]
    out: set[tuple[int, int]] = set()
    run = 1
    for i in range(1, len(key)):
        if key[i] == key[i - 1] and t_idx[i] == t_idx[i - 1] + 1:
            run += 1
            if run > _CONFLICT_MIN:
                out.add((int(key[i] // n), int(key[i] % n)))
        else:
            run = 1
    return out
