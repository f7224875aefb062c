"""Per-zone and per-subject figures of a replay, for ``summary.json`` and the plots.

Visits and dwell come from the engine's own ``zone_enter``/``zone_exit`` events,
so the summary agrees with the alerts (hysteresis included). Unique subjects per
zone count every subject with at least one accepted position inside the fence,
the same definition a brute-force shapely count uses.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from geofence.fence import ZoneSet
from geofence.geodesy import distance_m
from geofence.index import FenceIndex
from geofence.timefmt import parse_iso_utc

__all__ = ["percentile_summary", "subject_stats", "visits_from_alerts", "zone_stats"]

_F64 = npt.NDArray[np.float64]


def visits_from_alerts(alert_lines: Sequence[Mapping[str, Any]]) -> dict[str, list[tuple[str, float, float | None]]]:
    """Pair each subject's ``zone_enter`` with its next ``zone_exit`` of the same zone.

    Returns zone id -> list of (subject_id, enter_ts_s, exit_ts_s or None when still inside at the end).
    """
    inside: dict[tuple[str, str], float] = {}
    visits: dict[str, list[tuple[str, float, float | None]]] = defaultdict(list)
    for line in alert_lines:
        kind = line.get("type")
        if kind not in ("zone_enter", "zone_exit") or not line.get("zone_id"):
            continue
        key = (str(line["subject_id"]), str(line["zone_id"]))
        ts = parse_iso_utc(str(line["ts"]))
        if kind == "zone_enter":
            inside.setdefault(key, ts)
        elif key in inside:
            visits[key[1]].append((key[0], inside.pop(key), ts))
    for (subject, zone), start in sorted(inside.items()):
        visits[zone].append((subject, start, None))
    return dict(visits)


def percentile_summary(values_s: Sequence[float]) -> dict[str, float | None]:
    """p50/p95/max of durations in seconds (None when there are none)."""
    if not values_s:
        return {"p50_s": None, "p95_s": None, "max_s": None}
    arr = np.asarray(values_s, dtype=np.float64)
    return {
        "p50_s": round(float(np.percentile(arr, 50)), 3),
        "p95_s": round(float(np.percentile(arr, 95)), 3),
        "max_s": round(float(arr.max()), 3),
    }


def zone_stats(
    zones: ZoneSet,
    index: FenceIndex,
    subject_id: npt.NDArray[np.object_],
    lon_deg: _F64,
    lat_deg: _F64,
    alert_lines: Sequence[Mapping[str, Any]],
) -> dict[str, dict[str, Any]]:
    """Per zone: visits, unique subjects, dwell p50/p95/max, for every fence (sorted by id)."""
    visits = visits_from_alerts(alert_lines)
    point_idx, fence_idx = index.query(lon_deg, lat_deg)
    subjects_by_fence: dict[int, set[str]] = defaultdict(set)
    if len(point_idx):
        pairs = np.unique(np.column_stack([fence_idx, _codes(subject_id)[point_idx]]), axis=0)
        names = np.unique(subject_id.astype(str)) if len(subject_id) else np.array([], dtype=str)
        for f, s in pairs:
            subjects_by_fence[int(f)].add(str(names[s]))
    out: dict[str, dict[str, Any]] = {}
    for i, fence in enumerate(index.fences):
        fv = visits.get(fence.id, [])
        closed = [end - start for _, start, end in fv if end is not None]
        out[fence.id] = {
            "kind": fence.kind.value,
            "visits": len(fv),
            "open_visits": sum(1 for _, _, end in fv if end is None),
            "unique_subjects": len(subjects_by_fence.get(i, ())),
            "dwell": percentile_summary(closed),
        }
    return dict(sorted(out.items()))


def _codes(subject_id: npt.NDArray[np.object_]) -> npt.NDArray[np.int64]:
    _, inverse = np.unique(subject_id.astype(str), return_inverse=True)
    return inverse.astype(np.int64)


def subject_stats(
    subject_id: npt.NDArray[np.object_],
    ts_s: _F64,
    lon_deg: _F64,
    lat_deg: _F64,
    alert_lines: Sequence[Mapping[str, Any]],
) -> dict[str, dict[str, Any]]:
    """Per subject: positions, distance travelled (geodesic, m), time in zones (s) and alert count."""
    out: dict[str, dict[str, Any]] = {}
    if len(ts_s):
        ids = subject_id.astype(str)
        order = np.lexsort((ts_s, ids))
        ids_o, lon_o, lat_o = ids[order], lon_deg[order], lat_deg[order]
        same = ids_o[1:] == ids_o[:-1]
        seg = np.zeros(len(ids_o))
        if len(ids_o) > 1:
            d = distance_m(lon_o[:-1], lat_o[:-1], lon_o[1:], lat_o[1:])
            seg[1:] = np.where(same, d, 0.0)
        uniq, start = np.unique(ids_o, return_index=True)
        totals = np.add.reduceat(seg, start) if len(seg) else np.zeros(0)
        counts = np.diff(np.append(start, len(ids_o)))
        for name, dist, n in zip(uniq, totals, counts, strict=True):
            out[str(name)] = {"positions": int(n), "distance_m": round(float(dist), 1), "time_in_zones_s": 0.0,
                              "alerts": 0}
    for visits in visits_from_alerts(alert_lines).values():
        for subject, enter_s, exit_s in visits:
            if exit_s is not None and subject in out:
                out[subject]["time_in_zones_s"] = round(out[subject]["time_in_zones_s"] + (exit_s - enter_s), 3)
    for line in alert_lines:
        if line.get("status") in ("open", "event"):
            entry = out.setdefault(
                str(line["subject_id"]), {"positions": 0, "distance_m": 0.0, "time_in_zones_s": 0.0, "alerts": 0}
            )
            entry["alerts"] += 1
    return dict(sorted(out.items()))
