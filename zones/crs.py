"""Coordinate reference systems of zone files, and their conversion to WGS84.

A zone file may name its CRS in a collection-level ``crs`` member: a string
(``"EPSG:4490"``, ``"urn:ogc:def:crs:EPSG::4545"``, ``"GCJ-02"``, ``"BD-09"``) or
the old GeoJSON 2008 object form ``{"type": "name", "properties": {"name": ...}}``.
Without it the coordinates are WGS84 (RFC 7946). Coordinates in a file are always
x = longitude/easting, y = latitude/northing, whatever axis order the CRS
definition declares, so every pyproj transformer is built with
``always_xy=True``. Chinese map CRSs (GCJ-02, BD-09) are not datum shifts pyproj
knows; they use the published obfuscation formulas of ``prcoords``, vectorised
here with numpy and inverted iteratively to sub-millimetre precision.

Transformers are built once per CRS name and cached (pyproj docs, "Repeated
transformations").
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

import numpy as np
import prcoords
from numpy.typing import NDArray
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from geofence.errors import ZoneError

__all__ = [
    "WGS84_NAMES",
    "bd09_to_wgs84",
    "crs_name",
    "gcj02_to_wgs84",
    "to_wgs84",
    "to_wgs84_func",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

Array = NDArray[np.float64]
#: A function mapping arrays of x (lon/easting) and y (lat/northing) to WGS84 lon, lat arrays.
XYFunc = Callable[[Array, Array], tuple[Array, Array]]

#: Names that mean "already WGS84 lon/lat": no transformation at all.
WGS84_NAMES = frozenset(
    {
        "wgs84",
        "wgs-84",
        "wgs 84",
        "epsg:4326",
        "urn:ogc:def:crs:epsg::4326",
        "urn:ogc:def:crs:ogc:1.3:crs84",
        "urn:ogc:def:crs:ogc::crs84",
        "crs84",
        "ogc:crs84",
    }
)
_GCJ_NAMES = frozenset({"gcj-02", "gcj02", "gcj_02", "gcj"})
_BD_NAMES = frozenset({"bd-09", "bd09", "bd_09", "bd09ll", "baidu"})
_HINT = "use e.g. 'EPSG:4490', 'EPSG:4545', 'GCJ-02', 'BD-09', or omit 'crs' for WGS84"

# The bounding box prcoords treats as "in China"; outside it GCJ-02 equals WGS84.
_CHINA_LAT = (0.8293, 55.8271)
_CHINA_LON = (72.004, 137.8347)


def crs_name(member: object) -> str | None:
    """Return the CRS name of a collection's ``crs`` member (None when absent).

    Accepts a string or the GeoJSON 2008 form ``{"type": "name", "properties": {"name": ...}}``;
    anything else raises :class:`ZoneError` saying which forms are accepted.
    """
    if member is None:
        return None
    if isinstance(member, str) and member.strip():
        return member.strip()
    if isinstance(member, dict):
        props = member.get("properties")
        name = props.get("name") if isinstance(props, dict) else None
        if member.get("type") == "name" and isinstance(name, str) and name.strip():
            return name.strip()
    raise ZoneError(
        f"unsupported 'crs' member {member!r}: give a string such as 'EPSG:4490' or "
        "{'type': 'name', 'properties': {'name': 'EPSG:4490'}}"
    )


def to_wgs84_func(name: str | None) -> XYFunc | None:
    """Return the cached converter from CRS ``name`` to WGS84 (None: already WGS84).

    Raises
    ------
    ZoneError
        When the name is neither GCJ-02/BD-09 nor a CRS pyproj knows.
    """
    if name is None:
        return None
    return _converter(name.strip().lower())


def to_wgs84(name: str | None, x: Array, y: Array) -> tuple[Array, Array]:
    """Convert coordinate arrays in CRS ``name`` to WGS84 (lon, lat) arrays."""
    func = to_wgs84_func(name)
    if func is None:
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return func(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))


@functools.lru_cache(maxsize=64)
def _converter(key: str) -> XYFunc | None:
    if key in WGS84_NAMES:
        return None
    if key in _GCJ_NAMES:
        return gcj02_to_wgs84
    if key in _BD_NAMES:
        return bd09_to_wgs84
    try:
        crs = CRS.from_user_input(key.upper() if key.startswith("epsg:") else key)
    except CRSError:
        raise ZoneError(f"unknown CRS {key!r}; {_HINT}") from None
    if crs.equals(CRS.from_epsg(4326), ignore_axis_order=True):
        return None
    transformer = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)

    def _pyproj(x: Array, y: Array) -> tuple[Array, Array]:
        lon, lat = transformer.transform(x, y)
        return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)

    return _pyproj


# --- GCJ-02 / BD-09: numpy versions of prcoords' formulas -------------------------------------


def _in_china(lon: Array, lat: Array) -> NDArray[np.bool_]:
    return (lat >= _CHINA_LAT[0]) & (lat <= _CHINA_LAT[1]) & (lon >= _CHINA_LON[0]) & (lon <= _CHINA_LON[1])


def _wgs_gcj_raw(lon: Array, lat: Array) -> tuple[Array, Array]:
    """prcoords.wgs_gcj without the China check, over arrays."""
    x = lon - 105.0
    y = lat - 35.0
    d_lat_m = (
        -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
        + (
            2 * np.sin(x * 6 * np.pi) + 2 * np.sin(x * 2 * np.pi)
            + 2 * np.sin(y * np.pi) + 4 * np.sin(y / 3 * np.pi)
            + 16 * np.sin(y / 12 * np.pi) + 32 * np.sin(y / 30 * np.pi)
        ) * 20 / 3
    )
    d_lon_m = (
        300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
        + (
            2 * np.sin(x * 6 * np.pi) + 2 * np.sin(x * 2 * np.pi)
            + 2 * np.sin(x * np.pi) + 4 * np.sin(x / 3 * np.pi)
            + 15 * np.sin(x / 12 * np.pi) + 30 * np.sin(x / 30 * np.pi)
        ) * 20 / 3
    )
    rad_lat = np.radians(lat)
    magic = 1 - prcoords.GCJ_EE * np.sin(rad_lat) ** 2
    lat_deg_arclen = np.radians((prcoords.GCJ_A * (1 - prcoords.GCJ_EE)) / magic**1.5)
    lon_deg_arclen = np.radians(prcoords.GCJ_A * np.cos(rad_lat) / np.sqrt(magic))
    return lon + d_lon_m / lon_deg_arclen, lat + d_lat_m / lat_deg_arclen


def wgs84_to_gcj02(lon: Array, lat: Array) -> tuple[Array, Array]:
    """WGS84 → GCJ-02 (same as ``prcoords.wgs_gcj``; points outside China unchanged)."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    glon, glat = _wgs_gcj_raw(lon, lat)
    inside = _in_china(lon, lat)
    return np.where(inside, glon, lon), np.where(inside, glat, lat)


def _invert(fwd: XYFunc, bx: Array, by: Array) -> tuple[Array, Array]:
    """Fixed-point inverse of ``fwd`` (Caijun 2014, as ``prcoords._bored``), all points at once."""
    x = bx - (fwd(bx, by)[0] - bx)
    y = by - (fwd(bx, by)[1] - by)
    for _ in range(10):
        fx, fy = fwd(x, y)
        dx, dy = fx - bx, fy - by
        x, y = x - dx, y - dy
        if not np.any(np.hypot(dx, dy) > prcoords.PRC_EPS):
            break
    return x, y


def gcj02_to_wgs84(lon: Array, lat: Array) -> tuple[Array, Array]:
    """GCJ-02 → WGS84, precise iterative inverse (as ``prcoords.gcj_wgs_bored``)."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    inside = _in_china(lon, lat)
    wlon, wlat = _invert(_wgs_gcj_raw, lon, lat)
    return np.where(inside, wlon, lon), np.where(inside, wlat, lat)


def _gcj_bd(lon: Array, lat: Array) -> tuple[Array, Array]:
    r = np.hypot(lon, lat) + 0.00002 * np.sin(np.radians(lat) * 3000)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(np.radians(lon) * 3000)
    return r * np.cos(theta) + prcoords.BD_DLON, r * np.sin(theta) + prcoords.BD_DLAT


def wgs84_to_bd09(lon: Array, lat: Array) -> tuple[Array, Array]:
    """WGS84 → BD-09 (as ``prcoords.wgs_bd``)."""
    return _gcj_bd(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: Array, lat: Array) -> tuple[Array, Array]:
    """BD-09 → WGS84, precise iterative inverse (as ``prcoords.bd_wgs_bored``)."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    inside = _in_china(lon, lat)
    wlon, wlat = _invert(_wgs_bd_raw, lon, lat)
    # Outside China prcoords applies only the BD-09 ↔ GCJ-02 step (GCJ-02 = WGS84 there).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        glon, glat = _invert(_gcj_bd, lon, lat)
    return np.where(inside, wlon, glon), np.where(inside, wlat, glat)


def _wgs_bd_raw(lon: Array, lat: Array) -> tuple[Array, Array]:
    return _gcj_bd(*_wgs_gcj_raw(lon, lat))

