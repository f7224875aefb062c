"""Build the pre-classified two-level grid behind :class:`geofence.index.FenceIndex`.

The grid answers "which fences can contain this point, and for which of them is
the answer already certain?" with two array look-ups per point. It is built once
per zone version and never mutated.

Cells are defined by the *same floating-point arithmetic* the query uses
(``floor((lon - x0) * inv_cell)``), so a point always lands in the cell the
build classified. A fine cell is marked *boundary* for a fence when any piece of
that fence's boundary (exterior and hole rings) may touch it; the rasteriser
over-reports by a margin far larger than rounding error, never under-reports.
A cell that no boundary touches is wholly inside or wholly outside the fence,
so one exact test of its centre classifies every point in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

from geofence.errors import ZoneError

__all__ = ["Grid", "SegmentGrid", "build_grid", "build_segment_grid"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Margin, in cell units, added around every boundary piece. Rounding errors of
#: the affine map and of the piece interpolation are ~1e-11 cell; this is 1e4 times that.
_EPS_CELL = 1e-7
#: Boundary pieces are at most this long (max-norm, in cells), so each spans at most 2x2 cells.
_PIECE_CELL = 0.5
#: Upper bound on coarse cells; the fine cell size doubles until the grid fits.
_MAX_COARSE_CELLS = 4_000_000


@dataclass(frozen=True, slots=True)
class Grid:
    """The immutable look-up tables of the index (see :func:`build_grid`).

    Attributes
    ----------
    x0_deg, y0_deg
        Origin of fine cell (0, 0).
    inv_cell
        1 / fine cell size in degrees.
    shift
        log2 of the fine cells per coarse cell side.
    nfx, nfy
        Fine cells per axis (a multiple of ``1 << shift``).
    coarse
        Flat ``(ncx + 2) * (ncy + 2)`` table with a one-cell empty border; a value
        ``>= 0`` is a class id for the whole coarse cell, ``< 0`` is ``-(block + 1)``.
    fine
        Flat ``nblocks * k * k`` table of class ids for the fine cells of mixed coarse cells.
    cls_ptr, cls_len
        Per class, the slice of ``entry_fence`` / ``entry_exact`` holding its sorted fences.
    entry_fence, entry_exact
        Fence index of each class entry, and whether it needs the exact test.
    """

    x0_deg: float
    y0_deg: float
    inv_cell: float
    shift: int
    nfx: int
    nfy: int
    coarse: npt.NDArray[np.int32]
    fine: npt.NDArray[np.int32]
    cls_ptr: IntArray
    cls_len: IntArray
    entry_fence: IntArray
    entry_exact: npt.NDArray[np.bool_]

    @property
    def cell_deg(self) -> float:
        """Fine cell size in degrees."""
        return 1.0 / self.inv_cell

    @property
    def nbytes(self) -> int:
        """Memory held by the tables."""
        arrays = (self.coarse, self.fine, self.cls_ptr, self.cls_len, self.entry_fence, self.entry_exact)
        return int(sum(a.nbytes for a in arrays))


def _piece_cells(fx: FloatArray, fy: FloatArray, ring_idx: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """Cells (ix, iy) any piece of each ring segment may touch, with the segment's index (duplicates kept).

    ``fx``/``fy`` are vertex coordinates in cell units; segments join consecutive
    vertices of the same ring and are numbered in vertex order.
    """
    same_ring = ring_idx[1:] == ring_idx[:-1]
    ax, ay = fx[:-1][same_ring], fy[:-1][same_ring]
    bx, by = fx[1:][same_ring], fy[1:][same_ring]
    dx, dy = bx - ax, by - ay
    npieces = np.maximum(np.ceil(np.maximum(np.abs(dx), np.abs(dy)) / _PIECE_CELL), 1).astype(np.int64)
    seg = np.repeat(np.arange(ax.size), npieces)
    first = np.cumsum(npieces) - npieces
    j = np.arange(seg.size) - np.repeat(first, npieces)
    n = npieces[seg].astype(np.float64)
    t0, t1 = j / n, (j + 1) / n
    px0, px1 = ax[seg] + dx[seg] * t0, ax[seg] + dx[seg] * t1
    py0, py1 = ay[seg] + dy[seg] * t0, ay[seg] + dy[seg] * t1
    lo_x = np.floor(np.minimum(px0, px1) - _EPS_CELL).astype(np.int64)
    hi_x = np.floor(np.maximum(px0, px1) + _EPS_CELL).astype(np.int64)
    lo_y = np.floor(np.minimum(py0, py1) - _EPS_CELL).astype(np.int64)
    hi_y = np.floor(np.maximum(py0, py1) + _EPS_CELL).astype(np.int64)
    cx = np.concatenate([lo_x, lo_x, hi_x, hi_x])
    cy = np.concatenate([lo_y, hi_y, lo_y, hi_y])
    return cx, cy, np.tile(seg, 4)


def _ring_coords(geom: BaseGeometry) -> tuple[FloatArray, IntArray]:
    rings = shapely.get_rings(shapely.get_parts(geom))
    coords, ring_idx = shapely.get_coordinates(rings, return_index=True)
    return coords, ring_idx.astype(np.int64)


def _boundary_cells(geom: BaseGeometry, x0: float, y0: float, inv: float) -> IntArray:
    """Return ``(m, 2)`` fine cells (ix, iy) any boundary piece of ``geom`` may touch (with duplicates)."""
    coords, ring_idx = _ring_coords(geom)
    cx, cy, _seg = _piece_cells((coords[:, 0] - x0) * inv, (coords[:, 1] - y0) * inv, ring_idx)
    return np.stack([cx, cy], axis=1)


def _centres_inside(
    geom: BaseGeometry | npt.NDArray[np.object_],
    ix: npt.NDArray[np.floating[Any]] | IntArray,
    iy: npt.NDArray[np.floating[Any]] | IntArray,
    x0: float,
    y0: float,
    cell: float,
) -> npt.NDArray[np.bool_]:
    """Exact containment of the centres of fine cells (cell indices, possibly offset by a half cell).

    ``geom`` is one geometry for all cells, or one per cell.
    """
    return np.asarray(shapely.intersects_xy(geom, x0 + (ix + 0.5) * cell, y0 + (iy + 0.5) * cell), dtype=bool)


def _choose_cell(bounds: FloatArray, cell_deg: float, k: int) -> tuple[float, float, float, int, int]:
    """Return origin, cell size and fine extents; grow the cell until the coarse table is bounded."""
    xmin, ymin = float(bounds[:, 0].min()), float(bounds[:, 1].min())
    xmax, ymax = float(bounds[:, 2].max()), float(bounds[:, 3].max())
    while True:
        x0, y0 = xmin - 2 * cell_deg, ymin - 2 * cell_deg
        ncx = int(np.ceil((xmax - x0) / (cell_deg * k))) + 1
        ncy = int(np.ceil((ymax - y0) / (cell_deg * k))) + 1
        if ncx * ncy <= _MAX_COARSE_CELLS:
            return x0, y0, cell_deg, ncx * k, ncy * k
        cell_deg *= 2.0


def build_grid(geoms: list[BaseGeometry], cell_deg: float, shift: int) -> Grid:
    """Classify fine and coarse cells for every fence and intern the per-cell fence sets.

    Parameters
    ----------
    geoms
        Fence geometries, prepared (index i is fence i).
    cell_deg
        Requested fine cell size in degrees (grown if the extent would need too many cells).
    shift
        log2 of fine cells per coarse side; 16 (shift 4) keeps blocks small near boundaries.
    """
    k = 1 << shift
    if not geoms:
        return _empty_grid(cell_deg, shift)
    bounds = shapely.bounds(np.asarray(geoms, dtype=object))
    x0, y0, cell, nfx, nfy = _choose_cell(bounds, cell_deg, k)
    inv = 1.0 / cell
    ncy = nfy >> shift
    fine_keys: list[IntArray] = []
    fine_vals: list[IntArray] = []  # fence * 2 + (1 if exact test needed)
    coarse_keys: list[IntArray] = []
    coarse_fence: list[IntArray] = []
    sub_x, sub_y = np.divmod(np.arange(k * k, dtype=np.int64), k)
    for f, geom in enumerate(geoms):
        cells = _boundary_cells(geom, x0, y0, inv)
        bkeys = np.unique(cells[:, 0] * nfy + cells[:, 1])
        bix, biy = np.divmod(bkeys, nfy)
        fine_keys.append(bkeys)
        fine_vals.append(np.full(bkeys.size, 2 * f + 1, dtype=np.int64))
        # Coarse cells in the fence's bounding range that no boundary touches: wholly in or out.
        cb = np.unique((bix >> shift) * ncy + (biy >> shift))
        cxs = np.arange(bix.min() >> shift, (bix.max() >> shift) + 1)
        cys = np.arange(biy.min() >> shift, (biy.max() >> shift) + 1)
        all_c = (cxs[:, None] * ncy + cys[None, :]).ravel()
        free_c = all_c[~np.isin(all_c, cb, assume_unique=True)]
        if free_c.size:
            ccx, ccy = np.divmod(free_c, ncy)
            centre_ix = (ccx << shift) + (k // 2)
            centre_iy = (ccy << shift) + (k // 2)
            inside = _centres_inside(geom, centre_ix - 0.5, centre_iy - 0.5, x0, y0, cell)
            coarse_keys.append(free_c[inside])
            coarse_fence.append(np.full(int(inside.sum()), f, dtype=np.int64))
        # Fine cells of boundary coarse cells, within the fence's range, not on the boundary.
        cbx, cby = np.divmod(cb, ncy)
        fx = ((cbx << shift)[:, None] + sub_x[None, :]).ravel()
        fy = ((cby << shift)[:, None] + sub_y[None, :]).ravel()
        keep = (fx >= bix.min()) & (fx <= bix.max()) & (fy >= biy.min()) & (fy <= biy.max())
        fkeys = fx[keep] * nfy + fy[keep]
        fkeys = fkeys[~np.isin(fkeys, bkeys, assume_unique=True)]
        if fkeys.size:
            fix, fiy = np.divmod(fkeys, nfy)
            inside = _centres_inside(geom, fix, fiy, x0, y0, cell)
            fine_keys.append(fkeys[inside])
            fine_vals.append(np.full(int(inside.sum()), 2 * f, dtype=np.int64))
    return _assemble(
        np.concatenate(fine_keys),
        np.concatenate(fine_vals),
        np.concatenate(coarse_keys) if coarse_keys else np.zeros(0, np.int64),
        np.concatenate(coarse_fence) if coarse_fence else np.zeros(0, np.int64),
        x0=x0,
        y0=y0,
        inv=inv,
        shift=shift,
        nfx=nfx,
        nfy=nfy,
    )


def _empty_grid(cell_deg: float, shift: int) -> Grid:
    k = 1 << shift
    return Grid(
        x0_deg=0.0,
        y0_deg=0.0,
        inv_cell=1.0 / cell_deg,
        shift=shift,
        nfx=k,
        nfy=k,
        coarse=np.zeros(9, np.int32),
        fine=np.zeros(0, np.int32),
        cls_ptr=np.zeros(1, np.int64),
        cls_len=np.zeros(1, np.int64),
        entry_fence=np.zeros(0, np.int64),
        entry_exact=np.zeros(0, bool),
    )


class _Interner:
    """Interns sorted value lists (one per cell) into class ids; class 0 is the empty set.

    Cells are grouped by a 64-bit sum of random per-value words, then every cell
    is checked entry by entry against its class's representative, so a hash
    collision can never merge two different sets silently.
    """

    def __init__(self, max_value: int) -> None:
        self._words = np.random.default_rng(20240611).integers(0, 2**63, size=max_value + 1, dtype=np.uint64)
        self.class_vals: list[IntArray] = [np.zeros(0, np.int64)]
        self._by_sig: dict[tuple[int, int], int] = {(0, 0): 0}

    def intern(self, group_start: IntArray, vals: IntArray) -> IntArray:
        """Return a class id per group; groups are ``vals[group_start[i]:group_start[i+1]]``, sorted."""
        if group_start.size == 0:
            return np.zeros(0, np.int64)
        counts = np.diff(np.append(group_start, vals.size))
        sig = np.add.reduceat(self._words[vals], group_start)
        uniq, first, inverse = np.unique(
            np.stack([sig.view(np.int64), counts], axis=1), axis=0, return_index=True, return_inverse=True
        )
        ids = np.empty(uniq.shape[0], np.int64)
        for u in range(uniq.shape[0]):
            key = (int(uniq[u, 0]), int(uniq[u, 1]))
            cid = self._by_sig.get(key)
            if cid is None:
                g = first[u]
                cid = len(self.class_vals)
                self.class_vals.append(vals[group_start[g] : group_start[g] + counts[g]].copy())
                self._by_sig[key] = cid
            ids[u] = cid
        cls = ids[inverse.ravel()]
        # Verify: every entry equals the same-rank entry of its class representative.
        rep_ptr = np.cumsum([0] + [v.size for v in self.class_vals])
        rep_all = np.concatenate(self.class_vals)
        rank = np.arange(vals.size) - np.repeat(group_start, counts)
        lens = np.diff(rep_ptr)
        if not (
            np.array_equal(lens[cls], counts) and np.array_equal(rep_all[np.repeat(rep_ptr[cls], counts) + rank], vals)
        ):
            raise RuntimeError("fence-set interning collision; report this with the zone set version")
        return cls


def _groups(keys: IntArray, vals: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """Sort (key, val) pairs and return unique keys, group starts and sorted vals."""
    order = np.lexsort((vals, keys))
    keys, vals = keys[order], vals[order]
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]])) if keys.size else np.zeros(0, np.int64)
    return keys[starts], starts.astype(np.int64), vals


def _assemble(
    fine_keys: IntArray,
    fine_vals: IntArray,
    coarse_keys: IntArray,
    coarse_fence: IntArray,
    *,
    x0: float,
    y0: float,
    inv: float,
    shift: int,
    nfx: int,
    nfy: int,
) -> Grid:
    """Turn per-fence cell records into the coarse table, fine blocks and class table."""
    k = 1 << shift
    ncx, ncy = nfx >> shift, nfy >> shift
    fix, fiy = np.divmod(fine_keys, nfy)
    exact = (fine_vals & 1) == 1
    mixed = np.unique((fix[exact] >> shift) * ncy + (fiy[exact] >> shift))
    # Coarse "inside" records falling in mixed coarse cells become k*k fine inside records.
    in_mixed = np.isin(coarse_keys, mixed)
    if in_mixed.any():
        ck, cf = coarse_keys[in_mixed], coarse_fence[in_mixed]
        ccx, ccy = np.divmod(ck, ncy)
        sx, sy = np.divmod(np.arange(k * k, dtype=np.int64), k)
        ex = ((ccx << shift)[:, None] + sx[None, :]).ravel()
        ey = ((ccy << shift)[:, None] + sy[None, :]).ravel()
        fine_keys = np.concatenate([fine_keys, ex * nfy + ey])
        fine_vals = np.concatenate([fine_vals, np.repeat(2 * cf, k * k)])
        coarse_keys, coarse_fence = coarse_keys[~in_mixed], coarse_fence[~in_mixed]
    max_val = int(max(fine_vals.max(initial=0), 2 * coarse_fence.max(initial=0) + 1))
    interner = _Interner(max_val)
    # Coarse uniform cells.
    coarse = np.zeros((ncx + 2) * (ncy + 2), np.int32)
    ukeys, ustarts, uvals = _groups(coarse_keys, 2 * coarse_fence)
    ucls = interner.intern(ustarts, uvals)
    ucx, ucy = np.divmod(ukeys, ncy)
    coarse[(ucx + 1) * (ncy + 2) + (ucy + 1)] = ucls
    # Mixed coarse cells get fine blocks.
    mcx, mcy = np.divmod(mixed, ncy)
    coarse[(mcx + 1) * (ncy + 2) + (mcy + 1)] = -(np.arange(mixed.size) + 1)
    fine = np.zeros(mixed.size * k * k, np.int32)
    gkeys, gstarts, gvals = _groups(fine_keys, fine_vals)
    gcls = interner.intern(gstarts, gvals)
    gix, giy = np.divmod(gkeys, nfy)
    block = np.searchsorted(mixed, (gix >> shift) * ncy + (giy >> shift))
    fine[block * (k * k) + (gix & (k - 1)) * k + (giy & (k - 1))] = gcls
    lens = np.array([v.size for v in interner.class_vals], np.int64)
    all_vals = np.concatenate(interner.class_vals)
    if len(interner.class_vals) >= 2**31:
        raise RuntimeError("too many distinct fence sets for int32 class ids")
    return Grid(
        x0_deg=x0,
        y0_deg=y0,
        inv_cell=inv,
        shift=shift,
        nfx=nfx,
        nfy=nfy,
        coarse=coarse,
        fine=fine,
        cls_ptr=np.cumsum(lens) - lens,
        cls_len=lens,
        entry_fence=all_vals >> 1,
        entry_exact=(all_vals & 1) == 1,
    )


@dataclass(frozen=True, slots=True)
class SegmentGrid:
    """Fence boundary segments bucketed by the fine cells they touch, for exact short-range distances.

    Attributes
    ----------
    keys
        Sorted distinct ``(ix * nfy + iy) * n_fences + fence`` of every (cell, fence) a segment touches.
    ptr
        ``ends[ptr[i]:ptr[i + 1]]`` are the segments of ``keys[i]``.
    ends
        ``(ax, ay, bx, by)`` per row: segment end points in their fence's local metric frame (see
        ``FenceIndex.distance_m``), grouped by key. A segment in several cells is copied into each:
        a key's segments are then one contiguous read (measured: one cache miss where the ids and
        four coordinate arrays took five), for 32 bytes per (cell, segment).
    nfy, n_fences
        Key arithmetic.
    cell_first
        Aligned with :attr:`Grid.fine`: the position in ``keys`` of the first key of each fine cell,
        -1 for a cell without segments. A cell's keys are contiguous (sorted by cell, then fence),
        so a (cell, fence) key is found in a step or two instead of a binary search over ``keys``.
        Every segment cell lies in a mixed coarse cell, since the grid's boundary cells come from
        the same rasteriser.
    centre_inside
        Per key: 1 when the centre of the key's cell lies in the key's fence (on its boundary
        included), else 0; the exact shapely answer. The reference from which the parity of
        boundary crossings decides points of that cell (see :mod:`geofence._kernels`).
    """

    keys: IntArray
    ptr: IntArray
    ends: FloatArray
    nfy: int
    n_fences: int
    cell_first: npt.NDArray[np.int32]
    centre_inside: npt.NDArray[np.int8]

    @property
    def nbytes(self) -> int:
        """Memory held by the tables."""
        return int(sum(a.nbytes for a in (self.keys, self.ptr, self.ends, self.cell_first, self.centre_inside)))


def build_segment_grid(
    geoms: list[BaseGeometry],
    grid: Grid,
    lon_ref: FloatArray,
    lat_ref: FloatArray,
    cos_ref: FloatArray,
    m_per_deg: float,
) -> SegmentGrid:
    """Bucket every boundary segment of every fence by the fine cells of ``grid`` it may touch."""
    nf = len(geoms)
    keys: list[IntArray] = []
    segs: list[IntArray] = []
    ends: list[FloatArray] = []
    base = 0
    for f, geom in enumerate(geoms):
        coords, ring_idx = _ring_coords(geom)
        cx, cy, seg = _piece_cells(
            (coords[:, 0] - grid.x0_deg) * grid.inv_cell, (coords[:, 1] - grid.y0_deg) * grid.inv_cell, ring_idx
        )
        nseg = int(seg.max(initial=0)) + 1
        k = np.unique((cx * grid.nfy + cy) * nseg + seg)  # distinct (cell, segment) of this fence
        keys.append((k // nseg) * nf + f)
        segs.append(k % nseg + base)
        # the local metric frame, with the same arithmetic as FenceIndex.distance_m's projected boundary
        x = (coords[:, 0] - lon_ref[f]) * cos_ref[f] * m_per_deg
        y = (coords[:, 1] - lat_ref[f]) * m_per_deg
        same = ring_idx[1:] == ring_idx[:-1]
        ends.append(np.stack([x[:-1][same], y[:-1][same], x[1:][same], y[1:][same]], axis=1))
        base += int(same.sum())
    if not keys:
        z = np.zeros(0, np.int64)
        cf = _cell_first(grid, z, nf)
        return SegmentGrid(z, np.zeros(1, np.int64), np.zeros((0, 4)), grid.nfy, nf, cf, np.zeros(0, np.int8))
    allk = np.concatenate(keys)
    alls = np.concatenate(segs)
    order = np.argsort(allk, kind="stable")
    e = np.concatenate(ends)
    allk = allk[order]
    first = np.ones(allk.size, dtype=bool)
    first[1:] = allk[1:] != allk[:-1]
    starts = np.flatnonzero(first)
    ukeys = allk[starts]
    cell, fence = ukeys // nf, ukeys % nf
    garr = np.empty(nf, dtype=object)
    garr[:] = geoms
    ucx, ucy = cell // grid.nfy, cell % grid.nfy
    centre_inside = _centres_inside(garr[fence], ucx, ucy, grid.x0_deg, grid.y0_deg, grid.cell_deg)
    return SegmentGrid(
        keys=ukeys,
        ptr=np.append(starts, allk.size).astype(np.int64),
        ends=np.ascontiguousarray(e[alls[order]]),
        nfy=grid.nfy,
        n_fences=nf,
        cell_first=_cell_first(grid, ukeys, nf),
        centre_inside=centre_inside.astype(np.int8),
    )


def _cell_first(grid: Grid, keys: IntArray, n_fences: int) -> npt.NDArray[np.int32]:
    """:attr:`SegmentGrid.cell_first` of the sorted (cell, fence) ``keys``."""
    out = np.full(grid.fine.size, -1, dtype=np.int32)
    if keys.size == 0:
        return out
    if keys.size >= np.iinfo(np.int32).max:
        raise ZoneError(
            f"{keys.size} boundary (cell, fence) pairs exceed the int32 table; build the index with a larger cell_deg"
        )
    k = 1 << grid.shift
    cell = keys // n_fences
    head = np.flatnonzero(np.diff(cell, prepend=-1) != 0)  # each cell's first key (keys sorted by cell)
    cx, cy = cell[head] // grid.nfy + k, cell[head] % grid.nfy + k
    block = grid.coarse[(cx >> grid.shift) * ((grid.nfy >> grid.shift) + 2) + (cy >> grid.shift)].astype(np.int64)
    mixed = block < 0  # always, as the grid's boundary cells come from the same rasteriser
    slot = (-block[mixed] - 1) * (k * k) + (cx[mixed] & (k - 1)) * k + (cy[mixed] & (k - 1))
    out[slot] = head[mixed]
    return out
