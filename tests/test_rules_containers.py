"""Container rules: time-aligned separation from the carrier, and release-controlled zone exits."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from geofence.errors import ConfigError
from geofence.fence import Fence, FenceParams, ZoneKind, ZoneSet
from geofence.rules.containers import CarrierTracks, ReleaseLedger, exit_requires_release

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
