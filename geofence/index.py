"""Point-in-fence index: every (point, fence) containment pair of a batch, exactly.

Boundary rule: a point exactly on an edge or vertex of a fence, holes' edges
included, is INSIDE that fence (shapely ``covers`` / ``intersects`` semantics
for points; note that ``shapely.contains_xy`` would exclude it). The index and
:func:`brute_force_pairs` apply the same rule and agree exactly.

Algorithm (details and figures in ``docs/index.md``): a two-level grid built
once per zone version classifies every coarse cell as empty, wholly inside a
fixed set of fences, or mixed; mixed cells are refined into fine cells with the
same classification plus "boundary of fence f passes here". A query maps each
point to its cell with two table look-ups, takes the cell's fence set and tests
exactly only the fences whose boundary crosses the point's fine cell: by the
parity of boundary crossings from the cell's centre, whose side the build
recorded, and with ``shapely.intersects_xy`` where a crossing is within rounding
distance (compiled loops, :mod:`geofence._kernels`). The grid may over-report
candidates, never miss one; the exact phase decides. An R-tree (shapely
``STRtree``) over the fence envelopes serves the distance queries.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

from geofence._grid import Grid, SegmentGrid, build_grid, build_segment_grid
from geofence._kernels import ClassTables, Tables, boundary_distances, segments_meet, tables
from geofence._kernels import query as query_kernel
from geofence._kernels import quiet_moves as quiet_moves_kernel
from geofence._kernels import warm as warm_kernels
from geofence._sortedkeys import find_sorted
from geofence.errors import CoordinateError
from geofence.fence import Fence, ZoneSet

__all__ = ["BITS_UNKNOWN", "EARTH_RADIUS_M", "FenceIndex", "brute_force_pairs", "check_coordinates"]

#: :meth:`FenceIndex.query_classes` keeps exact-test outcomes for this many boundary fences per cell.
BITS_UNKNOWN = 14

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


_SHARED: dict[tuple[str, float], FenceIndex] = {}  # FenceIndex.for_zones: insertion order = use order
_SHARED_MAX = 2
_SHARED_LOCK = threading.Lock()


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

    __slots__ = (
        "_bnd_fence",
        "_bnd_len",
        "_bnd_ptr",
        "_cls_bnd",
        "_cos_ref",
        "_ctab",
        "_entry_key",
        "_exact_rank",
        "_geoms",
        "_grid",
        "_ktab",
        "_lat_ref",
        "_lon_ref",
        "_proj_boundary",
        "_segs",
        "_tree",
        "fences",
        "version",
    )

    version: str
    fences: tuple[Fence, ...]
    _geoms: npt.NDArray[np.object_]
    _grid: Grid
    _tree: shapely.STRtree
    _lon_ref: FloatArray
    _lat_ref: FloatArray
    _cos_ref: FloatArray
    _proj_boundary: npt.NDArray[np.object_]
    _segs: SegmentGrid
    _ktab: Tables
    _ctab: ClassTables
    _cls_bnd: npt.NDArray[np.bool_]
    _bnd_len: IntArray
    _bnd_ptr: IntArray
    _bnd_fence: IntArray
    _entry_key: IntArray
    _exact_rank: IntArray

    @classmethod
    def for_zones(cls, zones: ZoneSet, *, cell_deg: float = DEFAULT_CELL_DEG) -> FenceIndex:
        """The index of ``zones``, shared: built once per zone version (and cell size), kept for the last two.

        Building takes seconds for a large catalogue; every engine of a process (one per
        partition in a faust worker, a restored engine, a hot reload back and forth) decides
        under the same immutable index. ``zones.version`` is a content hash, so equal fences
        share an index whatever their source. Engines in several threads may query it at once:
        queries only read, and GEOS >= 3.12 (shapely 2.x wheels bundle 3.14) makes the lazy
        internals of prepared geometries thread-safe.
        """
        key = (zones.version, float(cell_deg))
        with _SHARED_LOCK:
            got = _SHARED.pop(key, None)
            if got is not None:
                _SHARED[key] = got  # most recently used last
                return got
        built = cls(zones, cell_deg=cell_deg)  # outside the lock: a second builder only wastes its own time
        with _SHARED_LOCK:
            got = _SHARED.setdefault(key, built)
            while len(_SHARED) > _SHARED_MAX:
                del _SHARED[next(iter(_SHARED))]
        return got

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
        object.__setattr__(self, "_segs", build_segment_grid(geoms, self._grid, lon_ref, lat_ref, cos_ref, _M_PER_DEG))
        object.__setattr__(self, "_ktab", tables(self._segs, self._grid, lon_ref, lat_ref, cos_ref, _M_PER_DEG))
        g = self._grid
        # per class: does any fence boundary pass through cells of this class?
        bnd = np.zeros(g.cls_len.size, dtype=bool)
        if g.entry_exact.size:
            cnt = np.add.reduceat(g.entry_exact.astype(np.int64), np.minimum(g.cls_ptr, g.entry_exact.size - 1))
            bnd = (cnt > 0) & (g.cls_len > 0)
        object.__setattr__(self, "_cls_bnd", bnd)
        # per class, the fences whose boundary passes through its cells (the entries that need the exact test)
        ex = g.entry_exact
        blen = (
            np.add.reduceat(ex.astype(np.int64), np.minimum(g.cls_ptr, max(ex.size - 1, 0))) if ex.size else g.cls_len
        )
        blen = np.where(g.cls_len > 0, blen, 0)
        object.__setattr__(self, "_bnd_len", blen.astype(np.int64))
        object.__setattr__(self, "_bnd_ptr", (np.cumsum(blen) - blen).astype(np.int64))
        object.__setattr__(self, "_bnd_fence", g.entry_fence[ex].astype(np.int64))
        # every (class, fence) entry as a sorted key, and each exact entry's rank within its class
        nf = max(1, len(geoms))
        owner = np.repeat(np.arange(g.cls_len.size, dtype=np.int64), g.cls_len)
        object.__setattr__(self, "_entry_key", owner * nf + g.entry_fence.astype(np.int64))
        er = np.cumsum(ex) - 1 - np.repeat(np.cumsum(blen) - blen, g.cls_len) if ex.size else np.zeros(0, np.int64)
        object.__setattr__(self, "_exact_rank", np.where(ex, er, -1).astype(np.int64))
        ctab = (g.coarse, g.fine, g.shift, g.nfx, g.nfy, g.x0_deg, g.y0_deg, g.inv_cell)
        classes = (g.cls_len, g.cls_ptr, g.entry_fence, g.entry_exact, self._exact_rank, self._bnd_len)
        object.__setattr__(self, "_ctab", (*ctab, *classes, BITS_UNKNOWN))
        warm_kernels(self._ctab, self._ktab)  # not in the first batch of a stream

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
        """Memory held by the grid and boundary-segment tables (geometries excluded)."""
        return self._grid.nbytes + self._segs.nbytes

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
        point, fence, _cls, _bits = self.query_classes(lon_deg, lat_deg)
        return point, fence

    def query_classes(
        self, lon_deg: npt.ArrayLike, lat_deg: npt.ArrayLike
    ) -> tuple[IntArray, IntArray, IntArray, IntArray]:
        """:meth:`query`, plus each point's grid cell class and the outcome of its exact tests.

        Returns (point, fence, cls, bits): ``bits`` has bit k set when the point lies in the
        k-th fence whose boundary passes through its cell (:meth:`boundary_fences` order),
        and bit :data:`BITS_UNKNOWN` when the cell has more such fences than bits. With the
        class, that says for any fence whether the point is inside (:meth:`inside_by_class`).
        """
        lon, lat = check_coordinates(lon_deg, lat_deg)
        g: Grid = self._grid
        if lon.size == 0 or g.entry_fence.size == 0:
            z = np.zeros(0, np.int64)
            return z, z, np.zeros(lon.size, np.int64), np.zeros(lon.size, np.int64)
        point, fence, cls, bits, unsure, rank = query_kernel(lon, lat, self._ctab, self._ktab)
        if unsure.size:  # points within rounding distance of a boundary: shapely decides
            up = point[unsure]
            hit = np.asarray(shapely.intersects_xy(self._geoms[fence[unsure]], lon[up], lat[up]), dtype=bool)
            ok = hit & (rank < BITS_UNKNOWN)
            np.bitwise_or.at(bits, up[ok], np.left_shift(1, rank[ok]))
            if not hit.all():
                keep = np.ones(point.size, dtype=bool)
                keep[unsure[~hit]] = False
                point, fence = point[keep], fence[keep]
        return point, fence, cls, bits

    def inside_by_class(self, cls: npt.ArrayLike, bits: npt.ArrayLike, fence_idx: npt.ArrayLike) -> IntArray:
        """Per item: 1 if a point of class ``cls`` with exact-test ``bits`` lies in fence ``fence_idx``, else 0;
        -1 when that is not known (no class, or too many boundaries in the cell)."""
        c = np.asarray(cls, dtype=np.int64)
        b = np.asarray(bits, dtype=np.int64)
        f = np.asarray(fence_idx, dtype=np.int64)
        out = np.zeros(f.size, dtype=np.int64)
        known = c >= 0
        if not known.all():
            out[~known] = -1
        if self._entry_key.size == 0 or not known.any():
            return out
        nf = max(1, len(self.fences))
        key = np.where(known, c, 0) * nf + f
        pos, hit = find_sorted(self._entry_key, key)
        found = known & hit
        rank = self._exact_rank[pos]
        inside = found & ((rank < 0) | ((np.right_shift(b, np.maximum(rank, 0)) & 1) == 1))
        out[inside] = 1
        unknown = found & (rank >= 0) & ((np.right_shift(b, BITS_UNKNOWN) & 1) == 1)
        out[unknown] = -1
        return out

    def boundary_fences(self, cls: npt.ArrayLike) -> tuple[IntArray, IntArray]:
        """(item, fence) for every fence whose boundary passes through the cell of class ``cls[item]`` (once each)."""
        c = np.asarray(cls, dtype=np.int64)
        if c.size == 0 or self._bnd_fence.size == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        item, entry = _expand(self._bnd_len[c], self._bnd_ptr[c])
        return item, self._bnd_fence[entry]

    def cell_class(self, ix: IntArray, iy: IntArray) -> IntArray:
        """Class of fine cells given as :meth:`cells` returns them."""
        g: Grid = self._grid
        k = 1 << g.shift
        ncy2 = (g.nfy >> g.shift) + 2
        cls = g.coarse[(ix >> g.shift) * ncy2 + (iy >> g.shift)].astype(np.int64)
        mixed = np.flatnonzero(cls < 0)
        if mixed.size:
            mask = k - 1
            cls[mixed] = g.fine[(-cls[mixed] - 1) * (k * k) + (ix[mixed] & mask) * k + (iy[mixed] & mask)]
        return cls

    def cells(self, lon_deg: npt.ArrayLike, lat_deg: npt.ArrayLike) -> tuple[IntArray, IntArray]:
        """Fine grid cell (ix, iy) of each point (the arithmetic of :meth:`query`)."""
        lon = np.asarray(lon_deg, dtype=np.float64)
        lat = np.asarray(lat_deg, dtype=np.float64)
        g: Grid = self._grid
        k = 1 << g.shift
        ix = np.floor(np.clip((lon - g.x0_deg) * g.inv_cell, -1.0, float(g.nfx))).astype(np.int64) + k
        iy = np.floor(np.clip((lat - g.y0_deg) * g.inv_cell, -1.0, float(g.nfy))).astype(np.int64) + k
        return ix, iy

    def quiet_moves(
        self, lon0: FloatArray, lat0: FloatArray, lon1: FloatArray, lat1: FloatArray, cls0: IntArray, cls1: IntArray
    ) -> npt.NDArray[np.bool_]:
        """Per move: True when no fence boundary can cross it, so ``zone_cross`` need not look at it.

        That is a move within one grid cell or to a neighbouring one, side by side or diagonal (not
        over the antimeridian), with both cell classes known (``cls0``/``cls1`` >= 0) and no fence
        boundary passing through the cells it can pass: its two cells, and for a diagonal move the
        two corner cells between them (the straight move passes one of them, or only their common
        corner). The candidates the engine's crossing test would take for it (:meth:`boundary_fences`
        of those classes) are then none. Anything else is False.
        """
        x0, y0, x1, y1 = (np.ascontiguousarray(a, dtype=np.float64) for a in (lon0, lat0, lon1, lat1))
        c0, c1 = (np.ascontiguousarray(c, dtype=np.int64) for c in (cls0, cls1))
        return quiet_moves_kernel(x0, y0, x1, y1, c0, c1, self._ctab)

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
        fidx = self._fence_indices(fence_idx, lon.size)
        x = (lon - self._lon_ref[fidx]) * self._cos_ref[fidx] * _M_PER_DEG
        y = (lat - self._lat_ref[fidx]) * _M_PER_DEG
        d = np.asarray(shapely.distance(self._proj_boundary[fidx], shapely.points(x, y)), dtype=np.float64)
        inside = np.asarray(shapely.intersects_xy(self._geoms[fidx], lon, lat), dtype=bool)
        return np.where(inside, -d, d)

    def _fence_indices(self, fence_idx: npt.ArrayLike, n: int) -> IntArray:
        """``fence_idx`` as a contiguous int64 array of ``n`` valid fence indices, or a clear error."""
        fidx = np.ascontiguousarray(np.asarray(fence_idx, dtype=np.int64).reshape(-1))
        if fidx.size != n:
            raise CoordinateError(f"fence_idx has {fidx.size} values for {n} points; pass one fence per point")
        if fidx.size and (fidx.min() < 0 or fidx.max() >= len(self.fences)):
            bad = int(fidx[(fidx < 0) | (fidx >= len(self.fences))][0])
            raise IndexError(f"fence index {bad} out of range for {len(self.fences)} fences")
        return fidx

    def boundary_distance_m(
        self, lon_deg: npt.ArrayLike, lat_deg: npt.ArrayLike, fence_idx: npt.ArrayLike, within_m: npt.ArrayLike
    ) -> FloatArray:
        """Unsigned distance in metres from point i to the boundary of fence ``fence_idx[i]``, when short.

        Exact (the metric of :meth:`distance_m`) wherever it is at most ``within_m``
        (scalar or per point); ``+inf`` beyond. Only the boundary segments bucketed in
        the grid cells around each point are measured, so the cost does not grow with
        the fence's vertex count: this is what hysteresis bands of tens of metres need.
        """
        lon, lat = check_coordinates(lon_deg, lat_deg)
        fidx = self._fence_indices(fence_idx, lon.size)
        within = np.ascontiguousarray(np.broadcast_to(np.asarray(within_m, dtype=np.float64), lon.shape))
        if lon.size == 0:
            return np.full(0, np.inf)
        return boundary_distances(lon, lat, fidx, within, self._ktab)

    def boundary_candidates(
        self, lon0: npt.ArrayLike, lat0: npt.ArrayLike, lon1: npt.ArrayLike, lat1: npt.ArrayLike
    ) -> tuple[IntArray, IntArray]:
        """(segment, fence) pairs where the fence's boundary may cross the straight (lon, lat) segment.

        A segment lies in the box of grid cells spanned by its end points; a fence whose
        boundary passes through none of those cells contains either the whole segment or
        none of it. Short segments (boxes up to 3 x 3 cells) get the fences whose boundary
        cells they meet; longer ones every fence whose envelope meets theirs (R-tree). May
        over-report, never misses. Sorted by segment then fence.
        """
        x0, y0 = check_coordinates(lon0, lat0)
        x1, y1 = check_coordinates(lon1, lat1)
        g: Grid = self._grid
        if x0.size == 0 or g.entry_fence.size == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        k = 1 << g.shift
        ixa = np.floor(np.clip((x0 - g.x0_deg) * g.inv_cell, -1.0, float(g.nfx))).astype(np.int64) + k
        iya = np.floor(np.clip((y0 - g.y0_deg) * g.inv_cell, -1.0, float(g.nfy))).astype(np.int64) + k
        ixb = np.floor(np.clip((x1 - g.x0_deg) * g.inv_cell, -1.0, float(g.nfx))).astype(np.int64) + k
        iyb = np.floor(np.clip((y1 - g.y0_deg) * g.inv_cell, -1.0, float(g.nfy))).astype(np.int64) + k
        lx, hx = np.minimum(ixa, ixb), np.maximum(ixa, ixb)
        ly, hy = np.minimum(iya, iyb), np.maximum(iya, iyb)
        small = (hx - lx <= 2) & (hy - ly <= 2)
        sidx = np.flatnonzero(small)
        ncy2 = (g.nfy >> g.shift) + 2
        mask = k - 1
        segs: list[IntArray] = []
        fens: list[IntArray] = []
        # every cell of every small box, in one pass
        w = hx[sidx] - lx[sidx] + 1
        ncell = w * (hy[sidx] - ly[sidx] + 1)
        item, j = _expand(ncell, np.zeros(sidx.size, dtype=np.int64))
        cx = lx[sidx][item] + j % w[item]
        cy = ly[sidx][item] + j // w[item]
        cls = g.coarse[(cx >> g.shift) * ncy2 + (cy >> g.shift)].astype(np.int64)
        m = np.flatnonzero(cls < 0)  # uniform coarse cells hold no boundary
        if m.size:
            fc = g.fine[(-cls[m] - 1) * (k * k) + (cx[m] & mask) * k + (cy[m] & mask)].astype(np.int64)
            b = self._cls_bnd[fc]
            m, fc = m[b], fc[b]
            if m.size:
                it2, entry = _expand(g.cls_len[fc], g.cls_ptr[fc])
                ex = g.entry_exact[entry]
                segs.append(sidx[item[m[it2[ex]]]])
                fens.append(g.entry_fence[entry[ex]])
        big = np.flatnonzero(~small)
        if big.size:
            boxes = shapely.box(
                np.minimum(x0[big], x1[big]),
                np.minimum(y0[big], y1[big]),
                np.maximum(x0[big], x1[big]),
                np.maximum(y0[big], y1[big]),
            )
            bi, bf = self._tree.query(boxes)
            segs.append(big[bi])
            fens.append(bf.astype(np.int64))
        if not segs:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        nf = len(self.fences)
        key = np.unique(np.concatenate(segs) * nf + np.concatenate(fens))
        return key // nf, key % nf

    def segments_meet_boundary(
        self, lon0: FloatArray, lat0: FloatArray, lon1: FloatArray, lat1: FloatArray, fence_idx: IntArray
    ) -> npt.NDArray[np.int8]:
        """Per item: does the straight segment meet the boundary of fence ``fence_idx``? 1 yes, 0 no, -1 unsure.

        The fence's boundary segments in the grid cells of the segment's box are tested with
        orientation signs in the fence's metric frame (an affine image of (lon, lat), so the
        answer is the same). Signs within a rounding margin of zero (touching, collinear, or a
        degenerate segment) and long segments give -1: decide those exactly with shapely.
        """
        x0, y0, x1, y1 = (np.ascontiguousarray(a, dtype=np.float64).reshape(-1) for a in (lon0, lat0, lon1, lat1))
        if not x0.size == y0.size == x1.size == y1.size:
            sizes = f"{x0.size}, {y0.size}, {x1.size}, {y1.size}"
            raise CoordinateError(f"segment ends of {sizes} values; pass one of each per segment")
        fidx = self._fence_indices(fence_idx, x0.size)
        if fidx.size == 0:
            return np.full(0, -1, dtype=np.int8)
        return segments_meet(x0, y0, x1, y1, fidx, self._ktab)

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
