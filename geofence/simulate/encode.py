"""JSONL encoders of a simulation: positions and statics, containers, labels, plans.

All return ``list[bytes]`` lines without newline (orjson), sorted like a merged
feed: by time, then subject. Vessel positions follow the ingest schema (``id``,
``ts``, ``lon``, ``lat`` plus ``kind``, ``sog``, ``cog``, ``heading``,
``receiver``); statics are lines with ``"type": "static"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import orjson

if TYPE_CHECKING:
    from geofence.simulate.run import Simulation

__all__ = ["container_lines", "iso_z", "jsonl_lines", "label_lines", "plan_lines"]


def iso_z(ts_s: npt.ArrayLike) -> list[str]:
    """Format whole UTC epoch seconds as ISO 8601 with ``Z`` (vectorised)."""
    arr = np.asarray(ts_s, dtype=np.int64).astype("datetime64[s]")
    return [s + "Z" for s in np.datetime_as_string(arr, unit="s").tolist()]


def jsonl_lines(sim: Simulation) -> list[bytes]:
    """Return vessel position and static lines sorted by (ts, id)."""
    rep = sim.reports
    ids = [str(m) for m in rep.mmsi.tolist()]
    iso = iso_z(rep.ts)
    lon = np.round(rep.lon, 6).tolist()
    lat = np.round(rep.lat, 6).tolist()
    sog, cog, hdg = rep.sog.tolist(), rep.cog.tolist(), rep.heading.tolist()
    rx = rep.receiver.tolist()
    keyed: list[tuple[int, str, int, bytes]] = []
    ts_list = rep.ts.tolist()
    dumps = orjson.dumps
    for k in range(len(ids)):
        keyed.append((ts_list[k], ids[k], 0, dumps({
            "id": ids[k], "ts": iso[k], "lon": lon[k], "lat": lat[k], "kind": "vessel", "sog": sog[k],
            "cog": cog[k], "heading": hdg[k], "receiver": rx[k]})))
    s_iso = iso_z([t for t, _, _ in sim.statics])
    for (t, vi, dest), ts_text in zip(sim.statics, s_iso, strict=True):
        v = sim.vessels[vi]
        sid = str(v.mmsi)
        keyed.append((t, sid, 1, dumps({
            "type": "static", "id": sid, "ts": ts_text, "name": v.name, "ship_type": v.ship_type,
            "length_m": v.length_m, "beam_m": v.beam_m, "destination": dest})))
    keyed.sort(key=lambda x: (x[0], x[1], x[2]))
    return [x[3] for x in keyed]


def container_lines(sim: Simulation) -> list[bytes]:
    """Return container e-seal positions and release events sorted by (ts, id)."""
    c = sim.containers
    iso = iso_z(c["ts"])
    out: list[bytes] = []
    for k in range(len(iso)):
        d: dict[str, Any] = {"id": c["id"][k], "ts": iso[k], "lon": round(float(c["lon"][k]), 6),
                             "lat": round(float(c["lat"][k]), 6), "kind": "container"}
        if c["carrier"][k]:
            d["carrier"] = c["carrier"][k]
        if c["event"][k]:
            d["event"] = c["event"][k]
            d["zone_id"] = c["zone"][k]
        out.append(orjson.dumps(d))
    return out


def label_lines(sim: Simulation, include_containers: bool = True) -> list[bytes]:
    """Return the label lines (anomalies and berth/anchorage visits), sorted by start then subject."""
    cids = set(np.asarray(sim.containers["id"]).tolist()) if not include_containers else set()
    return [orjson.dumps(lab) for lab in sim.labels if lab["subject_id"] not in cids]


def plan_lines(sim: Simulation) -> list[bytes]:
    """Return the declared plans, one per line."""
    return [orjson.dumps(p) for p in sim.plans]
