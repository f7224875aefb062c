"""Wiring of the vectorised detectors (encounter, approach, route) into the engine's lifecycle.

The detectors in :mod:`geofence.rules.encounter`, :mod:`geofence.rules.approach`
and :mod:`geofence.rules.route` are pure; :class:`DetectorRules` feeds them the
vessel records of each processed chunk (in processing order, with the engine's
effective time and derived speed) and turns their outputs into alert lines.
Everything here runs after the per-record pass of a chunk, on whole arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from geofence._engine_time import iso, rnd
from geofence.alerts import AlertType
from geofence.lifecycle import Lifecycle
from geofence.rules.approach import ApproachChecker
from geofence.rules.config import RulesConfig
from geofence.rules.encounter import EncounterDetector, EncounterParams, PairTransition
from geofence.rules.route import Plans

__all__ = ["DetectorRules"]


def _plain(value: Any) -> Any:
    """numpy arrays and scalars to JSON-ready lists and floats (for the snapshot)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


class DetectorRules:
    """State and lifecycle glue of encounter, approach_warning and route_deviation.

    Only the rows a detector can use are handed to it: the encounter detector sees
    the rows of candidates (slow, outside mooring zones) and of subjects it may
    still hold; the approach check sees moving rows, and its per-row step runs only
    for rows that project into restricted water or belong to a subject with an
    open warning; route rows are those of subjects with a plan. Subject ids are
    decoded for those rows only.
    """

    def __init__(
        self,
        on: dict[str, bool],
        plans: Plans | None,
        config: RulesConfig | None = None,
        encounter: EncounterParams | None = None,
    ) -> None:
        """``config`` gives the thresholds (built-in defaults when None); ``encounter`` overrides its encounter ones."""
        cfg = config or RulesConfig.default()
        self.on = on
        self.plans = plans
        self.encounter = EncounterDetector(encounter or cfg.encounter_params())
        self._horizon_s = float(cfg.get("approach_warning", "horizon_s"))
        self._approach_min_kn = float(cfg.get("approach_warning", "min_speed_kn"))
        self._route_open_m = float(cfg.get("route_deviation", "open_m"))
        self._route_close_m = float(cfg.get("route_deviation", "close_m"))
        self._route_min_s = float(cfg.get("route_deviation", "min_duration_s"))
        self.approach: ApproachChecker | None = None
        self.approach_open: dict[str, str] = {}  # subject -> restricted fence id of the open warning
        self.route_cand: dict[str, float] = {}  # subject -> start of the deviation candidate
        self._enc_slots: set[int] = set()  # slots the encounter detector may hold (a superset)
        self._open_slots: set[int] = set()  # slots with an open approach warning
        self._plan_flag = np.zeros(0, dtype=np.uint8)  # per slot: 0 unknown, 1 no plan, 2 plan

    def set_zones(self, zones: Any) -> None:
        """Rebuild the zone-dependent checker."""
        on = self.on["approach_warning"]
        self.approach = ApproachChecker.from_zones(zones, min_speed_kn=self._approach_min_kn) if on else None

    def run(
        self,
        slot: Any,
        sid: Any,
        eff: Any,
        lon: Any,
        lat: Any,
        cog: Any,
        spd: Any,
        moor: Any,
        watermark_s: float,
        life: Lifecycle,
        version: str,
        details: Any,
    ) -> None:
        """Process one chunk's vessel rows (arrays in processing order, or None) and expire encounters.

        ``sid`` holds every row's subject id. ``details(slot, figures)`` builds an alert's
        details; a callable with a true ``wants_row`` attribute is called as
        ``details(slot, figures, row)`` so it can quote the evidence as of that row.
        """
        self._run(
            slot, eff, lon, lat, cog, spd, moor, watermark_s, life, version, details, lambda i: sid[i].tolist(), False
        )

    def run_rows(
        self,
        slot: Any,
        eff: Any,
        lon: Any,
        lat: Any,
        cog: Any,
        spd: Any,
        moor: Any,
        watermark_s: float,
        life: Lifecycle,
        version: str,
        details: Any,
        sid: Any,
    ) -> None:
        """:meth:`run` for the engine, whose ``slot`` are its subject slots (the detectors skip rows by slot)."""
        self._run(
            slot, eff, lon, lat, cog, spd, moor, watermark_s, life, version, details, lambda i: sid[i].tolist(), True
        )

    def _run(
        self,
        slot: Any,
        eff: Any,
        lon: Any,
        lat: Any,
        cog: Any,
        spd: Any,
        moor: Any,
        watermark_s: float,
        life: Lifecycle,
        version: str,
        details: Any,
        sid_rows: Callable[[Any], list[str]],
        by_slot: bool,
    ) -> None:
        if getattr(details, "wants_row", False):
            det = details
        else:

            def det(s: int, figures: dict[str, Any], _k: int) -> Any:
                return details(s, figures)

        if slot is not None and len(slot):
            if self.on["encounter"]:
                if by_slot:
                    self._encounter_rows(slot, eff, lon, lat, spd, moor, life, version, sid_rows)
                else:
                    sid_all = np.array(sid_rows(np.arange(len(slot))), dtype=object)
                    self._encounters(self.encounter.ingest(sid_all, eff, lon, lat, spd, moor), life, version)
            if self.on["approach_warning"] and self.approach is not None and len(self.approach):
                moving = np.flatnonzero(np.isfinite(cog) & (spd > 0)) if not self._open_slots else None
                rows = np.arange(len(slot)) if moving is None else moving
                if rows.size:
                    fidx, tte = self.approach.check(lon[rows], lat[rows], cog[rows], spd[rows], self._horizon_s)
                    # rows of subjects with an open warning, or projecting into restricted water in this chunk
                    watch = self._open_slots | set(slot[rows[fidx >= 0]].tolist())
                    act = np.fromiter((x in watch for x in slot[rows].tolist()), bool, rows.size)
                    if act.any():
                        rows, fidx, tte = rows[act], fidx[act], tte[act]
                        sid = np.array(sid_rows(rows), dtype=object)
                        self._approach(rows, slot, sid, eff, lon, lat, cog, spd, fidx, tte, life, version, det)
            if self.on["route_deviation"] and self.plans is not None:
                has = self._has_plan(slot, sid_rows)
                if has.any():
                    idx = np.flatnonzero(has)
                    sid = np.array(sid_rows(idx), dtype=object)
                    dev = self.plans.deviation_m(sid, lon[idx], lat[idx], eff[idx])
                    for j, (k, d) in enumerate(zip(idx.tolist(), dev.tolist(), strict=True)):
                        self._route(
                            k,
                            int(slot[k]),
                            str(sid[j]),
                            float(eff[k]),
                            float(lon[k]),
                            float(lat[k]),
                            d,
                            life,
                            version,
                            det,
                        )
        if self.on["encounter"] and math.isfinite(watermark_s):
            self._encounters(self.encounter.expire(watermark_s), life, version)
            # Forget the slot filter only when the detector holds nothing. It must stay a superset
            # of the held subjects across every call, including the engine's expire-only call
            # (``run(None, ...)`` for a batch that releases no chunk): clearing it there dropped
            # the next non-candidate row of a held vessel (the one that ends its encounter), so
            # the close depended on where the batches were cut.
            if len(self.encounter) == 0:
                self._enc_slots.clear()

    def _encounter_rows(
        self, slot: Any, eff: Any, lon: Any, lat: Any, spd: Any, moor: Any, life: Lifecycle, version: str, sid_rows: Any
    ) -> None:
        """Feed the detector the rows of the slots it may hold, plus this chunk's candidates.

        The filter ``_enc_slots`` is a superset of the slots of the subjects the
        detector holds. Any superset gives the same detector output: a row of a
        subject the detector does not hold, and that is no candidate, changes
        nothing in it. So the filter may lag behind the detector (cleared only when
        it holds nothing, pruned here for the subjects of this chunk) without the
        output depending on where the batches were cut.
        """
        p = self.encounter.params
        with np.errstate(invalid="ignore"):
            cand = np.isfinite(spd) & (spd < p.slow_kn) & ~moor
        if cand.any():
            self._enc_slots.update(np.unique(slot[cand]).tolist())
        if not self._enc_slots:
            return
        known = np.fromiter(self._enc_slots, dtype=np.int64, count=len(self._enc_slots))
        rows = np.flatnonzero(np.isin(slot, known))
        if rows.size == 0:
            return
        sid = np.array(sid_rows(rows), dtype=object)
        trans = self.encounter.ingest(sid, eff[rows], lon[rows], lat[rows], spd[rows], moor[rows])
        self._encounters(trans, life, version)
        # prune the slots of this chunk's subjects that the detector no longer holds
        # (keeps the filter, and its memory, near the held set in a stream that never empties it)
        _, first = np.unique(slot[rows], return_index=True)
        for s, x in zip(slot[rows[first]].tolist(), sid[first].tolist(), strict=True):
            if not self.encounter.holds(str(x)):
                self._enc_slots.discard(s)

    def _has_plan(self, slot: Any, sid_rows: Any) -> Any:
        assert self.plans is not None
        top = int(slot.max()) + 1
        if self._plan_flag.size < top:
            grown = np.zeros(max(top, 2 * self._plan_flag.size), dtype=np.uint8)
            grown[: self._plan_flag.size] = self._plan_flag
            self._plan_flag = grown
        flag = self._plan_flag[slot]
        unknown = np.flatnonzero(flag == 0)
        if unknown.size:
            _, first = np.unique(slot[unknown], return_index=True)
            rows = unknown[first]
            has = self.plans.has_plan(np.array(sid_rows(rows), dtype=object))
            self._plan_flag[slot[rows]] = np.where(has, 2, 1)
            flag = self._plan_flag[slot]
        return flag == 2

    def _encounters(self, trans: list[PairTransition], life: Lifecycle, version: str) -> None:
        for t in trans:
            for me, other in ((t.subject_a, t.subject_b), (t.subject_b, t.subject_a)):
                figures = {
                    "other_subject_id": other,
                    "distance_m": rnd(t.distance_m, 1),
                    "started": iso(t.started_ts_s),
                }
                if t.kind == "start":
                    if life.get(AlertType.ENCOUNTER, me, other) is None:
                        life.open_(
                            AlertType.ENCOUNTER,
                            "warning",
                            me,
                            "vessel",
                            None,
                            version,
                            t.started_ts_s,
                            t.ts_s,
                            t.lon,
                            t.lat,
                            figures,
                            key_zone=other,
                        )
                else:
                    oa = life.get(AlertType.ENCOUNTER, me, other)
                    if oa is not None:
                        figures["duration_s"] = rnd(t.ts_s - oa.start_ts, 3)
                        life.close(oa, t.ts_s, t.lon, t.lat, figures)

    def _approach(
        self,
        rows: Any,
        slot: Any,
        sid: Any,
        eff: Any,
        lon: Any,
        lat: Any,
        cog: Any,
        spd: Any,
        fidx: Any,
        tte: Any,
        life: Lifecycle,
        version: str,
        details: Any,
    ) -> None:
        assert self.approach is not None
        ids = self.approach.fence_ids
        for j, (k, f, t) in enumerate(zip(rows.tolist(), fidx.tolist(), tte.tolist(), strict=True)):
            subj = str(sid[j])
            cur = self.approach_open.get(subj)
            target = ids[f] if f >= 0 else None
            if cur is None and target is None:
                continue
            s, e, x, y = int(slot[k]), float(eff[k]), float(lon[k]), float(lat[k])
            if cur is not None and cur != target:
                oa = life.get(AlertType.APPROACH_WARNING, subj, cur)
                del self.approach_open[subj]
                self._open_slots.discard(s)
                if oa is not None:
                    life.close(oa, e, x, y, details(s, {"started": iso(oa.start_ts)}, k))
            if target is not None and cur != target:
                self.approach_open[subj] = target
                self._open_slots.add(s)
                life.open_(
                    AlertType.APPROACH_WARNING,
                    "warning",
                    subj,
                    "vessel",
                    target,
                    version,
                    e,
                    e,
                    x,
                    y,
                    details(
                        s,
                        {
                            "time_to_entry_s": rnd(t, 1),
                            "speed_kn": rnd(float(spd[k]), 2),
                            "cog_deg": rnd(float(cog[k]), 1),
                        },
                        k,
                    ),
                )

    def _route(
        self,
        k: int,
        s: int,
        sid: str,
        e: float,
        lon: float,
        lat: float,
        dev: float,
        life: Lifecycle,
        version: str,
        details: Any,
    ) -> None:
        oa = life.get(AlertType.ROUTE_DEVIATION, sid)
        if not dev > self._route_open_m:
            self.route_cand.pop(sid, None)
            if oa is not None and (dev != dev or dev <= self._route_close_m):
                life.close(
                    oa,
                    e,
                    lon,
                    lat,
                    details(s, {"distance_m": None if dev != dev else rnd(dev, 1), "started": iso(oa.start_ts)}, k),
                )
            return
        start = self.route_cand.setdefault(sid, e)
        if oa is None and e - start >= self._route_min_s:
            life.open_(
                AlertType.ROUTE_DEVIATION,
                "warning",
                sid,
                "vessel",
                None,
                version,
                start,
                e,
                lon,
                lat,
                details(s, {"distance_m": rnd(dev, 1), "started": iso(start), "duration_s": rnd(e - start, 3)}, k),
            )

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready state."""
        return {
            "encounter": _plain(self.encounter.snapshot()),
            "approach_open": self.approach_open,
            "route_cand": self.route_cand,
        }

    def restore(self, state: dict[str, Any], slot_of: Callable[[str], int | None] | None = None) -> None:
        """Inverse of :meth:`snapshot` (``slot_of`` maps subject ids to the engine's slots, when there are slots)."""
        if slot_of is None:

            def slot_of(_sid: str) -> int | None:
                return None

        self.encounter.restore(state["encounter"])
        self.approach_open = dict(state["approach_open"])
        self.route_cand = dict(state["route_cand"])
        self._open_slots = {s for sid in self.approach_open if (s := slot_of(sid)) is not None}
        enc = state["encounter"].get("vessels", {}).get("subject_id", [])
        self._enc_slots = {s for sid in enc if (s := slot_of(str(sid))) is not None}
