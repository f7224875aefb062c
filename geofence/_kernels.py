"""Compiled loops of the fence index (numba): the query, and the boundary work near points.

The query maps each point to its grid cell and class and writes the class's
(point, fence) pairs; for a fence whose boundary passes through the point's cell
it decides the point's side by the parity of the boundary crossings between the
cell's centre (whose side the build recorded) and the point. The short-range
questions of the rules (how far is this point from fence f's boundary, within a
band of metres; does this short move meet it) look up the boundary segments
bucketed in the few cells around each item and do a little arithmetic on each.

With numpy, each of these fans out into cells, each cell into a sorted-key search
and each hit into segments, one array pass per step, and the searches in a table
of ~10^6 keys miss the cache at most of their steps. Here one loop per item does
it all; a cell finds its keys through a table aligned with the grid's fine cells
(:attr:`SegmentGrid.cell_first`) in one step, and a key's segments are one
contiguous read. Measured on the pipeline benchmark's calls (480k positions):
boundary distances 52 -> 16 ms, segment crossings 28 -> 9 ms, and the query with
its 77k near-boundary pairs, which shapely's ``intersects_xy`` decided at about
0.9 us each, about 60 -> 36 ms.

The arithmetic is GEOS's point-to-segment distance and plain orientation signs,
without fast-math; a sign within a rounding margin of zero makes the answer
"unsure" and the caller asks shapely, so every answer is shapely's. The tests of
:mod:`geofence.index` compare all three with shapely. The kernels are compiled on
first use and cached beside this module (``cache=True``; where that is not
writable, numba's user cache directory); :func:`warm` loads them when an index is
built.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from geofence._grid import Grid, SegmentGrid

__all__ = [
    "ClassTables",
    "Tables",
    "boundary_distances",
    "query",
    "quiet_moves",
    "segments_meet",
    "tables",
    "warm",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_JIT: dict[str, Any] = {"cache": True, "error_model": "numpy", "nogil": True}

#: The grid's class tables (see :class:`geofence._grid.Grid`): coarse and fine tables, grid arithmetic,
#: per class its entries, per entry its fence, exact flag and rank among the class's exact entries,
#: per class the count of boundary fences, and ``BITS_UNKNOWN``.
ClassTables = tuple[Any, ...]

#: The segment and grid tables of one index with its metric frames (:func:`tables`): segment keys,
#: pointers and end points, ``cell_first``, ``centre_inside``, the coarse table and grid
#: arithmetic, the fence count, and per fence the frame's reference lon, lat and cosine.
Tables = tuple[Any, ...]


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _cell_of(v: float, n: int) -> int:
    """``floor(v)`` for a finite cell coordinate, kept within [-1, n] so that it fits an integer."""
    return math.floor(min(max(v, -1.0), float(n)))


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _key_pos(
    cx: int,
    cy: int,
    f: int,
    keys: IntArray,
    cell_first: npt.NDArray[np.int32],
    coarse: npt.NDArray[np.int32],
    shift: int,
    ncy2: int,
    nfy: int,
    n_fences: int,
) -> int:
    """Position of the (cell, fence) key in ``keys``, or -1 when the fence has no segment in the cell."""
    k = 1 << shift
    mask = k - 1
    key = (cx * nfy + cy) * n_fences + f
    c = coarse[((cx + k) >> shift) * ncy2 + ((cy + k) >> shift)]
    if c >= 0:  # a uniform coarse cell: no boundary passes (the grids share their rasteriser); searched anyway
        p = int(np.searchsorted(keys, key))
    else:
        p = cell_first[(-c - 1) * k * k + ((cx + k) & mask) * k + ((cy + k) & mask)]
        if p < 0:
            return -1
        while p < keys.size and keys[p] < key:  # the cell's keys are contiguous, one per fence (about 1.1)
            p += 1
    if p < keys.size and keys[p] == key:
        return p
    return -1


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _point_segment(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> float:
    """``geofence.index._point_segment_m`` for one pair (GEOS ``Distance::pointToSegment``)."""
    dx = bx - ax
    dy = by - ay
    len2 = dx * dx + dy * dy
    if len2 == 0.0:
        return math.sqrt((px - ax) * (px - ax) + (py - ay) * (py - ay))
    r = ((px - ax) * dx + (py - ay) * dy) / len2
    if r <= 0.0:
        return math.sqrt((px - ax) * (px - ax) + (py - ay) * (py - ay))
    if r >= 1.0:
        return math.sqrt((px - bx) * (px - bx) + (py - by) * (py - by))
    s = ((ay - py) * dx - (ax - px) * dy) / len2
    return abs(s) * math.sqrt(len2)


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _boundary_distances(
    lon: FloatArray,
    lat: FloatArray,
    fidx: IntArray,
    within: FloatArray,
    tab: Tables,
    out: FloatArray,
) -> None:
    keys, ptr, ends, cell_first, _, coarse, shift, nfx, nfy, n_fences = tab[:10]
    x0, y0, inv_cell, lon_ref, lat_ref, cos_ref, m_per_deg = tab[10:]
    ncy2 = (nfy >> shift) + 2
    for i in range(lon.size):
        w = within[i]
        if not math.isfinite(w):
            continue
        f = fidx[i]
        # the cells meeting the box of +-within around the point, in the fence's metric frame (1e-9 slack)
        rx = w / (max(cos_ref[f], 1e-9) * m_per_deg) * (1 + 1e-9)
        ry = w / m_per_deg * (1 + 1e-9)
        ix0 = max(_cell_of((lon[i] - rx - x0) * inv_cell, nfx), 0)
        ix1 = min(_cell_of((lon[i] + rx - x0) * inv_cell, nfx), nfx - 1)
        iy0 = max(_cell_of((lat[i] - ry - y0) * inv_cell, nfy), 0)
        iy1 = min(_cell_of((lat[i] + ry - y0) * inv_cell, nfy), nfy - 1)
        px = (lon[i] - lon_ref[f]) * cos_ref[f] * m_per_deg
        py = (lat[i] - lat_ref[f]) * m_per_deg
        best = np.inf
        for cx in range(ix0, ix1 + 1):
            for cy in range(iy0, iy1 + 1):
                p = _key_pos(cx, cy, f, keys, cell_first, coarse, shift, ncy2, nfy, n_fences)
                if p < 0:
                    continue
                for e in range(ptr[p], ptr[p + 1]):
                    d = _point_segment(px, py, ends[e, 0], ends[e, 1], ends[e, 2], ends[e, 3])
                    if d < best:
                        best = d
        if best <= w:
            out[i] = best


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _segments_meet(
    lon0: FloatArray,
    lat0: FloatArray,
    lon1: FloatArray,
    lat1: FloatArray,
    fidx: IntArray,
    tab: Tables,
    out: npt.NDArray[np.int8],
) -> None:
    keys, ptr, ends, cell_first, _, coarse, shift, nfx, nfy, n_fences = tab[:10]
    x0, y0, inv_cell, lon_ref, lat_ref, cos_ref, m_per_deg = tab[10:]
    ncy2 = (nfy >> shift) + 2
    for i in range(lon0.size):
        out[i] = -1  # unless decided below; long, leaving the grid, or not a number: decided by the caller
        if not math.isfinite(lon0[i] + lat0[i] + lon1[i] + lat1[i]):  # NaN and inf propagate through the sum
            continue
        ix0 = _cell_of((min(lon0[i], lon1[i]) - x0) * inv_cell, nfx)
        ix1 = _cell_of((max(lon0[i], lon1[i]) - x0) * inv_cell, nfx)
        iy0 = _cell_of((min(lat0[i], lat1[i]) - y0) * inv_cell, nfy)
        iy1 = _cell_of((max(lat0[i], lat1[i]) - y0) * inv_cell, nfy)
        if (ix1 - ix0 + 1) * (iy1 - iy0 + 1) > 9 or ix0 < 0 or ix1 >= nfx or iy0 < 0 or iy1 >= nfy:
            continue
        f = fidx[i]
        c = cos_ref[f] * m_per_deg
        px0 = (lon0[i] - lon_ref[f]) * c
        py0 = (lat0[i] - lat_ref[f]) * m_per_deg
        px1 = (lon1[i] - lon_ref[f]) * c
        py1 = (lat1[i] - lat_ref[f]) * m_per_deg
        res = 0
        for cx in range(ix0, ix1 + 1):
            for cy in range(iy0, iy1 + 1):
                p = _key_pos(cx, cy, f, keys, cell_first, coarse, shift, ncy2, nfy, n_fences)
                if p < 0:
                    continue
                for e in range(ptr[p], ptr[p + 1]):
                    got = _crossing(px0, py0, px1, py1, ends[e, 0], ends[e, 1], ends[e, 2], ends[e, 3])
                    if got == 1:
                        res = 1
                    elif got < 0 and res == 0:
                        res = -1
                if res == 1:
                    break
            if res == 1:
                break
        out[i] = res


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _crossing(px0: float, py0: float, px1: float, py1: float, qx0: float, qy0: float, qx1: float, qy1: float) -> int:
    """Segments P and Q in a metric frame: 1 they cross at one interior point of both, 0 they cannot meet,
    -1 unsure (an orientation sign within the rounding margin of zero: touching, collinear, degenerate).

    Coordinates are metres within ~1e6 m of the frame origin; the margin is far above the rounding
    error of the (lon, lat) -> metres map, so a sure answer is the answer in (lon, lat).
    """
    ux = px1 - px0
    uy = py1 - py0
    vx = qx1 - qx0
    vy = qy1 - qy0
    d1 = ux * (qy0 - py0) - uy * (qx0 - px0)
    d2 = ux * (qy1 - py0) - uy * (qx1 - px0)
    d3 = vx * (py0 - qy0) - vy * (px0 - qx0)
    d4 = vx * (py1 - qy0) - vy * (px1 - qx0)
    eps = 1e-9 * (abs(ux) + abs(uy) + 1.0) * (abs(vx) + abs(vy) + 1.0) + 1e-6
    pos1, neg1 = d1 > eps, d1 < -eps
    pos2, neg2 = d2 > eps, d2 < -eps
    pos3, neg3 = d3 > eps, d3 < -eps
    pos4, neg4 = d4 > eps, d4 < -eps
    if ((pos1 and neg2) or (neg1 and pos2)) and ((pos3 and neg4) or (neg3 and pos4)):
        return 1
    if (pos1 and pos2) or (neg1 and neg2) or (pos3 and pos4) or (neg3 and neg4):
        return 0
    return -1


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _side(lon: float, lat: float, f: int, tab: Tables) -> int:
    """1 if (lon, lat) lies in fence f (boundary included), 0 if not, -1 unsure or not in a boundary cell of f."""
    keys, ptr, ends, cell_first, centre_inside, coarse, shift, nfx, nfy, n_fences = tab[:10]
    x0, y0, inv_cell, lon_ref, lat_ref, cos_ref, m_per_deg = tab[10:]
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return -1
    cx = _cell_of((lon - x0) * inv_cell, nfx)
    cy = _cell_of((lat - y0) * inv_cell, nfy)
    if cx < 0 or cx >= nfx or cy < 0 or cy >= nfy:
        return -1
    p = _key_pos(cx, cy, f, keys, cell_first, coarse, shift, (nfy >> shift) + 2, nfy, n_fences)
    if p < 0:
        return -1
    c = cos_ref[f] * m_per_deg
    cell = 1.0 / inv_cell
    # from the cell centre, whose side is known, to the point: each boundary crossing flips the side
    rx = (x0 + (cx + 0.5) * cell - lon_ref[f]) * c
    ry = (y0 + (cy + 0.5) * cell - lat_ref[f]) * m_per_deg
    px = (lon - lon_ref[f]) * c
    py = (lat - lat_ref[f]) * m_per_deg
    side = int(centre_inside[p])
    for e in range(ptr[p], ptr[p + 1]):
        got = _crossing(rx, ry, px, py, ends[e, 0], ends[e, 1], ends[e, 2], ends[e, 3])
        if got < 0:
            return -1
        side ^= got
    return side


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _class_of(
    ix: int, iy: int, coarse: npt.NDArray[np.int32], fine: npt.NDArray[np.int32], shift: int, nfy: int
) -> int:
    """Class of the fine cell (ix, iy), in the query's offset cell coordinates (``FenceIndex.cells``)."""
    k = 1 << shift
    c = np.int64(coarse[(ix >> shift) * ((nfy >> shift) + 2) + (iy >> shift)])
    if c < 0:
        c = np.int64(fine[(-c - 1) * (k * k) + (ix & (k - 1)) * k + (iy & (k - 1))])
    return int(c)


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _quiet_moves(
    lon0: FloatArray,
    lat0: FloatArray,
    lon1: FloatArray,
    lat1: FloatArray,
    cls0: IntArray,
    cls1: IntArray,
    ctab: ClassTables,
    out: npt.NDArray[np.bool_],
) -> None:
    coarse, fine, shift, nfx, nfy, x0, y0, inv_cell = ctab[:8]
    bnd_len = ctab[13]
    k = 1 << shift
    for i in range(lon0.size):
        out[i] = False
        a, b = cls0[i], cls1[i]
        if a < 0 or b < 0 or not math.isfinite(lon0[i] + lat0[i] + lon1[i] + lat1[i]):
            continue
        if abs(lon1[i] - lon0[i]) > 180.0:  # over the antimeridian
            continue
        ixa = _cell_of((lon0[i] - x0) * inv_cell, nfx) + k
        iya = _cell_of((lat0[i] - y0) * inv_cell, nfy) + k
        ixb = _cell_of((lon1[i] - x0) * inv_cell, nfx) + k
        iyb = _cell_of((lat1[i] - y0) * inv_cell, nfy) + k
        dx = abs(ixa - ixb)
        dy = abs(iya - iyb)
        if dx > 1 or dy > 1:
            continue
        if bnd_len.size:
            if bnd_len[a] or bnd_len[b]:
                continue
            if dx == 1 and dy == 1:  # a diagonal move passes one of the two corner cells, or their corner
                if bnd_len[_class_of(ixa, iyb, coarse, fine, shift, nfy)]:
                    continue
                if bnd_len[_class_of(ixb, iya, coarse, fine, shift, nfy)]:
                    continue
        out[i] = True


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _query(
    lon: FloatArray, lat: FloatArray, ctab: ClassTables, tab: Tables
) -> tuple[IntArray, IntArray, IntArray, IntArray, IntArray, IntArray]:
    coarse, fine, shift, nfx, nfy, x0, y0, inv_cell = ctab[:8]
    cls_len, cls_ptr, entry_fence, entry_exact, exact_rank, bnd_len, bits_unknown = ctab[8:]
    n = lon.size
    k = 1 << shift
    cls = np.empty(n, dtype=np.int64)
    total = 0
    for i in range(n):
        ix = _cell_of((lon[i] - x0) * inv_cell, nfx) + k
        iy = _cell_of((lat[i] - y0) * inv_cell, nfy) + k
        c = _class_of(ix, iy, coarse, fine, shift, nfy)
        cls[i] = c
        total += cls_len[c]
    point = np.empty(total, dtype=np.int64)
    fence = np.empty(total, dtype=np.int64)
    bits = np.zeros(n, dtype=np.int64)
    unsure = np.empty(total, dtype=np.int64)  # pairs left to the exact test (kept meanwhile)
    unsure_rank = np.empty(total, dtype=np.int64)
    m = 0
    u = 0
    for i in range(n):
        c = cls[i]
        if bnd_len[c] > bits_unknown:
            bits[i] = 1 << bits_unknown
        for e in range(cls_ptr[c], cls_ptr[c] + cls_len[c]):
            f = entry_fence[e]
            if entry_exact[e]:
                side = _side(lon[i], lat[i], f, tab)
                if side == 0:
                    continue
                if side < 0:
                    unsure[u] = m
                    unsure_rank[u] = exact_rank[e]
                    u += 1
                elif exact_rank[e] < bits_unknown:
                    bits[i] |= 1 << exact_rank[e]
            point[m] = i
            fence[m] = f
            m += 1
    return point[:m], fence[:m], cls, bits, unsure[:u], unsure_rank[:u]


def boundary_distances(
    lon: FloatArray, lat: FloatArray, fence_idx: IntArray, within_m: FloatArray, tab: Tables
) -> FloatArray:
    """Per point, the distance (m) to fence ``fence_idx``'s boundary where it is at most ``within_m``, else inf.

    See :meth:`geofence.index.FenceIndex.boundary_distance_m`; the arguments are its checked
    inputs (1-D, equal length, ``within_m`` one value per point) and the index's tables.
    """
    out = np.full(lon.size, np.inf)
    _boundary_distances(lon, lat, fence_idx, within_m, tab, out)
    return out


def segments_meet(
    lon0: FloatArray, lat0: FloatArray, lon1: FloatArray, lat1: FloatArray, fence_idx: IntArray, tab: Tables
) -> npt.NDArray[np.int8]:
    """Per item: does the straight segment meet fence ``fence_idx``'s boundary? 1 yes, 0 no, -1 unsure.

    See :meth:`geofence.index.FenceIndex.segments_meet_boundary`.
    """
    out = np.empty(lon0.size, dtype=np.int8)
    _segments_meet(lon0, lat0, lon1, lat1, fence_idx, tab, out)
    return out


def tables(
    sg: SegmentGrid, grid: Grid, lon_ref: FloatArray, lat_ref: FloatArray, cos_ref: FloatArray, m_per_deg: float
) -> Tables:
    """The index's tables as the kernels take them (one tuple, built once per index)."""
    return (
        sg.keys, sg.ptr, sg.ends, sg.cell_first, sg.centre_inside,
        grid.coarse, grid.shift, grid.nfx, grid.nfy, sg.n_fences,
        grid.x0_deg, grid.y0_deg, grid.inv_cell, lon_ref, lat_ref, cos_ref, m_per_deg,
    )  # fmt: skip


def warm(ctab: ClassTables, tab: Tables) -> None:
    """Load (or compile) the kernels now, with one empty call each, rather than in the first batch.

    Loading them from the cache takes a few tenths of a second per process, compiling them a few
    seconds; an index is built before the stream starts, so that is where this belongs.
    """
    f0 = np.zeros(0)
    i0 = np.zeros(0, dtype=np.int64)
    boundary_distances(f0, f0, i0, f0, tab)
    segments_meet(f0, f0, f0, f0, i0, tab)
    query(f0, f0, ctab, tab)
    quiet_moves(f0, f0, f0, f0, i0, i0, ctab)


def query(
    lon: FloatArray, lat: FloatArray, ctab: ClassTables, tab: Tables
) -> tuple[IntArray, IntArray, IntArray, IntArray, IntArray, IntArray]:
    """:meth:`geofence.index.FenceIndex.query_classes` in two passes, and the pairs it leaves to shapely.

    Returns ``(point, fence, cls, bits, unsure, unsure_rank)``.

    ``unsure`` lists the pairs (positions in ``point``/``fence``) whose point lies within
    rounding distance of the fence's boundary, with the rank of each among its cell's boundary
    fences: they are kept for now and their bits are not set; the caller decides them exactly.
    """
    out: tuple[IntArray, IntArray, IntArray, IntArray, IntArray, IntArray] = _query(lon, lat, ctab, tab)
    return out


def quiet_moves(
    lon0: FloatArray,
    lat0: FloatArray,
    lon1: FloatArray,
    lat1: FloatArray,
    cls0: IntArray,
    cls1: IntArray,
    ctab: ClassTables,
) -> npt.NDArray[np.bool_]:
    """:meth:`geofence.index.FenceIndex.quiet_moves` in one pass."""
    out = np.empty(lon0.size, dtype=np.bool_)
    _quiet_moves(lon0, lat0, lon1, lat1, cls0, cls1, ctab, out)
    return out
