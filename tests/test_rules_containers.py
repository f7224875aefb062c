"""Container rules: time-aligned separation from the carrier, and release-controlled zone exits."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from geofence.errors import ConfigError
from geofence.fence import Fence, FenceParams, ZoneKind, ZoneSet
from geofence.rules.containers import (
    CarrierTracks,
    ReleaseLedger,
    SeparationDetector,
    exit_requires_release,
    release_zone_ids,
)
from geofence.timefmt import parse_iso_utc

GEOD = Geod(ellps="WGS84")
CARRIER = "413000001"
BOX = "MSCU1234565"


def obj(*values: str) -> np.ndarray:
    return np.array(values, dtype=object)


def moving_carrier() -> CarrierTracks:
    """A carrier reporting at t=0 and t=120 s, 0.01° apart eastwards along 30° N."""
    tracks = CarrierTracks()
    tracks.watch(obj(CARRIER), [0.0])
    stored = tracks.record(obj(CARRIER, "999", CARRIER), [0.0, 10.0, 120.0], [114.0, 1.0, 114.01], [30.0, 1.0, 30.0])
    assert stored == 2  # the unwatched vessel is not kept
    return tracks


def test_separation_uses_the_time_aligned_carrier_position() -> None:
    tracks = moving_carrier()
    east_2km = GEOD.fwd(114.005, 30.0, 90.0, 2000.0)[0]
    sep = tracks.separation_m(
        obj(BOX, BOX, BOX),
        obj(CARRIER, CARRIER, CARRIER),
        [60.0, 60.0, 0.0],
        [114.005, east_2km, 114.005],
        [30.0, 30.0, 30.0],
    )
    assert sep[0] == pytest.approx(0.0, abs=0.5)  # halfway in time, halfway in space
    assert sep[1] == pytest.approx(2000.0, rel=0.001)
    assert sep[2] == pytest.approx(GEOD.inv(114.0, 30.0, 114.005, 30.0)[2], rel=1e-6)  # not the latest position


def test_separation_is_nan_when_the_carrier_position_is_unknown() -> None:
    tracks = moving_carrier()
    sep = tracks.separation_m(
        obj(BOX, BOX, BOX, BOX, BOX),
        obj(CARRIER, CARRIER, CARRIER, "", "413999999"),
        [500.0, 800.0, -700.0, 60.0, 60.0],
        [114.01] * 5,
        [30.0] * 5,
    )
    assert sep[0] == pytest.approx(0.0, abs=0.5)  # 380 s after the last report: nearest is used
    assert np.isnan(sep[1:]).all()  # 680 s after, 700 s before, no carrier, unknown carrier


def test_expire_snapshot_and_restore() -> None:
    tracks = moving_carrier()
    state = tracks.snapshot()
    other = CarrierTracks()
    other.restore(state)
    args = (obj(BOX), obj(CARRIER), [60.0], [114.005], [30.0])
    assert other.separation_m(*args) == tracks.separation_m(*args)
    tracks.expire(120.0 + 600.0 + 1800.0 + 1.0)
    assert len(tracks) == 0
    assert np.isnan(tracks.separation_m(*args)).all()
    with pytest.raises(ConfigError, match="max_gap_s"):
        CarrierTracks(max_gap_s=0)


def test_release_is_consumed_by_exactly_one_exit() -> None:
    ledger = ReleaseLedger(["C1"])
    assert not ledger.consume_exit(BOX, "C1", 50.0)  # nothing released yet
    ledger.record_release(BOX, "C1", 100.0)
    assert not ledger.consume_exit(BOX, "C1", 90.0)  # an exit before the release is not released
    assert ledger.consume_exit(BOX, "C1", 200.0)
    assert not ledger.consume_exit(BOX, "C1", 300.0)
    ledger.record_release(BOX, "C1", 400.0)
    assert not ledger.consume_exit(BOX, "C2", 500.0)  # named for another zone
    assert ledger.consume_exit(BOX, "C1", 600.0)


def test_zone_less_release_applies_to_any_customs_zone() -> None:
    zones = ZoneSet.of(
        [
            Fence("C1", "bonded yard", ZoneKind.CUSTOMS, shapely.box(0, 0, 1, 1)),
            Fence("C2", "inspection", ZoneKind.CUSTOMS, shapely.box(2, 0, 3, 1)),
            Fence("P1", "port", ZoneKind.PORT, shapely.box(4, 0, 5, 1)),
        ]
    )
    ledger = ReleaseLedger.for_zones(zones)
    ledger.record_release(BOX, "", 10.0)
    assert not ledger.consume_exit(BOX, "P1", 20.0)  # not a customs zone: the release stays
    assert ledger.consume_exit(BOX, "C2", 30.0)
    assert not ledger.consume_exit(BOX, "C1", 40.0)
    # a named release is used before the zone-less one
    ledger.record_release(BOX, "", 50.0)
    ledger.record_release(BOX, "C1", 60.0)
    assert ledger.consume_exit(BOX, "C1", 70.0)
    assert ledger.pending(BOX) == {"": [50.0]}


def test_exit_requires_release_defaults_to_customs() -> None:
    geom = shapely.box(0, 0, 1, 1)
    assert exit_requires_release(Fence("C", "c", ZoneKind.CUSTOMS, geom))
    assert not exit_requires_release(Fence("P", "p", ZoneKind.PORT, geom))
    assert exit_requires_release(Fence("P", "p", ZoneKind.PORT, geom, FenceParams(exit_requires_release=True)))
    assert not exit_requires_release(Fence("C", "c", ZoneKind.CUSTOMS, geom, FenceParams(exit_requires_release=False)))


def test_ledger_expiry_and_snapshot() -> None:
    ledger = ReleaseLedger(["C1"], max_age_s=100.0)
    ledger.record_release(BOX, "C1", 10.0)
    ledger.record_release(BOX, "", 150.0)
    other = ReleaseLedger(["C1"])
    other.restore(ledger.snapshot())
    assert len(other) == 2
    ledger.expire(200.0)
    assert ledger.pending(BOX) == {"": [150.0]}


@settings(max_examples=100, deadline=None)
@given(
    t0=st.floats(0.0, 1e6),
    dts=st.lists(st.floats(10.0, 300.0), min_size=2, max_size=9),
    moves=st.lists(st.tuples(st.floats(-0.01, 0.01), st.floats(-0.01, 0.01)), min_size=10, max_size=10),
    frac=st.floats(0.0, 1.0),
    which=st.integers(0, 8),
)
def test_container_on_the_interpolated_track_has_zero_separation(
    t0: float, dts: list[float], moves: list[tuple[float, float]], frac: float, which: int
) -> None:
    ts = t0 + np.concatenate([[0.0], np.cumsum(dts)])
    lon = 114.0 + np.cumsum([m[0] for m in moves])[: ts.size]
    lat = 30.0 + np.cumsum([m[1] for m in moves])[: ts.size]
    tracks = CarrierTracks()
    tracks.watch(obj(CARRIER), [t0])
    order = np.random.default_rng(int(t0)).permutation(ts.size)  # arrival order must not matter
    tracks.record(obj(*[CARRIER] * ts.size), ts[order], lon[order], lat[order])
    k = min(which, ts.size - 2)
    t = ts[k] + frac * (ts[k + 1] - ts[k])
    w = (t - ts[k]) / (ts[k + 1] - ts[k])
    x = lon[k] + w * (lon[k + 1] - lon[k])
    y = lat[k] + w * (lat[k + 1] - lat[k])
    sep = tracks.separation_m(obj(BOX), obj(CARRIER), [t], [x], [y])
    assert sep[0] == pytest.approx(0.0, abs=0.01)


@settings(max_examples=100, deadline=None)
@given(
    ops=st.lists(
        st.tuples(st.booleans(), st.sampled_from(["", "C1", "C2", "P1"]), st.floats(0.0, 1000.0)), max_size=30
    ),
    cut=st.integers(0, 30),
)
def test_releases_are_never_reused_and_snapshots_are_transparent(ops: list[tuple[bool, str, float]], cut: int) -> None:
    ops = sorted(ops, key=lambda o: o[2])
    ledger = ReleaseLedger(["C1", "C2"])
    results = []
    for i, (is_release, zone, t) in enumerate(ops):
        if i == cut:
            restored = ReleaseLedger(["C1", "C2"])
            restored.restore(ledger.snapshot())
            ledger = restored
        if is_release:
            ledger.record_release(BOX, zone, t)
        elif zone:
            results.append(ledger.consume_exit(BOX, zone, t))
    releases = sum(1 for o in ops if o[0])
    assert sum(results) + len(ledger) == releases


# -- the separation rule (SeparationDetector) ---------------------------------------------------------------------

Row = tuple[str, float, float, float, bool, str]  # subject, ts, lon, lat, is_container, carrier


def quay_scenario(t_end: float = 3600.0, reunite_at: float | None = None) -> list[Row]:
    """A carrier sails east at ~10 kn from t=600 s; its container stays on the quay (reports every 300 s)."""
    rows: list[Row] = []
    for t in np.arange(0.0, t_end + 1, 30.0):
        x = 114.0 + max(0.0, float(t) - 600.0) * 5.14 / 96_400.0  # 5.14 m/s; 1° of longitude at 30° N ≈ 96.4 km
        rows.append((CARRIER, float(t), x, 30.0, False, ""))
    for t in np.arange(15.0, t_end + 1, 300.0):
        lon = 114.0
        if reunite_at is not None and t >= reunite_at:  # put aboard again: reports at the carrier's position
            lon = 114.0 + max(0.0, float(t) - 600.0) * 5.14 / 96_400.0
        rows.append((BOX, float(t), lon, 30.0, True, CARRIER))
    rows.sort(key=lambda r: (r[1], r[0]))
    return rows


def run_rows(det: Any, rows: list[Row], chunk: int, tolerance_s: float = 60.0) -> list[Any]:
    """Feed rows in chunks, advancing to each chunk's watermark (max ts − tolerance); finish at the end."""
    out: list[Any] = []
    for k in range(0, len(rows), chunk):
        part = rows[k : k + chunk]
        sid, ts, lon, lat, box, car = (list(x) for x in zip(*part, strict=True))
        det.ingest(obj(*sid), ts, lon, lat, box, obj(*car))
        out += det.advance(max(ts) - tolerance_s)
    return out + det.finish()


def test_container_left_on_the_quay_opens_after_min_duration() -> None:
    out = run_rows(SeparationDetector(), quay_scenario(), 50)
    assert [t.kind for t in out] == ["open"]
    tr = out[0]
    assert (tr.container_id, tr.carrier_id) == (BOX, CARRIER)
    # 1 km is passed at 600 + 1000/5.14 = 795 s; the first container report beyond it is at 915 s
    assert tr.started_ts_s == 915.0
    assert tr.ts_s == 915.0 + 900.0
    assert tr.separation_m > 1000.0
    assert tr.carrier_lon == pytest.approx(114.0 + (tr.ts_s - 600.0) * 5.14 / 96_400.0, abs=1e-6)


def test_reunited_container_closes_the_alert() -> None:
    out = run_rows(SeparationDetector(), quay_scenario(t_end=5400.0, reunite_at=3000.0), 64)
    assert [(t.kind, t.ts_s) for t in out] == [("open", 1815.0), ("close", 3015.0)]
    assert out[1].started_ts_s == 915.0
    assert out[1].separation_m < 50.0


def test_unknown_carrier_position_decides_nothing() -> None:
    rows = [r for r in quay_scenario() if not (r[0] == CARRIER and 1000.0 < r[1] < 2500.0)]  # carrier silent
    out = run_rows(SeparationDetector(), rows, 40)
    # carrier reports at 990 s and 2520 s: the container report at 1815 s is more than max_gap_s (600 s) from
    # both, so it is NaN and does not open the alert; 1215/1515 s use the 990 s position (within 600 s), 2115 s
    # interpolates (990 s is within history_s). The candidate from 915 s holds through the NaN.
    assert [(t.kind, t.started_ts_s) for t in out] == [("open", 915.0)]
    assert out[0].ts_s == 2115.0


def test_redeclared_container_closes_and_starts_afresh() -> None:
    rows = quay_scenario(t_end=2400.0)
    rows += [("413000009", t, 114.0, 30.0, False, "") for t in np.arange(2430.0, 4000.0, 30.0)]
    rows += [(BOX, t, 114.0, 30.0, True, "413000009") for t in np.arange(2415.0, 4000.0, 300.0)]
    rows.sort(key=lambda r: (r[1], r[0]))
    out = run_rows(SeparationDetector(), rows, 30)
    assert [(t.kind, t.carrier_id, t.ts_s) for t in out] == [("open", CARRIER, 1815.0), ("close", CARRIER, 2415.0)]


def test_rows_out_of_processing_order_are_refused() -> None:
    with pytest.raises(ConfigError, match="processing order"):
        SeparationDetector().ingest(obj(CARRIER, BOX), [10.0, 5.0], [114.0, 114.0], [30.0, 30.0], [False, True],
                                    obj("", CARRIER))


@settings(max_examples=60, deadline=None)
@given(chunk=st.integers(1, 400), cut=st.integers(1, 300), reunite=st.sampled_from([None, 2700.0, 4000.0]))
def test_chunking_and_snapshots_do_not_change_the_transitions(chunk: int, cut: int, reunite: float | None) -> None:
    rows = quay_scenario(t_end=5400.0, reunite_at=reunite)
    ref = run_rows(SeparationDetector(), rows, len(rows))
    assert run_rows(SeparationDetector(), rows, chunk) == ref
    # stop after `cut` rows, checkpoint, continue in a new detector
    det = SeparationDetector()
    first: list[Any] = []
    head = rows[:cut]
    sid, ts, lon, lat, box, car = (list(x) for x in zip(*head, strict=True))
    det.ingest(obj(*sid), ts, lon, lat, box, obj(*car))
    first += det.advance(max(ts) - 60.0)
    again = SeparationDetector()
    again.restore(det.snapshot())
    assert first + run_rows(again, rows[cut:], chunk) == ref


def test_release_helpers_are_vectorised_consume_in_order() -> None:
    ledger = ReleaseLedger(["C1"])
    ledger.record_releases(obj(BOX, "CSQU3054383"), obj("C1", ""), [100.0, 100.0])
    unreleased = ledger.check_exits(obj(BOX, BOX, "CSQU3054383", "CSQU3054383"), obj("C1", "C1", "C1", "C1"),
                                    [150.0, 160.0, 90.0, 200.0])
    assert unreleased.tolist() == [False, True, True, False]
    zones = ZoneSet.of([
        Fence("C1", "bonded", ZoneKind.CUSTOMS, shapely.box(0, 0, 1, 1)),
        Fence("P1", "port", ZoneKind.PORT, shapely.box(2, 0, 3, 1), FenceParams(exit_requires_release=True)),
        Fence("P2", "port", ZoneKind.PORT, shapely.box(4, 0, 5, 1)),
    ])
    assert release_zone_ids(zones) == ["C1", "P1"]


# -- against the simulator's labelled container feed --------------------------------------------------------------


def test_simulated_container_anomalies_are_found_and_nothing_else() -> None:
    """Seeded simulation (shipped catalogue, 120 vessels x 8 h, seed 3): both detectors on their own, no engine.

    Rows go in time order in chunks of 5,000 with the watermark 60 s behind; container zone exits are the
    inside -> outside transitions of the e-seal reports against the release-controlled fences (the engine adds
    hysteresis; the simulator decides releases on the same raw containment). Every container label must be matched
    (alert opens between 10 min before its start and 30 min after its end, the labels-test rule) and no other
    separation or unreleased exit may occur.
    """
    from geofence.simulate import SimConfig, simulate
    from zones import default_catalogue_path, load_zones

    zs = load_zones([default_catalogue_path()])
    sim = simulate(zs, SimConfig(vessels=120, hours=8, seed=3, anomalies_per_type=2))
    r, c = sim.reports, sim.containers
    release = np.asarray(c["event"]) == "release"
    n_v, n_c = len(r), len(c["ts"])
    sid = np.concatenate([np.array([str(m) for m in r.mmsi.tolist()], dtype=object), np.asarray(c["id"], object)])
    ts = np.concatenate([r.ts.astype(np.float64), np.asarray(c["ts"], np.float64)])
    lon = np.concatenate([r.lon, np.asarray(c["lon"], np.float64)])
    lat = np.concatenate([r.lat, np.asarray(c["lat"], np.float64)])
    is_box = np.concatenate([np.zeros(n_v, bool), np.ones(n_c, bool)])
    is_rel = np.concatenate([np.zeros(n_v, bool), release])
    carrier = np.concatenate([np.full(n_v, "", dtype=object), np.asarray(c["carrier"], object)])
    zone = np.concatenate([np.full(n_v, "", dtype=object), np.asarray(c["zone"], object)])
    order = np.argsort(ts, kind="stable")
    fences = [f for f in zs.fences if f.id in set(release_zone_ids(zs))]
    assert fences
    det, ledger = SeparationDetector(), ReleaseLedger.for_zones(zs)
    inside: dict[str, set[str]] = {}
    opened: list[tuple[str, float]] = []
    unreleased: list[tuple[str, str, float]] = []
    for k in range(0, len(order), 5000):
        idx = order[k : k + 5000]
        pos = idx[~is_rel[idx]]
        det.ingest(sid[pos], ts[pos], lon[pos], lat[pos], is_box[pos], carrier[pos])
        rel = idx[is_rel[idx]]
        ledger.record_releases(sid[rel], zone[rel], ts[rel])
        boxes = pos[is_box[pos]]
        hit = np.column_stack([shapely.contains_xy(f.geometry, lon[boxes], lat[boxes]) for f in fences])
        ex_id, ex_zone, ex_ts = [], [], []
        for j, i in enumerate(boxes.tolist()):
            now = {f.id for f, h in zip(fences, hit[j], strict=True) if h}
            for z in sorted(inside.get(sid[i], set()) - now):
                ex_id.append(sid[i])
                ex_zone.append(z)
                ex_ts.append(ts[i])
            inside[sid[i]] = now
        if ex_id:
            bad = ledger.check_exits(np.array(ex_id, dtype=object), np.array(ex_zone, dtype=object), ex_ts)
            unreleased += [(a, z, t) for a, z, t, b in zip(ex_id, ex_zone, ex_ts, bad.tolist(), strict=True) if b]
        opened += [(t.container_id, t.started_ts_s) for t in det.advance(float(ts[idx[-1]]) - 60.0) if t.kind == "open"]
    opened += [(t.container_id, t.started_ts_s) for t in det.finish() if t.kind == "open"]
    labels = [lab for lab in sim.labels if lab.get("anomaly", "").startswith("container")]
    assert {lab["anomaly"] for lab in labels} == {"container_separation", "container_zone_exit"}

    def window(lab: dict[str, Any]) -> tuple[float, float]:
        return parse_iso_utc(lab["start"]) - 600.0, parse_iso_utc(lab["end"]) + 1800.0

    for lab in labels:
        lo, hi = window(lab)
        if lab["anomaly"] == "container_separation":
            assert any(b == lab["subject_id"] and lo <= t <= hi for b, t in opened), lab
        else:
            assert any(b == lab["subject_id"] and z == lab["zone_id"] and lo <= t <= hi for b, z, t in unreleased), lab
    sep_labels = [lab for lab in labels if lab["anomaly"] == "container_separation"]
    exit_labels = [lab for lab in labels if lab["anomaly"] == "container_zone_exit"]
    assert len(opened) == len(sep_labels), opened
    assert len(unreleased) == len(exit_labels), unreleased
