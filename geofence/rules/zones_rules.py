"""Per-fence rule tables and the vectorised zone-cross check.

:class:`ZoneTables` resolves every fence's parameters once per zone set (fence
property, then rules file, then built-in default) into lists indexed like
``ZoneSet.fences``, and caches the overlap decisions per set of containing
fences: the smallest containing fence with an opinion decides ``stop_allowed``,
the lowest ``speed_limit_kn`` among containing fences (and the rules file's
global limit) applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

from geofence.baseline import MIN_SAMPLES, ship_class
from geofence.fence import ZoneKind, ZoneSet
from geofence.rules.config import RulesConfig

__all__ = ["Baseline", "ZoneTables", "segment_crossings"]

_MOORING = frozenset({ZoneKind.PORT, ZoneKind.BERTH, ZoneKind.ANCHORAGE})

#: Learned dwell baseline: a ``geofence.baseline.Baseline`` (``dwell_limit_min(zone, ship_type, "p99")``) or a
#: plain mapping (zone_id, ship_type or None) -> {"p99": minutes, ...}.
Baseline = Mapping[tuple[str, int | None], Mapping[str, float]] | Any


class ZoneTables:
    """Resolved per-fence parameters and cached overlap decisions for one zone set."""

    def __init__(self, zones: ZoneSet, config: RulesConfig, baseline: Baseline | None = None) -> None:
        self.zones = zones
        self.version = zones.version
        fences = zones.fences
        self.ids = [f.id for f in fences]
        self._index_of = {fid: i for i, fid in enumerate(self.ids)}
        self.kinds = [f.kind for f in fences]
        self.kind_values = [k.value for k in self.kinds]
        self.restricted = [k is ZoneKind.RESTRICTED for k in self.kinds]
        self.areas = [float(shapely.area(f.geometry)) for f in fences]
        hyst = config.get("zone_enter", "hysteresis_m")
        min_in = config.get("zone_enter", "min_inside_s")
        self.hysteresis_m = [float(config.fence_param(f, "hysteresis_m", hyst)) for f in fences]
        self.min_inside_s = [float(config.fence_param(f, "min_inside_s", min_in)) for f in fences]
        self.severity = [config.fence_param(f, "severity", None) for f in fences]
        self.stop_allowed: list[bool | None] = []
        for f in fences:
            sa = config.fence_param(f, "stop_allowed", None)
            self.stop_allowed.append(f.stop_allowed if sa is None else bool(sa))
        self.speed_limit_kn: list[float | None] = [
            (None if (v := config.fence_param(f, "speed_limit_kn", None)) is None else float(v)) for f in fences
        ]
        self.gap_threshold_s: list[float | None] = [
            (None if (v := config.fence_param(f, "gap_threshold_s", None)) is None else float(v)) for f in fences
        ]
        # default: true for kind customs (a customs zone exists to hold goods until release), else false
        self.exit_requires_release = [
            bool(config.fence_param(f, "exit_requires_release", f.kind is ZoneKind.CUSTOMS)) for f in fences
        ]
        # max_dwell_min per fence: the deciding value and its source, and the numeric fall-back (with its
        # source) that applies when a percentile has no learned baseline value
        self.max_dwell: list[float | str | None] = []
        self.dwell_source: list[str] = []
        self.dwell_fallback: list[tuple[float | None, str]] = []
        for f in fences:
            chain = config.param_sources(f, "max_dwell_min", "dwell_exceeded")
            v, src = chain[0] if chain else (None, "default")
            self.max_dwell.append(v)
            self.dwell_source.append(src)
            fb: tuple[float | None, str] = (None, "default")
            if isinstance(v, str):
                fb = next(((float(x), s) for x, s in chain[1:] if not isinstance(x, str)), (None, "default"))
                fb = (fb[0], f"{fb[1]} (no baseline for {v})")
            self.dwell_fallback.append(fb)
        self.baseline = baseline
        self.global_limit_kn = config.get("overspeed", "speed_limit_kn")
        self._stop_cache: dict[tuple[int, ...], tuple[bool | None, int]] = {}
        self._limit_cache: dict[tuple[int, ...], float | None] = {}
        self._moor_cache: dict[tuple[int, ...], bool] = {}
        self.keys = np.random.default_rng(0x6E0F).integers(1, 2**62, max(1, len(fences)), dtype=np.int64)
        glob = float("inf") if self.global_limit_kn is None else float(self.global_limit_kn)
        self.limit_arr = np.array([glob if v is None else min(v, glob) for v in self.speed_limit_kn] or [0.0])
        self.gap_arr = np.array([float("inf") if v is None else v for v in self.gap_threshold_s] or [0.0])
        self.moor_arr = np.array([k in _MOORING for k in self.kinds] or [False], dtype=bool)
        self._geoms = np.array([f.geometry for f in fences], dtype=object)
        for geom in self._geoms:
            shapely.prepare(geom)
        self._tree = shapely.STRtree(self._geoms) if len(fences) else None

    def index_of(self, fence_id: str) -> int:
        """Index of a fence id in this zone set, or -1."""
        return self._index_of.get(fence_id, -1)

    def stop_rule(self, inside: tuple[int, ...]) -> tuple[bool | None, int]:
        """(stop_allowed, deciding fence or -1) for a set of containing fences."""
        hit = self._stop_cache.get(inside)
        if hit is None:
            best: tuple[float, str, int] | None = None
            for f in inside:
                if self.stop_allowed[f] is not None and (best is None or (self.areas[f], self.ids[f]) < best[:2]):
                    best = (self.areas[f], self.ids[f], f)
            hit = (None, -1) if best is None else (self.stop_allowed[best[2]], best[2])
            self._stop_cache[inside] = hit
        return hit

    def limit_kn(self, inside: tuple[int, ...]) -> float | None:
        """The applicable speed limit for a set of containing fences (None: no limit)."""
        if inside in self._limit_cache:
            return self._limit_cache[inside]
        vals = [v for f in inside if (v := self.speed_limit_kn[f]) is not None]
        if self.global_limit_kn is not None:
            vals.append(float(self.global_limit_kn))
        out = min(vals) if vals else None
        self._limit_cache[inside] = out
        return out

    def mooring(self, inside: tuple[int, ...]) -> bool:
        """Whether any containing fence is a port, berth or anchorage (encounters are normal there)."""
        hit = self._moor_cache.get(inside)
        if hit is None:
            hit = self._moor_cache[inside] = any(self.kinds[f] in _MOORING for f in inside)
        return hit

    def dwell_limit_s(self, f: int, ship_type: int | None) -> float | None:
        """Maximum dwell in fence ``f`` for a ship type, in seconds (None: no dwell rule)."""
        return self.dwell_limit(f, ship_type)[0]

    def dwell_limit(self, f: int, ship_type: int | None) -> tuple[float | None, str]:
        """(maximum dwell in seconds or None, the source that decided it) for fence ``f`` and a ship type.

        Sources: ``"fence"``, ``"rules file"``, ``"default"`` for numbers; ``"baseline p99 (zone, ship
        type)"`` or ``"baseline p99 (zone)"`` for a learned percentile; a percentile without a learned
        value (no baseline, or too little history for the zone) falls back to the next numeric value in
        precedence order, e.g. ``"default (no baseline for p99)"`` (None there: no dwell rule).
        """
        v = self.max_dwell[f]
        if v is None:
            return None, self.dwell_source[f]
        if not isinstance(v, str):
            return float(v) * 60.0, self.dwell_source[f]
        zone_id = self.ids[f]
        if self.baseline is not None:
            lookup = getattr(self.baseline, "dwell_limit_min", None)
            if lookup is not None:  # geofence.baseline.Baseline (learned by the replay tools)
                minutes = lookup(zone_id, ship_type, v)
                if minutes is not None:
                    return float(minutes) * 60.0, f"baseline {v} ({_baseline_scope(self.baseline, zone_id, ship_type)})"
            else:
                entry = self.baseline.get((zone_id, ship_type))
                scope = "zone" if ship_type is None else "zone, ship type"
                if not entry or v not in entry:
                    entry, scope = self.baseline.get((zone_id, None)), "zone"
                if entry and v in entry:
                    return float(entry[v]) * 60.0, f"baseline {v} ({scope})"
        fb, src = self.dwell_fallback[f]
        return (None if fb is None else fb * 60.0), src

    def is_restricted(self, f: int) -> bool:
        """Whether fence ``f`` is restricted water."""
        return self.restricted[f]


def _baseline_scope(baseline: Any, zone_id: str, ship_type: int | None) -> str:
    """Whether a learned baseline answered for the ship's class or only zone-wide (``all``)."""
    row = getattr(baseline, "dwell_min", {}).get(zone_id, {}).get(ship_class(ship_type))
    return "zone, ship type" if row is not None and row.get("n", 0) >= MIN_SAMPLES else "zone"


def segment_crossings(
    tables: ZoneTables,
    lon0: npt.NDArray[np.float64],
    lat0: npt.NDArray[np.float64],
    lon1: npt.NDArray[np.float64],
    lat1: npt.NDArray[np.float64],
    candidates: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None = None,
    inside: list[npt.NDArray[np.int8]] | None = None,
    meets: Any = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(segment, fence) pairs where the segment intersects the fence and neither end lies inside it.

    ``candidates`` are (segment, fence) pairs known to include every answer (for example
    :meth:`geofence.index.FenceIndex.boundary_candidates`); without them the R-tree over
    the fence envelopes supplies them. ``inside``, per candidate and end point (start,
    end), says whether that end is known to lie inside the fence (1), outside (0), or
    must be tested (-1). ``meets(lon0, lat0, lon1, lat1, fence)`` may decide whether a segment
    meets a fence's boundary (1, 0, or -1 for undecided); with both ends outside, that is
    whether it crosses the fence. The exact tests use the prepared fences.
    """
    if tables._tree is None or lon0.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    if candidates is None:
        coords = np.stack([np.stack([lon0, lat0], axis=1), np.stack([lon1, lat1], axis=1)], axis=1)
        si, fi = tables._tree.query(shapely.linestrings(coords))  # envelopes only
    else:
        si, fi = candidates
    if si.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    if inside is None:
        g = tables._geoms[fi]
        keep = ~(shapely.intersects_xy(g, lon0[si], lat0[si]) | shapely.intersects_xy(g, lon1[si], lat1[si]))
    else:
        keep = (inside[0] != 1) & (inside[1] != 1)
        for end, (lo, la) in enumerate(((lon0, lat0), (lon1, lat1))):
            test = np.flatnonzero(keep & (inside[end] < 0))
            if test.size:
                keep[test] &= ~shapely.intersects_xy(tables._geoms[fi[test]], lo[si[test]], la[si[test]])
    si, fi = si[keep], fi[keep]
    if si.size and meets is not None:
        m = meets(lon0[si], lat0[si], lon1[si], lat1[si], fi)
        sure = m >= 0
        hit = m == 1
        test = np.flatnonzero(~sure)
    else:
        hit = np.zeros(si.size, dtype=bool)
        test = np.arange(si.size)
    if test.size:
        st = si[test]
        segs = shapely.linestrings(
            np.stack([np.stack([lon0[st], lat0[st]], axis=1), np.stack([lon1[st], lat1[st]], axis=1)], axis=1)
        )
        hit[test] = shapely.intersects(tables._geoms[fi[test]], segs)
    si, fi = si[hit], fi[hit]
    order = np.lexsort((fi, si))
    return si[order].astype(np.int64), fi[order].astype(np.int64)
