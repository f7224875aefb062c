"""Builders shared by the engine and rule tests (no tests here)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import shapely

from geofence.engine import Engine
from geofence.fence import Fence, FenceParams, ZoneKind, ZoneSet
from geofence.positions import PositionBatch

T0 = 1_700_000_000.0
#: Metres per degree of latitude (and of longitude at the equator), for building tracks.
M_PER_DEG = 111_195.0


def fence(fid: str, kind: str, x0: float, y0: float, x1: float, y1: float, **params: Any) -> Fence:
    """A box fence (degrees) with optional rule parameters."""
    return Fence(
        id=fid, name=fid, kind=ZoneKind(kind), geometry=shapely.box(x0, y0, x1, y1), params=FenceParams(**params)
    )


def zones(*fences: Fence) -> ZoneSet:
    return ZoneSet.of(fences)


def batch(rows: Sequence[dict[str, Any]]) -> PositionBatch:
    """Rows as dicts with keys sid, ts, lon, lat and optional sog, cog, kind, receiver, source, line, carrier,
    event (1 = release), event_zone."""
    return PositionBatch.from_columns(
        subject_id=[r["sid"] for r in rows],
        ts_s=[r["ts"] for r in rows],
        lon_deg=[r["lon"] for r in rows],
        lat_deg=[r["lat"] for r in rows],
        sog_kn=[r.get("sog", float("nan")) for r in rows],
        cog_deg=[r.get("cog", float("nan")) for r in rows],
        kind=[r.get("kind", 0) for r in rows],
        receiver=[r.get("receiver", "") for r in rows],
        source=[r.get("source", "test") for r in rows],
        line=[r.get("line", i + 1) for i, r in enumerate(rows)],
        carrier_id=[r.get("carrier", "") for r in rows],
        event=[r.get("event", 0) for r in rows],
        event_zone=[r.get("event_zone", "") for r in rows],
    )


def run(engine: Engine, rows: Sequence[dict[str, Any]], size: int | None = None) -> list[bytes]:
    """Feed rows in batches of ``size`` (all at once when None); return every alert line as JSON bytes."""
    out: list[bytes] = []
    size = size or max(1, len(rows))
    for k in range(0, len(rows), size):
        out.extend(a.to_json() for a in engine.process(batch(rows[k : k + size])).alerts)
    out.extend(a.to_json() for a in engine.finish().alerts)
    return out


def types(lines: Sequence[bytes]) -> list[tuple[str, str]]:
    import orjson

    return [(d["type"], d["status"]) for d in map(orjson.loads, lines)]


def track(sid: str, t0: float, dt: float, points: Sequence[tuple[float, float]], **extra: Any) -> list[dict[str, Any]]:
    return [{"sid": sid, "ts": t0 + k * dt, "lon": p[0], "lat": p[1], **extra} for k, p in enumerate(points)]
