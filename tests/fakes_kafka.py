"""A small deterministic fake engine and synthetic traffic for the Kafka tests and benchmark.

The fake implements :class:`geofence.engine_api.Engine` with per-subject rules only
(zone enter/exit, and an AIS gap noticed when a silent subject reports again), so
partitioning subjects over workers cannot change its output: any difference between
the in-process run and the workers is a transport bug, not a rules effect.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import orjson
import shapely
from shapely.geometry import box

from geofence.alerts import Alert, AlertType, Severity, Status, alert_id, sort_alerts
from geofence.deadletter import DeadLetter
from geofence.engine_api import EngineOutput, EngineStats
from geofence.fence import Fence, ZoneKind, ZoneSet
from geofence.positions import PositionBatch, StaticReport

__all__ = ["FACTORY", "GAP_S", "FakeEngine", "FakeFactory", "synthetic_batch", "zoneset"]

GAP_S = 600.0


class FakeEngine:
    """Per-subject zone enter/exit and AIS-gap lines; late positions become dead letters."""

    def __init__(self, zones: ZoneSet) -> None:
        self.zones = zones
        self.last_ts: dict[str, float] = {}
        self.inside: dict[str, list[str]] = {}
        self.statics = 0
        self.positions = 0

    def set_zones(self, zones: ZoneSet) -> None:
        self.zones = zones

    def add_statics(self, reports: Sequence[StaticReport]) -> None:
        self.statics += len(reports)

    def process(self, batch: PositionBatch) -> EngineOutput:
        out = EngineOutput()
        n = len(batch)
        self.positions += n
        fences = self.zones.fences
        member = np.zeros((len(fences), n), dtype=bool)
        for i, f in enumerate(fences):
            member[i] = shapely.contains_xy(f.geometry, batch.lon_deg, batch.lat_deg)
        ids = [f.id for f in fences]
        version = self.zones.version
        for j in range(n):
            sid = str(batch.subject_id[j])
            ts = float(batch.ts_s[j])
            lon, lat = float(batch.lon_deg[j]), float(batch.lat_deg[j])
            last = self.last_ts.get(sid)
            if last is not None and ts < last:
                out.dead.append(DeadLetter(str(batch.source[j]), int(batch.line[j]), "late",
                                           f"{ts} < {last}", sid))
                continue
            if last is not None and ts - last > GAP_S:
                aid = alert_id(AlertType.AIS_GAP, sid, None, last + GAP_S)
                for st, t in ((Status.OPEN, last + GAP_S), (Status.CLOSED, ts)):
                    out.alerts.append(Alert(aid, AlertType.AIS_GAP, st, Severity.WARNING, sid, "vessel", None,
                                            version, t, lon, lat, {"gap_s": ts - last}))
            self.last_ts[sid] = ts
            now = [ids[i] for i in range(len(ids)) if member[i, j]]
            before = self.inside.get(sid, [])
            for z in now:
                if z not in before:
                    out.alerts.append(Alert(alert_id(AlertType.ZONE_ENTER, sid, z, ts), AlertType.ZONE_ENTER,
                                            Status.EVENT, Severity.INFO, sid, "vessel", z, version, ts, lon, lat))
            for z in before:
                if z not in now:
                    out.alerts.append(Alert(alert_id(AlertType.ZONE_EXIT, sid, z, ts), AlertType.ZONE_EXIT,
                                            Status.EVENT, Severity.INFO, sid, "vessel", z, version, ts, lon, lat))
            self.inside[sid] = now
        out.alerts = sort_alerts(out.alerts)
        return out

    def finish(self) -> EngineOutput:
        return EngineOutput()

    def open_alerts(self) -> list[Alert]:
        return []

    def snapshot(self) -> bytes:
        return orjson.dumps({"last": self.last_ts, "inside": self.inside, "statics": self.statics,
                             "positions": self.positions})

    @classmethod
    def restore(cls, data: bytes, zones: ZoneSet) -> FakeEngine:
        obj = orjson.loads(data)
        eng = cls(zones)
        eng.last_ts = {k: float(v) for k, v in obj["last"].items()}
        eng.inside = {k: list(v) for k, v in obj["inside"].items()}
        eng.statics = int(obj["statics"])
        eng.positions = int(obj["positions"])
        return eng

    def stats(self) -> EngineStats:
        mx = max(self.last_ts.values()) if self.last_ts else None
        return EngineStats(mx, mx, 0, len(self.last_ts), self.positions, 0)


class FakeFactory:
    """Engine factory for ``geofence worker --engine tests.fakes_kafka:FACTORY``."""

    def new(self, zones: ZoneSet) -> FakeEngine:
        return FakeEngine(zones)

    def restore(self, data: bytes, zones: ZoneSet) -> FakeEngine:
        return FakeEngine.restore(data, zones)


FACTORY = FakeFactory()


def zoneset(*boxes: tuple[str, float, float, float, float]) -> ZoneSet:
    """Zone set of axis-aligned boxes ``(id, min_lon, min_lat, max_lon, max_lat)``."""
    return ZoneSet.of(Fence(id=i, name=i, kind=ZoneKind.ANCHORAGE, geometry=box(a, b, c, d)) for i, a, b, c, d in boxes)


def synthetic_batch(subjects: int, steps: int, seed: int = 0, t0_s: float = 1_700_000_000.0,
                    step_s: float = 10.0) -> PositionBatch:
    """Vessels wandering around (121.0, 31.0) in global time order, with occasional silences.

    Each subject reports every ``step_s`` seconds; about 1 % of its reports are followed by a
    silence longer than the fake's AIS-gap threshold, so gaps and zone crossings both occur.
    """
    rng = np.random.default_rng(seed)
    lon = 121.0 + rng.uniform(-0.05, 0.05, subjects)
    lat = 31.0 + rng.uniform(-0.05, 0.05, subjects)
    offset = np.zeros(subjects)
    cols: dict[str, list[np.ndarray]] = {"sid": [], "ts": [], "lon": [], "lat": []}
    sids = np.array([str(413_000_000 + i) for i in range(subjects)], dtype=object)
    for k in range(steps):
        lon = lon + rng.normal(0, 0.002, subjects)
        lat = lat + rng.normal(0, 0.002, subjects)
        offset = offset + np.where(rng.random(subjects) < 0.01, GAP_S * 1.5, 0.0)
        cols["sid"].append(sids)
        cols["ts"].append(t0_s + k * step_s + offset + np.arange(subjects) * (step_s / (subjects + 1)))
        cols["lon"].append(lon.copy())
        cols["lat"].append(lat.copy())
    ts = np.concatenate(cols["ts"])
    order = np.argsort(ts, kind="stable")
    n = len(ts)
    return PositionBatch.from_columns(
        subject_id=np.concatenate(cols["sid"])[order], ts_s=ts[order], lon_deg=np.concatenate(cols["lon"])[order],
        lat_deg=np.concatenate(cols["lat"])[order], source=np.full(n, "synthetic", dtype=object),
        line=np.arange(1, n + 1),
    )
