"""Every alert line the engine writes validates against geofence/schema/alert.schema.json."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import orjson

import geofence
from geofence.engine import Engine
from geofence.positions import StaticReport
from tests.test_engine_support import T0, fence, run, track, zones

SCHEMA = json.loads((Path(geofence.__file__).parent / "schema" / "alert.schema.json").read_text())


def test_alert_lines_validate() -> None:
    zs = zones(fence("p", "port", 0.0, 0.0, 0.1, 0.1, max_dwell_min=5), fence("r", "restricted", 0.2, 0.0, 0.21, 0.1))
    rows = track("v1", T0, 30, [(0.05, 0.05)] * 20 + [(0.12 + 0.001 * k, 0.05) for k in range(120)], sog=5.0)
    rows += [{"sid": "w", "ts": T0 + k * 10, "lon": 0.3, "lat": 0.3, "receiver": "B"} for k in range(900)]
    rows.sort(key=lambda r: r["ts"])
    eng = Engine(zs)
    eng.add_statics([StaticReport("v1", None, name="HAI XUN", ship_type=70, length_m=120.0)])
    lines = [orjson.loads(x) for x in run(eng, rows)]
    assert {d["type"] for d in lines} >= {"zone_enter", "zone_exit", "dwell_exceeded", "restricted_entry"}
    for d in lines:
        jsonschema.validate(d, SCHEMA)
    assert any(d["details"].get("vessel", {}).get("name") == "HAI XUN" for d in lines)
