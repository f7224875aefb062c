"""Point-in-fence index: every (point, fence) containment pair of a batch, exactly.

Boundary rule: a point exactly on an edge or vertex of a fence, holes' edges
included, is INSIDE that fence (shapely ``covers`` / ``intersects`` semantics
for points; note that ``shapely.contains_xy`` would exclude it). The index and
:func:`brute_force_pairs` apply the same rule and agree exactly.

Algorithm (details and figures in ``docs/index.md``): a two-level grid built
once per zone version classifies every coarse cell as empty, wholly inside a
fixed set of fences, or mixed; mixed cells are refined into fine cells with the
same classification plus "boundary of fence f passes here". A query maps each
point to its cell with two array look-ups, expands the cell's fence set with
``np.repeat`` and runs the exact ``shapely.intersects_xy`` only for the fences
whose boundary crosses the point's fine cell. The grid may over-report
candidates, never miss one; the exact phase decides. An R-tree (shapely
``STRtree``) over the fence envelopes serves the distance queries.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

from geofence._grid import Grid, build_grid
from geofence.errors import CoordinateError
from geofence.fence import Fence, ZoneSet

__all__ = ["EARTH_RADIUS_M", "FenceIndex", "brute_force_pairs", "check_coordinates"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

#: Mean Earth radius (IUGG) used by the local metric projection of :meth:`FenceIndex.distance_m`.
EARTH_RADIUS_M = 6_371_008.8
_M_PER_DEG = math.pi / 180.0 * EARTH_RADIUS_M

#: Default fine cell: 1/2048 degree (about 54 m of latitude). Power of two so cell edges are exact.
DEFAULT_CELL_DEG = 1.0 / 2048.0
#: Fine cells per coarse side = 2**shift.
DEFAULT_SHIFT = 4


def check_coordinates(lon_deg: npt.ArrayLike, lat_deg: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Return ``(lon, lat)`` as 1-D float64 arrays or raise :class:`CoordinateError`.

    Raises on different lengths, on NaN/inf, and on lon outside [-180, 180] or
    lat outside [-90, 90], naming the first offending index and value, because a
    NaN that slipped into a spatial index would silently match nothing (Tile38 #793).
    """
    lon = np.asarray(lon_deg, dtype=np.float64).reshape(-1)
    lat = np.asarray(lat_deg, dtype=np.float64).reshape(-1)
    if lon.shape != lat.shape:
        raise CoordinateError(
            f"lon_deg has {lon.size} values but lat_deg has {lat.size}; pass one lon and one lat per point"
        )
    ok = (lon >= -180.0) & (lon <= 180.0) & (lat >= -90.0) & (lat <= 90.0)
    if not ok.all():
        i = int(np.argmin(ok))
        raise CoordinateError(
            f"point {i} has lon={lon[i]!r}, lat={lat[i]!r}: coordinates must be finite with lon in [-180, 180] "
            "and lat in [-90, 90] degrees in (lon, lat) order; drop or dead-letter the record"
        )
    return lon, lat


def _expand(counts: IntArray, starts: IntArray) -> tuple[IntArray, IntArray]:
    """For item i with ``counts[i]`` entries from ``starts[i]``, return (item, entry) per entry, in order."""
    total = int(counts.sum())
    item = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    offset = np.cumsum(counts) - counts
    entry = np.arange(total, dtype=np.int64) + np.repeat(starts - offset, counts)
    return item, entry


class FenceIndex:
    """Immutable index answering "which fences contain these points?" for one zone version.

    Parameters
    ----------
    zones
        The zone set; the index is built once and never changes. A reload builds a new index.
    cell_deg
        Fine grid cell in degrees. Smaller cells send fewer points to the exact test but cost
        memory and build time; the default suits harbour-scale fences (tens of metres to km).

    Attributes
    ----------
    version
        ``zones.version``, so results can name the zone version they were decided under.
    fences
        ``zones.fences``; fence index ``i`` in query results is ``fences[i]``.
    """

    __slots__ = ("_cos_ref", "_geoms", "_grid", "_lat_ref", "_lon_ref", "_proj_boundary", "_tree", "fences", "version")

    version: str
    fences: tuple[Fence, ...]
    _geoms: npt.NDArray[np.object_]
    _grid: Grid
    _tree: shapely.STRtree
    _lon_ref: FloatArray
    _lat_ref: FloatArray
    _cos_ref: FloatArray
    _proj_boundary: npt.NDArray[np.object_]

    def __init__(self, zones: ZoneSet, *, cell_deg: float = DEFAULT_CELL_DEG) -> None:
        geoms: list[BaseGeometry] = [f.geometry for f in zones.fences]
        arr = np.empty(len(geoms), dtype=object)
        arr[:] = geoms
        for g in geoms:
            shapely.prepare(g)
        object.__setattr__(self, "version", zones.version)
        object.__setattr__(self, "fences", zones.fences)
        object.__setattr__(self, "_geoms", arr)
        object.__setattr__(self, "_grid", build_grid(geoms, cell_deg, DEFAULT_SHIFT))
        object.__setattr__(self, "_tree", shapely.STRtree(arr))
        # Local metric frame per fence for distance_m: equirectangular around the fence's envelope centre.
        b = shapely.bounds(arr) if len(geoms) else np.zeros((0, 4))
        lon_ref = (b[:, 0] + b[:, 2]) / 2.0
        lat_ref = (b[:, 1] + b[:, 3]) / 2.0
        cos_ref = np.cos(np.radians(lat_ref))
        proj = np.empty(len(geoms), dtype=object)
        for i, g in enumerate(geoms):
            lo, la, c = lon_ref[i], lat_ref[i], cos_ref[i]

            def _to_m(xy: FloatArray, lo: float = lo, la: float = la, c: float = c) -> FloatArray:
                return np.column_stack([(xy[:, 0] - lo) * c * _M_PER_DEG, (xy[:, 1] - la) * _M_PER_DEG])

            proj[i] = shapely.transform(shapely.boundary(g), _to_m)
        shapely.prepare(proj)
        object.__setattr__(self, "_lon_ref", lon_ref)
        object.__setattr__(self, "_lat_ref", lat_ref)
        object.__setattr__(self, "_cos_ref", cos_ref)
        object.__setattr__(self, "_proj_boundary", proj)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"FenceIndex is immutable; build a new FenceIndex to change {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"FenceIndex is immutable; cannot delete {name!r}")

    def __len__(self) -> int:
        return len(self.fences)

    def __repr__(self) -> str:
        g: Grid = self._grid
        return (
            f"FenceIndex(version={self.version!r}, fences={len(self.fences)}, cell_deg={g.cell_deg:.6g}, "
            f"classes={g.cls_len.size}, blocks={g.fine.size >> (2 * g.shift)}, nbytes={g.nbytes})"
        )

    @property
    def nbytes(self) -> int:
        """Memory held by the grid tables (geometries excluded)."""
        return self._grid.nbytes

    def query(self, lon_deg: npt.ArrayLike, lat_deg: npt.ArrayLike) -> tuple[IntArray, IntArray]:
        """Return every (point_index, fence_index) pair with the point inside or on the fence.

        Parameters
        ----------
        lon_deg, lat_deg
            Equal-length 1-D arrays of WGS84 degrees.

        Returns
        -------
        (point_idx, fence_idx)
            int64 arrays, sorted by point then fence. A point on an edge or vertex counts as inside.

        Raises
        ------
        CoordinateError
            NaN, infinite or out-of-range coordinates, naming the first offending point.
        """
        lon, lat = check_coordinates(lon_deg, lat_deg)
        g: Grid = self._grid
        if lon.size == 0 or g.entry_fence.size == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        k = 1 << g.shift
        # Clip before the cast so far-away points land in the empty border ring of the coarse table.
        ix = np.floor(np.clip((lon - g.x0_deg) * g.inv_cell, -1.0, float(g.nfx))).astype(np.int64) + k
        iy = np.floor(np.clip((lat - g.y0_deg) * g.inv_cell, -1.0, float(g.nfy))).astype(np.int64) + k
        ncy2 = (g.nfy >> g.shift) + 2
        cls = g.coarse[(ix >> g.shift) * ncy2 + (iy >> g.shift)].astype(np.int64)
        mixed = np.flatnonzero(cls < 0)
        if mixed.size:
            mask = k - 1
            cls[mixed] = g.fine[(-cls[mixed] - 1) * (k * k) + (ix[mixed] & mask) * k + (iy[mixed] & mask)]
        counts = g.cls_len[cls]
        point, entry = _expand(counts, g.cls_ptr[cls])
        fence = g.entry_fence[entry]
        need = np.flatnonzero(g.entry_exact[entry])
        if need.size:
            p = point[need]
            hit = shapely.intersects_xy(self._geoms[fence[need]], lon[p], lat[p])
            keep = np.ones(point.size, dtype=bool)
            keep[need[~hit]] = False
            point, fence = point[keep], fence[keep]
        return point, fence

    def contains_any(self, lon_deg: npt.ArrayLike, lat_deg: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Return, per point, whether it is inside (or on) at least one fence."""
        lon, lat = check_coordinates(lon_deg, lat_deg)
        out = np.zeros(lon.size, dtype=bool)
        out[self.query(lon, lat)[0]] = True
        return out

    def distance_m(self, lon_deg: npt.ArrayLike, lat_deg: npt.ArrayLike, fence_idx: npt.ArrayLike) -> FloatArray:
        """Signed distance in metres from point i to the boundary of fence ``fence_idx[i]``.

        Negative inside, positive outside, 0 on the boundary (same boundary rule as
        :meth:`query`). Distances are Euclidean in a local equirectangular frame
        centred on the fence's envelope (x = Δlon·cos(lat_ref)·R, y = Δlat·R, R the
        mean Earth radius): within a few tenths of a percent of the geodesic value for
        fences spanning under ~1° of latitude, which is what hysteresis bands of tens
        to hundreds of metres need. Not meant for fences crossing the antimeridian.
        """
        lon, lat = check_coordinates(lon_deg, lat_deg)
        fidx = np.asarray(fence_idx, dtype=np.int64).reshape(-1)
        if fidx.shape != lon.shape:
            raise CoordinateError(f"fence_idx has {fidx.size} values for {lon.size} points; pass one fence per point")
        if fidx.size and (fidx.min() < 0 or fidx.max() >= len(self.fences)):
            bad = int(fidx[(fidx < 0) | (fidx >= len(self.fences))][0])
            raise IndexError(f"fence index {bad} out of range for {len(self.fences)} fences")
        x = (lon - self._lon_ref[fidx]) * self._cos_ref[fidx] * _M_PER_DEG
        y = (lat - self._lat_ref[fidx]) * _M_PER_DEG
        d = np.asarray(shapely.distance(self._proj_boundary[fidx], shapely.points(x, y)), dtype=np.float64)
        inside = np.asarray(shapely.intersects_xy(self._geoms[fidx], lon, lat), dtype=bool)
        return np.where(inside, -d, d)

    def query_within(
        self, lon_deg: npt.ArrayLike, lat_deg: npt.ArrayLike, distance_m: float
    ) -> tuple[IntArray, IntArray, FloatArray]:
        """Return (point, fence, signed distance) for every fence within ``distance_m`` of a point.

        Inside points (negative distance) are always included. Candidates come from the
        R-tree over fence envelopes with a conservatively widened search box; the exact
        :meth:`distance_m` then decides. Sorted by point then fence.
        """
        lon, lat = check_coordinates(lon_deg, lat_deg)
        if not math.isfinite(distance_m) or distance_m < 0:
            raise CoordinateError(f"distance_m={distance_m!r} must be a finite number of metres >= 0")
        if lon.size == 0 or len(self.fences) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        # 1 % + 1 m slack covers the difference between the local frame and the degree box.
        dlat = (distance_m * 1.01 + 1.0) / _M_PER_DEG
        cos_lat = np.maximum(np.cos(np.radians(np.minimum(np.abs(lat) + dlat, 90.0))), 1e-6)
        dlon = np.minimum(dlat / cos_lat, 360.0)
        boxes = shapely.box(lon - dlon, lat - dlat, lon + dlon, lat + dlat)
        pt, fe = self._tree.query(boxes)
        order = np.lexsort((fe, pt))
        pt, fe = pt[order].astype(np.int64), fe[order].astype(np.int64)
        d = self.distance_m(lon[pt], lat[pt], fe)
        keep = d <= distance_m
        return pt[keep], fe[keep], d[keep]


def brute_force_pairs(zones: ZoneSet, lon_deg: npt.ArrayLike, lat_deg: npt.ArrayLike) -> tuple[IntArray, IntArray]:
    """Reference answer with plain shapely: ``covers(fence, Point)`` for every fence and point.

    No index and no preparation beyond an envelope pre-filter in numpy; used by
    tests and benchmarks to check :meth:`FenceIndex.query` exactly.
    """
    lon, lat = check_coordinates(lon_deg, lat_deg)
    pts: list[IntArray] = []
    fns: list[IntArray] = []
    for f, fence in enumerate(zones.fences):
        geom: BaseGeometry = fence.geometry
        xmin, ymin, xmax, ymax = geom.bounds
        cand = np.flatnonzero((lon >= xmin) & (lon <= xmax) & (lat >= ymin) & (lat <= ymax))
        if cand.size == 0:
            continue
        hit = cand[np.asarray(shapely.covers(geom, shapely.points(lon[cand], lat[cand])), dtype=bool)]
        pts.append(hit)
        fns.append(np.full(hit.size, f, dtype=np.int64))
    if not pts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    p, fe = np.concatenate(pts).astype(np.int64), np.concatenate(fns)
    order = np.lexsort((fe, p))
    return p[order], fe[order]
