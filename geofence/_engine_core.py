"""Shared state of one engine: subjects, timers, alert lifecycle, rule parameters and evidence.

The rule modules (:mod:`geofence._engine_zones`, :mod:`geofence._engine_motion`,
:mod:`geofence._engine_gaps`, :mod:`geofence._engine_record`,
:mod:`geofence._fastpath`) each own one job and share this object; it holds
data and small helpers only, never rule logic.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from geofence._engine_ids import IdMap
from geofence._engine_time import iso, iso_ms, rnd
from geofence._state import Memberships, SubjectColumns
from geofence._timeline import Reorder
from geofence.alerts import AlertType
from geofence.errors import ConfigError
from geofence.fence import ZoneSet
from geofence.index import FenceIndex
from geofence.lifecycle import Lifecycle
from geofence.positions import SubjectKind
from geofence.rules.config import RulesConfig
from geofence.rules.route import Plans
from geofence.rules.zones_rules import Baseline, ZoneTables

__all__ = [
    "NAN",
    "T_CLOSE",
    "T_DWELL",
    "T_FEED",
    "T_GAP",
    "T_HOLD",
    "T_MININ",
    "T_SUSPECT",
    "Core",
    "Timer",
    "Timers",
    "dwell_key",
    "parse_dwell_key",
]

NAN = float("nan")

# Timer kinds; the rank is the tie-break between timers due at the same instant. T_HOLD (the end of the
# release hold of a long-pending suspect) comes last so that the ranks stored in older snapshots keep their meaning.
T_MININ, T_DWELL, T_CLOSE, T_SUSPECT, T_GAP, T_FEED, T_HOLD = range(7)

Timer = tuple[float, int, int, str]

_KIND_LABEL = {int(k): k.label for k in SubjectKind}


def dwell_key(fid: str, mult: int, lim_s: float, since: float | None = None) -> str:
    """The key of a dwell timer: fence, multiple of the limit and the limit it was scheduled with.

    A deadline rescheduled after it had already passed (new static data changed the limit)
    also carries the start of the stay (``@since``), because its time is not ``since + mult * lim``.
    """
    key = f"{fid}|{mult}|{lim_s!r}"
    return key if since is None else f"{key}@{since!r}"


def parse_dwell_key(key: str) -> tuple[str, int, float | None, float | None]:
    """Inverse of :func:`dwell_key`: (fence id, multiple, limit, since); limit None for a ``fid|mult`` key."""
    parts = key.rsplit("|", 2)
    if len(parts) == 3:
        lim_s, _, since_s = parts[2].partition("@")
        try:
            return parts[0], int(parts[1]), float(lim_s), (float(since_s) if since_s else None)
        except ValueError:
            pass
    fid, mult = key.rsplit("|", 1)
    return fid, int(mult), None, None


class Timers:
    """The timer heap, ordered by (time, kind, slot, key), and which subjects have timers on it.

    Gap and dwell deadlines are not kept on the heap per subject: their columns are
    scanned each run and only the deadlines due before the watermark are pushed
    (see :mod:`geofence._engine_gaps` and :mod:`geofence._engine_zones`).
    """

    def __init__(self) -> None:
        self.heap: list[Timer] = []
        self.slot_due: dict[int, list[float]] = {}  # rule timers (not gap) per subject
        self.gap_due: dict[int, float] = {}  # the gap timer of a subject, when on the heap
        self.run_w = -math.inf
        self.run_final = False

    def due(self, t: float) -> bool:
        """Whether a timer at ``t`` fires in the current run (``T < W``; ``T <= W`` at the end)."""
        return t < self.run_w or (self.run_final and t <= self.run_w)

    def push(self, t: float, kind: int, slot: int, key: str) -> None:
        """Schedule a timer."""
        heapq.heappush(self.heap, (t, kind, slot, key))
        if kind == T_GAP:
            self.gap_due[slot] = t
        elif slot >= 0:
            self.slot_due.setdefault(slot, []).append(t)

    def pop(self) -> Timer:
        """Remove and return the earliest timer."""
        timer = heapq.heappop(self.heap)
        t, kind, s, _key = timer
        if kind == T_GAP:
            if self.gap_due.get(s) == t:
                del self.gap_due[s]
        elif s >= 0:
            lst = self.slot_due[s]
            lst.remove(t)
            if not lst:
                del self.slot_due[s]
        return timer

    def restore(self, heap: list[Timer]) -> None:
        """Rebuild from a snapshot's heap."""
        self.heap = list(heap)
        heapq.heapify(self.heap)
        self.slot_due = {}
        self.gap_due = {}
        for t, kind, s, _key in self.heap:
            if kind == T_GAP:
                self.gap_due[s] = t
            elif s >= 0:
                self.slot_due.setdefault(s, []).append(t)


class Core:
    """Everything the rule modules share (see the module docstring)."""

    def __init__(
        self,
        zones: ZoneSet,
        config: RulesConfig | None,
        baseline: Baseline | None,
        plans: Plans | None,
        tolerance_s: float | None,
        fast: bool,
    ) -> None:
        self.config = config if config is not None else RulesConfig.default()
        tol = float(self.config.get("engine", "tolerance_s") if tolerance_s is None else tolerance_s)
        if not math.isfinite(tol) or tol < 0:
            raise ConfigError(f"tolerance_s = {tol!r} is invalid; expected a number of seconds >= 0")
        self.baseline = baseline
        self.plans = plans
        self.fast = fast
        self.zones = zones
        self.tables = ZoneTables(zones, self.config, baseline)
        self.index = FenceIndex.for_zones(zones)
        self.ids = IdMap()
        self.cols = SubjectColumns()
        self.members = Memberships(self.cols)
        self.reorder = Reorder(tol)
        self.life = Lifecycle()
        self.timers = Timers()
        self.suspects: dict[int, list[Any]] = {}  # quarantined position per subject
        self.retro: dict[str, float] = {}  # decisions dated before they are made (release horizon)
        self.pin: set[int] = set()  # subjects with a min_inside_s candidate
        # subjects whose dwell deadline (fence -> multiple) passed while they were silent beyond the gap threshold
        self.dwell_wait: dict[int, dict[int, int]] = {}
        self.stop_win: dict[int, Any] = {}  # geometric stop windows of subjects reporting without SOG
        self.statics: dict[str, dict[str, Any]] = {}
        # lower bounds of the gap and dwell deadline columns (not on the heap): a run whose watermark is below
        # them has nothing to scan, so no pass over every subject is made while nothing can be due
        self.gap_floor = math.inf
        self.dwell_floor = math.inf
        self.positions = 0
        self.late = 0
        self.stale = 0
        self._sid_cache: dict[int, str] = {}
        self._cache_params()

    # ------------------------------------------------------------------ parameters
    def _cache_params(self) -> None:
        c = self.config
        self.on = {t.value: c.enabled(t.value) for t in AlertType}
        self.stop_kn = float(c.get("unexpected_stop", "stop_kn"))
        self.resume_kn = float(c.get("unexpected_stop", "resume_kn"))
        self.stop_d_m = float(c.get("unexpected_stop", "diameter_m"))
        self.stop_min_s = float(c.get("unexpected_stop", "min_duration_s"))
        self.stop_outside = bool(c.get("unexpected_stop", "outside_zones"))
        self.stop_cool_s = float(c.get("unexpected_stop", "cooldown_s"))
        self.os_min_s = float(c.get("overspeed", "min_duration_s"))
        self.os_cf = float(c.get("overspeed", "critical_factor"))
        self.os_cool_s = float(c.get("overspeed", "cooldown_s"))
        self.jump_min_m = float(c.get("position_jump", "min_distance_m"))
        self.jump_cool_s = float(c.get("position_jump", "cooldown_s"))
        self.gap_near_m = float(c.get("ais_gap", "near_m"))
        self.feed_factor = float(c.get("feed_outage", "rate_factor"))
        self.feed_min_s = float(c.get("feed_outage", "min_silence_s"))
        self.feed_min_n = float(c.get("feed_outage", "min_reports"))
        self.feed_min_orphans = float(c.get("feed_outage", "min_subjects"))
        self.spd_window_s = float(c.get("speed", "window_s"))
        # ship-type codes (column ``stype``) and the per-type thresholds, float32 like the columns they replace
        self.type_codes: list[int | None] = [None]
        self.type_index: dict[int | None, int] = {None: 0}
        self.maxkn_tab = np.array([self.config.for_ship_type("position_jump", None)], dtype=np.float32)
        self.gthr_tab = np.array([self.config.for_ship_type("ais_gap", None)], dtype=np.float32)

    def type_code(self, ship_type: int | None) -> int:
        """The ``stype`` code of an AIS ship type (interned on first use)."""
        code = self.type_index.get(ship_type)
        if code is None:
            code = len(self.type_codes)
            if code > np.iinfo(np.uint16).max:
                raise ConfigError(f"more than {code} distinct ship types; ship_type values must be AIS codes 0-255")
            self.type_codes.append(ship_type)
            self.type_index[ship_type] = code
            self.maxkn_tab = np.append(
                self.maxkn_tab, np.float32(self.config.for_ship_type("position_jump", ship_type))
            )
            self.gthr_tab = np.append(self.gthr_tab, np.float32(self.config.for_ship_type("ais_gap", ship_type)))
        return code

    # ------------------------------------------------------------------ subjects
    def sid(self, s: int) -> str:
        """The subject id of a slot (memoised for the subjects alerts are written about)."""
        out = self._sid_cache.get(s)
        if out is None:
            if len(self._sid_cache) > 1 << 16:
                self._sid_cache.clear()
            out = self._sid_cache[s] = self.ids.id_of(s)
        return out

    def kind_label(self, s: int) -> str:
        """``vessel`` or ``container``."""
        return _KIND_LABEL[int(self.cols.kind[s])]

    def ship_type(self, s: int) -> int | None:
        """The subject's AIS ship type, when known."""
        return self.type_codes[int(self.cols.stype[s])]

    def maxkn(self, s: int) -> float:
        """The subject's maximum plausible speed (float32 value, as the column stored it)."""
        return float(self.maxkn_tab[self.cols.stype[s]])

    def gap_thr(self, s: int, raw: tuple[int, ...] | None = None) -> float:
        """The subject's ais_gap threshold: ship type, lowered by the zones it is in (raw, or its memberships)."""
        v = float(self.gthr_tab[self.cols.stype[s]])
        if raw is None:
            mem = self.members.get(s)
            raw = tuple(mem) if mem else ()
        for f in raw:
            z = self.tables.gap_threshold_s[f]
            if z is not None and z < v:
                v = z
        return v

    def apply_statics(self, lo: int, hi: int) -> None:
        """Ship-type codes of slots ``lo..hi-1`` from the static registry."""
        if not self.statics:
            return
        for s in range(lo, hi):
            st = self.statics.get(self.sid(s))
            if st is not None:
                self.cols.stype[s] = self.type_code(st.get("ship_type"))

    # ------------------------------------------------------------------ alert details
    def details(
        self,
        s: int,
        figures: Mapping[str, Any],
        ts: float | None = None,
        eff: float | None = None,
        track: list[list[Any]] | None = None,
    ) -> dict[str, Any]:
        """Figures, then ``report_ts`` when it differs, the vessel's static data, and the evidence.

        The evidence is ``track`` when given (the ring as of an earlier record), else the live ring.
        """
        d = dict(figures)
        if ts is not None and eff is not None and ts != eff:
            d["report_ts"] = iso(ts)
        if self.statics:
            st = self.statics.get(self.sid(s))
            if st:
                d["vessel"] = dict(st)
        d["track"] = self.track_json(s) if track is None else track
        return d

    def track_json(self, s: int) -> list[list[Any]]:
        """The live evidence ring as ``[[lon, lat, iso], ...]`` oldest first."""
        return [[rnd(x, 6), rnd(y, 6), iso_ms(m)] for x, y, m in self.cols.track(s)]
