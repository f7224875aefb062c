"""Encounter detection: two vessels lying together, slow, outside mooring zones.

Two vessels close together and slow in the open river (ship-to-ship transfer,
smuggling, a breakdown alongside) are worth a look; the same two vessels at a
berth or in an anchorage are normal. This module computes the *pair condition*
and its transitions; the engine turns each transition into one alert per vessel
(``details.other_subject_id`` = the other vessel) and owns the open/close lines.

Inputs
------
:meth:`EncounterDetector.ingest` takes time-ordered slices of vessel records as
arrays of equal length: ``subject_id`` (object array of str), ``ts_s`` (UTC
epoch seconds), ``lon_deg``, ``lat_deg`` (WGS84 degrees, (lon, lat) order),
``speed_kn`` (reported SOG, or the engine's derived speed; NaN = unknown) and
``in_mooring_zone`` (bool: the record lies in a port, berth or anchorage zone;
the engine computes it with the fence index). Pass vessels only, never
containers. Slices must be non-decreasing in time *across* calls; within a slice
rows are sorted by time here, and rows with equal timestamps are applied
together, so their input order does not matter (if one subject has two rows at
the same time, the later row wins).

Outputs
-------
A list of :class:`PairTransition` ``(subject_a, subject_b, started_ts_s, ts_s,
distance_m, lon, lat, kind)`` with ``subject_a < subject_b`` (sorted ids, so the
pair is deterministic), ``kind`` ``'start'`` or ``'end'``, ``lon``/``lat`` the
midpoint of the two vessels, ``distance_m`` their geodesic distance at ``ts_s``,
``started_ts_s`` the first time the pair was close and slow. Transitions come
sorted by (ts_s, subject_a, subject_b).

Condition
---------
Only *candidates* take part in new pairs: finite speed below ``slow_kn`` and not
in a mooring zone, so the set to index is small. Pairs are evaluated only at
reports of one of their vessels, against the other vessel's latest report.

*Time alignment.* The other vessel's latest report is ``lag_s`` old. A class-B
transponder reports every 3 min at or below 2 kn (ITU-R M.1371), so at a report
of a class-A neighbour (every 10 s) the class-B position can be 3 min stale; at
0.6 kn that is 55 m of drift, enough to push a pair 60 m abeam beyond 100 m on
every class-A report and so never let it last 20 min (the bug
``test_regression_class_b_partner_with_3_min_reports_is_paired``). The distance
is therefore judged as the *smallest distance consistent with the reports*:
``d_eff = max(d − v × lag_s, 0)``, where ``d`` is the geodesic distance between
the two latest positions and ``v`` the stale vessel's last speed (NaN: ``slow_kn``;
capped at ``release_kn``). This is a lower bound, so it never breaks a real pair;
it cannot make a false one either, because every report of the *less frequent*
vessel meets a fresh position of the other (lag of seconds) and is judged almost
exactly, and those reports come at least every few minutes, well inside
``min_duration_s``. An evaluation whose other report is older than ``max_lag_s``
is skipped: it neither confirms, starts, breaks nor ends a pair (the silence rule
below handles vessels that stop reporting).

A pair is *close and slow* at an evaluation when both are candidates and
``d_eff < distance_m``. The pair becomes an encounter (``'start'``, emitted at
the report that completes the duration) when it has been close and slow at every
(non-skipped) evaluation for at least ``min_duration_s``; ``started_ts_s`` is the
first close-and-slow time. An encounter ends (``'end'``) when, at an evaluation,
``d_eff > release_factor × distance_m`` (hysteresis), either vessel is faster
than ``release_kn`` (hysteresis over ``slow_kn``; NaN speed does not end it) or
either enters a mooring zone. It also ends when either vessel falls silent: at
``min(last report of a, last report of b) + max_stale_s`` (a fixed function of
the data, so batch boundaries do not move it; such an end may be earlier than
the record that revealed it).

Vessels merely passing each other in the fairway do not qualify: under way they
are faster than ``slow_kn`` and are not candidates at all; two slow vessels on
opposite courses stay within 100 m for a few minutes only (at 0.5 kn each,
200 m of relative travel take 6.5 min), far below ``min_duration_s``.

Parameters (defaults, and the anchor they were adapted from)
------------------------------------------------------------
``distance_m`` = 100 m
    Two hulls alongside or a transfer hose apart; Global Fishing Watch's
    encounter dataset uses 500 m between vessels at sea, tightened for a river
    whose fairway is a few hundred metres wide.
``slow_kn`` = 1.0 kn
    GFW encounters require median speed < 2 kn; MarineTraffic counts stopped
    below 0.5 kn. 1 kn sits between them and tolerates drift on the current.
``min_duration_s`` = 1200 s (20 min)
    Half of GFW's 2 h minimum encounter duration scaled down for short river
    transfers; long enough that overtaking or a lock queue does not count.
``release_factor`` = 1.5, ``release_kn`` = 2.0 kn
    Hysteresis, as GFW enters ports at 3 km and exits at 4 km, and counts a stop
    below 0.2 kn that ends above 0.5 kn.
``max_stale_s`` = 1800 s
    AISdb's dark thresholds run 15–60 min; an older position says nothing about
    where the vessel is now.
``max_lag_s`` = 360 s
    Two class-B reporting intervals at or below 2 kn (ITU-R M.1371: 3 min), so
    one missed class-B report does not skip the pair; at ``slow_kn`` the
    allowance is then at most 185 m.
``cell_m`` = 1000 m
    The spatial hash cell; larger than the search radius
    (:attr:`EncounterParams.search_radius_m`, 285 m by default), so at most four
    cells are searched per candidate.

How the engine uses it
----------------------
Per batch, after computing speed and ``in_mooring_zone`` for vessel records,
call :meth:`EncounterDetector.ingest` with them in processing order; when the
watermark advances call :meth:`EncounterDetector.expire` (its end transitions
carry their own, data-determined ``ts_s``). For each ``'start'`` open one
``encounter`` alert for ``subject_a`` and one for ``subject_b`` (start time
``started_ts_s``, other vessel in ``details.other_subject_id``); for each
``'end'`` close both. Checkpoint with :meth:`snapshot` / :meth:`restore`.

Partitioning (streaming)
------------------------
:func:`cell_keys` maps positions to a fixed global grid (no state, the same key
on every worker) and :func:`expand_cells` lists every cell within a radius of
each point. A second keyed stage can route each vessel record that is a
candidate, or that follows a candidate record of the same subject (so the
record that ends candidacy arrives too), to its home cell and, as a ghost copy,
to every cell within :attr:`EncounterParams.search_radius_m` (``distance_m`` plus
the largest lag allowance) of it; run one :class:`EncounterDetector` per cell
key; and keep a transition only from the detector whose cell is the home cell of
``subject_a``'s latest position at that time. A slow pair drifts a few hundred
metres in an encounter, so with 1 km cells it can change owner while open; the
streaming stage must then carry the open pair (``snapshot`` rows of that pair)
to the new owner, or key by a coarser cell. Not exercised here: the embedded
engine runs one detector over all vessels.

Cost: rows of subjects that are alone (no other subject in any cell within
``search_radius_m`` during the slice, and in no tracked pair) are applied in bulk;
only the others take a Python step per timestamp. Measured: ~300k records/s
with 10,000 vessels of which 30 % are slow candidates spread over the Yangtze.

This module uses :mod:`pyproj` (``Geod('WGS84')``) directly for distances; the
shared ``geofence.geodesy`` module did not exist when it was written.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from pyproj import Geod

from geofence.errors import ConfigError

__all__ = [
    "DEFAULT_CELL_M",
    "DEFAULT_DISTANCE_M",
    "DEFAULT_MAX_LAG_S",
    "DEFAULT_MAX_STALE_S",
    "DEFAULT_MIN_DURATION_S",
    "DEFAULT_REF_LAT_DEG",
    "DEFAULT_RELEASE_FACTOR",
    "DEFAULT_RELEASE_KN",
    "DEFAULT_SLOW_KN",
    "EncounterDetector",
    "EncounterParams",
    "PairTransition",
    "cell_keys",
    "expand_cells",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

DEFAULT_DISTANCE_M = 100.0
DEFAULT_SLOW_KN = 1.0
DEFAULT_MIN_DURATION_S = 1200.0
DEFAULT_RELEASE_FACTOR = 1.5
DEFAULT_RELEASE_KN = 2.0
DEFAULT_MAX_STALE_S = 1800.0
DEFAULT_MAX_LAG_S = 360.0
DEFAULT_CELL_M = 1000.0
#: Reference latitude of the global grid's longitude scaling (the Yangtze runs at 28–32° N).
DEFAULT_REF_LAT_DEG = 30.0

_M_PER_DEG = 111_320.0  # metres per degree of latitude, and of longitude at the equator
_KNOT_M_S = 1852.0 / 3600.0
_ROW_STRIDE = np.int64(1 << 32)
_GEOD = Geod(ellps="WGS84")
_SNAPSHOT_VERSION = 1


# ---------------------------------------------------------------------------- grid


def _grid(cell_m: float, ref_lat_deg: float) -> tuple[float, float, int]:
    if not (math.isfinite(cell_m) and cell_m > 0):
        raise ConfigError(f"cell_m = {cell_m!r} must be a positive number of metres, e.g. 1000")
    if not (math.isfinite(ref_lat_deg) and abs(ref_lat_deg) < 89.0):
        raise ConfigError(f"ref_lat_deg = {ref_lat_deg!r} must be a latitude within ±89°, e.g. 30")
    dlat = cell_m / _M_PER_DEG
    dlon = cell_m / (_M_PER_DEG * math.cos(math.radians(ref_lat_deg)))
    return dlat, dlon, math.ceil(360.0 / dlon)


def cell_keys(
    lon_deg: npt.ArrayLike,
    lat_deg: npt.ArrayLike,
    cell_m: float = DEFAULT_CELL_M,
    ref_lat_deg: float = DEFAULT_REF_LAT_DEG,
) -> I64:
    """Return the int64 key of the fixed global grid cell of each (lon, lat).

    Rows are ``cell_m`` of latitude; columns ``cell_m`` of longitude *at*
    ``ref_lat_deg`` (narrower in metres poleward of it, wider equatorward), so
    the key is a pure function of the position and two constants: every worker
    computes the same key. Key = row × 2³² + column; columns wrap at ±180°.
    """
    dlat, dlon, ncols = _grid(cell_m, ref_lat_deg)
    lon = np.asarray(lon_deg, dtype=np.float64)
    lat = np.asarray(lat_deg, dtype=np.float64)
    row = np.floor((np.clip(lat, -90.0, 90.0) + 90.0) / dlat).astype(np.int64)
    col = np.floor((lon + 180.0) / dlon).astype(np.int64) % ncols
    return row * _ROW_STRIDE + col


def expand_cells(
    lon_deg: npt.ArrayLike,
    lat_deg: npt.ArrayLike,
    radius_m: float,
    cell_m: float = DEFAULT_CELL_M,
    ref_lat_deg: float = DEFAULT_REF_LAT_DEG,
) -> tuple[I64, I64]:
    """Return every grid cell within ``radius_m`` of each point, as ``(point_idx, key)`` pairs.

    The neighbour expansion of :func:`cell_keys`: the cells overlapping the
    point's bounding box of half-size ``radius_m`` (longitude half-width scaled
    by the cosine of the box's most poleward latitude), so it may over-report,
    never miss. Includes the point's own cell. Rows ascend by point, then key.
    """
    dlat, dlon, ncols = _grid(cell_m, ref_lat_deg)
    lon = np.atleast_1d(np.asarray(lon_deg, dtype=np.float64))
    lat = np.atleast_1d(np.asarray(lat_deg, dtype=np.float64))
    if not (math.isfinite(radius_m) and radius_m >= 0):
        raise ConfigError(f"radius_m = {radius_m!r} must be a non-negative number of metres")
    half_lat = radius_m / _M_PER_DEG
    lat0 = np.clip(lat - half_lat, -90.0, 90.0)
    lat1 = np.clip(lat + half_lat, -90.0, 90.0)
    cos_min = np.maximum(np.cos(np.radians(np.maximum(np.abs(lat0), np.abs(lat1)))), 1e-9)
    half_lon = np.minimum(radius_m / (_M_PER_DEG * cos_min), 360.0)
    r0 = np.floor((lat0 + 90.0) / dlat).astype(np.int64)
    r1 = np.floor((lat1 + 90.0) / dlat).astype(np.int64)
    c0 = np.floor((lon - half_lon + 180.0) / dlon).astype(np.int64)
    c1 = np.floor((lon + half_lon + 180.0) / dlon).astype(np.int64)
    c1 = np.minimum(c1, c0 + ncols - 1)  # a box wider than the globe covers every column once
    idx_parts: list[I64] = []
    key_parts: list[I64] = []
    for dr in range(int((r1 - r0).max(initial=-1)) + 1):
        for dc in range(int((c1 - c0).max(initial=-1)) + 1):
            sel = np.nonzero((r0 + dr <= r1) & (c0 + dc <= c1))[0]
            if sel.size:
                idx_parts.append(sel.astype(np.int64))
                key_parts.append((r0[sel] + dr) * _ROW_STRIDE + (c0[sel] + dc) % ncols)
    if not idx_parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    idx = np.concatenate(idx_parts)
    keys = np.concatenate(key_parts)
    order = np.lexsort((keys, idx))
    return idx[order], keys[order]


# ---------------------------------------------------------------------------- detector


class PairTransition(NamedTuple):
    """A change of a pair's encounter condition; ``subject_a < subject_b``."""

    subject_a: str
    subject_b: str
    started_ts_s: float
    ts_s: float
    distance_m: float
    lon: float
    lat: float
    kind: str  # 'start' | 'end'


@dataclass(frozen=True, slots=True)
class EncounterParams:
    """Thresholds of the encounter rule (see the module docstring for anchors)."""

    distance_m: float = DEFAULT_DISTANCE_M
    slow_kn: float = DEFAULT_SLOW_KN
    min_duration_s: float = DEFAULT_MIN_DURATION_S
    release_factor: float = DEFAULT_RELEASE_FACTOR
    release_kn: float = DEFAULT_RELEASE_KN
    max_stale_s: float = DEFAULT_MAX_STALE_S
    max_lag_s: float = DEFAULT_MAX_LAG_S
    cell_m: float = DEFAULT_CELL_M

    @property
    def search_radius_m(self) -> float:
        """Largest observed distance at which two candidates can still be judged close (lag allowance included)."""
        return self.distance_m + self.slow_kn * _KNOT_M_S * self.max_lag_s

    def __post_init__(self) -> None:
        for name in ("distance_m", "slow_kn", "min_duration_s", "release_kn", "max_stale_s", "max_lag_s", "cell_m"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"encounter: {name} = {value!r} must be a finite number >= 0")
        if not (math.isfinite(self.release_factor) and self.release_factor >= 1.0):
            raise ConfigError(f"encounter: release_factor = {self.release_factor!r} must be >= 1 (hysteresis)")
        if self.release_kn < self.slow_kn:
            raise ConfigError(
                f"encounter: release_kn = {self.release_kn} is below slow_kn = {self.slow_kn}; "
                "the release speed must be at least the slow speed"
            )
        if self.cell_m <= 0:
            raise ConfigError("encounter: cell_m must be > 0, e.g. 1000")
        if self.max_lag_s > self.max_stale_s:
            raise ConfigError(
                f"encounter: max_lag_s = {self.max_lag_s} exceeds max_stale_s = {self.max_stale_s}; "
                "a position too old to judge a pair must not be young enough to keep it"
            )


@dataclass(slots=True)
class _Vessel:
    ts_s: float
    lon: float
    lat: float
    speed_kn: float
    mooring: bool
    candidate: bool
    cell: int


@dataclass(slots=True)
class _Pair:
    started_ts_s: float
    active: bool


class EncounterDetector:
    """Stateful pair-condition detector over time-ordered vessel slices.

    State is small: only candidates (slow, outside mooring zones) and members of
    tracked pairs are kept, in a cell hash of ``cell_m`` cells.
    """

    def __init__(self, params: EncounterParams | None = None) -> None:
        self.params = params or EncounterParams()
        self._vessels: dict[str, _Vessel] = {}
        self._cells: dict[int, set[str]] = {}
        self._pairs: dict[tuple[str, str], _Pair] = {}
        self._by_subject: dict[str, set[tuple[str, str]]] = {}
        self._fast = True  # tests switch the quiet-subject shortcut off to compare with the plain path

    # -- public -------------------------------------------------------------

    def ingest(
        self,
        subject_id: npt.ArrayLike,
        ts_s: npt.ArrayLike,
        lon_deg: npt.ArrayLike,
        lat_deg: npt.ArrayLike,
        speed_kn: npt.ArrayLike,
        in_mooring_zone: npt.ArrayLike,
    ) -> list[PairTransition]:
        """Apply a slice of vessel records and return the pair transitions it caused, in time order."""
        sid = np.asarray(subject_id, dtype=object)
        ts = np.asarray(ts_s, dtype=np.float64)
        lon = np.asarray(lon_deg, dtype=np.float64)
        lat = np.asarray(lat_deg, dtype=np.float64)
        spd = np.asarray(speed_kn, dtype=np.float64)
        moor = np.asarray(in_mooring_zone, dtype=bool)
        n = ts.shape[0]
        if not all(a.shape == (n,) for a in (sid, lon, lat, spd, moor)):
            raise ConfigError("encounter: ingest arrays must be one-dimensional and of equal length")
        with np.errstate(invalid="ignore"):
            cand = np.isfinite(spd) & (spd < self.params.slow_kn) & ~moor
        # subjects that matter: candidates, and subjects held now or becoming held within this slice
        known = self._vessels.keys() | set(sid[cand].tolist())
        relevant = cand | np.fromiter((s in known for s in sid), dtype=bool, count=n)
        rows = np.nonzero(relevant)[0]
        if rows.size == 0:
            return []
        rows = rows[np.argsort(ts[rows], kind="stable")]
        if self._fast:
            rows = self._apply_quiet(rows, sid, ts, lon, lat, spd, moor, cand)
        out: list[PairTransition] = []
        for start, stop in _runs(ts[rows]):
            group = rows[start:stop]
            updates: dict[str, tuple[float, float, float, bool, bool]] = {}
            for i in group.tolist():
                updates[str(sid[i])] = (float(lon[i]), float(lat[i]), float(spd[i]), bool(moor[i]), bool(cand[i]))
            out.extend(self._step(float(ts[group[0]]), updates))
        out.sort(key=lambda tr: (tr.ts_s, tr.subject_a, tr.subject_b))
        return out

    def expire(self, watermark_s: float) -> list[PairTransition]:
        """End encounters and forget vessels silent for more than ``max_stale_s`` before ``watermark_s``.

        Call with a watermark that no later ingested record is older than. The
        end transitions carry ``ts_s = min(last reports) + max_stale_s``, the same
        time :meth:`ingest` would have given them.
        """
        stale = self.params.max_stale_s
        doomed = sorted(k for k in self._pairs if self._deadline(k) <= watermark_s)
        out = self._end_pairs(doomed)
        for s in sorted(s for s, v in self._vessels.items() if watermark_s - v.ts_s >= stale):
            if not self._by_subject.get(s):
                self._forget(s)
        out.sort(key=lambda t: (t.ts_s, t.subject_a, t.subject_b))
        return out

    def active_pairs(self) -> list[tuple[str, str, float]]:
        """Pairs currently in an encounter: ``(subject_a, subject_b, started_ts_s)``, sorted."""
        return sorted((a, b, p.started_ts_s) for (a, b), p in self._pairs.items() if p.active)

    def __len__(self) -> int:
        """Number of vessels held (candidates and pair members)."""
        return len(self._vessels)

    def holds(self, subject_id: str) -> bool:
        """Whether the vessel is held (a candidate or a pair member), so its next record may matter.

        A record of a vessel that is not held and is no candidate changes nothing
        here; callers may filter such records out before :meth:`ingest`.
        """
        return subject_id in self._vessels

    def snapshot(self) -> dict[str, Any]:
        """Return the state as plain data (lists of str, numpy arrays, bools); see :meth:`restore`."""
        ids = sorted(self._vessels)
        v = [self._vessels[s] for s in ids]
        pairs = sorted(self._pairs)
        return {
            "version": _SNAPSHOT_VERSION,
            "vessels": {
                "subject_id": ids,
                "ts_s": np.array([x.ts_s for x in v], dtype=np.float64),
                "lon_deg": np.array([x.lon for x in v], dtype=np.float64),
                "lat_deg": np.array([x.lat for x in v], dtype=np.float64),
                "speed_kn": np.array([x.speed_kn for x in v], dtype=np.float64),
                "mooring": np.array([x.mooring for x in v], dtype=bool),
                "candidate": np.array([x.candidate for x in v], dtype=bool),
            },
            "pairs": {
                "subject_a": [a for a, _ in pairs],
                "subject_b": [b for _, b in pairs],
                "started_ts_s": np.array([self._pairs[k].started_ts_s for k in pairs], dtype=np.float64),
                "active": np.array([self._pairs[k].active for k in pairs], dtype=bool),
            },
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Replace the state with one from :meth:`snapshot` (lists or arrays; JSON ``null`` speeds read as NaN)."""
        if state.get("version") != _SNAPSHOT_VERSION:
            raise ConfigError(f"encounter snapshot version {state.get('version')!r} is not {_SNAPSHOT_VERSION}")
        self._vessels.clear()
        self._cells.clear()
        self._pairs.clear()
        self._by_subject.clear()
        vs = state["vessels"]
        cols = [np.asarray(vs[k], dtype=np.float64) for k in ("ts_s", "lon_deg", "lat_deg", "speed_kn")]
        moor = np.asarray(vs["mooring"], dtype=bool)
        cand = np.asarray(vs["candidate"], dtype=bool)
        for i, s in enumerate(vs["subject_id"]):
            self._put(
                str(s),
                float(cols[0][i]),
                float(cols[1][i]),
                float(cols[2][i]),
                float(cols[3][i]),
                bool(moor[i]),
                bool(cand[i]),
            )
        ps = state["pairs"]
        started = np.asarray(ps["started_ts_s"], dtype=np.float64)
        active = np.asarray(ps["active"], dtype=bool)
        for i, (a, b) in enumerate(zip(ps["subject_a"], ps["subject_b"], strict=True)):
            self._track((str(a), str(b)), float(started[i]), bool(active[i]))

    # -- internals ----------------------------------------------------------

    def _allow_kn(self, v: _Vessel) -> float:
        """Speed bounding how far a vessel may have moved since its report (NaN: slow_kn; at most release_kn)."""
        spd = v.speed_kn
        return min(spd, self.params.release_kn) if spd == spd else self.params.slow_kn

    def _deadline(self, key: tuple[str, str]) -> float:
        return min(self._vessels[key[0]].ts_s, self._vessels[key[1]].ts_s) + self.params.max_stale_s

    def _step(self, t: float, updates: dict[str, tuple[float, float, float, bool, bool]]) -> list[PairTransition]:
        p = self.params
        # 1. pairs that went stale before this report (judged on the states before it)
        touched = sorted({k for s in updates for k in self._by_subject.get(s, ())})
        out = self._end_pairs([k for k in touched if self._deadline(k) <= t])
        # 2. apply the reports
        for s in sorted(updates):
            lon, lat, spd, moor, cand = updates[s]
            self._put(s, t, lon, lat, spd, moor, cand)
        # 3. pairs to evaluate: tracked pairs of updated vessels, and new close candidates
        keys = {k for s in updates for k in self._by_subject.get(s, ())}
        movers = sorted(s for s in updates if self._vessels[s].candidate)
        if movers:
            m_lon = np.array([self._vessels[s].lon for s in movers])
            m_lat = np.array([self._vessels[s].lat for s in movers])
            idx, cells = expand_cells(m_lon, m_lat, p.search_radius_m, p.cell_m)
            for i, c in zip(idx.tolist(), cells.tolist(), strict=True):
                for other in self._cells.get(c, ()):
                    if other != movers[i] and t - self._vessels[other].ts_s <= p.max_lag_s:
                        keys.add((movers[i], other) if movers[i] < other else (other, movers[i]))
        if not keys:
            self._cleanup(updates)
            return out
        ordered = sorted(keys)
        va = [self._vessels[a] for a, _ in ordered]
        vb = [self._vessels[b] for _, b in ordered]
        lon_a = np.array([v.lon for v in va])
        lat_a = np.array([v.lat for v in va])
        lon_b = np.array([v.lon for v in vb])
        lat_b = np.array([v.lat for v in vb])
        _, _, dist = _GEOD.inv(lon_a, lat_a, lon_b, lat_b)
        dist = np.asarray(dist, dtype=np.float64)
        for j, key in enumerate(ordered):
            a, b, d = va[j], vb[j], float(dist[j])
            lag_a, lag_b = t - a.ts_s, t - b.ts_s
            if lag_a > p.max_lag_s or lag_b > p.max_lag_s:
                continue  # not time-aligned: this evaluation decides nothing
            d_eff = max(d - (self._allow_kn(a) * lag_a + self._allow_kn(b) * lag_b) * _KNOT_M_S, 0.0)
            pair = self._pairs.get(key)
            mid = ((a.lon + b.lon) / 2.0, (a.lat + b.lat) / 2.0)
            if pair is not None and pair.active:
                released = (
                    d_eff > p.release_factor * p.distance_m
                    or a.speed_kn > p.release_kn
                    or b.speed_kn > p.release_kn
                    or a.mooring
                    or b.mooring
                )
                if released:
                    out.append(PairTransition(key[0], key[1], pair.started_ts_s, t, d, *mid, "end"))
                    self._untrack(key)
                continue
            close = a.candidate and b.candidate and d_eff < p.distance_m
            if not close:
                if pair is not None:
                    self._untrack(key)
                continue
            if pair is None:
                pair = self._track(key, t, False)
            if t - pair.started_ts_s >= p.min_duration_s:
                pair.active = True
                out.append(PairTransition(key[0], key[1], pair.started_ts_s, t, d, *mid, "start"))
        self._cleanup(set(updates) | {s for k in ordered for s in k})
        return out

    def _apply_quiet(
        self,
        rows: npt.NDArray[np.intp],
        sid: npt.NDArray[np.object_],
        ts: F64,
        lon: F64,
        lat: F64,
        spd: F64,
        moor: npt.NDArray[np.bool_],
        cand: npt.NDArray[np.bool_],
    ) -> npt.NDArray[np.intp]:
        """Apply, in bulk, the rows of subjects that cannot take part in any pair in this slice; return the rest.

        A subject is *quiet* when it is in no tracked pair and no cell within
        ``search_radius_m`` of any of its candidate rows holds another subject, neither
        now (the cell hash) nor at any time in this slice (the rows' home cells).
        No step can then find it or be changed by it, so only its last row
        matters. Typically most candidates are alone, and this avoids a Python
        step per report.
        """
        p = self.params
        rsid = sid[rows]
        involved: set[str] = {x for x in set(rsid.tolist()) if x in self._by_subject}
        crow = rows[cand[rows]]
        home = cell_keys(lon[crow], lat[crow], p.cell_m)
        home_by_row = dict(zip(crow.tolist(), home.tolist(), strict=True))
        if crow.size:
            csid = sid[crow]
            slice_home: dict[int, set[str]] = {}
            for c, x in zip(home.tolist(), csid.tolist(), strict=True):
                slice_home.setdefault(c, set()).add(x)
            eidx, ecell = expand_cells(lon[crow], lat[crow], p.search_radius_m, p.cell_m)
            ucells, inv = np.unique(ecell, return_inverse=True)
            occupants: list[set[str]] = []
            for c in ucells.tolist():
                occupants.append(self._cells.get(c, set()) | slice_home.get(c, set()))
            sizes = np.fromiter((len(o) for o in occupants), dtype=np.int64, count=len(occupants))
            single = np.array([next(iter(o)) if len(o) == 1 else "" for o in occupants], dtype=object)
            esid = csid[eidx]
            hit = (sizes[inv] >= 2) | ((sizes[inv] == 1) & (single[inv] != esid))
            if hit.any():
                involved.update(esid[hit].tolist())
                for j in np.unique(inv[hit]).tolist():
                    involved.update(occupants[j])
        is_involved = np.fromiter((x in involved for x in rsid), dtype=bool, count=rsid.shape[0])
        last: dict[str, int] = {}
        for i in rows[~is_involved].tolist():
            last[str(sid[i])] = i
        for x in sorted(last):
            i = last[x]
            if cand[i]:
                self._put(
                    x, float(ts[i]), float(lon[i]), float(lat[i]), float(spd[i]), bool(moor[i]), True, home_by_row[i]
                )
            elif x in self._vessels:
                self._forget(x)
        kept: npt.NDArray[np.intp] = rows[is_involved]
        return kept

    def _end_pairs(self, keys: list[tuple[str, str]]) -> list[PairTransition]:
        out: list[PairTransition] = []
        for key in keys:
            pair = self._pairs[key]
            if pair.active:
                a, b = self._vessels[key[0]], self._vessels[key[1]]
                d = float(_GEOD.inv(a.lon, a.lat, b.lon, b.lat)[2])
                mid = ((a.lon + b.lon) / 2.0, (a.lat + b.lat) / 2.0)
                out.append(PairTransition(key[0], key[1], pair.started_ts_s, self._deadline(key), d, *mid, "end"))
            self._untrack(key)
        self._cleanup({s for k in keys for s in k})
        return out

    def _put(
        self, s: str, t: float, lon: float, lat: float, spd: float, moor: bool, cand: bool, cell: int | None = None
    ) -> None:
        old = self._vessels.get(s)
        if old is not None and old.candidate:
            members = self._cells.get(old.cell)
            if members is not None:
                members.discard(s)
                if not members:
                    del self._cells[old.cell]
        if not cand:
            cell = -1
        elif cell is None:
            cell = int(cell_keys(lon, lat, self.params.cell_m))
        self._vessels[s] = _Vessel(t, lon, lat, spd, moor, cand, cell)
        if cand:
            self._cells.setdefault(cell, set()).add(s)

    def _forget(self, s: str) -> None:
        old = self._vessels.pop(s)
        if old.candidate:
            members = self._cells.get(old.cell)
            if members is not None:
                members.discard(s)
                if not members:
                    del self._cells[old.cell]
        self._by_subject.pop(s, None)

    def _cleanup(self, subjects: set[str] | dict[str, Any]) -> None:
        for s in subjects:
            v = self._vessels.get(s)
            if v is not None and not v.candidate and not self._by_subject.get(s):
                self._forget(s)

    def _track(self, key: tuple[str, str], started: float, active: bool) -> _Pair:
        pair = _Pair(started, active)
        self._pairs[key] = pair
        for s in key:
            self._by_subject.setdefault(s, set()).add(key)
        return pair

    def _untrack(self, key: tuple[str, str]) -> None:
        del self._pairs[key]
        for s in key:
            keys = self._by_subject.get(s)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_subject[s]


def _runs(values: F64) -> Iterator[tuple[int, int]]:
    """Yield (start, stop) of runs of equal values in a sorted array."""
    if values.size == 0:
        return
    bounds = np.nonzero(np.diff(values) != 0)[0] + 1
    edges = [0, *bounds.tolist(), int(values.size)]
    yield from itertools.pairwise(edges)
