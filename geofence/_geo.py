"""Small spherical helpers for the rules' hot path (haversine on the WGS84 mean radius).

Rule thresholds (hundreds of metres, knots) tolerate the ~0.5 % spherical error;
exact geodesics live in :mod:`geofence.geodesy`. Kept private and dependency-free
so the per-record loop stays cheap.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = ["EARTH_R_M", "KN_PER_M_S", "deg_for_m", "haversine_m", "haversine_m_arr"]

EARTH_R_M = 6_371_008.8
KN_PER_M_S = 3600.0 / 1852.0


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres between two (lon, lat) points in degrees."""
    p1 = math.radians(lat1)
    p2 = math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_R_M * math.asin(min(1.0, math.sqrt(a)))


def haversine_m_arr(
    lon1: npt.NDArray[np.float64],
    lat1: npt.NDArray[np.float64],
    lon2: npt.NDArray[np.float64],
    lat2: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Vectorised :func:`haversine_m`."""
    p1 = np.radians(lat1)
    p2 = np.radians(lat2)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    out: npt.NDArray[np.float64] = 2 * EARTH_R_M * np.arcsin(np.minimum(1.0, np.sqrt(a)))
    return out


def deg_for_m(dist_m: float, lat_deg: float) -> float:
    """Degrees of longitude spanning ``dist_m`` at ``lat_deg`` (an upper bound for latitude too)."""
    return dist_m / (EARTH_R_M * math.radians(1.0) * max(0.05, math.cos(math.radians(lat_deg))))
