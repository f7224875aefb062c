"""Engine invariants: batch-size independence, reorder tolerance, snapshot/restore, lateness."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geofence.engine import Engine
from tests.test_engine_containers import ZS as CONTAINER_ZS
from tests.test_engine_containers import container_rows
from tests.test_engine_support import T0, batch, fence, run, zones
from tests.test_rules_encounter import lying_together_then_separating

ZS = zones(
    fence("port", "port", 0.0, 0.0, 0.02, 0.02, max_dwell_min=20),
    fence("r", "restricted", 0.03, 0.0, 0.035, 0.02),
    fence("fw", "fairway", -0.05, -0.01, 0.1, 0.03, speed_limit_kn=8),
    fence("anc", "anchorage", 0.05, 0.0, 0.07, 0.02, min_inside_s=120),
)

#: the vessel fences plus the container test's customs and release-controlled wharf
CZS = zones(*ZS.fences, *(f for f in CONTAINER_ZS.fences if f.id in ("cus", "wharf")))

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def tracks(draw: Any, far: bool = False) -> list[dict[str, Any]]:
    n_subj = draw(st.integers(1, 4))
    rows: list[dict[str, Any]] = []
    for j in range(n_subj):
        n = draw(st.integers(3, 40))
        seed = draw(st.integers(0, 2**31))
        rng = np.random.default_rng(seed)
        lon, lat = (5.0, 5.0) if far else (rng.uniform(-0.02, 0.09), rng.uniform(-0.005, 0.025))
        t = T0 + rng.uniform(0, 600)
        mode = draw(st.sampled_from(["drift", "cruise", "stop", "fast"]))
        for _ in range(n):
            dt = float(rng.choice([10.0, 30.0, 60.0, 300.0])) if not far else 30.0
            t += dt + float(rng.uniform(0, 1))
            if far:
                lon += 5 * 1852 / 3600 * dt / 111_000
                sog = 5.0
            elif mode == "stop":
                lon += rng.normal(0, 0.00005)
                sog = 0.1
            else:
                v = {"drift": 2.0, "cruise": 6.0, "fast": 14.0}[mode]
                step = v * 1852 / 3600 * dt / 111_000
                lon += step * float(rng.choice([1, 1, 1, -1]))
                lat += rng.normal(0, step / 3)
                sog = v if rng.uniform() < 0.8 else math.nan
            rows.append({"sid": f"s{j}", "ts": round(t, 3), "lon": float(lon), "lat": float(lat), "sog": sog})
    rows.sort(key=lambda r: r["ts"])
    return rows


@SETTINGS
@given(tracks())
def test_output_does_not_depend_on_batch_size(rows: list[dict[str, Any]]) -> None:
    ref = run(Engine(ZS), rows, 1000)
    assert run(Engine(ZS), rows, 1) == ref
    assert run(Engine(ZS), rows, 7) == ref


@SETTINGS
@given(tracks(), container_rows())
def test_output_does_not_depend_on_batch_size_with_container_rows(
    rows: list[dict[str, Any]], boxes: list[dict[str, Any]]
) -> None:
    """The same with containers (separation from their carrier, exits from customs) among the vessels."""
    rows = sorted(rows + boxes, key=lambda r: r["ts"])
    ref = run(Engine(CZS), rows, 1000)
    assert run(Engine(CZS), rows, 1) == ref
    assert run(Engine(CZS), rows, 7) == ref


@st.composite
def encounters(draw: Any) -> list[dict[str, Any]]:
    """Two vessels lying together long enough for an encounter, then getting under way at slightly
    different times (either first), with class-A/class-B reporting rates, in or out of phase."""
    b_leave_s = float(draw(st.integers(1800, 2700)))  # both leave >= 1200 s after the pair first met
    return lying_together_then_separating(
        a_step_s=float(draw(st.sampled_from([10, 30, 60]))),
        b_step_s=float(draw(st.sampled_from([30, 180]))),
        b_phase_s=float(draw(st.integers(0, 179))),
        b_leave_s=b_leave_s,
        a_leave_s=b_leave_s + draw(st.integers(-120, 120)),
        gap_m=float(draw(st.integers(10, 95))),
        drift_kn=draw(st.sampled_from([0.2, 0.6, 0.9])),
        fast_kn=draw(st.sampled_from([2.5, 6.3])),
        end_s=b_leave_s + 300.0,
        a_sog=draw(st.booleans()),
    )


@SETTINGS
@given(encounters())
def test_encounter_output_does_not_depend_on_batch_size(rows: list[dict[str, Any]]) -> None:
    """The encounter open and close lines (time, distance, duration) are the same whatever the cuts."""
    ref = run(Engine(ZS), rows, 1000)
    assert "encounter" in {orjson.loads(x)["type"] for x in ref}  # the scenario is an encounter
    assert run(Engine(ZS), rows, 1) == ref
    assert run(Engine(ZS), rows, 7) == ref


@SETTINGS
@given(tracks(), st.integers(0, 2**31))
def test_permutations_within_the_tolerance_give_the_same_output(rows: list[dict[str, Any]], seed: int) -> None:
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 30, len(rows))  # every record moves by less than half the 60 s tolerance
    shuffled = [rows[i] for i in np.argsort([r["ts"] + x for r, x in zip(rows, noise, strict=True)], kind="stable")]
    eng = Engine(ZS)
    assert run(eng, shuffled, 5) == run(Engine(ZS), rows, 5)
    assert eng.stats().late == 0


@SETTINGS
@given(tracks(far=True))
def test_no_alert_for_subjects_that_never_meet_a_condition(rows: list[dict[str, Any]]) -> None:
    assert run(Engine(ZS), rows, 13) == []


@SETTINGS
@given(tracks(), st.lists(st.integers(1, 200), min_size=1, max_size=4))
def test_snapshot_restore_continues_like_an_uninterrupted_engine(rows: list[dict[str, Any]], cuts: list[int]) -> None:
    ref = run(Engine(ZS), rows, 9)
    eng = Engine(ZS)
    out: list[bytes] = []
    for k in range(0, len(rows), 9):
        out += [a.to_json() for a in eng.process(batch(rows[k : k + 9])).alerts]
        if k // 9 in cuts:
            eng = Engine.restore(eng.snapshot(), ZS)
    out += [a.to_json() for a in eng.finish().alerts]
    assert out == ref


def test_late_records_go_to_the_dead_letter() -> None:
    rows = [
        {"sid": "a", "ts": T0 + 100, "lon": 1.0, "lat": 1.0, "line": 1},
        {"sid": "a", "ts": T0 + 50, "lon": 1.0, "lat": 1.0, "line": 2},  # within 60 s: reordered
        {"sid": "a", "ts": T0 + 30, "lon": 1.0, "lat": 1.0, "line": 3},  # 70 s older: late
        {"sid": "b", "ts": T0 + 10, "lon": 1.0, "lat": 1.0, "line": 4},  # other subject: not late
    ]
    eng = Engine(ZS)
    dead = eng.process(batch(rows)).dead
    assert [(d.line, d.reason) for d in dead] == [(3, "late")]
    assert orjson.loads(dead[0].raw)["subject_id"] == "a"
    assert eng.stats().late == 1


def test_timers_never_fire_beyond_the_final_watermark() -> None:
    rows = [{"sid": "a", "ts": T0 + k * 10, "lon": 0.01, "lat": 0.01, "sog": 0.0} for k in range(100)]
    eng = Engine(ZS)
    lines = run(eng, rows)
    # dwell limit 20 min > 990 s of data: nothing but the enter; the gap is not invented after the end
    assert sorted((orjson.loads(x)["type"], orjson.loads(x)["zone_id"]) for x in lines) == [
        ("zone_enter", "fw"),
        ("zone_enter", "port"),
    ]
    assert eng.open_alerts() == []


@SETTINGS
@given(tracks(), st.integers(1, 60))
def test_fast_path_equals_the_per_record_path(rows: list[dict[str, Any]], size: int) -> None:
    for r in rows:
        r.setdefault("receiver", "A" if r["sid"] < "s2" else "B")
    assert run(Engine(ZS), rows, size) == run(Engine(ZS, fast=False), rows, size)


@SETTINGS
@given(tracks(), st.integers(1, 60), st.integers(0, 2**31))
def test_fast_path_equals_the_per_record_path_with_courses_and_feed_changes(
    rows: list[dict[str, Any]], size: int, seed: int
) -> None:
    """Courses (approach warnings) and subjects heard by changing receivers take both paths alike."""
    rng = np.random.default_rng(seed)
    for r in rows:
        r["cog"] = float(rng.uniform(0, 360))
        r["receiver"] = str(rng.choice(["A", "B", ""]))
    ref = run(Engine(ZS, fast=False), rows, size)
    assert run(Engine(ZS), rows, size) == ref
    assert run(Engine(ZS), rows, 1000) == run(Engine(ZS, fast=False), rows, 1000)
