"""The container rules inside the engine: ``container_separation`` and ``container_zone_exit`` alert lines.

The detectors themselves are tested in ``tests/test_rules_containers.py``; here: the lines the
engine writes, and that they do not depend on the micro-batch size, on snapshots, or on the path.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geofence.engine import Engine
from geofence.rules.config import RulesConfig
from geofence.timefmt import parse_iso_utc
from tests.test_engine_support import M_PER_DEG, T0, batch, fence, run, zones

ZS = zones(
    fence("cus", "customs", 0.0, 0.0, 0.01, 0.01),
    fence("wharf", "port", 0.02, 0.0, 0.03, 0.01, exit_requires_release=True),
    fence("fw", "fairway", -0.05, -0.01, 0.2, 0.03),
)
SHIP, BOX = "413000001", "MSCU1234565"
SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _ship_and_box(left_at_s: float | None, back_at_s: float | None = None, n: int = 120) -> list[dict[str, Any]]:
    """A ship sailing east at ~6 kn from lon 0.05 every 30 s; a container aboard reporting every 60 s.

    From ``left_at_s`` the container stays where it was (left on the quay); from ``back_at_s``
    it is aboard again.
    """
    step = 6 * 1852 / 3600 * 30 / M_PER_DEG
    rows: list[dict[str, Any]] = []
    stay: tuple[float, float] | None = None
    for k in range(n):
        t = T0 + 30 * k
        lon = 0.05 + step * k
        rows.append({"sid": SHIP, "ts": t, "lon": lon, "lat": 0.015, "sog": 6.0})
        if k % 2 == 0:
            here = (lon, 0.015)
            rel = 30 * k
            if left_at_s is not None and rel >= left_at_s and (back_at_s is None or rel < back_at_s):
                stay = stay or here
                here = stay
            rows.append({"sid": BOX, "ts": t + 5, "lon": here[0], "lat": here[1], "kind": 1, "carrier": SHIP})
    rows.sort(key=lambda r: r["ts"])
    return rows


def _lines(eng: Engine, rows: list[dict[str, Any]], size: int | None = None, kind: str = "") -> list[dict[str, Any]]:
    return [d for d in map(orjson.loads, run(eng, rows, size)) if d["type"].startswith(kind)]


def test_container_left_behind_gives_one_open_and_one_closed() -> None:
    got = _lines(Engine(ZS), _ship_and_box(left_at_s=600, back_at_s=2700), kind="container_separation")
    assert [d["status"] for d in got] == ["open", "closed"]
    opened, closed = got
    assert opened["subject_id"] == BOX and opened["subject_kind"] == "container" and opened["severity"] == "warning"
    assert opened["details"]["carrier_id"] == SHIP and opened["details"]["separation_m"] > 1000
    assert opened["zone_id"] is None
    # opened once the separation has held 15 min (reports every 60 s), dated at that report
    held_s = parse_iso_utc(opened["ts"]) - parse_iso_utc(opened["details"]["started"])
    assert 900 <= held_s < 960
    # started at the first report more than 1 km from the ship, which sails at 6 kn from t = 600 s
    assert 600 + 1000 / (6 * 1852 / 3600) <= parse_iso_utc(opened["details"]["started"]) - T0 - 5 < 600 + 324 + 60
    assert closed["details"]["duration_s"] > 0 and closed["alert_id"] == opened["alert_id"]


def test_container_aboard_raises_nothing() -> None:
    assert _lines(Engine(ZS), _ship_and_box(left_at_s=None), kind="container") == []


def test_separation_can_be_switched_off() -> None:
    cfg = RulesConfig.from_toml("[defaults.container_separation]\nenabled = false\n")
    assert _lines(Engine(ZS, cfg), _ship_and_box(left_at_s=600), kind="container") == []


def _leave(zone_lon: float, release: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A container inside a zone for 10 min, then out of it (east, 0.005 deg beyond)."""
    rows = [{"sid": BOX, "ts": T0 + 60 * k, "lon": zone_lon + 0.005, "lat": 0.005, "kind": 1} for k in range(10)] + [
        {"sid": BOX, "ts": T0 + 600 + 60 * k, "lon": zone_lon + 0.015, "lat": 0.005, "kind": 1} for k in range(5)
    ]
    if release is not None:
        rows.append({"sid": BOX, "kind": 1, "lon": zone_lon + 0.005, "lat": 0.005, "event": 1, **release})
        rows.sort(key=lambda r: r["ts"])
    return rows


def test_unreleased_exit_from_customs_is_a_critical_event() -> None:
    got = _lines(Engine(ZS), _leave(0.0, None), kind="container_zone_exit")
    assert [(d["status"], d["severity"], d["zone_id"], d["subject_kind"]) for d in got] == [
        ("event", "critical", "cus", "container")
    ]
    assert got[0]["ts"] == "2023-11-14T22:23:20Z"  # the first report outside (T0 + 600)
    assert got[0]["details"]["released"] is False


def test_release_before_the_exit_is_consumed() -> None:
    assert _lines(Engine(ZS), _leave(0.0, {"ts": T0 + 300}), kind="container_zone_exit") == []
    assert _lines(Engine(ZS), _leave(0.0, {"ts": T0 + 300, "event_zone": "cus"}), kind="container_zone_exit") == []


def test_release_for_another_zone_or_after_the_exit_does_not_count() -> None:
    other = _lines(Engine(ZS), _leave(0.0, {"ts": T0 + 300, "event_zone": "wharf"}), kind="container_zone_exit")
    assert [d["zone_id"] for d in other] == ["cus"]
    late = _lines(Engine(ZS), _leave(0.0, {"ts": T0 + 700}), kind="container_zone_exit")
    assert [d["zone_id"] for d in late] == ["cus"]


def test_exit_requires_release_is_a_fence_property_for_other_kinds() -> None:
    # the wharf (port) opts in; a zone-less release only serves customs zones
    got = _lines(Engine(ZS), _leave(0.02, {"ts": T0 + 300}), kind="container_zone_exit")
    assert [d["zone_id"] for d in got] == ["wharf"]
    assert _lines(Engine(ZS), _leave(0.02, {"ts": T0 + 300, "event_zone": "wharf"}), kind="container_zone_exit") == []


def test_vessels_leaving_customs_raise_no_container_event() -> None:
    rows = [{"sid": SHIP, "ts": r["ts"], "lon": r["lon"], "lat": r["lat"]} for r in _leave(0.0, None)]
    assert _lines(Engine(ZS), rows, kind="container") == []


@st.composite
def container_rows(draw: Any) -> list[dict[str, Any]]:
    """Ships and containers (some left behind, some leaving customs with or without a release), jittered."""
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    rows: list[dict[str, Any]] = []
    for j in range(draw(st.integers(1, 2))):
        left = draw(st.sampled_from([None, 300.0, 900.0]))
        back = draw(st.sampled_from([None, 2400.0]))
        for r in _ship_and_box(left, back, n=draw(st.integers(20, 110))):
            r = dict(r, sid=f"{r['sid']}-{j}")
            if r.get("carrier"):
                r["carrier"] = f"{SHIP}-{j}"
            rows.append(r)
    for j in range(draw(st.integers(0, 2))):
        rel = draw(st.sampled_from([None, {"ts": T0 + 300}, {"ts": T0 + 300, "event_zone": "wharf"}]))
        for r in _leave(draw(st.sampled_from([0.0, 0.02])), rel):
            rows.append(dict(r, sid=f"BOXU{j}"))
    for r in rows:
        r["ts"] = float(r["ts"] + rng.uniform(0, 20))
    rows.sort(key=lambda r: r["ts"])
    return rows


@SETTINGS
@given(container_rows())
def test_container_lines_do_not_depend_on_batch_size(rows: list[dict[str, Any]]) -> None:
    ref = run(Engine(ZS), rows, 1000)
    assert run(Engine(ZS), rows, 1) == ref
    assert run(Engine(ZS), rows, 7) == ref
    assert run(Engine(ZS, fast=False), rows, 7) == ref


@SETTINGS
@given(container_rows(), st.lists(st.integers(1, 60), min_size=1, max_size=3))
def test_container_state_survives_snapshots(rows: list[dict[str, Any]], cuts: list[int]) -> None:
    ref = run(Engine(ZS), rows, 11)
    eng = Engine(ZS)
    out: list[bytes] = []
    for k in range(0, len(rows), 11):
        out += [a.to_json() for a in eng.process(batch(rows[k : k + 11])).alerts]
        if k // 11 in cuts:
            eng = Engine.restore(eng.snapshot(), ZS)
    out += [a.to_json() for a in eng.finish().alerts]
    assert out == ref
