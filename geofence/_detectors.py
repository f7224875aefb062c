"""Wiring of the vectorised detectors (encounter, approach, route) into the engine's lifecycle.

The detectors in :mod:`geofence.rules.encounter`, :mod:`geofence.rules.approach`
and :mod:`geofence.rules.route` are pure; :class:`DetectorRules` feeds them the
vessel records of each processed chunk (in processing order, with the engine's
effective time and derived speed) and turns their outputs into alert lines.
Everything here runs after the per-record pass of a chunk, on whole arrays.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from geofence.alerts import AlertType
from geofence.lifecycle import Lifecycle
from geofence.rules.approach import DEFAULT_HORIZON_S, ApproachChecker
from geofence.rules.encounter import EncounterDetector, PairTransition
from geofence.rules.route import DEFAULT_CLOSE_M, DEFAULT_MIN_DURATION_S, DEFAULT_OPEN_M, Plans
from geofence.timefmt import iso_utc

__all__ = ["DetectorRules", "PostRow"]

#: (slot, eff, seq, lon, lat, cog_deg, speed_kn, in_mooring_zone)
PostRow = tuple[int, float, float, float, float, float, float, bool]


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
    """State and lifecycle glue of encounter, approach_warning and route_deviation."""

    def __init__(self, on: dict[str, bool], plans: Plans | None) -> None:
        self.on = on
        self.plans = plans
        self.encounter = EncounterDetector()
        self.approach: ApproachChecker | None = None
        self.approach_open: dict[str, str] = {}  # subject -> restricted fence id of the open warning
        self.route_cand: dict[str, float] = {}  # subject -> start of the deviation candidate

    def set_zones(self, zones: Any) -> None:
        """Rebuild the zone-dependent checker."""
        self.approach = ApproachChecker.from_zones(zones) if self.on["approach_warning"] else None

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
        """Process one chunk's vessel rows (arrays in processing order, or None) and expire encounters."""
        if slot is not None and len(slot):
            if self.on["encounter"]:
                self._encounters(self.encounter.ingest(sid, eff, lon, lat, spd, moor), life, version)
            if self.on["approach_warning"] and self.approach is not None and len(self.approach):
                moving = np.flatnonzero(np.isfinite(cog) & (spd > 0)) if not self.approach_open else None
                rows = np.arange(len(slot)) if moving is None else moving
                if rows.size:
                    fidx, tte = self.approach.check(lon[rows], lat[rows], cog[rows], spd[rows], DEFAULT_HORIZON_S)
                    self._approach(rows, slot, sid, eff, lon, lat, cog, spd, fidx, tte, life, version, details)
            if self.on["route_deviation"] and self.plans is not None:
                has = self.plans.has_plan(sid)
                if has.any():
                    idx = np.flatnonzero(has)
                    dev = self.plans.deviation_m(sid[idx], lon[idx], lat[idx], eff[idx])
                    for k, d in zip(idx.tolist(), dev.tolist(), strict=True):
                        self._route(
                            int(slot[k]),
                            str(sid[k]),
                            float(eff[k]),
                            float(lon[k]),
                            float(lat[k]),
                            d,
                            life,
                            version,
                            details,
                        )
        if self.on["encounter"] and math.isfinite(watermark_s):
            self._encounters(self.encounter.expire(watermark_s), life, version)

    def _encounters(self, trans: list[PairTransition], life: Lifecycle, version: str) -> None:
        for t in trans:
            for me, other in ((t.subject_a, t.subject_b), (t.subject_b, t.subject_a)):
                figures = {
                    "other_subject_id": other,
                    "distance_m": round(t.distance_m, 1),
                    "started": iso_utc(t.started_ts_s),
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
                        figures["duration_s"] = round(t.ts_s - oa.start_ts, 3)
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
        for k, f, t in zip(rows.tolist(), fidx.tolist(), tte.tolist(), strict=True):
            subj = str(sid[k])
            cur = self.approach_open.get(subj)
            target = ids[f] if f >= 0 else None
            if cur is None and target is None:
                continue
            s, e, x, y = int(slot[k]), float(eff[k]), float(lon[k]), float(lat[k])
            if cur is not None and cur != target:
                oa = life.get(AlertType.APPROACH_WARNING, subj, cur)
                del self.approach_open[subj]
                if oa is not None:
                    life.close(oa, e, x, y, details(s, {"started": iso_utc(oa.start_ts)}))
            if target is not None and cur != target:
                self.approach_open[subj] = target
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
                            "time_to_entry_s": round(t, 1),
                            "speed_kn": round(float(spd[k]), 2),
                            "cog_deg": round(float(cog[k]), 1),
                        },
                    ),
                )

    def _route(
        self,
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
        if not dev > DEFAULT_OPEN_M:
            self.route_cand.pop(sid, None)
            if oa is not None and (dev != dev or dev <= DEFAULT_CLOSE_M):
                life.close(
                    oa,
                    e,
                    lon,
                    lat,
                    details(s, {"distance_m": None if dev != dev else round(dev, 1), "started": iso_utc(oa.start_ts)}),
                )
            return
        start = self.route_cand.setdefault(sid, e)
        if oa is None and e - start >= DEFAULT_MIN_DURATION_S:
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
                details(s, {"distance_m": round(dev, 1), "started": iso_utc(start), "duration_s": round(e - start, 3)}),
            )

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready state."""
        return {
            "encounter": _plain(self.encounter.snapshot()),
            "approach_open": self.approach_open,
            "route_cand": self.route_cand,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`snapshot`."""
        self.encounter.restore(state["encounter"])
        self.approach_open = dict(state["approach_open"])
        self.route_cand = dict(state["route_cand"])
