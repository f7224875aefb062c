"""Seeded synthetic workload: fences along 1,500 km of river and points near them.

Shared by the benchmarks (fence, and later ingest/pipeline). Everything is a pure
function of the seed, so two runs measure the same thing.

The river is a meandering centreline from about 111.2°E to 121.8°E near 30–31.5°N
(the shape of the middle and lower Yangtze), about 1,500 km long. On it:

* 8 fairway corridors of exactly 5,000 vertices each, each covering a slightly
  overlapping eighth of the river, 300 m to 2 km wide with a varying width;
* ports, berths and anchorages (star-shaped basins of 20–200 vertices within 3 km of
  the centreline, a few anchorages with a hole), up to the requested fence count.

Points: 70 % within 5 km of the centreline (uniform along the river, uniform lateral
offset), 30 % uniform over the river's bounding box plus a margin.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import shapely

from geofence.fence import Fence, FenceParams, ZoneKind, ZoneSet

__all__ = ["CORRIDORS", "CORRIDOR_VERTICES", "river_centreline", "river_points", "river_zones"]

CORRIDORS = 8
CORRIDOR_VERTICES = 5000
_KM_PER_DEG = 111.195
_NEAR_FRACTION = 0.7
_NEAR_KM = 5.0

FloatArray = npt.NDArray[np.float64]


def river_centreline(samples: int = 60_001) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Return (lon, lat, km) of the centreline, densely sampled, with cumulative length in km (about 1,500)."""
    t = np.linspace(0.0, 1.0, samples)
    # Meanders are lateral only (no along-stream sine, which makes cusps); 22 bends of ~8 km amplitude give
    # about 1,460 km of river with a smallest bend radius of about 2 km, above the widest corridor half-width.
    lon = 111.2 + 10.6 * t
    lat = 30.4 + 0.9 * t + 0.35 * np.sin(t * 2 * math.pi * 3.0) + 0.07 * np.sin(t * 2 * math.pi * 22.0)
    dx = np.diff(lon) * np.cos(np.radians((lat[1:] + lat[:-1]) / 2)) * _KM_PER_DEG
    dy = np.diff(lat) * _KM_PER_DEG
    km = np.concatenate([[0.0], np.cumsum(np.hypot(dx, dy))])
    return lon, lat, km


def _at_km(
    lon: FloatArray, lat: FloatArray, km: FloatArray, q: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Interpolate position and unit normal (in local km axes) at along-river distances ``q``."""
    x = np.interp(q, km, lon)
    y = np.interp(q, km, lat)
    h = 0.05
    x2, y2 = np.interp(q + h, km, lon), np.interp(q + h, km, lat)
    x1, y1 = np.interp(q - h, km, lon), np.interp(q - h, km, lat)
    c = np.cos(np.radians(y))
    tx, ty = (x2 - x1) * c, (y2 - y1)
    n = np.hypot(tx, ty)
    return x, y, -ty / n, tx / n


def _offset(
    x: FloatArray, y: FloatArray, nx: FloatArray, ny: FloatArray, d_km: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Move points by ``d_km`` along local-km unit vectors (nx, ny)."""
    c = np.cos(np.radians(y))
    return x + nx * d_km / (_KM_PER_DEG * c), y + ny * d_km / _KM_PER_DEG


def _corridor(
    lon: FloatArray, lat: FloatArray, km: FloatArray, k0: float, k1: float, rng: np.random.Generator
) -> shapely.Polygon:
    half = CORRIDOR_VERTICES // 2
    q = np.linspace(k0, k1, half)
    x, y, nx, ny = _at_km(lon, lat, km, q)
    w0, w1 = rng.uniform(0.3, 2.0, 2)
    phase = rng.uniform(0, 2 * math.pi)
    half_w = (w0 + (w1 - w0) * (q - k0) / (k1 - k0)) / 2 * (1 + 0.25 * np.sin(q / 7.0 + phase))
    half_w = np.clip(half_w, 0.15, 1.0)
    lx, ly = _offset(x, y, nx, ny, half_w)
    rx, ry = _offset(x, y, nx, ny, -half_w)
    ring = np.column_stack([np.concatenate([lx, rx[::-1]]), np.concatenate([ly, ry[::-1]])])
    poly = shapely.Polygon(ring)
    if not poly.is_valid:
        raise RuntimeError("synthetic corridor is self-intersecting; lower the meander amplitude")
    return poly


def _basin(
    cx: float, cy: float, radius_km: float, nverts: int, rng: np.random.Generator, hole: bool
) -> shapely.Polygon:
    ang = np.sort(rng.uniform(0, 2 * math.pi, nverts))
    ang[0] = 0.0  # keep the ring star-shaped with distinct angles
    ang = np.unique(ang)
    r = radius_km * rng.uniform(0.6, 1.0, ang.size)
    c = math.cos(math.radians(cy))
    xs = cx + r * np.cos(ang) / (_KM_PER_DEG * c)
    ys = cy + r * np.sin(ang) / _KM_PER_DEG
    holes = []
    if hole:
        hr = radius_km * 0.3
        ha = np.linspace(0, 2 * math.pi, 12, endpoint=False)
        holes.append(np.column_stack([cx + hr * np.cos(ha) / (_KM_PER_DEG * c), cy + hr * np.sin(ha) / _KM_PER_DEG]))
    return shapely.Polygon(np.column_stack([xs, ys]), holes)


def river_zones(n_fences: int = 2000, seed: int = 7) -> ZoneSet:
    """Return the seeded zone set: 8 fairway corridors plus ports/berths/anchorages up to ``n_fences``."""
    if n_fences < CORRIDORS:
        raise ValueError(f"n_fences={n_fences} must be at least {CORRIDORS} (the corridors)")
    rng = np.random.default_rng(seed)
    lon, lat, km = river_centreline()
    total = km[-1]
    fences: list[Fence] = []
    seg = total / CORRIDORS
    for i in range(CORRIDORS):
        k0 = max(0.0, i * seg - 5.0)
        k1 = min(total, (i + 1) * seg + 5.0)
        fences.append(
            Fence(
                id=f"fairway-{i:02d}",
                name=f"Fairway section {i + 1}",
                kind=ZoneKind.FAIRWAY,
                geometry=_corridor(lon, lat, km, k0, k1, rng),
                params=FenceParams(speed_limit_kn=10.0 + i),
            )
        )
    kinds = [ZoneKind.PORT, ZoneKind.BERTH, ZoneKind.ANCHORAGE]
    for j in range(n_fences - CORRIDORS):
        kind = kinds[int(rng.integers(0, 3))]
        q = rng.uniform(1.0, total - 1.0, 1)
        x, y, nx, ny = _at_km(lon, lat, km, q)
        side = rng.uniform(-3.0, 3.0, 1)
        bx, by = _offset(x, y, nx, ny, side)
        radius = {ZoneKind.PORT: rng.uniform(0.4, 2.0), ZoneKind.BERTH: rng.uniform(0.1, 0.3)}.get(
            kind, rng.uniform(0.5, 1.5)
        )
        nverts = int(rng.integers(20, 201))
        hole = kind is ZoneKind.ANCHORAGE and rng.uniform() < 0.1
        fences.append(
            Fence(
                id=f"{kind.value}-{j:04d}",
                name=f"{kind.value.title()} {j}",
                kind=kind,
                geometry=_basin(float(bx[0]), float(by[0]), float(radius), nverts, rng, hole),
            )
        )
    return ZoneSet.of(fences)


def river_points(n: int, seed: int = 11) -> tuple[FloatArray, FloatArray]:
    """Return ``n`` seeded points (lon, lat): 70 % within 5 km of the river, 30 % over its bounding box."""
    rng = np.random.default_rng(seed)
    lon, lat, km = river_centreline()
    n_near = round(n * _NEAR_FRACTION)
    q = rng.uniform(0.0, km[-1], n_near)
    x, y, nx, ny = _at_km(lon, lat, km, q)
    px, py = _offset(x, y, nx, ny, rng.uniform(-_NEAR_KM, _NEAR_KM, n_near))
    margin = 0.2
    fx = rng.uniform(lon.min() - margin, lon.max() + margin, n - n_near)
    fy = rng.uniform(lat.min() - margin, lat.max() + margin, n - n_near)
    order = rng.permutation(n)
    return np.concatenate([px, fx])[order], np.concatenate([py, fy])[order]
