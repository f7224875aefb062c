"""Test doubles for the embedded runner: a small engine, a JSONL decoder and an input generator.

:class:`FakeEngine` implements the :class:`geofence.engine_api.Engine` protocol with
just enough behaviour to exercise the runner: a ``zone_enter``/``zone_exit`` event
when a subject crosses the edge of one box, and a ``dwell_exceeded`` incident that
opens on entry and is closed by an event-time *timer* ``timeout_s`` after the
subject's last position inside the box, fired when the watermark (newest event
time) passes it. Its state round-trips through :meth:`FakeEngine.snapshot` /
:meth:`FakeEngine.restore`, so timers and open alerts survive a restart.

``python -m tests.fakes [geofence run options]`` runs :func:`streams.runner.run_cli`
with the fake decoder and the fake engine (``FAKE_ENGINE=real``: the real
``geofence.engine.Engine``), as the kill -9 test does. ``FAKE_DELAY_S`` slows each
decoder ``feed`` call and each ``engine.process`` call down so a test can kill the
process mid-run, while the file is decoded (pass 1) or merged through the engine (pass 2).
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from geofence.alerts import Alert, AlertType, Severity, Status, alert_id, sort_alerts
from geofence.deadletter import DeadLetter, raw_text
from geofence.decode.accounting import Counts, DecodeResult
from geofence.engine_api import EngineOutput, EngineStats
from geofence.fence import ZoneSet
from geofence.positions import PositionBatch, StaticReport

__all__ = [
    "BOX",
    "BOX_GEOJSON",
    "FakeEngine",
    "FakeEngineFactory",
    "FakeJsonlDecoder",
    "fake_decoder_factory",
    "make_alert",
    "read_triples",
    "sim_world",
    "write_track_jsonl",
]

#: The fake engine's only zone (lon0, lat0, lon1, lat1).
BOX = (114.0, 30.0, 114.5, 30.5)
ZONE_ID = "box"
LATE_S = 3600.0


class FakeEngine:
    """A deterministic event-time engine over one box (see the module docstring)."""

    def __init__(self, zones: ZoneSet | None = None, *, timeout_s: float = 300.0) -> None:
        self.zone_version = zones.version if zones is not None else "fake"
        self.timeout_s = timeout_s
        # sid -> [inside, last_in_ts, open_alert_id, open_start_ts, last_lon, last_lat]
        self.subjects: dict[str, list[Any]] = {}
        self.max_ts: float | None = None
        self.positions = 0
        self.late = 0
        self.statics: dict[str, str | None] = {}

    # -- protocol ------------------------------------------------------------------
    def process(self, batch: PositionBatch) -> EngineOutput:
        """Row by row in input order, so results do not depend on batch size."""
        out = EngineOutput()
        for i in range(len(batch)):
            ts = float(batch.ts_s[i])
            sid = str(batch.subject_id[i])
            if self.max_ts is not None and ts < self.max_ts - LATE_S:
                self.late += 1
                out.dead.append(
                    DeadLetter(str(batch.source[i]), int(batch.line[i]), "late", f"ts {ts} older than watermark", "")
                )
                continue
            self.positions += 1
            if self.max_ts is None or ts > self.max_ts:
                self.max_ts = ts
                self._fire(out.alerts)
            self._step(sid, ts, float(batch.lon_deg[i]), float(batch.lat_deg[i]), out.alerts)
        out.alerts = sort_alerts(out.alerts)
        return out

    def add_statics(self, reports: Sequence[StaticReport]) -> None:
        """Remember vessel names (unused by the rules)."""
        for r in reports:
            self.statics[r.subject_id] = r.name

    def finish(self) -> EngineOutput:
        """Fire timers up to the watermark, never beyond."""
        alerts: list[Alert] = []
        self._fire(alerts)
        return EngineOutput(alerts=sort_alerts(alerts))

    def open_alerts(self) -> list[Alert]:
        """One open line per open incident."""
        return sort_alerts(
            self._alert(AlertType.DWELL_EXCEEDED, Status.OPEN, sid, st[2], st[3], st[4], st[5])
            for sid, st in self.subjects.items()
            if st[2] is not None
        )

    def set_zones(self, zones: ZoneSet) -> None:
        """Only the version changes (the box is fixed)."""
        self.zone_version = zones.version

    def snapshot(self) -> bytes:
        """All state as JSON."""
        return orjson.dumps(
            {
                "zone_version": self.zone_version,
                "timeout_s": self.timeout_s,
                "subjects": self.subjects,
                "max_ts": self.max_ts,
                "positions": self.positions,
                "late": self.late,
                "statics": self.statics,
            }
        )

    @classmethod
    def restore(cls, data: bytes, zones: ZoneSet | None = None) -> FakeEngine:
        """Inverse of :meth:`snapshot`."""
        obj = orjson.loads(data)
        eng = cls(zones, timeout_s=obj["timeout_s"])
        eng.zone_version = obj["zone_version"]
        eng.subjects = obj["subjects"]
        eng.max_ts = obj["max_ts"]
        eng.positions = obj["positions"]
        eng.late = obj["late"]
        eng.statics = obj["statics"]
        return eng

    def stats(self) -> EngineStats:
        """Watermark = newest event time (no reorder tolerance)."""
        return EngineStats(
            watermark_s=self.max_ts,
            max_event_ts_s=self.max_ts,
            open_alerts=sum(1 for st in self.subjects.values() if st[2] is not None),
            subjects=len(self.subjects),
            positions=self.positions,
            late=self.late,
        )

    # -- rules ---------------------------------------------------------------------
    def _alert(self, type_: AlertType, status: Status, sid: str, aid: str, ts: float, lon: float, lat: float) -> Alert:
        return Alert(aid, type_, status, Severity.INFO, sid, "vessel", ZONE_ID, self.zone_version, ts, lon, lat, {})

    def _fire(self, alerts: list[Alert]) -> None:
        if self.max_ts is None:
            return
        due = sorted(
            (st[1] + self.timeout_s, sid)
            for sid, st in self.subjects.items()
            if st[2] is not None and st[1] + self.timeout_s <= self.max_ts
        )
        for deadline, sid in due:
            st = self.subjects[sid]
            alerts.append(self._alert(AlertType.DWELL_EXCEEDED, Status.CLOSED, sid, st[2], deadline, st[4], st[5]))
            st[2] = st[3] = None

    def _step(self, sid: str, ts: float, lon: float, lat: float, alerts: list[Alert]) -> None:
        st = self.subjects.setdefault(sid, [False, None, None, None, lon, lat])
        inside = BOX[0] <= lon <= BOX[2] and BOX[1] <= lat <= BOX[3]
        if inside and not st[0]:
            aid = alert_id(AlertType.ZONE_ENTER, sid, ZONE_ID, ts)
            alerts.append(self._alert(AlertType.ZONE_ENTER, Status.EVENT, sid, aid, ts, lon, lat))
            if st[2] is None:
                dwell_id = alert_id(AlertType.DWELL_EXCEEDED, sid, ZONE_ID, ts)
                st[2], st[3] = dwell_id, ts
                alerts.append(self._alert(AlertType.DWELL_EXCEEDED, Status.OPEN, sid, dwell_id, ts, lon, lat))
        elif st[0] and not inside:
            aid = alert_id(AlertType.ZONE_EXIT, sid, ZONE_ID, ts)
            alerts.append(self._alert(AlertType.ZONE_EXIT, Status.EVENT, sid, aid, ts, lon, lat))
        st[0] = inside
        if inside:
            st[1] = ts
        st[4], st[5] = lon, lat


class FakeEngineFactory:
    """``new``/``restore`` as :class:`streams.runner.EngineFactory` expects."""

    def new(self, zones: ZoneSet) -> FakeEngine:
        return FakeEngine(zones)

    def restore(self, data: bytes, zones: ZoneSet) -> FakeEngine:
        return FakeEngine.restore(data, zones)


class FakeJsonlDecoder:
    """JSONL ``{"id", "ts" (epoch s), "lon", "lat"}`` to positions; anything else is dead-lettered.

    Stateful on purpose: it numbers the records it has seen, and a position whose
    ``seq`` field disagrees with that count is dead-lettered as ``bad_value``. A
    runner that resumed a decoder without rebuilding its state would therefore
    lose positions, which the restart tests would catch.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.records = 0
        self.delay_s = float(os.environ.get("FAKE_DELAY_S", "0") or 0)

    def feed(self, lines: Sequence[bytes], first_line: int, arrival_ts_s: float | None = None) -> DecodeResult:
        if self.delay_s:
            time.sleep(self.delay_s)
        counts = Counts()
        dead: list[DeadLetter] = []
        cols: dict[str, list[Any]] = {"subject_id": [], "ts_s": [], "lon_deg": [], "lat_deg": [], "line": []}
        for k, raw in enumerate(lines):
            line_no = first_line + k
            if not raw.strip():
                counts.input_lines += 1
                counts.skipped += 1
                continue
            try:
                obj = orjson.loads(raw)
                sid, ts, lon, lat = str(obj["id"]), float(obj["ts"]), float(obj["lon"]), float(obj["lat"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                counts.add_dead("unparseable")
                dead.append(DeadLetter(self.source, line_no, "unparseable", str(exc), raw_text(raw)))
                continue
            self.records += 1
            if "seq" in obj and obj["seq"] != self.records:
                counts.add_dead("bad_value")
                dead.append(
                    DeadLetter(self.source, line_no, "bad_value", f"seq {obj['seq']} != {self.records}", raw_text(raw))
                )
                continue
            if not (math.isfinite(ts) and -180 <= lon <= 180 and -90 <= lat <= 90):
                counts.add_dead("out_of_range")
                dead.append(DeadLetter(self.source, line_no, "out_of_range", "bad position", raw_text(raw)))
                continue
            counts.input_lines += 1
            counts.positions += 1
            for key, value in zip(cols, (sid, ts, lon, lat, line_no), strict=True):
                cols[key].append(value)
        batch = PositionBatch.from_columns(**cols, source=[self.source] * len(cols["ts_s"]))
        return DecodeResult(positions=batch, dead=dead, counts=counts)

    def close(self) -> DecodeResult:
        return DecodeResult.empty()


def fake_decoder_factory(name: str, head: bytes, live: bool) -> FakeJsonlDecoder:
    """A :data:`streams.runner.DecoderFactory` building :class:`FakeJsonlDecoder`."""
    return FakeJsonlDecoder(name)


def write_track_jsonl(
    path: Path, *, subjects: int = 40, steps: int = 200, seed: int = 1, bad_every: int = 97, t0_s: float = 1.7e9
) -> int:
    """Write tracks crossing :data:`BOX` (some stop reporting inside it, to exercise timers); return line count.

    Every ``bad_every``-th line is garbage so dead letters flow too. Records carry a
    ``seq`` field (the record's 1-based number among parseable records) for
    :class:`FakeJsonlDecoder`'s state check.
    """
    rng = random.Random(seed)
    tracks = []
    for s in range(subjects):
        lat = rng.uniform(30.05, 30.45)
        lon0 = rng.uniform(113.6, 113.95)
        speed = rng.uniform(0.004, 0.01)
        stop_at = rng.randrange(steps // 2, steps * 2)  # some vanish inside the box
        tracks.append((f"41300{s:04d}", lon0, lat, speed, stop_at))
    lines: list[bytes] = []
    seq = 0
    for step in range(steps):
        for sid, lon0, lat, speed, stop_at in tracks:
            if step >= stop_at:
                continue
            n = len(lines) + 1
            if bad_every and n % bad_every == 0:
                lines.append(b'{"id": "broken", "ts": ')
                continue
            seq += 1
            rec = {"id": sid, "ts": t0_s + step * 10.0, "lon": lon0 + speed * step, "lat": lat, "seq": seq}
            lines.append(orjson.dumps(rec))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return len(lines)


#: A GeoJSON zone file with :data:`BOX` as an anchorage, for runs with the real engine.
BOX_GEOJSON: dict[str, Any] = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"id": ZONE_ID, "name": "Test box", "kind": "anchorage", "max_dwell_min": 5},
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [[BOX[0], BOX[1]], [BOX[2], BOX[1]], [BOX[2], BOX[3]], [BOX[0], BOX[3]], [BOX[0], BOX[1]]]
                ],
            },
        }
    ],
}


def make_alert(
    status: Status,
    ts: float,
    subject: str = "413000001",
    type_: AlertType = AlertType.DWELL_EXCEEDED,
    start: float = 100.0,
    zone: str = "z1",
) -> Alert:
    """A dwell_exceeded line (or ``type_``) of the incident that started at ``start``, for sink tests."""
    return Alert(
        alert_id(type_, subject, zone, start),
        type_,
        status,
        Severity.WARNING,
        subject,
        "vessel",
        zone,
        "v1",
        ts,
        114.1234567,
        30.5,
        {"dwell_s": ts - start},
    )


def read_triples(path: Path) -> list[tuple[str, str, str]]:
    """The (alert_id, status, ts) triples of an alert JSONL file, in file order (duplicates kept)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_bytes().splitlines():
        if line.strip():
            obj = orjson.loads(line)
            out.append((obj["alert_id"], obj["status"], obj["ts"]))
    return out


class SlowEngine:
    """Delegates to ``inner``; ``process`` sleeps ``delay_s`` first (to kill a runner mid-run)."""

    def __init__(self, inner: Any, delay_s: float) -> None:
        self._inner = inner
        self._delay_s = delay_s

    def process(self, batch: PositionBatch) -> EngineOutput:
        time.sleep(self._delay_s)
        out: EngineOutput = self._inner.process(batch)
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class SlowEngineFactory:
    """Wraps another engine factory's engines in :class:`SlowEngine`."""

    def __init__(self, inner: Any, delay_s: float) -> None:
        self._inner = inner
        self._delay_s = delay_s

    def new(self, zones: ZoneSet) -> SlowEngine:
        return SlowEngine(self._inner.new(zones), self._delay_s)

    def restore(self, data: bytes, zones: ZoneSet) -> SlowEngine:
        return SlowEngine(self._inner.restore(data, zones), self._delay_s)


#: Fairway corridors kept in :func:`sim_world`'s zones (the others make the fence grid slow to build).
SIM_FAIRWAYS = ("fw-cq-yichang",)


def sim_world(directory: Path, *, vessels: int = 30, hours: float = 3.0, seed: int = 5) -> dict[str, Path]:
    """Simulated Yangtze traffic and zones for end-to-end runs of ``geofence run`` with the real engine.

    Zones: the shipped catalogue without the fairway corridors other than :data:`SIM_FAIRWAYS`,
    and with learned-percentile dwell limits (``"p99"``) replaced by 240 minutes, so that no
    baseline is needed and the engine builds in well under a second. Traffic: ``vessels``
    vessels for ``hours`` hours, one injected anomaly per type, reports every 30 s at most,
    as NMEA (``nmea``), as JSONL (``jsonl``) and as the JSONL grouped by subject (``grouped``,
    out of event-time order like the Suez CSV). Returns the paths by those names plus ``zones``.
    """
    from geofence.simulate import SimConfig, jsonl_lines, nmea_lines, simulate
    from zones import default_catalogue_path, load_zones

    catalogue = orjson.loads(default_catalogue_path().read_bytes())
    kept = []
    for feature in catalogue["features"]:
        props = feature["properties"]
        if props["kind"] == "fairway" and props["id"] not in SIM_FAIRWAYS:
            continue
        if isinstance(props.get("max_dwell_min"), str):
            props["max_dwell_min"] = 240
        kept.append(feature)
    catalogue["features"] = kept
    zones = directory / "zones.geojson"
    zones.write_bytes(orjson.dumps(catalogue))
    config = SimConfig(vessels=vessels, hours=hours, seed=seed, anomalies_per_type=1, downsample_s=30.0)
    sim = simulate(load_zones([default_catalogue_path()]), config)
    nmea, jsonl, grouped = directory / "traffic.nmea", directory / "traffic.jsonl", directory / "grouped.jsonl"
    nmea.write_bytes(b"".join(s.encode("ascii") + b"\n" for s in nmea_lines(sim)))
    lines = jsonl_lines(sim)
    jsonl.write_bytes(b"".join(x + b"\n" for x in lines))
    grouped.write_bytes(b"".join(x + b"\n" for x in sorted(lines, key=lambda x: str(orjson.loads(x)["id"]))))
    return {"zones": zones, "nmea": nmea, "jsonl": jsonl, "grouped": grouped}


def _main(argv: Sequence[str]) -> int:
    import argparse

    from streams.runner import DefaultEngineFactory, add_run_arguments, run_cli

    parser = argparse.ArgumentParser(prog="python -m tests.fakes")
    add_run_arguments(parser)
    args = parser.parse_args(argv)
    real = os.environ.get("FAKE_ENGINE") == "real"
    factory: Any = DefaultEngineFactory(args.rules, args.baseline, args.plans) if real else FakeEngineFactory()
    delay_s = float(os.environ.get("FAKE_DELAY_S", "0") or 0)
    if delay_s:
        factory = SlowEngineFactory(factory, delay_s)
    return run_cli(args, engine_factory=factory, decoder_factory=fake_decoder_factory)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
