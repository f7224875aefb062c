"""Encounter detector: pair start/end, mooring and speed exclusions, grid keys, order independence."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from geofence.engine import Engine
from geofence.errors import ConfigError
from geofence.fence import ZoneSet
from geofence.rules.encounter import (
    EncounterDetector,
    EncounterParams,
    PairTransition,
    cell_keys,
    expand_cells,
)
from geofence.timefmt import iso_utc
from tests.test_engine_support import T0, run

LON0, LAT0 = 114.30, 30.60  # Wuhan reach
GEOD = Geod(ellps="WGS84")
M_PER_DEG_LAT = 111_320.0
Row = tuple[str, float, float, float, float, bool]


def east(metres: float) -> float:
    """Longitude offset in degrees for ``metres`` east at LAT0."""
    return metres / (M_PER_DEG_LAT * math.cos(math.radians(LAT0)))


def feed(
    det: EncounterDetector,
    rows: list[tuple[str, float, float, float, float, bool]],
) -> list[PairTransition]:
    """Ingest rows (subject, ts, lon, lat, speed, mooring) as one slice."""
    if not rows:
        return []
    sid, ts, lon, lat, spd, moor = zip(*rows, strict=True)
    return det.ingest(np.array(sid, dtype=object), ts, lon, lat, spd, moor)


def pair_track(
    t_end: float,
    *,
    gap_m: float = 50.0,
    speed: float = 0.3,
    mooring: bool = False,
    step_s: float = 60.0,
) -> list[tuple[str, float, float, float, float, bool]]:
    rows = []
    for t in np.arange(0.0, t_end + 1, step_s):
        rows.append(("413000001", float(t), LON0, LAT0, speed, mooring))
        rows.append(("413000002", float(t), LON0 + east(gap_m), LAT0, speed, mooring))
    return rows


def test_encounter_starts_after_min_duration_and_ends_when_one_speeds_up() -> None:
    det = EncounterDetector()
    out = feed(det, pair_track(1800.0))
    assert [(t.kind, t.subject_a, t.subject_b, t.started_ts_s, t.ts_s) for t in out] == [
        ("start", "413000001", "413000002", 0.0, 1200.0)
    ]
    assert out[0].distance_m == pytest.approx(50.0, rel=0.01)
    assert det.active_pairs() == [("413000001", "413000002", 0.0)]
    # 1.5 kn is within the release hysteresis: still together
    assert feed(det, [("413000001", 1860.0, LON0, LAT0, 1.5, False)]) == []
    out = feed(det, [("413000002", 1920.0, LON0 + east(50), LAT0, 3.0, False)])
    assert [(t.kind, t.started_ts_s, t.ts_s) for t in out] == [("end", 0.0, 1920.0)]
    assert det.active_pairs() == []


def test_encounter_distance_hysteresis() -> None:
    det = EncounterDetector()
    assert len(feed(det, pair_track(1200.0))) == 1
    assert feed(det, [("413000002", 1260.0, LON0 + east(130), LAT0, 0.3, False)]) == []  # 130 m < 150 m
    out = feed(det, [("413000002", 1320.0, LON0 + east(200), LAT0, 0.3, False)])
    assert [t.kind for t in out] == ["end"]
    assert out[0].distance_m == pytest.approx(200.0, rel=0.01)


def test_no_encounter_inside_mooring_zone() -> None:
    det = EncounterDetector()
    assert feed(det, pair_track(3600.0, mooring=True)) == []
    assert len(det) == 0  # nothing kept for non-candidates


def test_no_encounter_when_fast_or_apart() -> None:
    assert feed(EncounterDetector(), pair_track(3600.0, speed=1.5)) == []
    assert feed(EncounterDetector(), pair_track(3600.0, gap_m=120.0)) == []


def test_interrupted_closeness_restarts_the_clock() -> None:
    det = EncounterDetector()
    rows = pair_track(600.0)
    rows.append(("413000002", 660.0, LON0 + east(300), LAT0, 0.3, False))  # apart once
    rows += [(*r[:1], r[1] + 720.0, *r[2:]) for r in pair_track(1200.0)]
    out = feed(det, rows)
    assert [(t.kind, t.started_ts_s, t.ts_s) for t in out] == [("start", 720.0, 1920.0)]


def test_silence_ends_the_encounter_at_a_data_determined_time() -> None:
    params = EncounterParams(max_stale_s=900.0)
    det = EncounterDetector(params)
    feed(det, pair_track(1200.0))
    assert det.expire(1500.0) == []
    out = det.expire(5000.0)
    assert [(t.kind, t.ts_s) for t in out] == [("end", 1200.0 + 900.0)]
    assert len(det) == 0
    # the same end comes from ingest when one of them reappears later
    det2 = EncounterDetector(params)
    feed(det2, pair_track(1200.0))
    out2 = feed(det2, [("413000001", 2400.0, LON0, LAT0, 0.3, False)])
    assert out2 == out


def test_snapshot_restore_continues_identically() -> None:
    rows = pair_track(2400.0)
    rows.append(("413000002", 2460.0, LON0 + east(400), LAT0, 0.3, False))
    whole = feed(EncounterDetector(), rows)
    det = EncounterDetector()
    first = feed(det, rows[:30])
    state = det.snapshot()
    det2 = EncounterDetector()
    det2.restore(state)
    assert first + feed(det2, rows[30:]) == whole
    assert [t.kind for t in whole] == ["start", "end"]


def test_params_are_validated() -> None:
    with pytest.raises(ConfigError, match="release_factor"):
        EncounterParams(release_factor=0.5)
    with pytest.raises(ConfigError, match="release_kn"):
        EncounterParams(slow_kn=3.0, release_kn=2.0)


def test_cell_keys_are_a_fixed_grid() -> None:
    k = cell_keys([LON0, LON0 + east(10)], [LAT0, LAT0])
    assert k.dtype == np.int64
    assert cell_keys(LON0, LAT0) == cell_keys(np.array([LON0]), np.array([LAT0]))[0]
    assert k[0] == k[1] or abs(int(k[0]) - int(k[1])) == 1
    far = cell_keys([LON0 + east(5000)], [LAT0])
    assert far[0] != k[0]


@settings(max_examples=200, deadline=None)
@given(
    lon=st.floats(-179.0, 179.0),
    lat=st.floats(-80.0, 80.0),
    dist=st.floats(0.0, 150.0),
    bearing=st.floats(0.0, 360.0),
)
def test_expand_cells_never_misses_a_neighbour(lon: float, lat: float, dist: float, bearing: float) -> None:
    """Any point within the radius lies in one of the expanded cells (broad phase may over-report, never miss)."""
    lon2, lat2, _ = GEOD.fwd(lon, lat, bearing, dist)
    idx, keys = expand_cells([lon], [lat], 150.0)
    assert set(idx.tolist()) == {0}
    assert int(cell_keys(lon2, lat2)) in set(keys.tolist())
    assert int(cell_keys(lon, lat)) in set(keys.tolist())


_IDS = ["413000003", "413000001", "413000002", "413000004"]


@st.composite
def scenarios(draw: st.DrawFn) -> list[tuple[str, float, float, float, float, bool]]:
    """Up to four vessels near one spot, reporting at shared minute ticks."""
    rows = []
    n_ticks = draw(st.integers(5, 40))
    for k in range(n_ticks):
        for sid in _IDS:
            if draw(st.booleans()):
                dx = draw(st.sampled_from([0.0, 40.0, 90.0, 130.0, 400.0, 990.0, 1500.0, 5000.0]))
                spd = draw(st.sampled_from([0.2, 0.8, 1.5, 2.5]))
                rows.append((sid, 300.0 * k, LON0 + east(dx), LAT0, spd, draw(st.booleans()) and spd > 2))
    return rows


def _relabel(rows: list[Row], mapping: dict[str, str]) -> list[Row]:
    return [(mapping[r[0]], *r[1:]) for r in rows]


@settings(max_examples=150, deadline=None)
@given(rows=scenarios(), seed=st.integers(0, 2**32 - 1), cut=st.integers(0, 200))
def test_order_batch_and_label_independence(rows: list[Row], seed: int, cut: int) -> None:
    """Same transitions whatever the order within equal timestamps, the slicing, or which id is which."""
    params = EncounterParams(min_duration_s=900.0)
    ref = feed(EncounterDetector(params), rows)
    # the bulk shortcut for quiet subjects changes nothing
    plain = EncounterDetector(params)
    plain._fast = False
    assert feed(plain, rows) == ref
    # permute rows within equal timestamps
    rng = np.random.default_rng(seed)
    keys = np.array([r[1] for r in rows]) + rng.random(len(rows)) * 0.5
    shuffled = [rows[i] for i in np.argsort(keys, kind="stable")]
    assert feed(EncounterDetector(params), shuffled) == ref
    # split into two slices at a timestamp boundary
    det = EncounterDetector(params)
    cut_ts = rows[min(cut, len(rows) - 1)][1] if rows else 0.0
    split = feed(det, [r for r in rows if r[1] < cut_ts]) + feed(det, [r for r in rows if r[1] >= cut_ts])
    assert split == ref
    # swap two ids: the same pairs, with ids sorted inside each pair
    mapping = {"413000001": "413000002", "413000002": "413000001", "413000003": "413000003", "413000004": "413000004"}
    swapped = feed(EncounterDetector(params), _relabel(rows, mapping))
    expect = []
    for t in ref:
        a, b = sorted((mapping[t.subject_a], mapping[t.subject_b]))
        expect.append(t._replace(subject_a=a, subject_b=b))
    norm = sorted(swapped, key=lambda t: (t.ts_s, t.subject_a, t.subject_b, t.kind))
    assert [(*t[:5], t.kind) for t in norm] == [
        (*t[:5], t.kind) for t in sorted(expect, key=lambda t: (t.ts_s, t.subject_a, t.subject_b, t.kind))
    ]
    # every pair alternates start/end and starts last at least min_duration after it began
    state: dict[tuple[str, str], str] = {}
    for t in ref:
        assert t.subject_a < t.subject_b
        prev = state.get((t.subject_a, t.subject_b), "end")
        assert prev != t.kind
        state[(t.subject_a, t.subject_b)] = t.kind
        if t.kind == "start":
            assert t.ts_s - t.started_ts_s >= params.min_duration_s


def test_regression_slice_filter_kept_a_subject_that_became_known_in_the_same_slice() -> None:
    """Found by hypothesis: a non-candidate report was filtered out when its subject became known in the slice."""
    rows = [
        ("413000003", 0.0, LON0, LAT0, 0.2, False),
        ("413000004", 0.0, LON0, LAT0, 0.2, False),
        ("413000004", 1500.0, LON0, LAT0, 0.2, False),
        ("413000003", 6300.0, LON0, LAT0, 1.5, False),
    ]
    # a 1500-s-old partner is judged only with a lag allowance that long (the default 360 s skips it)
    params = EncounterParams(min_duration_s=900.0, max_lag_s=1800.0)
    whole = feed(EncounterDetector(params), rows)
    det = EncounterDetector(params)
    parts = feed(det, rows[:2]) + feed(det, rows[2:])
    assert whole == parts
    assert [(t.kind, t.ts_s) for t in whole] == [("start", 1500.0), ("end", 1800.0)]


# -- time alignment: class-B partners and vessels passing each other ---------------------------------------------

KN = 1852.0 / 3600.0


def track(
    sid: str,
    *,
    step_s: float,
    phase_s: float = 0.0,
    t_end: float = 3600.0,
    x0_m: float = 0.0,
    y_m: float = 0.0,
    v_kn: float = 0.6,
) -> list[Row]:
    """Reports of a vessel sailing east at ``v_kn`` from ``x0_m`` east of (LON0, LAT0), ``y_m`` north of it."""
    rows: list[Row] = []
    for t in np.arange(phase_s, t_end + 1e-9, step_s):
        x = x0_m + v_kn * KN * float(t)
        rows.append((sid, float(t), LON0 + east(x), LAT0 + y_m / M_PER_DEG_LAT, abs(v_kn), False))
    return rows


def test_regression_class_b_partner_with_3_min_reports_is_paired() -> None:
    """Simulator labels test (seed 7): a class-A vessel and a class-B vessel drifting 60 m abeam at 0.6 kn were missed.

    The class-B vessel reports every 3 min when slow. At each class-A report (every 10 s) its latest position was up
    to 3 min (55 m) stale; with the class-A vessel 40 m ahead along the track, the observed distance exceeded 100 m
    on every class-A report made more than 130 s after a class-B report, each of which restarted the 20-min clock.
    """
    rows = track("413000001", step_s=10.0, x0_m=40.0) + track("414000002", step_s=180.0, phase_s=7.0, y_m=60.0)
    rows.sort(key=lambda r: (r[1], r[0]))
    out = feed(EncounterDetector(), rows)
    assert [t.kind for t in out] == ["start"]
    assert out[0].started_ts_s <= 190.0
    assert out[0].ts_s - out[0].started_ts_s >= 1200.0
    assert out[0].ts_s <= 1200.0 + 190.0 + 10.0
    # the cause: on latest positions alone, a quarter of the class-A reports (B older than 130 s) see > 100 m
    last_b: Row | None = None
    far = 0
    for r in rows:
        if r[0] == "414000002":
            last_b = r
        elif last_b is not None:
            far += GEOD.inv(r[2], r[3], last_b[2], last_b[3])[2] > 100.0
    assert far > 50


def test_two_class_b_vessels_out_of_phase_are_paired() -> None:
    rows = track("413000001", step_s=180.0, phase_s=0.0, x0_m=30.0) + track("414000002", step_s=180.0, phase_s=90.0,
                                                                             y_m=70.0)
    rows.sort(key=lambda r: (r[1], r[0]))
    assert [t.kind for t in feed(EncounterDetector(), rows)] == ["start"]


@pytest.mark.parametrize(
    ("a", "b", "why"),
    [
        ({"v_kn": 8.0}, {"v_kn": -8.0, "x0_m": 20_000.0}, "under way: faster than slow_kn"),
        ({"v_kn": 0.8, "step_s": 10.0}, {"v_kn": -0.8, "x0_m": 1000.0, "step_s": 180.0}, "slow, opposite courses"),
        ({"v_kn": 0.9, "step_s": 10.0, "x0_m": -300.0}, {"v_kn": 0.3, "step_s": 180.0}, "slow overtaking"),
        ({"v_kn": 0.9, "step_s": 10.0}, {"v_kn": 0.9, "step_s": 180.0, "y_m": 150.0}, "parallel 150 m apart"),
    ],
)
def test_vessels_passing_each_other_in_the_fairway_are_no_encounter(
    a: dict[str, float], b: dict[str, float], why: str
) -> None:
    """The lag allowance must not pair vessels that are never together for 20 min (50 m abeam when passing)."""
    b = {"y_m": 50.0, **b}
    rows = track("413000001", **{"step_s": 10.0, **a}) + track("414000002", phase_s=3.0, **{"step_s": 10.0, **b})
    rows.sort(key=lambda r: (r[1], r[0]))
    assert feed(EncounterDetector(), rows) == [], why


@settings(max_examples=150, deadline=None)
@given(
    va=st.floats(-0.9, 0.9),
    vb=st.floats(-0.9, 0.9),
    dx=st.floats(-400.0, 400.0),
    dy=st.floats(0.0, 300.0),
    phase=st.floats(0.0, 179.0),
)
def test_time_aligned_truth_decides(va: float, vb: float, dx: float, dy: float, phase: float) -> None:
    """Class A (10 s) and class B (180 s), constant slow velocities for 1 h, judged against the true distance.

    Always farther than 120 m: never an encounter. Always nearer than 70 m: an encounter within one class-B
    interval of ``min_duration_s``. (Between, either answer is right within position lag.)
    """
    rows = track("413000001", step_s=10.0, v_kn=va) + track("414000002", step_s=180.0, phase_s=phase, v_kn=vb,
                                                             x0_m=dx, y_m=dy)
    rows.sort(key=lambda r: (r[1], r[0]))
    out = feed(EncounterDetector(), rows)
    t = np.arange(0.0, 3601.0, 1.0)
    true_d = np.hypot(dx + (vb - va) * KN * t, dy)
    if true_d.min() > 120.0:
        assert out == []
    elif true_d.max() < 70.0:
        assert [x.kind for x in out] == ["start"]
        assert out[0].ts_s <= 1200.0 + 2 * 180.0


# -- engine regression: the encounter close must not depend on the micro-batch cuts ------------------------------


def lying_together_then_separating(
    *,
    a_step_s: float = 30.0,
    b_step_s: float = 180.0,
    b_phase_s: float = 25.0,
    b_leave_s: float = 2884.0,
    gap_m: float = 70.0,
    drift_kn: float = 0.6,
    fast_kn: float = 6.3,
    end_s: float = 3000.0,
    a_leave_s: float | None = None,
    a_sog: bool = True,
) -> list[dict[str, object]]:
    """Two vessels drifting north together ``gap_m`` abeam, then under way, ``b`` first.

    ``a`` reports every ``a_step_s`` from 0; ``b`` (class B) every ``b_step_s`` from ``b_phase_s``, then
    at ``b_leave_s`` when it speeds up to ``fast_kn`` and every 30 s after; ``a`` speeds up at its
    first report after ``b_leave_s`` unless ``a_leave_s`` says otherwise; ``a_sog=False`` leaves ``a``'s SOG
    out (the engine derives its speed). Built like the real case that showed the bug (two Nanjing
    vessels, 30 s and 180 s reports, ``b`` 26 s ahead). Open water, away from every test fence.
    """
    a_leave = (math.floor(b_leave_s / a_step_s) + 1) * a_step_s if a_leave_s is None else a_leave_s

    def lat_at(t: float, leave: float) -> float:
        return 5.0 + (drift_kn * min(t, leave) + fast_kn * max(t - leave, 0.0)) * KN / M_PER_DEG_LAT

    def row(sid: str, t: float, lon: float, leave: float) -> dict[str, object]:
        return {
            "sid": sid,
            "ts": T0 + t,
            "lon": lon,
            "lat": lat_at(t, leave),
            "sog": fast_kn if t >= leave else drift_kn,
        }

    lon_a = 5.0 + gap_m / (M_PER_DEG_LAT * math.cos(math.radians(5.0)))
    rows = [row("412000001", t, lon_a, a_leave) for t in np.arange(0.0, end_s, a_step_s).tolist()]
    if not a_sog:
        for r in rows:
            r["sog"] = math.nan
    b_times = [*np.arange(b_phase_s, b_leave_s, b_step_s).tolist(), *np.arange(b_leave_s, end_s, 30.0).tolist()]
    rows += [row("413000002", t, 5.0, b_leave_s) for t in b_times]
    return sorted(rows, key=lambda r: (r["ts"], r["sid"]))  # type: ignore[arg-type,return-value]


def test_regression_encounter_close_does_not_depend_on_batch_cuts() -> None:
    """The engine's slot filter of the encounter detector was cleared by a batch that released no
    chunk; the next row of a held vessel (``b`` getting under way) then never reached the detector, so
    with one row per call the pair closed one report later, at ``a``'s speed-up (in the real case
    02:08:38 at 161.8 m instead of 02:08:12 at 61.7 m)."""
    rows = lying_together_then_separating()
    out = {size: run(Engine(ZoneSet.of([])), rows, size) for size in (1, 7, 1000)}
    assert out[1] == out[1000]
    assert out[7] == out[1000]
    enc = [d for d in map(orjson.loads, out[1000]) if d["type"] == "encounter"]
    assert sorted((d["subject_id"], d["status"]) for d in enc) == [
        ("412000001", "closed"),
        ("412000001", "open"),
        ("413000002", "closed"),
        ("413000002", "open"),
    ]
    # the pair ends at the first report above release_kn, b's, at the distance the two were lying at
    b_leave = min(float(r["ts"]) for r in rows if r["sid"] == "413000002" and float(r["sog"]) > 2.0)  # type: ignore[arg-type]
    closed = [d for d in enc if d["status"] == "closed"]
    assert {d["ts"] for d in closed} == {iso_utc(b_leave)}
    assert all(d["details"]["distance_m"] < 100.0 for d in closed)
