"""The engine wires the encounter, approach and route detectors into open/closed alert lines."""

from __future__ import annotations

import orjson

from geofence.engine import Engine
from geofence.rules.route import parse_plans
from tests.test_engine_support import T0, fence, run, track, zones

ZS = zones(
    fence("fw", "fairway", 0.0, 0.0, 1.0, 0.1),
    fence("r", "restricted", 0.5, 0.0, 0.52, 0.1),
    fence("anc", "anchorage", 0.8, 0.0, 0.9, 0.1),
)


def _lines(eng: Engine, rows: list[dict[str, object]], size: int = 50) -> list[dict[str, object]]:
    rows = sorted(rows, key=lambda r: (r["ts"], r["sid"]))
    return [orjson.loads(x) for x in run(eng, rows, size)]


def test_encounter_gives_one_alert_per_vessel() -> None:
    a = track("a", T0, 30, [(0.2, 0.05)] * 80 + [(0.2 - 0.001 * k, 0.05) for k in range(1, 30)], sog=0.2)
    b = track("b", T0 + 5, 30, [(0.2003, 0.05)] * 80 + [(0.2003 + 0.001 * k, 0.05) for k in range(1, 30)], sog=0.2)
    for r in a[80:] + b[80:]:
        r["sog"] = 7.0
    enc = [d for d in _lines(Engine(ZS), a + b) if d["type"] == "encounter"]
    got = sorted((d["subject_id"], d["status"], d["details"]["other_subject_id"]) for d in enc)
    assert got == [("a", "closed", "b"), ("a", "open", "b"), ("b", "closed", "a"), ("b", "open", "a")]


def test_encounter_in_an_anchorage_is_normal() -> None:
    a = track("a", T0, 30, [(0.85, 0.05)] * 80, sog=0.2)
    b = track("b", T0 + 5, 30, [(0.8503, 0.05)] * 80, sog=0.2)
    assert not [d for d in _lines(Engine(ZS), a + b) if d["type"] == "encounter"]


def test_approach_warning_opens_before_entry_and_closes_on_entry() -> None:
    rows = track("v", T0, 30, [(0.44 + 0.0015 * k, 0.05) for k in range(60)], sog=10.0)
    for r in rows:
        r["cog"] = 90.0
    got = _lines(Engine(ZS), rows)
    appr = [(d["type"], d["status"]) for d in got if d["type"] in ("approach_warning", "restricted_entry")]
    assert appr[:3] == [("approach_warning", "open"), ("approach_warning", "closed"), ("restricted_entry", "event")]


def test_route_deviation_opens_and_closes() -> None:
    plans = parse_plans(
        [
            {
                "subject_id": "v",
                "corridor": {"type": "LineString", "coordinates": [[0.0, 0.05], [1.0, 0.05]]},
                "width_m": 400,
            }
        ],
        ZS,
    )
    on = [(0.1 + 0.001 * k, 0.05) for k in range(20)]
    off = [(0.12 + 0.001 * k, 0.07) for k in range(40)]  # ~2.2 km north of the centre line
    back = [(0.16 + 0.001 * k, 0.05) for k in range(20)]
    rows = track("v", T0, 30, on + off + back, sog=6.0)
    got = [d for d in _lines(Engine(ZS, plans=plans), rows) if d["type"] == "route_deviation"]
    assert [d["status"] for d in got] == ["open", "closed"]
    assert got[0]["details"]["distance_m"] > 1000
