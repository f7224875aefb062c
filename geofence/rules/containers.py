"""Container rules: separation from the declared carrier, and exits from release-controlled zones.

(a) ``container_separation``
----------------------------
A container tracker reports its own position and the id of the vessel that
should carry it (``PositionBatch.carrier_id``). Comparing it with the carrier's
*latest* position is wrong when the two report at different times (a carrier at
10 kn moves 300 m a minute), so :class:`CarrierTracks` keeps a short history of
each declared carrier's reports and :meth:`CarrierTracks.separation_m`
compares the container with the carrier's position *at the container's report
time*, interpolated linearly in (lon, lat) between the carrier reports that
bracket it.

Inputs: ids as object arrays of str, ``ts_s`` UTC epoch seconds, ``lon_deg``,
``lat_deg`` WGS84 degrees in (lon, lat) order. Output: geodesic distance in
metres (pyproj ``Geod('WGS84')``; the shared ``geofence.geodesy`` module was
being written in parallel), NaN when the carrier's position at that time is
unknown.

Alignment rule (a pure function of the carrier's reports, so batch size cannot
change it): let *prev* be the carrier's last report with ``prev.ts <= ts`` and
``ts - prev.ts <= history_s``, and *next* its first report with ``ts < next.ts
<= ts + max_gap_s``. Both present: interpolate. Only one: use it if it is
within ``max_gap_s`` of ``ts``. Neither: NaN (also for an empty carrier id).

The rule itself is :class:`SeparationDetector` (built on :class:`CarrierTracks`):

* **Times** are the engine's *effective* times and rows come in processing
  order (as for the encounter detector), so that every decision is a function of
  the processing order only and the output cannot depend on the micro-batch
  size. In an in-order feed the effective time is the report time.
* **Which carrier reports are kept.** A vessel report at ``t`` is stored iff
  some container report processed before it declared that vessel as carrier at a
  time ``>= t - (max_gap_s + history_s)`` (or ``track_all``). Only watched
  carriers cost memory, and the rule does not depend on when :meth:`expire`
  ran. Consequence: a carrier's reports from before its first container report
  are unknown; the first container reports are aligned on the next carrier report.
* **When a container report is judged.** At ``ts + max_gap_s <= W`` (watermark):
  every carrier report the alignment may use has then been processed, because
  every later record has an effective time ``>= W``. :meth:`SeparationDetector.finish`
  judges the rest at the end of input with what is known (no report will come).
* **State per container:** separated since (candidate), open or not, last judged
  report. ``separation_m > separation_threshold_m`` starts or continues a
  candidate; it *opens* once it has held ``min_duration_s`` (``'open'``
  transition, dated at that report, ``started_ts_s`` = first separated report);
  a judged report ``<= separation_threshold_m`` *closes* it (``'close'``) and
  clears the candidate. NaN (carrier position unknown) decides nothing. A
  candidate restarts when the container's previous judged report is more than
  ``history_s`` older (the separation was not observed in between). A container
  that declares a different carrier closes an open alert at that report and
  starts afresh with the new carrier.

Engine wiring (one call per processed chunk, after the chunk's records are in
processing order): :meth:`SeparationDetector.ingest` with every vessel and
container row of the chunk (container rows with ``is_container`` True and their
``carrier_id``; vessel rows with ``carrier_id`` ``""``), then
:meth:`SeparationDetector.advance` with the chunk's watermark; at end of input
:meth:`SeparationDetector.finish`. Each :class:`SeparationTransition` maps to one
``container_separation`` line: ``'open'`` → ``open`` (severity warning, subject
kind ``container``, zone null, ``ts`` = ``ts_s``, start = ``started_ts_s``),
``'close'`` → ``closed``; ``details``: ``separation_m``, ``carrier_id``,
``carrier_lon``/``carrier_lat`` (the time-aligned position), ``started`` (ISO of
``started_ts_s``), and ``duration_s`` on close. Checkpoint with
:meth:`SeparationDetector.snapshot` / :meth:`SeparationDetector.restore`.

Parameters (defaults, and the anchor they were adapted from):

``DEFAULT_SEPARATION_M`` = 1,000 m
    A container on board is within a hull length (≤ 300 m) of the carrier's
    antenna, plus GNSS/AIS error and interpolation error; GFW's 1 km port
    hysteresis band is the same order. 1 km flags a container left on a quay or
    moved to another vessel without false alarms from a long barge convoy.
``DEFAULT_MIN_DURATION_S`` = 900 s (15 min)
    AISdb's shortest dark threshold (15 min): a transient error must not count.
``DEFAULT_MAX_GAP_S`` = 600 s, ``DEFAULT_HISTORY_S`` = 1800 s
    A carrier reports every 2 s–3 min under way (class A) and every 3 min at
    anchor; 10 min without a report either side means the position is unknown.
    30 min of history covers the evaluation delay plus the reorder tolerance.
``min_spacing_s`` = 10 s
    Reports closer than this to the last stored one are not stored, bounding
    memory to ~200 points per carrier (plus a hard cap ``max_points``).
``DEFAULT_SEPARATION_M`` is also the separation threshold of :class:`SeparationParams`.

(b) ``container_zone_exit``
---------------------------
A container leaving a zone whose fence has ``exit_requires_release`` needs a
customs release first. :func:`exit_requires_release` decides per fence: the
fence's own property when set, else **True for kind ``customs``** and False for
every other kind (a customs zone exists to hold goods until release; other
kinds opt in with the property). Releases arrive as position records with
``event = RELEASE`` and an optional ``event_zone``; the engine passes them to
:meth:`ReleaseLedger.record_release`. A release recorded at ``ts_r`` is valid
for the container's next exit at ``ts >= ts_r`` from the named zone, or, when
no zone is named, from any customs zone; the exit consumes it (one release, one
exit). On an exit from a release-controlled zone the engine calls
:meth:`ReleaseLedger.consume_exit`; ``False`` means no valid release: emit
``container_zone_exit`` (critical, instantaneous). A named release is used
before a zone-less one, the oldest first.

Engine wiring, per processed chunk: first pass the chunk's container release
records (``PositionBatch.event == RELEASE``; ``event_zone`` may be ``""``) to
:meth:`ReleaseLedger.record_releases`, then every ``zone_exit`` of a *container*
in the chunk from a fence for which :func:`exit_requires_release` is True to
:meth:`ReleaseLedger.check_exits` (arrays, in processing order; it returns a
mask of the *unreleased* rows). Recording the chunk's releases first is
equivalent to strict processing order because a release only serves exits at
or after its own time. Emit one ``container_zone_exit`` event (critical,
subject kind ``container``, the fence as ``zone_id``, at the exit's time and
position; ``details.released`` false, ``details.pending_releases`` the count
left) per unreleased row. :func:`release_zone_ids` lists the fences the engine
has to watch. Call :meth:`ReleaseLedger.set_zones` after a zone reload.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from pyproj import Geod

from geofence.errors import ConfigError
from geofence.fence import Fence, ZoneKind, ZoneSet

__all__ = [
    "DEFAULT_HISTORY_S",
    "DEFAULT_MAX_GAP_S",
    "DEFAULT_MIN_DURATION_S",
    "DEFAULT_SEPARATION_M",
    "CarrierTracks",
    "ReleaseLedger",
    "SeparationDetector",
    "SeparationParams",
    "SeparationTransition",
    "exit_requires_release",
    "release_zone_ids",
]

F64 = npt.NDArray[np.float64]

DEFAULT_SEPARATION_M = 1000.0
DEFAULT_MIN_DURATION_S = 900.0
DEFAULT_MAX_GAP_S = 600.0
DEFAULT_HISTORY_S = 1800.0
DEFAULT_MIN_SPACING_S = 10.0
DEFAULT_MAX_POINTS = 512

_GEOD = Geod(ellps="WGS84")
_SNAPSHOT_VERSION = 1


def _positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    ok = isinstance(value, int | float) and math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        op = ">=" if allow_zero else ">"
        raise ConfigError(f"container_separation: {name} = {value!r} must be a finite number {op} 0")
    return float(value)


@dataclass(slots=True)
class _Track:
    ts: list[float] = field(default_factory=list)
    lon: list[float] = field(default_factory=list)
    lat: list[float] = field(default_factory=list)


class CarrierTracks:
    """Short, bounded position histories of declared carriers, for time-aligned comparison."""

    def __init__(
        self,
        *,
        max_gap_s: float = DEFAULT_MAX_GAP_S,
        history_s: float = DEFAULT_HISTORY_S,
        min_spacing_s: float = DEFAULT_MIN_SPACING_S,
        max_points: int = DEFAULT_MAX_POINTS,
        track_all: bool = False,
    ) -> None:
        self.max_gap_s = _positive("max_gap_s", max_gap_s)
        self.history_s = _positive("history_s", history_s)
        self.min_spacing_s = _positive("min_spacing_s", min_spacing_s, allow_zero=True)
        if not (isinstance(max_points, int) and max_points >= 2):
            raise ConfigError(f"container_separation: max_points = {max_points!r} must be an integer >= 2")
        self.max_points = max_points
        self.track_all = track_all
        self._tracks: dict[str, _Track] = {}
        self._watched: dict[str, float] = {}  # carrier id -> latest declaring container report time

    def watch(self, carrier_ids: npt.ArrayLike, ts_s: npt.ArrayLike) -> None:
        """Start (or keep) recording the given carriers; empty ids are ignored."""
        cid = np.atleast_1d(np.asarray(carrier_ids, dtype=object))
        ts = np.broadcast_to(np.asarray(ts_s, dtype=np.float64), cid.shape)
        for c, t in zip(cid.tolist(), ts.tolist(), strict=True):
            if c:
                prev = self._watched.get(c)
                self._watched[c] = t if prev is None else max(prev, t)

    def watched_ids(self) -> list[str]:
        """The carriers currently watched (declared by a container within ``watch_span_s``)."""
        return list(self._watched)

    @property
    def watch_span_s(self) -> float:
        """A declaration at ``L`` keeps the carrier's reports up to ``L + watch_span_s`` (``max_gap_s + history_s``)."""
        return self.max_gap_s + self.history_s

    def record(
        self, subject_ids: npt.ArrayLike, ts_s: npt.ArrayLike, lon_deg: npt.ArrayLike, lat_deg: npt.ArrayLike
    ) -> int:
        """Store the reports of watched carriers (every vessel with ``track_all``); return how many were stored.

        A report at ``t`` of a carrier last declared at ``L`` is stored only when
        ``t - L <= watch_span_s`` (after that the carrier is no longer watched).
        """
        sid = np.atleast_1d(np.asarray(subject_ids, dtype=object))
        n = sid.shape[0]
        ts = np.broadcast_to(np.asarray(ts_s, dtype=np.float64), (n,))
        if self.track_all:
            mask = np.array([bool(s) for s in sid], dtype=bool)
        else:
            span = self.watch_span_s
            w = self._watched
            mask = np.fromiter(
                (s in w and t - w[s] <= span for s, t in zip(sid.tolist(), ts.tolist(), strict=True)),
                dtype=bool,
                count=n,
            )
        rows = np.nonzero(mask)[0]
        if rows.size == 0:
            return 0
        lon = np.broadcast_to(np.asarray(lon_deg, dtype=np.float64), (n,))
        lat = np.broadcast_to(np.asarray(lat_deg, dtype=np.float64), (n,))
        return self._store(sid, ts, lon, lat, rows)

    def _store(self, sid: npt.NDArray[np.object_], ts: F64, lon: F64, lat: F64, rows: npt.NDArray[np.intp]) -> int:
        stored = 0
        for r in rows.tolist():
            t, x, y = float(ts[r]), float(lon[r]), float(lat[r])
            if not (math.isfinite(t) and math.isfinite(x) and math.isfinite(y)):
                continue
            tr = self._tracks.setdefault(str(sid[r]), _Track())
            k = bisect.bisect_right(tr.ts, t)
            if (k > 0 and t - tr.ts[k - 1] < self.min_spacing_s) or (
                k < len(tr.ts) and tr.ts[k] - t < self.min_spacing_s
            ):
                continue
            tr.ts.insert(k, t)
            tr.lon.insert(k, x)
            tr.lat.insert(k, y)
            if len(tr.ts) > self.max_points:
                del tr.ts[0], tr.lon[0], tr.lat[0]
            stored += 1
        return stored

    def position_at(self, carrier_ids: npt.ArrayLike, ts_s: npt.ArrayLike) -> tuple[F64, F64]:
        """Time-aligned carrier (lon, lat) per row under the alignment rule; NaN when unknown."""
        cid = np.atleast_1d(np.asarray(carrier_ids, dtype=object))
        n = cid.shape[0]
        ts = np.broadcast_to(np.asarray(ts_s, dtype=np.float64), (n,))
        out_lon = np.full(n, np.nan)
        out_lat = np.full(n, np.nan)
        groups: dict[str, list[int]] = {}
        for i, c in enumerate(cid.tolist()):
            tr = self._tracks.get(c) if c else None
            if tr is not None and tr.ts:  # a watched carrier's history can be empty after expire
                groups.setdefault(c, []).append(i)
        for c, idx_list in groups.items():
            tr = self._tracks[c]
            tt = np.asarray(tr.ts)
            xx = np.asarray(tr.lon)
            yy = np.asarray(tr.lat)
            idx = np.asarray(idx_list, dtype=np.int64)
            t = ts[idx]
            k = np.searchsorted(tt, t, side="right")  # tt[k-1] <= t < tt[k]
            has_prev = k > 0
            has_next = k < tt.size
            kp = np.maximum(k - 1, 0)
            kn = np.minimum(k, tt.size - 1)
            with np.errstate(invalid="ignore"):
                has_prev &= (t - tt[kp]) <= self.history_s
                has_next &= (tt[kn] - t) <= self.max_gap_s
                near_prev = has_prev & ((t - tt[kp]) <= self.max_gap_s)
            both = has_prev & has_next
            span = np.where(both, tt[kn] - tt[kp], 1.0)
            w = np.where(both, (t - tt[kp]) / np.where(span > 0, span, 1.0), 0.0)
            lon_i = xx[kp] + w * (xx[kn] - xx[kp])
            lat_i = yy[kp] + w * (yy[kn] - yy[kp])
            lon_r = np.where(both, lon_i, np.where(near_prev, xx[kp], np.where(has_next, xx[kn], np.nan)))
            lat_r = np.where(both, lat_i, np.where(near_prev, yy[kp], np.where(has_next, yy[kn], np.nan)))
            out_lon[idx] = lon_r
            out_lat[idx] = lat_r
        return out_lon, out_lat

    def separation_m(
        self,
        container_ids: npt.ArrayLike,
        carrier_ids: npt.ArrayLike,
        ts_s: npt.ArrayLike,
        lon_deg: npt.ArrayLike,
        lat_deg: npt.ArrayLike,
    ) -> F64:
        """Metres between each container report and its carrier's time-aligned position (NaN: unknown).

        ``container_ids`` is only checked for length (it names the rows for the
        caller); the carrier of each row is ``carrier_ids``.
        """
        cid = np.atleast_1d(np.asarray(carrier_ids, dtype=object))
        n = cid.shape[0]
        if np.atleast_1d(np.asarray(container_ids, dtype=object)).shape != (n,):
            raise ConfigError("container_separation: container_ids and carrier_ids must have equal length")
        lon = np.broadcast_to(np.asarray(lon_deg, dtype=np.float64), (n,))
        lat = np.broadcast_to(np.asarray(lat_deg, dtype=np.float64), (n,))
        c_lon, c_lat = self.position_at(cid, ts_s)
        out = np.full(n, np.nan)
        ok = np.isfinite(c_lon) & np.isfinite(lon) & np.isfinite(lat)
        if ok.any():
            _, _, d = _GEOD.inv(lon[ok], lat[ok], c_lon[ok], c_lat[ok])
            out[ok] = np.asarray(d, dtype=np.float64)
        return out

    def expire(self, watermark_s: float) -> None:
        """Drop carrier reports no pending evaluation can use (older than ``W - max_gap_s - history_s``).

        Carriers not declared by any container for that long are no longer watched.
        """
        cutoff = watermark_s - self.max_gap_s - self.history_s
        for c in [c for c, t in self._watched.items() if t < cutoff]:
            del self._watched[c]
        for c in list(self._tracks):
            tr = self._tracks[c]
            k = bisect.bisect_left(tr.ts, cutoff)
            if k:
                del tr.ts[:k], tr.lon[:k], tr.lat[:k]
            if not tr.ts and c not in self._watched:
                del self._tracks[c]

    def __len__(self) -> int:
        """Number of carriers with a stored history."""
        return len(self._tracks)

    def snapshot(self) -> dict[str, Any]:
        """Return the state as plain data (ids as lists of str, numeric columns as numpy arrays)."""
        ids = sorted(self._tracks)
        watched = sorted(self._watched)
        return {
            "version": _SNAPSHOT_VERSION,
            "watched": watched,
            "watched_ts_s": np.array([self._watched[c] for c in watched], dtype=np.float64),
            "carrier_id": ids,
            "count": np.array([len(self._tracks[c].ts) for c in ids], dtype=np.int64),
            "ts_s": np.array([t for c in ids for t in self._tracks[c].ts], dtype=np.float64),
            "lon_deg": np.array([x for c in ids for x in self._tracks[c].lon], dtype=np.float64),
            "lat_deg": np.array([y for c in ids for y in self._tracks[c].lat], dtype=np.float64),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Replace the state with one from :meth:`snapshot` (lists or arrays)."""
        if state.get("version") != _SNAPSHOT_VERSION:
            raise ConfigError(f"carrier tracks snapshot version {state.get('version')!r} is not {_SNAPSHOT_VERSION}")
        wts = np.asarray(state["watched_ts_s"], dtype=np.float64).tolist()
        self._watched = {str(c): float(t) for c, t in zip(state["watched"], wts, strict=True)}
        counts = np.asarray(state["count"], dtype=np.int64).tolist()
        ts = np.asarray(state["ts_s"], dtype=np.float64).tolist()
        lon = np.asarray(state["lon_deg"], dtype=np.float64).tolist()
        lat = np.asarray(state["lat_deg"], dtype=np.float64).tolist()
        self._tracks = {}
        pos = 0
        for c, k in zip(state["carrier_id"], counts, strict=True):
            self._tracks[str(c)] = _Track(ts[pos : pos + k], lon[pos : pos + k], lat[pos : pos + k])
            pos += k


# ---------------------------------------------------------------------------- separation rule


@dataclass(frozen=True, slots=True)
class SeparationParams:
    """Thresholds of ``container_separation`` (see the module docstring for the anchors)."""

    separation_threshold_m: float = DEFAULT_SEPARATION_M
    min_duration_s: float = DEFAULT_MIN_DURATION_S
    max_gap_s: float = DEFAULT_MAX_GAP_S
    history_s: float = DEFAULT_HISTORY_S

    def __post_init__(self) -> None:
        _positive("separation_threshold_m", self.separation_threshold_m)
        _positive("min_duration_s", self.min_duration_s, allow_zero=True)
        _positive("max_gap_s", self.max_gap_s)
        _positive("history_s", self.history_s)


class SeparationTransition(NamedTuple):
    """An ``'open'`` or ``'close'`` of one container's separation alert."""

    container_id: str
    carrier_id: str
    kind: str  # 'open' | 'close'
    started_ts_s: float
    ts_s: float
    separation_m: float
    lon: float  # the container's report
    lat: float
    carrier_lon: float  # the carrier's time-aligned position (NaN when unknown)
    carrier_lat: float


@dataclass(slots=True)
class _Box:
    carrier: str
    since_s: float = math.nan  # first separated report of the current candidate
    open: bool = False
    last_s: float = math.nan  # last judged report


class SeparationDetector:
    """``container_separation`` as a pure state machine over processing-ordered vessel and container rows."""

    def __init__(self, params: SeparationParams | None = None, *, track_all: bool = False) -> None:
        self.params = params or SeparationParams()
        p = self.params
        self.tracks = CarrierTracks(max_gap_s=p.max_gap_s, history_s=p.history_s, track_all=track_all)
        self._boxes: dict[str, _Box] = {}
        # pending container reports, in processing order: (ts, container, carrier, lon, lat)
        self._pending: list[tuple[float, str, str, float, float]] = []

    def ingest(
        self,
        subject_id: npt.ArrayLike,
        ts_s: npt.ArrayLike,
        lon_deg: npt.ArrayLike,
        lat_deg: npt.ArrayLike,
        is_container: npt.ArrayLike,
        carrier_id: npt.ArrayLike,
    ) -> None:
        """Take one chunk of rows in processing order (non-decreasing ``ts_s``): vessels and containers mixed.

        Container rows with an empty ``carrier_id`` declare no carrier and are
        ignored by this rule. Nothing is decided here; see :meth:`advance`.
        """
        sid = np.atleast_1d(np.asarray(subject_id, dtype=object))
        n = sid.shape[0]
        ts = np.broadcast_to(np.asarray(ts_s, dtype=np.float64), (n,))
        lon = np.broadcast_to(np.asarray(lon_deg, dtype=np.float64), (n,))
        lat = np.broadcast_to(np.asarray(lat_deg, dtype=np.float64), (n,))
        box = np.broadcast_to(np.asarray(is_container, dtype=bool), (n,))
        car = np.atleast_1d(np.asarray(carrier_id, dtype=object))
        if car.shape != (n,):
            raise ConfigError("container_separation: ingest arrays must be one-dimensional and of equal length")
        if n > 1 and bool(np.any(np.diff(ts) < 0)):
            raise ConfigError("container_separation: rows must come in processing order (non-decreasing ts_s)")
        decl = np.flatnonzero(box & np.fromiter((bool(c) for c in car.tolist()), dtype=bool, count=n))
        # vessel rows: store a carrier report iff a declaration processed before it is recent enough
        ves = np.flatnonzero(~box)
        if ves.size:
            self._record_in_order(sid, ts, lon, lat, ves, decl, car)
        for i in decl.tolist():
            self._pending.append((float(ts[i]), str(sid[i]), str(car[i]), float(lon[i]), float(lat[i])))
        if decl.size:
            self.tracks.watch(car[decl], ts[decl])

    def advance(self, watermark_s: float, *, strict: bool = False) -> list[SeparationTransition]:
        """Judge every pending container report with ``ts + max_gap_s <= watermark_s``; return the transitions.

        ``strict``: only ``ts + max_gap_s < watermark_s``. The engine processes the records with
        effective time ``< W``, so a carrier report at exactly ``ts + max_gap_s`` may still be
        unprocessed at ``W``; judging strictly keeps the decision independent of batch boundaries.
        """
        cut = watermark_s - self.params.max_gap_s
        k = 0
        while k < len(self._pending) and (
            self._pending[k][0] < cut if strict else self._pending[k][0] <= cut
        ):
            k += 1
        out = self._judge(self._pending[:k])
        del self._pending[:k]
        self.tracks.expire(watermark_s)
        self._forget(watermark_s)
        return out

    def finish(self) -> list[SeparationTransition]:
        """End of input: judge every pending report with the carrier reports known now."""
        out = self._judge(self._pending)
        self._pending = []
        return out

    def pending_from(self) -> float | None:
        """The time of the oldest container report not judged yet (None: none pending)."""
        return self._pending[0][0] if self._pending else None

    def open_containers(self) -> list[tuple[str, str, float]]:
        """Containers with an open separation alert: ``(container_id, carrier_id, started_ts_s)``, sorted."""
        return sorted((c, b.carrier, b.since_s) for c, b in self._boxes.items() if b.open)

    def __len__(self) -> int:
        """Containers with state (a candidate or an open alert) plus pending reports."""
        return len(self._boxes) + len(self._pending)

    def snapshot(self) -> dict[str, Any]:
        """Plain-data state: carrier tracks, container states and pending reports."""
        ids = sorted(self._boxes)
        bx = [self._boxes[c] for c in ids]
        pend = self._pending
        return {
            "version": _SNAPSHOT_VERSION,
            "tracks": self.tracks.snapshot(),
            "boxes": {
                "container_id": ids,
                "carrier_id": [b.carrier for b in bx],
                "since_s": np.array([b.since_s for b in bx], dtype=np.float64),
                "open": np.array([b.open for b in bx], dtype=bool),
                "last_s": np.array([b.last_s for b in bx], dtype=np.float64),
            },
            "pending": {
                "ts_s": np.array([x[0] for x in pend], dtype=np.float64),
                "container_id": [x[1] for x in pend],
                "carrier_id": [x[2] for x in pend],
                "lon_deg": np.array([x[3] for x in pend], dtype=np.float64),
                "lat_deg": np.array([x[4] for x in pend], dtype=np.float64),
            },
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Replace the state with one from :meth:`snapshot` (lists or arrays; JSON ``null`` reads as NaN)."""
        if state.get("version") != _SNAPSHOT_VERSION:
            raise ConfigError(f"separation snapshot version {state.get('version')!r} is not {_SNAPSHOT_VERSION}")
        self.tracks.restore(state["tracks"])
        b = state["boxes"]
        since = np.asarray(b["since_s"], dtype=np.float64).tolist()
        opened = np.asarray(b["open"], dtype=bool).tolist()
        last = np.asarray(b["last_s"], dtype=np.float64).tolist()
        self._boxes = {
            str(c): _Box(str(k), float(s0), bool(o), float(t))
            for c, k, s0, o, t in zip(b["container_id"], b["carrier_id"], since, opened, last, strict=True)
        }
        p = state["pending"]
        cols = [np.asarray(p[k], dtype=np.float64).tolist() for k in ("ts_s", "lon_deg", "lat_deg")]
        self._pending = [
            (t, str(c), str(k), x, y)
            for t, c, k, x, y in zip(cols[0], p["container_id"], p["carrier_id"], cols[1], cols[2], strict=True)
        ]

    # -- internals ------------------------------------------------------------

    def _record_in_order(
        self,
        sid: npt.NDArray[np.object_],
        ts: F64,
        lon: F64,
        lat: F64,
        ves: npt.NDArray[np.intp],
        decl: npt.NDArray[np.intp],
        car: npt.NDArray[np.object_],
    ) -> None:
        tr = self.tracks
        if tr.track_all:
            tr.record(sid[ves], ts[ves], lon[ves], lat[ves])
            return
        by_carrier: dict[str, list[int]] = {}
        for i in decl.tolist():
            by_carrier.setdefault(str(car[i]), []).append(i)
        known = tr._watched
        span = tr.watch_span_s
        keep: list[int] = []
        for i, s_ in zip(ves.tolist(), sid[ves].tolist(), strict=True):
            rows = by_carrier.get(s_)
            last = known.get(s_)
            if rows is not None:
                k = bisect.bisect_left(rows, i)
                if k:
                    last = float(ts[rows[k - 1]])  # processing order: the latest preceding declaration
            if last is not None and float(ts[i]) - last <= span:
                keep.append(i)
        if keep:
            tr._store(sid, ts, lon, lat, np.asarray(keep, dtype=np.intp))

    def _judge(self, rows: list[tuple[float, str, str, float, float]]) -> list[SeparationTransition]:
        if not rows:
            return []
        p = self.params
        ts = np.array([r[0] for r in rows], dtype=np.float64)
        car = np.array([r[2] for r in rows], dtype=object)
        lon = np.array([r[3] for r in rows], dtype=np.float64)
        lat = np.array([r[4] for r in rows], dtype=np.float64)
        clon, clat = self.tracks.position_at(car, ts)
        sep = np.full(len(rows), np.nan)
        ok = np.isfinite(clon) & np.isfinite(lon) & np.isfinite(lat)
        if ok.any():
            sep[ok] = np.asarray(_GEOD.inv(lon[ok], lat[ok], clon[ok], clat[ok])[2], dtype=np.float64)
        out: list[SeparationTransition] = []
        for j, (t, cid, carrier, x, y) in enumerate(rows):
            d = float(sep[j])
            b = self._boxes.get(cid)
            if b is not None and b.carrier != carrier:
                if b.open:  # re-declared to another vessel: the old separation is over
                    out.append(SeparationTransition(cid, b.carrier, "close", b.since_s, t, math.nan, x, y,
                                                    math.nan, math.nan))
                b = None
                del self._boxes[cid]
            if d != d:
                continue  # carrier position unknown: decides nothing
            if b is None:
                b = self._boxes[cid] = _Box(carrier)
            if not b.open and b.since_s == b.since_s and t - b.last_s > p.history_s:
                b.since_s = math.nan  # not observed in between: the candidate restarts
            b.last_s = t
            cx, cy = float(clon[j]), float(clat[j])
            if d > p.separation_threshold_m:
                if b.since_s != b.since_s:
                    b.since_s = t
                if not b.open and t - b.since_s >= p.min_duration_s:
                    b.open = True
                    out.append(SeparationTransition(cid, carrier, "open", b.since_s, t, d, x, y, cx, cy))
            else:
                if b.open:
                    out.append(SeparationTransition(cid, carrier, "close", b.since_s, t, d, x, y, cx, cy))
                del self._boxes[cid]
        return out

    def _forget(self, watermark_s: float) -> None:
        """Drop candidates (never open alerts) whose last judged report is older than ``history_s``."""
        cutoff = watermark_s - self.params.max_gap_s - self.params.history_s
        for c in [c for c, b in self._boxes.items() if not b.open and b.last_s < cutoff]:
            del self._boxes[c]


# ---------------------------------------------------------------------------- releases


def exit_requires_release(fence: Fence) -> bool:
    """Whether leaving ``fence`` needs a release: its property when set, else True only for kind customs."""
    if fence.params.exit_requires_release is not None:
        return bool(fence.params.exit_requires_release)
    return fence.kind is ZoneKind.CUSTOMS


class ReleaseLedger:
    """Pending customs releases per container; each is consumed by one exit.

    Parameters
    ----------
    customs_zone_ids
        Ids of zones of kind ``customs``: a release that names no zone is valid
        for an exit from any of them. Refresh with :meth:`set_zones` on reload.
    max_age_s
        Releases older than this before the watermark are dropped by
        :meth:`expire` (None: kept until consumed).
    """

    def __init__(self, customs_zone_ids: Iterable[str] = (), *, max_age_s: float | None = None) -> None:
        if max_age_s is not None and not (math.isfinite(max_age_s) and max_age_s > 0):
            raise ConfigError(f"container_zone_exit: max_age_s = {max_age_s!r} must be a positive number or None")
        self.max_age_s = max_age_s
        self._customs = frozenset(customs_zone_ids)
        # container -> zone id ('' = any customs zone) -> sorted release times
        self._releases: dict[str, dict[str, list[float]]] = {}

    @classmethod
    def for_zones(cls, zones: ZoneSet, *, max_age_s: float | None = None) -> ReleaseLedger:
        """A ledger whose zone-less releases apply to the zone set's customs zones."""
        return cls(_customs_ids(zones), max_age_s=max_age_s)

    def set_zones(self, zones: ZoneSet) -> None:
        """Refresh the customs zone ids after a zone reload (pending releases are kept)."""
        self._customs = _customs_ids(zones)

    def record_release(self, container_id: str, zone_id: str, ts_s: float) -> None:
        """Record a release of ``container_id`` for ``zone_id`` ('' or None: any customs zone) at ``ts_s``."""
        if not math.isfinite(ts_s):
            raise ConfigError(f"release of {container_id!r}: time {ts_s!r} is not finite")
        bisect.insort(self._releases.setdefault(container_id, {}).setdefault(zone_id or "", []), float(ts_s))

    def consume_exit(self, container_id: str, zone_id: str, ts_s: float) -> bool:
        """Consume a release valid for this exit; True = released (no alert), False = unreleased exit.

        A release recorded at or before ``ts_s`` for ``zone_id`` is used first,
        else a zone-less one when ``zone_id`` is a customs zone; the oldest of
        the kind goes.
        """
        per_zone = self._releases.get(container_id)
        if not per_zone:
            return False
        keys = [zone_id] + ([""] if zone_id in self._customs and zone_id != "" else [])
        for key in keys:
            times = per_zone.get(key)
            if times and times[0] <= ts_s:
                times.pop(0)
                if not times:
                    del per_zone[key]
                if not per_zone:
                    del self._releases[container_id]
                return True
        return False

    def record_releases(self, container_ids: npt.ArrayLike, zone_ids: npt.ArrayLike, ts_s: npt.ArrayLike) -> None:
        """Vectorised :meth:`record_release` (zone ids ``""`` or None: any customs zone)."""
        cid = np.atleast_1d(np.asarray(container_ids, dtype=object))
        zid = np.broadcast_to(np.asarray(zone_ids, dtype=object), cid.shape)
        ts = np.broadcast_to(np.asarray(ts_s, dtype=np.float64), cid.shape)
        for c, z, t in zip(cid.tolist(), zid.tolist(), ts.tolist(), strict=True):
            self.record_release(str(c), str(z or ""), float(t))

    def check_exits(
        self, container_ids: npt.ArrayLike, zone_ids: npt.ArrayLike, ts_s: npt.ArrayLike
    ) -> npt.NDArray[np.bool_]:
        """Consume releases for exits given in processing order; return True where the exit was *unreleased*."""
        cid = np.atleast_1d(np.asarray(container_ids, dtype=object))
        zid = np.broadcast_to(np.asarray(zone_ids, dtype=object), cid.shape)
        ts = np.broadcast_to(np.asarray(ts_s, dtype=np.float64), cid.shape)
        out = np.zeros(cid.shape[0], dtype=bool)
        for k, (c, z, t) in enumerate(zip(cid.tolist(), zid.tolist(), ts.tolist(), strict=True)):
            out[k] = not self.consume_exit(str(c), str(z), float(t))
        return out

    def pending(self, container_id: str) -> dict[str, list[float]]:
        """Pending release times per zone id ('' = any customs zone) for a container."""
        return {z: list(t) for z, t in sorted(self._releases.get(container_id, {}).items())}

    def expire(self, watermark_s: float) -> None:
        """Drop releases older than ``watermark_s - max_age_s`` (no-op when ``max_age_s`` is None)."""
        if self.max_age_s is None:
            return
        cutoff = watermark_s - self.max_age_s
        for c in list(self._releases):
            per_zone = self._releases[c]
            for z in list(per_zone):
                kept = [t for t in per_zone[z] if t >= cutoff]
                if kept:
                    per_zone[z] = kept
                else:
                    del per_zone[z]
            if not per_zone:
                del self._releases[c]

    def __len__(self) -> int:
        """Number of pending releases."""
        return sum(len(t) for z in self._releases.values() for t in z.values())

    def snapshot(self) -> dict[str, Any]:
        """Return the pending releases as plain data: parallel lists container, zone, ts."""
        rows = sorted((c, z, t) for c, zs in self._releases.items() for z, ts in zs.items() for t in ts)
        return {
            "version": _SNAPSHOT_VERSION,
            "container_id": [r[0] for r in rows],
            "zone_id": [r[1] for r in rows],
            "ts_s": np.array([r[2] for r in rows], dtype=np.float64),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Replace the pending releases with those of a :meth:`snapshot` (customs ids are not part of it)."""
        if state.get("version") != _SNAPSHOT_VERSION:
            raise ConfigError(f"release ledger snapshot version {state.get('version')!r} is not {_SNAPSHOT_VERSION}")
        self._releases = {}
        ts = np.asarray(state["ts_s"], dtype=np.float64).tolist()
        for c, z, t in zip(state["container_id"], state["zone_id"], ts, strict=True):
            self.record_release(str(c), str(z), float(t))


def release_zone_ids(zones: ZoneSet) -> list[str]:
    """Ids of the fences whose exit needs a release (:func:`exit_requires_release`), sorted."""
    return sorted(f.id for f in zones.fences if exit_requires_release(f))


def _customs_ids(zones: ZoneSet) -> frozenset[str]:
    return frozenset(f.id for f in zones.fences if f.kind is ZoneKind.CUSTOMS)
