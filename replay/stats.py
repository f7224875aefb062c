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
import shapely

from geofence.fence import ZoneSet
from geofence.geodesy import distance_m, implied_speed_kn
from geofence.timefmt import parse_iso_utc

__all__ = [
    "percentile_summary",
    "points_in_fences",
    "speeds_kn",
    "subject_stats",
    "visits_from_alerts",
    "zone_stats",
]

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


def points_in_fences(zones: ZoneSet, lon_deg: _F64, lat_deg: _F64) -> list[npt.NDArray[np.int64]]:
    """For every fence (in ``zones.fences`` order), the indices of the points inside it, edges included.

    Per fence: the points inside its bounding box (longitude by binary search over the
    points sorted once, then latitude), then the exact ``shapely.intersects_xy`` on the
    prepared fence: the index's boundary rule, without building a fence index.
    """
    order = np.argsort(lon_deg, kind="stable")
    xs, ys = lon_deg[order], lat_deg[order]
    out: list[npt.NDArray[np.int64]] = []
    for fence in zones.fences:
        x0, y0, x1, y1 = fence.geometry.bounds
        a, b = np.searchsorted(xs, x0, side="left"), np.searchsorted(xs, x1, side="right")
        cand = np.arange(a, b)[(ys[a:b] >= y0) & (ys[a:b] <= y1)]
        if cand.size:
            shapely.prepare(fence.geometry)
            cand = cand[shapely.intersects_xy(fence.geometry, xs[cand], ys[cand])]
        out.append(np.sort(order[cand]).astype(np.int64))
    return out


def zone_stats(
    zones: ZoneSet,
    subject_id: npt.NDArray[np.object_],
    lon_deg: _F64,
    lat_deg: _F64,
    alert_lines: Sequence[Mapping[str, Any]],
) -> dict[str, dict[str, Any]]:
    """Per zone: visits, unique subjects, dwell p50/p95/max, for every fence (sorted by id)."""
    visits = visits_from_alerts(alert_lines)
    ids = subject_id.astype(str) if len(subject_id) else np.array([], dtype=str)
    inside = points_in_fences(zones, np.asarray(lon_deg, dtype=np.float64), np.asarray(lat_deg, dtype=np.float64))
    out: dict[str, dict[str, Any]] = {}
    for fence, rows in zip(zones.fences, inside, strict=True):
        fv = visits.get(fence.id, [])
        closed = [end - start for _, start, end in fv if end is not None]
        out[fence.id] = {
            "kind": fence.kind.value,
            "visits": len(fv),
            "open_visits": sum(1 for _, _, end in fv if end is None),
            "unique_subjects": int(np.unique(ids[rows]).size) if rows.size else 0,
            "dwell": percentile_summary(closed),
        }
    return dict(sorted(out.items()))


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


def speeds_kn(
    subject_id: npt.NDArray[np.object_], ts_s: _F64, lon_deg: _F64, lat_deg: _F64, sog_kn: _F64
) -> tuple[npt.NDArray[np.int64], _F64]:
    """Each row's speed: the reported SOG when finite, else implied by the previous report of the subject.

    Returns ``(order, speed_kn)``: ``order`` sorts the rows by (subject, time) and
    ``speed_kn[k]`` belongs to row ``order[k]``; NaN where neither is known (a
    subject's first report without SOG, or two reports at the same second).
    """
    ids = subject_id.astype(str)
    order = np.lexsort((ts_s, ids)).astype(np.int64)
    speed = np.asarray(sog_kn, dtype=np.float64)[order].copy()
    if len(order) > 1:
        ids_o, t, x, y = ids[order], ts_s[order], lon_deg[order], lat_deg[order]
        implied = np.full(len(order), np.nan)
        implied[1:] = implied_speed_kn(x[:-1], y[:-1], t[:-1], x[1:], y[1:], t[1:])
        implied[1:][ids_o[1:] != ids_o[:-1]] = np.nan
        missing = ~np.isfinite(speed)
        speed[missing] = implied[missing]
    return order, speed
