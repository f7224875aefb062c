"""Truth tracks (timed knots) and their sampling into AIS reports at ITU-R M.1371 intervals.

A track is a piecewise-linear path: knots of (time, lon, lat) with the
navigational status of the segment that starts at each knot. Speeds are derived
from the geometry, so a reported SOG always matches the displacement. Sampling
picks report times per segment from the class's reporting interval:

* Class A: 180 s at anchor or moored, 10 s underway below 14 kn, 6 s 14-23 kn, 2 s above.
* Class B (CS): 30 s above 2 kn, 180 s at or below 2 kn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from geofence import geodesy

__all__ = ["STATUS_ANCHORED", "STATUS_MOORED", "STATUS_UNDERWAY", "Samples", "Track", "report_interval_s"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

STATUS_UNDERWAY = 0
STATUS_ANCHORED = 1
STATUS_MOORED = 5


def report_interval_s(cls: str, sog_kn: float, status: int) -> int:
    """Return the nominal reporting interval in seconds for an AIS class, speed and status."""
    if cls == "A":
        if status in (STATUS_ANCHORED, STATUS_MOORED) and sog_kn <= 3.0:
            return 180
        if sog_kn > 23.0:
            return 2
        if sog_kn > 14.0:
            return 6
        return 10
    return 30 if sog_kn > 2.0 else 180


@dataclass
class Track:
    """Timed knots of one subject's true motion; segment k runs from knot k to knot k+1."""

    t: list[float] = field(default_factory=list)
    lon: list[float] = field(default_factory=list)
    lat: list[float] = field(default_factory=list)
    status: list[int] = field(default_factory=list)
    dest: list[int] = field(default_factory=list)
    _cache: dict[str, tuple[F64, ...]] = field(default_factory=dict, repr=False, compare=False)

    def start(self, t_s: float, lon: float, lat: float, status: int = STATUS_UNDERWAY, dest: int = -1) -> None:
        self._cache.clear()
        self.t.append(float(t_s))
        self.lon.append(float(lon))
        self.lat.append(float(lat))
        self.status.append(status)
        self.dest.append(dest)

    @property
    def end_t(self) -> float:
        return self.t[-1]

    def sail(self, lon: F64, lat: F64, kn: F64, dest: int = -1) -> None:
        """Sail from the current position through the given points; ``kn[i]`` is the speed to reach point i."""
        if len(lon) == 0:
            return
        self._cache.clear()
        plon = np.concatenate([[self.lon[-1]], lon])
        plat = np.concatenate([[self.lat[-1]], lat])
        dist = geodesy.distance_m(plon[:-1], plat[:-1], plon[1:], plat[1:])
        speed = np.maximum(np.asarray(kn, dtype=np.float64), 0.05) * geodesy.KNOT_M_S
        times = self.t[-1] + np.cumsum(dist / speed)
        self.status[-1] = STATUS_UNDERWAY
        self.dest[-1] = dest
        self.t.extend(times.tolist())
        self.lon.extend(np.asarray(lon, dtype=np.float64).tolist())
        self.lat.extend(np.asarray(lat, dtype=np.float64).tolist())
        self.status.extend([STATUS_UNDERWAY] * len(lon))
        self.dest.extend([dest] * len(lon))

    def dwell(self, duration_s: float, status: int, dest: int = -1) -> None:
        """Stay at the current position for ``duration_s``."""
        self._cache.clear()
        self.status[-1] = status
        self.dest[-1] = dest
        self.start(self.t[-1] + duration_s, self.lon[-1], self.lat[-1], status, dest)

    def arrays(self) -> tuple[F64, F64, F64]:
        """The knots as arrays (cached until the track changes; do not modify them)."""
        got = self._cache.get("arrays")
        if got is None:
            got = self._cache["arrays"] = (np.asarray(self.t), np.asarray(self.lon), np.asarray(self.lat))
        return got[0], got[1], got[2]

    def position_at(self, ts: npt.ArrayLike) -> tuple[F64, F64]:
        """Return the true (lon, lat) at the given times (clamped to the track's ends)."""
        t, lon, lat = self.arrays()
        q = np.asarray(ts, dtype=np.float64)
        return np.interp(q, t, lon), np.interp(q, t, lat)

    def segment_speeds(self) -> tuple[F64, F64]:
        """Return (speed_kn, course_deg) of every segment; course carries over through stops (cached)."""
        got = self._cache.get("speeds")
        if got is not None:
            return got[0], got[1]
        t, lon, lat = self.arrays()
        dist = geodesy.distance_m(lon[:-1], lat[:-1], lon[1:], lat[1:])
        dt = np.diff(t)
        kn = np.where(dt > 0, dist / np.where(dt > 0, dt, 1.0) / geodesy.KNOT_M_S, 0.0)
        az = geodesy.azimuth_deg(lon[:-1], lat[:-1], lon[1:], lat[1:])
        moving = dist > 0.5
        idx = np.where(moving, np.arange(len(az)), -1)
        idx = np.maximum.accumulate(idx)
        first = int(np.argmax(moving)) if moving.any() else 0
        idx[idx < 0] = first
        course = az[idx] if len(az) else az
        self._cache["speeds"] = (kn, course)
        return kn, course


@dataclass
class Samples:
    """Sampled reports of one vessel (truth positions, before noise)."""

    ts: I64
    lon: F64
    lat: F64
    sog: F64
    cog: F64
    status: npt.NDArray[np.uint8]


def sample(track: Track, cls: str, t0_s: float, t_end_s: float, phase_s: int) -> Samples:
    """Return the report times and true states of ``track`` between t0 and t_end for an AIS class."""
    t, lon, lat = track.arrays()
    kn, course = track.segment_speeds()
    status = np.asarray(track.status[:-1])
    out: list[I64] = []
    last: float | None = None
    for k in range(len(kn)):
        a, b = t[k], t[k + 1]
        if b <= t0_s - 200 or b <= a:
            continue
        if a >= t_end_s:
            break
        iv = report_interval_s(cls, float(kn[k]), int(status[k]))
        cursor = float(np.ceil(a)) + phase_s % iv if last is None else max(float(np.ceil(a)), last + iv)
        if cursor >= b:
            continue
        ts = np.arange(cursor, b, iv)
        out.append(ts.astype(np.int64))
        last = float(ts[-1])
    ts_all = np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
    ts_all = ts_all[(ts_all >= t0_s) & (ts_all < t_end_s)]
    seg = np.clip(np.searchsorted(t, ts_all, side="right") - 1, 0, max(len(kn) - 1, 0))
    return Samples(
        ts=ts_all,
        lon=np.interp(ts_all, t, lon),
        lat=np.interp(ts_all, t, lat),
        sog=kn[seg] if len(kn) else np.zeros(len(ts_all)),
        cog=course[seg] if len(kn) else np.zeros(len(ts_all)),
        status=status[seg].astype(np.uint8) if len(kn) else np.zeros(len(ts_all), dtype=np.uint8),
    )
