"""Regression tests named after engine bugs found while making it fast (each failed before its fix)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geofence.engine import Engine
from geofence.timefmt import iso_utc as iso
from tests.test_engine_support import T0, batch, fence, run, track, zones

#: A restricted fence to the east of a fairway, so that vessels heading east get approach warnings.
APPROACH_ZS = zones(
    fence("fw", "fairway", -0.05, -0.01, 0.1, 0.03),
    fence("r", "restricted", 0.03, 0.0, 0.035, 0.02),
)


def _approach_rows() -> list[dict[str, Any]]:
    """Three vessels sailing east at 6 kn towards the restricted fence, a report every 30 s."""
    rows = []
    for j in range(3):
        lon = -0.002 * j
        for k in range(40):
            rows.append({"sid": f"v{j}", "ts": T0 + 30 * k + j, "lon": lon, "lat": 0.01, "sog": 6.0, "cog": 90.0})
            lon += 6 * 1852 / 3600 * 30 / 111_000
    rows.sort(key=lambda r: r["ts"])
    return rows


def test_approach_warning_evidence_is_the_track_at_its_record_whatever_the_batch_size() -> None:
    """Bug: approach_warning (and route_deviation) details quoted the evidence ring as it was at the end of
    the micro-batch, so the same input gave other ``details.track`` for other batch sizes."""
    rows = _approach_rows()
    ref = run(Engine(APPROACH_ZS), rows, 1)
    warnings = [orjson.loads(x) for x in ref if b'"approach_warning"' in x]
    assert warnings, "the scenario must raise approach warnings"
    for size in (7, 50, 1000):
        assert run(Engine(APPROACH_ZS), rows, size) == ref
    for w in warnings:
        if w["status"] == "open":  # the newest evidence point is the record the warning was raised at
            assert w["details"]["track"][-1][2] == w["ts"]


def _two_feed_rows() -> list[dict[str, Any]]:
    """Feeds A and B hear three vessels each; x is heard by A, then by B in the same chunk, then falls silent
    while B goes out (its vessels stop) and A keeps talking."""
    rows: list[dict[str, Any]] = []
    for k in range(400):
        for j in range(3):
            if k < 60:
                rows.append(
                    {"sid": f"b{j}", "ts": T0 + k * 10 + j, "lon": 0.01 + 1e-4 * j, "lat": 0.01, "receiver": "B"}
                )
            rows.append(
                {"sid": f"a{j}", "ts": T0 + k * 10 + j + 0.5, "lon": 0.012, "lat": 0.012 + 1e-4 * j, "receiver": "A"}
            )
    rows.append({"sid": "x", "ts": T0 + 600, "lon": 0.03, "lat": 0.01, "receiver": "A"})
    rows.append({"sid": "x", "ts": T0 + 605, "lon": 0.0301, "lat": 0.01, "receiver": "B"})
    for r in rows:
        r["sog"] = 5.0
    rows.sort(key=lambda r: r["ts"])
    return rows


@pytest.mark.parametrize("size", [20, 60, 200, 5000])
@pytest.mark.parametrize("fast", [True, False])
def test_gap_of_a_subject_heard_by_two_feeds_in_one_chunk_is_not_held_back(size: int, fast: bool) -> None:
    """Bug: the fast path kept a subject whose records in one chunk came from two feeds as cold, so it lost
    the time the other feed heard it; its ais_gap was then held back as if only the dead feed had heard it
    (and only for some batch sizes)."""
    zs = zones(fence("port", "port", 0.0, 0.0, 0.02, 0.02))
    types = [
        (d["type"], d["subject_id"])
        for d in map(orjson.loads, run(Engine(zs, fast=fast), _two_feed_rows(), size))
        if not d["type"].startswith("zone")
    ]
    assert types == [("feed_outage", "B"), ("ais_gap", "x")]


# -- position_jump: the confirmation window of a sparse reporter ------------------------------------------------


def _sparse_jumper(interval_s: float) -> list[dict[str, Any]]:
    """A boat reporting every ``interval_s`` at 0.05E, then (one MMSI, another boat) 500 km east, same interval."""
    here = [(0.05, 0.05)] * 6
    there = [(4.5 + 0.0001 * k, 0.05) for k in range(6)]
    return [{**r, "sog": 0.0} for r in track("v1", T0, interval_s, here + there)]


@pytest.mark.parametrize("fast", [True, False])
def test_regression_sparse_reporter_confirms_its_jump(fast: bool) -> None:
    """Bug: an unconfirmed suspect was discarded after a fixed 15 min, so a boat reporting every 30 min never
    confirmed its jump and each later report raised another ``position_jump`` (real data: MMSI 412588888).
    The window is now 4 x the subject's median reporting interval (15 min to 2 h)."""
    zs = zones(fence("far", "port", 4.45, 0.0, 4.55, 0.1))
    lines = list(map(orjson.loads, run(Engine(zs, fast=fast), _sparse_jumper(1800.0), 3)))
    got = [(d["type"], d["ts"], d["details"].get("report_ts")) for d in lines]
    jump_ts = "2023-11-15T01:13:20Z"  # T0 + 6 x 30 min
    # confirmed 30 min later, after its 15-min release hold: applied then, with the suspect's own time
    assert sorted(got) == [("position_jump", jump_ts, None), ("zone_enter", "2023-11-15T01:43:20Z", jump_ts)]


def test_frequent_reporter_keeps_the_15_min_window() -> None:
    from geofence._engine_record import SUSPECT_EXPIRY_MAX_S, SUSPECT_EXPIRY_S, suspect_expiry_s

    assert suspect_expiry_s([0, 10_000, 20_000, 30_000, 40_000]) == SUSPECT_EXPIRY_S
    assert suspect_expiry_s([0, 1_800_000, 3_600_000]) == 4 * 1800.0
    assert suspect_expiry_s([0, 86_400_000]) == SUSPECT_EXPIRY_MAX_S
    assert suspect_expiry_s([5_000]) == SUSPECT_EXPIRY_S


# -- position_jump: a long-pending suspect does not hold back everybody's alert lines ---------------------------

HOLD_ZS = zones(fence("far", "port", 4.45, 0.0, 4.55, 0.1), fence("p2", "port", 2.0, 0.0, 2.1, 0.1))
#: The sparse boat's jump: after six reports 30 min apart (suspect expiry 4 x 30 min = 2 h).
JUMP_TS = T0 + 6 * 1800


def _hold_rows() -> list[dict[str, Any]]:
    """v1 reports every 30 min, jumps 500 km east at JUMP_TS and confirms it 1 h later; w, reporting every
    minute, enters fence p2 one minute after the jump and keeps the watermark moving."""
    v1 = track("v1", T0, 1800, [(0.05, 0.05)] * 6, sog=0.0)
    v1 += track("v1", JUMP_TS, 3600, [(4.5, 0.05), (4.5001, 0.05)], sog=0.0)
    w = [
        {"sid": "w", "ts": t, "lon": 1.999 if t <= JUMP_TS else 2.001, "lat": 0.05, "sog": 5.0}
        for t in (JUMP_TS - 600 + 60 * k for k in range(81))
    ]
    return sorted(v1 + w, key=lambda r: (r["ts"], r["sid"]))


def _upto(rows: list[dict[str, Any]], t: float) -> list[dict[str, Any]]:
    return [r for r in rows if r["ts"] <= t]


@pytest.mark.parametrize("fast", [True, False])
def test_regression_pending_suspect_holds_other_lines_at_most_15_min(fast: bool) -> None:
    """Bug: a position_jump suspect held back the release of every subject's alert lines until it was decided,
    up to its adaptive expiry (2 h for a sparse class-B boat). The hold now ends 15 min of watermark after the
    jump; the suspect itself stays pending."""
    rows = _hold_rows()
    eng = Engine(HOLD_ZS, fast=fast)
    before = _upto(rows, JUMP_TS + 900)  # watermark 14 min past the jump: still held
    first = [orjson.loads(a.to_json()) for a in eng.process(batch(before)).alerts]
    assert not [d for d in first if d["type"] in ("zone_enter", "position_jump")]
    more = [r for r in _upto(rows, JUMP_TS + 1020) if r not in before]  # watermark 16 min past the jump
    second = [orjson.loads(a.to_json()) for a in eng.process(batch(more)).alerts]
    assert eng.stats().watermark_s == JUMP_TS + 960
    got = [(d["type"], d["subject_id"], d["ts"]) for d in second]
    assert ("zone_enter", "w", iso(JUMP_TS + 60)) in got
    assert ("position_jump", "v1", iso(JUMP_TS)) in got  # the jump itself is dated at the jump
    assert [eng._c.sid(s) for s in eng._c.suspects] == ["v1"]  # still pending, no longer holding the release


@pytest.mark.parametrize("fast", [True, False])
def test_regression_confirmation_after_the_hold_is_dated_at_the_confirming_report(fast: bool) -> None:
    """A suspect confirmed after its release hold ended cannot be applied at its own time any more (lines up to
    the horizon are out): its consequences are dated at the confirming report, its own time in report_ts."""
    lines = list(map(orjson.loads, run(Engine(HOLD_ZS, fast=fast), _hold_rows(), 7)))
    v1 = [(d["type"], d["ts"], d["zone_id"], d["details"].get("report_ts")) for d in lines if d["subject_id"] == "v1"]
    assert sorted(v1) == [  # the move 0.05E -> 4.5E, applied on confirmation, also crosses p2
        ("position_jump", iso(JUMP_TS), None, None),
        ("zone_cross", iso(JUMP_TS + 3600), "p2", iso(JUMP_TS)),
        ("zone_enter", iso(JUMP_TS + 3600), "far", iso(JUMP_TS)),
    ]
    enter = next(d for d in lines if d["subject_id"] == "v1" and d["type"] == "zone_enter")
    assert (enter["lon"], enter["lat"]) == (4.5, 0.05)  # the quarantined position, applied


def test_regression_late_confirmation_is_batch_size_independent_and_survives_a_snapshot() -> None:
    rows = _hold_rows()
    ref = run(Engine(HOLD_ZS), rows, 1)
    assert any(b'"zone_enter"' in x and b'"v1"' in x for x in ref)
    for size in (7, 1000):
        for fast in (True, False):
            assert run(Engine(HOLD_ZS, fast=fast), rows, size) == ref, (size, fast)
    # a snapshot while the suspect is pending and its hold is over continues like the uninterrupted engine
    eng = Engine(HOLD_ZS)
    head = _upto(rows, JUMP_TS + 1800)
    out = [a.to_json() for a in eng.process(batch(head)).alerts]
    assert [eng._c.sid(s) for s in eng._c.suspects] == ["v1"] and not eng._c.retro  # pending, hold over
    eng2 = Engine.restore(eng.snapshot(), HOLD_ZS)
    out += run(eng2, rows[len(head) :], 7)
    assert out == ref


@settings(max_examples=20, deadline=None)
@given(
    interval_s=st.sampled_from([60.0, 600.0, 1500.0, 2400.0]),
    delay_s=st.floats(60.0, 9000.0),
    back=st.sampled_from([(4.5001, 0.05), (0.0501, 0.05), (9.0, 0.05)]),
    size=st.integers(1, 60),
    fast=st.booleans(),
)
def test_pending_suspect_output_does_not_depend_on_the_batch_size(
    interval_s: float, delay_s: float, back: tuple[float, float], size: int, fast: bool
) -> None:
    """Whatever the reporting interval (expiry 15 min to 2 h), the delay of the next report (within the hold,
    after it, after the expiry) and its outcome (confirms, discards, jumps again), the output is the same for
    every micro-batch size."""
    v1 = track("v1", T0, interval_s, [(0.05, 0.05)] * 6, sog=0.0)
    jump = T0 + 6 * interval_s
    v1 += [{"sid": "v1", "ts": jump, "lon": 4.5, "lat": 0.05, "sog": 0.0}]
    v1 += [{"sid": "v1", "ts": round(jump + delay_s, 3), "lon": back[0], "lat": back[1], "sog": 0.0}]
    w = [
        {"sid": "w", "ts": t, "lon": 1.999 if t <= jump + 120 else 2.001, "lat": 0.05, "sog": 5.0}
        for t in (jump - 600 + 60 * k for k in range(int((delay_s + 1200) // 60)))
    ]
    rows = sorted(v1 + w, key=lambda r: (r["ts"], r["sid"]))
    assert run(Engine(HOLD_ZS, fast=fast), rows, size) == run(Engine(HOLD_ZS), rows, 1)


# -- unexpected_stop: a geometric stop window through the fast path --------------------------------------------

#: Found by test_engine_determinism (hypothesis): s1, in the fairway at 2 kn, sends one report without SOG
#: (a geometric stop window starts), then reports with SOG again and, 21 min later, without SOG once more.
_STOP_WINDOW_ROWS = [
    ("s1", 157.556, 0.070879, 0.013853, 2.0), ("s1", 188.161, 0.071157, 0.013853, 2.0),
    ("s1", 488.655, 0.068376, 0.011913, 2.0), ("s0", 780.859, -0.007798, 0.001904, 2.0),
    ("s1", 788.74, 0.071157, 0.011088, float("nan")), ("s0", 811.593, -0.00752, 0.002212, 2.0),
    ("s1", 1089.341, 0.073938, 0.01142, 2.0), ("s0", 1112.024, -0.004739, 0.001593, 2.0),
    ("s1", 1389.424, 0.076719, 0.011195, 2.0), ("s1", 1399.767, 0.076811, 0.011221, 2.0),
    ("s0", 1412.308, -0.00752, 0.001372, 2.0), ("s1", 1460.212, 0.077368, 0.011384, 2.0),
    ("s0", 1712.31, -0.004739, 0.002805, 2.0), ("s1", 1760.874, 0.074587, 0.011225, 2.0),
    ("s1", 2061.512, 0.071806, 0.012223, float("nan")),
]  # fmt: skip


@pytest.mark.parametrize("size", [1, 2, 7])
def test_stop_window_is_dropped_by_a_report_with_sog_on_the_fast_path(size: int) -> None:
    from tests.test_engine_determinism import ZS

    rows = [{"sid": a, "ts": T0 + t, "lon": x, "lat": y, "sog": v} for a, t, x, y, v in _STOP_WINDOW_ROWS]
    assert run(Engine(ZS), rows, size) == run(Engine(ZS, fast=False), rows, size)


# -- zone_cross over the antimeridian ----------------------------------------------------------------------------


def test_regression_move_over_the_antimeridian_is_the_short_hop() -> None:
    """Bug: a move from -179.99E to 179.70E was a line across the whole globe and crossed a fence at 7E (real
    data: CSCL SUMMER). Split at 180 it crosses only what lies on the short hop."""
    zs = zones(
        fence("far", "port", 7.0, 57.9, 7.2, 58.1),  # on the long way round
        fence("near", "restricted", 179.8, 57.9, 179.9, 58.1),  # on the short hop, west of 180
        fence("east", "restricted", -179.98, 57.9, -179.95, 58.1),  # on the short hop, east of -180
    )
    rows = track("v1", T0, 3600, [(-179.99, 58.0), (179.70, 58.0)], sog=12.0)
    crossed = [(d["type"], d["zone_id"]) for d in map(orjson.loads, run(Engine(zs), rows)) if d["type"] == "zone_cross"]
    assert crossed == [("zone_cross", "near")]
    back = track("v1", T0, 3600, [(179.70, 58.0), (-179.90, 58.0)], sog=12.0)
    lines = map(orjson.loads, run(Engine(zs), back))
    crossed = sorted((d["type"], d["zone_id"]) for d in lines if d["type"] == "zone_cross")
    assert crossed == [("zone_cross", "east"), ("zone_cross", "near")]


# -- dwell_exceeded through a silence ----------------------------------------------------------------------------

DWELL_ZS = zones(fence("p", "port", 0.0, 0.0, 0.1, 0.1, max_dwell_min=60))


@pytest.mark.parametrize("fast", [True, False])
def test_regression_no_dwell_claim_through_a_silence(fast: bool) -> None:
    """Bug: the dwell timer opened (and updated) dwell_exceeded for a vessel silent for days (real data: Suez
    vessel 147). A deadline passing while the vessel is silent beyond its 30-min gap threshold is decided at
    its next report: inside, the line is dated there; outside, the exit ends the stay without a dwell line."""
    inside = track("v1", T0, 300, [(0.05, 0.05)] * 4)  # 15 min, then silent
    back_in = track("v1", T0 + 3 * 3600, 300, [(0.05, 0.05)] * 3)
    back_out = track("v1", T0 + 3 * 3600, 300, [(0.2, 0.05)] * 3)
    other = track("w", T0, 300, [(5.0, 5.0)] * 50)  # moves the watermark past the deadline meanwhile
    rows_in = sorted(inside + back_in + other, key=lambda r: r["ts"])
    got = [(d["type"], d["status"], d["ts"]) for d in map(orjson.loads, run(Engine(DWELL_ZS, fast=fast), rows_in, 5))]
    assert [g for g in got if g[0] == "dwell_exceeded"] == [("dwell_exceeded", "open", "2023-11-15T01:13:20Z")]
    rows_out = sorted(inside + back_out + other, key=lambda r: r["ts"])
    got = [d["type"] for d in map(orjson.loads, run(Engine(DWELL_ZS, fast=fast), rows_out, 5))]
    assert "dwell_exceeded" not in got and got.count("zone_exit") == 1


def test_dwell_of_a_vessel_that_keeps_reporting_opens_at_the_deadline() -> None:
    rows = track("v1", T0, 300, [(0.05, 0.05)] * 20)
    got = [(d["type"], d["status"], d["ts"]) for d in map(orjson.loads, run(Engine(DWELL_ZS), rows))]
    assert ("dwell_exceeded", "open", "2023-11-14T23:13:20Z") in got  # T0 + 60 min, the vessel reporting
