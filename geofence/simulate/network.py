"""The river route network the simulator sails on, built from a fence catalogue.

Fairway fences carry ``metadata["centerline"]`` (upstream -> downstream) and
``metadata["width_m"]``. Centrelines are densified to ~500 m, each gets a
downstream and an upstream lane offset to the right of the direction of travel,
and lines whose endpoint lies within 2 km of another line are joined (Jialing at
Chaotianmen, Xiang at Chenglingji). Ports and anchorages attach to their nearest
centreline vertex. Every lane edge carries a speed cap: 80 % of any speed limit
it crosses, 3 kn through locks, and the highest speed whose 15-minute projected
course stays clear of restricted fences; an edge within 300 m of a restricted
fence is blocked, so normal routes never touch one.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

from geofence import geodesy
from geofence.fence import Fence, ZoneKind, ZoneSet

__all__ = ["RESTRICTED_CLEARANCE_M", "Network", "Path", "Stop", "build_network"]

F64 = npt.NDArray[np.float64]

#: Normal lanes keep at least this far from restricted fences.
RESTRICTED_CLEARANCE_M = 300.0
#: Normal traffic must not project its course into a restricted fence within this time.
PROJECTION_S = 15 * 60.0
_PROJECTION_MARGIN = 1.25
_RAY_BUFFER_M = 150.0
_STEP_M = 500.0
_JOIN_M = 2000.0
_LOCK_KN = 3.0
_APPROACH_KN = 4.0
_SPEED_LIMIT_FACTOR = 0.8
_CANDIDATE_KN = (14.0, 12.0, 10.0, 8.0, 6.0, 4.0, 3.0, 2.0)


@dataclass(frozen=True)
class Stop:
    """A place vessels stop: a port (mooring at its berth when it has one) or an anchorage."""

    id: str
    kind: ZoneKind
    visit_zone: str | None  # berth or anchorage id whose visit is labelled, None for a port without berth
    fence: Fence  # the fence the vessel stops inside (berth, port or anchorage)
    lon: float
    lat: float
    node: int  # attach vertex in the network
    max_dwell_min: float | None
    customs_zone: str | None
    destination: str  # ASCII name used in AIS static data


@dataclass(frozen=True)
class Path:
    """A sailable path: vertices with per-edge speed caps and direction flags."""

    lon: F64
    lat: F64
    cap_kn: F64  # per edge
    downstream: npt.NDArray[np.bool_]  # per edge
    width_m: float


@dataclass
class Network:
    """Densified centrelines, lanes, edge caps and attached stops."""

    fairway_ids: list[str]
    widths_m: list[float]
    cl_lon: list[F64]
    cl_lat: list[F64]
    lane_lon: list[list[F64]]  # [fairway][0=downstream, 1=upstream]
    lane_lat: list[list[F64]]
    cap_kn: list[list[F64]]  # per edge, inf = no cap, nan = blocked
    node_base: list[int]
    junctions: list[tuple[int, int]]
    stops: list[Stop]
    restricted: BaseGeometry | None
    notes: list[str] = field(default_factory=list)
    _trees: dict[int, dict[int, int]] = field(default_factory=dict)
    _fw: list[int] = field(default_factory=list)
    _ix: list[int] = field(default_factory=list)
    _adj: list[list[tuple[int, float]]] = field(default_factory=list)
    legs: dict[tuple[int, int], Path | None] = field(default_factory=dict)
    reach: dict[int, list[int]] = field(default_factory=dict)

    # -- nodes -----------------------------------------------------------------
    def _index(self) -> None:
        if self._fw:
            return
        for k, lon in enumerate(self.cl_lon):
            self._fw.extend([k] * len(lon))
            self._ix.extend(range(len(lon)))
        adj: list[list[tuple[int, float]]] = [[] for _ in self._fw]
        for k, lon in enumerate(self.cl_lon):
            base = self.node_base[k]
            down, up = self.cap_kn[k]
            for i in range(len(lon) - 1):
                if not np.isnan(down[i]):
                    adj[base + i].append((base + i + 1, _STEP_M / min(float(down[i]), 12.0)))
                if not np.isnan(up[i]):
                    adj[base + i + 1].append((base + i, _STEP_M / min(float(up[i]), 8.0)))
        for a, b in self.junctions:
            adj[a].append((b, 100.0))
            adj[b].append((a, 100.0))
        self._adj = adj

    def locate(self, node: int) -> tuple[int, int]:
        """Return (fairway index, vertex index) of a global node id."""
        self._index()
        return self._fw[node], self._ix[node]

    def node_lonlat(self, node: int) -> tuple[float, float]:
        fw, i = self.locate(node)
        return float(self.cl_lon[fw][i]), float(self.cl_lat[fw][i])

    # -- routing -----------------------------------------------------------------
    def _tree(self, a: int) -> dict[int, int]:
        """Shortest-path predecessor map from node a (single-source Dijkstra, cached)."""
        if a in self._trees:
            return self._trees[a]
        self._index()
        dist = {a: 0.0}
        prev: dict[int, int] = {a: a}
        heap = [(0.0, a)]
        adj = self._adj
        while heap:
            d, u = heapq.heappop(heap)
            if d > dist[u]:
                continue
            for v, w in adj[u]:
                nd = d + w
                if nd < dist.get(v, np.inf):
                    dist[v] = nd
                    prev[v] = u
                    heapq.heappush(heap, (nd, v))
        self._trees[a] = prev
        return prev

    def route_nodes(self, a: int, b: int) -> list[int] | None:
        """Return the node sequence of the fastest unblocked route from node a to node b, or None."""
        prev = self._tree(a)
        if b not in prev:
            return None
        seq = [b]
        while seq[-1] != a:
            seq.append(prev[seq[-1]])
        return seq[::-1]

    def lane_path(self, nodes: list[int]) -> Path:
        """Return the lane path (right-hand lanes, caps, directions) along a node sequence."""
        lon: list[float] = []
        lat: list[float] = []
        cap: list[float] = []
        down: list[bool] = []
        widths: list[float] = []
        self._index()
        fws, ixs = self._fw, self._ix
        for u, v in itertools.pairwise(nodes):
            fu, iu = fws[u], ixs[u]
            fv, iv = fws[v], ixs[v]
            if fu == fv and abs(iv - iu) == 1:
                lane = 0 if iv > iu else 1
                edge = min(iu, iv)
                if not lon:
                    lon.append(float(self.lane_lon[fu][lane][iu]))
                    lat.append(float(self.lane_lat[fu][lane][iu]))
                elif cap:  # switching lanes at a turn-around or junction: step onto this lane
                    lon.append(float(self.lane_lon[fu][lane][iu]))
                    lat.append(float(self.lane_lat[fu][lane][iu]))
                    cap.append(float(min(self.cap_kn[fu][lane][edge], cap[-1])))
                    down.append(lane == 0)
                lon.append(float(self.lane_lon[fu][lane][iv]))
                lat.append(float(self.lane_lat[fu][lane][iv]))
                cap.append(float(self.cap_kn[fu][lane][edge]))
                down.append(lane == 0)
                widths.append(self.widths_m[fu])
        arr_lon, arr_lat = np.asarray(lon), np.asarray(lat)
        keep = np.ones(len(arr_lon), dtype=bool)
        if len(arr_lon) > 1:
            keep[1:] = (np.diff(arr_lon) != 0) | (np.diff(arr_lat) != 0)
        edge_keep = keep[1:]
        return Path(
            lon=arr_lon[keep],
            lat=arr_lat[keep],
            cap_kn=np.asarray(cap)[edge_keep],
            downstream=np.asarray(down, dtype=bool)[edge_keep],
            width_m=max(widths) if widths else 400.0,
        )


def _densify(coords: F64) -> F64:
    out = [coords[:1]]
    for a, b in itertools.pairwise(coords):
        d = float(geodesy.distance_m(a[0], a[1], b[0], b[1])[0])
        k = max(1, int(np.ceil(d / _STEP_M)))
        t = np.linspace(0.0, 1.0, k + 1)[1:, None]
        out.append(a + (b - a) * t)
    return np.concatenate(out)


def _offset(lon: F64, lat: F64, offset_m: float) -> tuple[F64, F64]:
    """Offset a polyline to the right of its direction by ``offset_m`` (negative: left)."""
    az = geodesy.azimuth_deg(lon[:-1], lat[:-1], lon[1:], lat[1:])
    az_v = np.empty(len(lon))
    az_v[0], az_v[-1] = az[0], az[-1]
    if len(az) > 1:
        s = np.sin(np.radians(az[:-1])) + np.sin(np.radians(az[1:]))
        c = np.cos(np.radians(az[:-1])) + np.cos(np.radians(az[1:]))
        az_v[1:-1] = np.degrees(np.arctan2(s, c))
    return geodesy.destination(lon, lat, az_v + 90.0, np.full(len(lon), offset_m))


def _edge_caps(
    lon: F64, lat: F64, zones: ZoneSet, restricted: BaseGeometry | None, restricted_ray: BaseGeometry | None
) -> F64:
    """Per-edge cap in knots for a lane: inf free, nan blocked."""
    starts = np.column_stack([lon[:-1], lat[:-1]])
    segs = shapely.linestrings(np.stack([starts, np.column_stack([lon[1:], lat[1:]])], 1))
    cap = np.full(len(segs), np.inf)
    for f in zones.fences:
        if f.kind is ZoneKind.SPEED_LIMIT and f.params.speed_limit_kn:
            hit = shapely.intersects(segs, geodesy.buffer_m(f.geometry, 200.0))
            cap[hit] = np.minimum(cap[hit], _SPEED_LIMIT_FACTOR * f.params.speed_limit_kn)
        elif f.kind is ZoneKind.LOCK:
            cap[shapely.intersects(segs, f.geometry)] = np.minimum(cap[shapely.intersects(segs, f.geometry)], _LOCK_KN)
    if restricted is None or restricted_ray is None:
        return cap
    blocked = shapely.intersects(segs, restricted)
    az = geodesy.azimuth_deg(lon[:-1], lat[:-1], lon[1:], lat[1:])
    seg_len = geodesy.distance_m(lon[:-1], lat[:-1], lon[1:], lat[1:])
    ray_cap = np.full(len(segs), np.nan)
    for kn in _CANDIDATE_KN[::-1]:  # slowest first; faster overwrite when also clear
        reach = seg_len + kn * geodesy.KNOT_M_S * PROJECTION_S * _PROJECTION_MARGIN
        elon, elat = geodesy.destination(lon[:-1], lat[:-1], az, reach)
        rays = shapely.linestrings(np.stack([starts, np.column_stack([elon, elat])], 1))
        clear = ~shapely.intersects(rays, restricted_ray)
        ray_cap[clear] = kn
    ray_cap[ray_cap >= _CANDIDATE_KN[0]] = np.inf
    cap = np.minimum(cap, ray_cap)  # nan propagates: no candidate clear -> blocked
    cap[blocked] = np.nan
    return np.asarray(cap, dtype=np.float64)


def _ascii_destination(fid: str) -> str:
    return "".join(ch for ch in fid.upper() if ch.isalnum() or ch == "-")[:20]


def build_network(zones: ZoneSet, rng: np.random.Generator) -> Network:
    """Build the route network of a catalogue; raise ``ValueError`` when it has no fairway centreline."""
    fairways = [f for f in zones.fences if f.kind is ZoneKind.FAIRWAY and f.metadata.get("centerline")]
    if not fairways:
        raise ValueError("the zone set has no fairway fence with metadata 'centerline'; the simulator needs one")
    restricted_fences = [f.geometry for f in zones.fences if f.kind is ZoneKind.RESTRICTED]
    restricted = shapely.union_all([geodesy.buffer_m(g, RESTRICTED_CLEARANCE_M) for g in restricted_fences]) if (
        restricted_fences
    ) else None
    ray_geom = shapely.union_all([geodesy.buffer_m(g, _RAY_BUFFER_M) for g in restricted_fences]) if (
        restricted_fences
    ) else None
    if restricted is not None:
        shapely.prepare(restricted)
    if ray_geom is not None:
        shapely.prepare(ray_geom)
    net = Network([], [], [], [], [], [], [], [], [], [], restricted)
    base = 0
    for f in fairways:
        cl = _densify(np.asarray(f.metadata["centerline"], dtype=np.float64))
        width = float(f.metadata.get("width_m", 400.0))
        off = width / 5.0
        dlon, dlat = _offset(cl[:, 0], cl[:, 1], off)
        ulon, ulat = _offset(cl[:, 0], cl[:, 1], -off)
        down_cap = _edge_caps(dlon, dlat, zones, restricted, ray_geom)
        # upstream lane is sailed in reverse: compute on the reversed line, then flip back per edge
        up_cap = _edge_caps(ulon[::-1], ulat[::-1], zones, restricted, ray_geom)[::-1]
        net.fairway_ids.append(f.id)
        net.widths_m.append(width)
        net.cl_lon.append(cl[:, 0])
        net.cl_lat.append(cl[:, 1])
        net.lane_lon.append([dlon, ulon])
        net.lane_lat.append([dlat, ulat])
        net.cap_kn.append([down_cap, up_cap])
        net.node_base.append(base)
        base += len(cl)
        if np.isnan(down_cap).any() or np.isnan(up_cap).any():
            net.notes.append(
                f"fairway {f.id}: {int(np.isnan(down_cap).sum() + np.isnan(up_cap).sum())} lane edges pass within "
                f"{RESTRICTED_CLEARANCE_M:.0f} m of a restricted fence (or cannot keep a 15-min projected course "
                "clear of it); normal traffic does not sail them"
            )
    _join(net)
    _attach_stops(net, zones, rng)
    return net


def _join(net: Network) -> None:
    all_lon = np.concatenate(net.cl_lon)
    all_lat = np.concatenate(net.cl_lat)
    fw_of = np.concatenate([np.full(len(c), k) for k, c in enumerate(net.cl_lon)])
    for k, (lon, lat) in enumerate(zip(net.cl_lon, net.cl_lat, strict=True)):
        for i in (0, len(lon) - 1):
            other = fw_of != k
            d = geodesy.distance_m(lon[i], lat[i], all_lon[other], all_lat[other])
            j = int(np.argmin(d))
            if d[j] <= _JOIN_M:
                a = net.node_base[k] + i
                b = int(np.flatnonzero(other)[j])
                if (a, b) not in net.junctions and (b, a) not in net.junctions:
                    net.junctions.append((a, b))


def _inner_point(geom: BaseGeometry, rng: np.random.Generator, inset_m: float) -> tuple[float, float]:
    inner = geodesy.buffer_m(geom, -inset_m)
    target = inner if not inner.is_empty else geom
    minx, miny, maxx, maxy = target.bounds
    for _ in range(200):
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if shapely.contains_xy(target, x, y):
            return float(x), float(y)
    p = target.representative_point()
    return float(p.x), float(p.y)


def _attach_stops(net: Network, zones: ZoneSet, rng: np.random.Generator) -> None:
    all_lon = np.concatenate(net.cl_lon)
    all_lat = np.concatenate(net.cl_lat)
    berths = [f for f in zones.fences if f.kind is ZoneKind.BERTH]
    customs = [f for f in zones.fences if f.kind is ZoneKind.CUSTOMS and f.params.exit_requires_release]
    for f in zones.fences:
        if f.kind not in (ZoneKind.PORT, ZoneKind.ANCHORAGE):
            continue
        target = f
        if f.kind is ZoneKind.PORT:
            inside = [b for b in berths if f.geometry.intersects(b.geometry)]
            if inside:
                target = sorted(inside, key=lambda b: b.id)[0]
        inset = 60.0 if target.kind is ZoneKind.ANCHORAGE else 15.0
        lon, lat = _inner_point(target.geometry, rng, inset)
        node = int(np.argmin(geodesy.distance_m(lon, lat, all_lon, all_lat)))
        nlon, nlat = float(all_lon[node]), float(all_lat[node])
        leg = shapely.LineString([(nlon, nlat), (lon, lat)])
        if net.restricted is not None and leg.intersects(net.restricted):
            net.notes.append(f"stop {f.id}: approach from the fairway passes near a restricted fence; not used")
            continue
        max_dwell = target.params.max_dwell_min if isinstance(target.params.max_dwell_min, int | float) else None
        cz = next((c.id for c in customs if shapely.contains_xy(c.geometry, lon, lat)), None)
        net.stops.append(
            Stop(
                id=f.id,
                kind=f.kind,
                visit_zone=target.id if target.kind in (ZoneKind.BERTH, ZoneKind.ANCHORAGE) else None,
                fence=target,
                lon=lon,
                lat=lat,
                node=node,
                max_dwell_min=float(max_dwell) if max_dwell is not None else None,
                customs_zone=cz,
                destination=_ascii_destination(f.id),
            )
        )


APPROACH_KN = _APPROACH_KN
