"""Speed derivation and the position-jump test (pure helpers of the per-record path).

Speed is the reported SOG when it is present and plausible (finite, >= 0 and not
above the ship type's maximum); otherwise the speed derived from displacement
over a window of at least ``window_s`` (60 s default) so that minute-resolution
feeds without SOG work and 1-s GPS noise does not masquerade as motion.
"""

from __future__ import annotations

import math

from geofence._geo import KN_PER_M_S, haversine_m

__all__ = ["implied_kn", "is_jump", "sog_valid"]


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
