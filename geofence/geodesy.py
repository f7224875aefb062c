"""Geodesy on WGS84: distances, speeds, azimuths and local metric projections.

Every function is vectorised over numpy arrays and takes (lon, lat) in degrees.
The ellipsoidal :class:`pyproj.Geod` and the projection transformers are built
once and cached, because building a pyproj object costs far more than using it
(pyproj docs, "Repeated transformations").

Metric work on geometries (buffers in metres, cross-track distances) runs in an
azimuthal equidistant projection centred on the geometry: distances from the
centre are exact and other distances are off by less than 1 % within 1,200 km of
it, which is plenty for corridor widths and deviation thresholds of hundreds of
metres.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import CRS, Geod, Transformer
from shapely.geometry.base import BaseGeometry

__all__ = [
    "KNOT_M_S",
    "LocalProjection",
    "MetricLine",
    "azimuth_deg",
    "buffer_m",
    "cross_track_m",
    "destination",
    "distance_m",
    "implied_speed_kn",
    "local_projection",
]

F64 = npt.NDArray[np.float64]

#: One knot in metres per second (1852 m per hour).
KNOT_M_S = 1852.0 / 3600.0

_GEOD = Geod(ellps="WGS84")


def _f64(*values: npt.ArrayLike) -> list[F64]:
    """Return the inputs as broadcast float64 arrays of one shape (at least 1-D)."""
    arrays = [np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in values]
    return [np.ascontiguousarray(a) for a in np.broadcast_arrays(*arrays)]


def distance_m(
    lon1_deg: npt.ArrayLike, lat1_deg: npt.ArrayLike, lon2_deg: npt.ArrayLike, lat2_deg: npt.ArrayLike
) -> F64:
    """Return the geodesic WGS84 distance in metres between point pairs (broadcast)."""
    lon1, lat1, lon2, lat2 = _f64(lon1_deg, lat1_deg, lon2_deg, lat2_deg)
    _, _, dist = _GEOD.inv(lon1, lat1, lon2, lat2)
    return np.asarray(dist, dtype=np.float64)


def implied_speed_kn(
    lon1: npt.ArrayLike,
    lat1: npt.ArrayLike,
    t1_s: npt.ArrayLike,
    lon2: npt.ArrayLike,
    lat2: npt.ArrayLike,
    t2_s: npt.ArrayLike,
) -> F64:
    """Return the speed in knots implied by moving between two timed points.

    NaN where ``t2_s - t1_s <= 0``: two reports at the same second say nothing
    about speed, and dividing by zero would invent an infinite one.
    """
    lo1, la1, ta, lo2, la2, tb = _f64(lon1, lat1, t1_s, lon2, lat2, t2_s)
    dt = tb - ta
    dist = distance_m(lo1, la1, lo2, la2)
    out = np.full(dist.shape, np.nan)
    ok = dt > 0
    out[ok] = dist[ok] / dt[ok] / KNOT_M_S
    return out


def azimuth_deg(lon1: npt.ArrayLike, lat1: npt.ArrayLike, lon2: npt.ArrayLike, lat2: npt.ArrayLike) -> F64:
    """Return the forward azimuth from point 1 to point 2 in degrees [0, 360) clockwise from north."""
    lo1, la1, lo2, la2 = _f64(lon1, lat1, lon2, lat2)
    az, _, _ = _GEOD.inv(lo1, la1, lo2, la2)
    return np.mod(np.asarray(az, dtype=np.float64), 360.0)


def destination(
    lon_deg: npt.ArrayLike, lat_deg: npt.ArrayLike, azimuth_deg: npt.ArrayLike, distance_m: npt.ArrayLike
) -> tuple[F64, F64]:
    """Return the (lon, lat) reached by sailing ``distance_m`` along ``azimuth_deg`` (dead reckoning)."""
    lon, lat, az, dist = _f64(lon_deg, lat_deg, azimuth_deg, distance_m)
    lon2, lat2, _ = _GEOD.fwd(lon, lat, az, dist)
    return np.asarray(lon2, dtype=np.float64), np.asarray(lat2, dtype=np.float64)


class LocalProjection:
    """Azimuthal equidistant projection centred on (lon0, lat0), in metres, (x, y) = (east, north).

    Use :func:`local_projection` to get a cached instance instead of building one.
    """

    def __init__(self, lon0_deg: float, lat0_deg: float) -> None:
        if not (-180.0 <= lon0_deg <= 180.0 and -90.0 <= lat0_deg <= 90.0):
            raise ValueError(f"projection centre ({lon0_deg}, {lat0_deg}) is outside lon [-180, 180] / lat [-90, 90]")
        self.lon0_deg = float(lon0_deg)
        self.lat0_deg = float(lat0_deg)
        crs = CRS.from_proj4(f"+proj=aeqd +lat_0={lat0_deg} +lon_0={lon0_deg} +datum=WGS84 +units=m +no_defs")
        self._fwd = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        self._inv = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)

    def forward(self, lon_deg: npt.ArrayLike, lat_deg: npt.ArrayLike) -> tuple[F64, F64]:
        """Project (lon, lat) degrees to (x, y) metres."""
        lon, lat = _f64(lon_deg, lat_deg)
        x, y = self._fwd.transform(lon, lat)
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    def inverse(self, x_m: npt.ArrayLike, y_m: npt.ArrayLike) -> tuple[F64, F64]:
        """Unproject (x, y) metres to (lon, lat) degrees."""
        x, y = _f64(x_m, y_m)
        lon, lat = self._inv.transform(x, y)
        return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)

    def forward_geometry(self, geom: BaseGeometry) -> BaseGeometry:
        """Return ``geom`` (lon, lat) projected to metres."""
        return shapely.transform(geom, self._forward_xy)

    def inverse_geometry(self, geom: BaseGeometry) -> BaseGeometry:
        """Return ``geom`` in metres unprojected to (lon, lat)."""
        return shapely.transform(geom, self._inverse_xy)

    def _forward_xy(self, coords: F64) -> F64:
        x, y = self.forward(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    def _inverse_xy(self, coords: F64) -> F64:
        lon, lat = self.inverse(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])


@lru_cache(maxsize=256)
def _cached_projection(lon0_centi: int, lat0_centi: int) -> LocalProjection:
    return LocalProjection(lon0_centi / 100.0, lat0_centi / 100.0)


def local_projection(lon0_deg: float, lat0_deg: float) -> LocalProjection:
    """Return a cached :class:`LocalProjection` centred near (lon0, lat0), rounded to 0.01°.

    Rounding makes nearby requests share one transformer; 0.01° (~1 km) moves the
    centre too little to change any metric result that matters here.
    """
    return _cached_projection(round(float(lon0_deg) * 100), round(float(lat0_deg) * 100))


def _centre(geom: BaseGeometry) -> tuple[float, float]:
    minx, miny, maxx, maxy = geom.bounds
    if not np.all(np.isfinite([minx, miny, maxx, maxy])):
        raise ValueError("geometry is empty; give a non-empty (lon, lat) geometry")
    return (minx + maxx) / 2.0, (miny + maxy) / 2.0


def buffer_m(geom_lonlat: BaseGeometry, distance_m: float, **kwargs: Any) -> BaseGeometry:
    """Return ``geom_lonlat`` buffered by ``distance_m`` metres, in (lon, lat).

    The buffer is computed in a local azimuthal equidistant projection centred
    on the geometry, which is how a corridor width in metres becomes a polygon.
    Extra keyword arguments go to :func:`shapely.buffer` (e.g. ``quad_segs``).
    """
    proj = local_projection(*_centre(geom_lonlat))
    metric = proj.forward_geometry(geom_lonlat)
    return proj.inverse_geometry(shapely.buffer(metric, float(distance_m), **kwargs))


class MetricLine:
    """A (lon, lat) polyline prepared once for metric queries: cross-track and along-track metres.

    Parameters
    ----------
    coords_lonlat
        Sequence of at least two (lon, lat) vertices.
    """

    def __init__(self, coords_lonlat: npt.ArrayLike) -> None:
        coords = np.asarray(coords_lonlat, dtype=np.float64)
        if coords.ndim != 2 or coords.shape[0] < 2 or coords.shape[1] != 2:
            raise ValueError(f"a line needs at least two (lon, lat) vertices, got array of shape {coords.shape}")
        self.coords_lonlat = coords
        lon0 = float((coords[:, 0].min() + coords[:, 0].max()) / 2.0)
        lat0 = float((coords[:, 1].min() + coords[:, 1].max()) / 2.0)
        self._proj = local_projection(lon0, lat0)
        x, y = self._proj.forward(coords[:, 0], coords[:, 1])
        self._line = shapely.linestrings(np.column_stack([x, y]))
        shapely.prepare(self._line)

    @property
    def length_m(self) -> float:
        """Length of the line in metres."""
        return float(shapely.length(self._line))

    def _points(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> npt.NDArray[np.object_]:
        x, y = self._proj.forward(lon, lat)
        return np.asarray(shapely.points(x, y))

    def distance_m(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> F64:
        """Return the cross-track distance in metres from each point to the line."""
        return np.asarray(shapely.distance(self._line, self._points(lon, lat)), dtype=np.float64)

    def project_m(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> F64:
        """Return the along-track position in metres of each point's nearest point on the line."""
        return np.asarray(shapely.line_locate_point(self._line, self._points(lon, lat)), dtype=np.float64)

    def interpolate(self, along_m: npt.ArrayLike) -> tuple[F64, F64]:
        """Return the (lon, lat) of the points ``along_m`` metres from the start (clamped to the line)."""
        (along,) = _f64(along_m)
        pts = shapely.line_interpolate_point(self._line, along)
        xy = shapely.get_coordinates(pts)
        return self._proj.inverse(xy[:, 0], xy[:, 1])


def cross_track_m(lon: npt.ArrayLike, lat: npt.ArrayLike, line_coords: npt.ArrayLike) -> F64:
    """Return the cross-track distance in metres from points to a (lon, lat) polyline (one-off convenience)."""
    return MetricLine(line_coords).distance_m(lon, lat)
