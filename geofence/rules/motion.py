"""Speed derivation and the position-jump test (pure helpers of the per-record path).

Speed is the reported SOG when it is present and plausible (finite, >= 0 and not
above the ship type's maximum); otherwise the speed derived from displacement
over a window of at least ``window_s`` (60 s default) so that minute-resolution
feeds without SOG work and 1-s GPS noise does not masquerade as motion.
"""

from __future__ import annotations

import math
from typing import Any

import shapely

from geofence._geo import KN_PER_M_S, haversine_m
from geofence.geodesy import distance_m

__all__ = ["StopWindow", "implied_kn", "is_jump", "sog_valid"]

#: A stop window is compacted to its convex hull beyond this many reports.
_COMPACT_AT = 32


def sog_valid(sog_kn: float, max_kn: float) -> bool:
    """Whether a reported SOG can be trusted."""
    return math.isfinite(sog_kn) and 0.0 <= sog_kn <= max_kn


def implied_kn(lon0: float, lat0: float, ts0: float, lon1: float, lat1: float, ts1: float) -> tuple[float, float]:
    """(distance_m, implied speed in knots) between two reports; dt is floored at 1 s."""
    d = haversine_m(lon0, lat0, lon1, lat1)
    return d, d / max(ts1 - ts0, 1.0) * KN_PER_M_S


def is_jump(dist_m: float, speed_kn: float, min_distance_m: float, max_speed_kn: float) -> bool:
    """A jump is both far (beyond GPS noise) and impossibly fast for the ship type."""
    return dist_m > min_distance_m and speed_kn > max_speed_kn


def _geodesic_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    return float(distance_m(lon1, lat1, lon2, lat2).reshape(-1)[0])


class StopWindow:
    """The recent reports of one subject for the geometric stop test (movingpandas' ``TrajectoryStopDetector``).

    ``pts`` are ``(ts, lon, lat)`` in processing order. While the subject is not stopped the
    window is trimmed to the reports of the last ``trim_s`` (at least two); once stopped it
    only grows, and :meth:`compact` keeps its first report, its convex hull and its last
    report (the minimum rotated rectangle of the hull is that of all the reports).
    """

    __slots__ = ("prev_ts", "pts")

    def __init__(self, pts: list[tuple[float, float, float]] | None = None, prev_ts: float = math.nan) -> None:
        self.pts: list[tuple[float, float, float]] = pts or []
        self.prev_ts = prev_ts

    def add(self, ts: float, lon: float, lat: float, trim_s: float | None) -> None:
        """Append a report; with ``trim_s``, drop the oldest while more than two span at least ``trim_s``."""
        pts = self.pts
        self.prev_ts = pts[-1][0] if pts else math.nan
        pts.append((ts, lon, lat))
        if trim_s is not None:
            k = 0
            while len(pts) - k > 2 and ts - pts[k][0] >= trim_s:
                k += 1
            if k:
                del pts[:k]

    def fits(self, diameter_m: float) -> bool:
        """Whether the window holds two reports or more and they lie within ``diameter_m``.

        As movingpandas: the geodesic diagonal of the minimum rotated rectangle (in lon/lat) of the
        reports, the distance itself for two reports; a bounding-box diagonal of 1.5 diameters or
        more rules it out first.
        """
        pts = self.pts
        if len(pts) < 2:
            return False
        lons = [p[1] for p in pts]
        lats = [p[2] for p in pts]
        x0, x1, y0, y1 = min(lons), max(lons), min(lats), max(lats)
        # haversine is within 0.6 % of the geodesic distance: decide the clear cases without pyproj
        box_m = haversine_m(x0, y0, x1, y1)
        if box_m >= 1.5 * diameter_m * 1.01 or (
            box_m > 1.5 * diameter_m * 0.99 and _geodesic_m(x0, y0, x1, y1) >= 1.5 * diameter_m
        ):
            return False
        if len(pts) == 2:
            return _geodesic_m(lons[0], lats[0], lons[1], lats[1]) < diameter_m
        mrr: Any = shapely.MultiPoint(list(zip(lons, lats, strict=True))).minimum_rotated_rectangle
        if isinstance(mrr, shapely.Polygon):
            xy = mrr.exterior.coords
            a, b = xy[0], xy[2]
        elif isinstance(mrr, shapely.LineString):
            a, b = mrr.coords[0], mrr.coords[-1]
        else:  # every report at one point
            return True
        return _geodesic_m(a[0], a[1], b[0], b[1]) < diameter_m

    @property
    def first(self) -> tuple[float, float, float]:
        """The window's first report (the start of a stop)."""
        return self.pts[0]

    def compact(self) -> None:
        """Keep the first report, the convex hull and the last report (only while stopped: times are lost)."""
        pts = self.pts
        if len(pts) <= _COMPACT_AT:
            return
        hull: Any = shapely.MultiPoint([(p[1], p[2]) for p in pts]).convex_hull
        if isinstance(hull, shapely.Polygon):
            coords = list(hull.exterior.coords)[:-1]
        elif isinstance(hull, shapely.LineString):
            coords = list(hull.coords)
        else:
            coords = []
        self.pts = [pts[0], *((math.nan, x, y) for x, y in coords), pts[-1]]

    def restart(self) -> None:
        """A stop ended: the window starts again at the last report."""
        self.pts = self.pts[-1:]

    def to_json(self) -> list[Any]:
        """Plain data for the engine snapshot."""
        return [self.prev_ts, [list(p) for p in self.pts]]

    @classmethod
    def from_json(cls, data: list[Any]) -> StopWindow:
        """Inverse of :meth:`to_json`."""
        return cls([(float(a), float(b), float(c)) for a, b, c in data[1]], float(data[0]))
