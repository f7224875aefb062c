"""Compact state and exact formatting: the id map, the columns' size, ISO times and rounding."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geofence._engine_ids import IdMap, _encode_one, encode_ids
from geofence._engine_time import iso, iso_ms, isos, isos_ms, ms_of, rnd, round6
from geofence._state import SubjectColumns
from geofence.alerts import Alert, AlertType, Severity, Status
from geofence.engine import Engine
from geofence.errors import ConfigError
from geofence.lifecycle import new_alert
from geofence.timefmt import iso_utc
from tests.test_engine_support import T0, batch, fence, run, zones

ZS = zones(fence("port", "port", 0.0, 0.0, 0.02, 0.02), fence("fw", "fairway", -0.05, -0.01, 0.1, 0.03))

_ids = st.lists(
    st.one_of(
        st.from_regex(r"41[0-9]{7}", fullmatch=True),  # MMSI-like
        st.text(min_size=0, max_size=30),  # anything: non-ASCII, NULs, surrogates excluded by hypothesis
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_ids, min_size=1, max_size=6))
def test_id_map_gives_dense_slots_in_first_seen_order_like_a_dict(batches: list[list[str]]) -> None:
    m = IdMap(capacity=16)
    ref: dict[str, int] = {}
    for ids in batches:
        arr = np.empty(len(ids), dtype=object)
        arr[:] = ids
        slots, new_rows = m.lookup(arr)
        expect, new = [], []
        for i, sid in enumerate(ids):
            if sid not in ref:
                ref[sid] = len(ref)
                new.append(i)
            expect.append(ref[sid])
        assert slots.tolist() == expect
        assert new_rows.tolist() == new
    assert m.n == len(ref)
    for sid, s in ref.items():
        assert m.id_of(s) == sid
        assert m.get(sid) == s
    assert m.ids_of(list(ref.values())) == list(ref)
    restored = IdMap()
    restored.load(m.ids)
    assert [restored.get(sid) for sid in ref] == list(ref.values())


def test_ids_that_differ_only_by_trailing_nul_are_different_subjects() -> None:
    m = IdMap()
    arr = np.empty(4, dtype=object)
    arr[:] = ["a", "a\x00", "a\x00\x00", ""]
    slots, _ = m.lookup(arr)
    assert slots.tolist() == [0, 1, 2, 3]
    assert [m.id_of(s) for s in range(4)] == ["a", "a\x00", "a\x00\x00", ""]


def test_a_tracked_subject_costs_at_most_200_bytes_of_columns_and_id_map() -> None:
    """The per-slot budget behind the 300 bytes per subject of the pipeline benchmark (RSS adds allocator slack)."""
    eng = Engine(ZS)
    rows = [{"sid": f"{413000000 + i}", "ts": T0 + i, "lon": 0.01, "lat": 0.01, "sog": 5.0} for i in range(2000)]
    run(eng, rows, 500)
    per_slot = eng.memory_breakdown()
    assert sum(per_slot.values()) <= 200, per_slot
    # lazily allocated columns stay unallocated for moving vessels with SOG and one feed
    assert {"spd_ts", "stop_start", "os_start", "jump_ts", "other_ts", "trk_ts"}.isdisjoint(per_slot)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=-3e10, max_value=2.5e11, allow_nan=False), min_size=0, max_size=40))
def test_bulk_iso_times_equal_iso_utc(ts: list[float]) -> None:
    expect = [iso_utc(t) for t in ts]
    assert isos(np.array(ts)) == expect
    assert [iso(t) for t in ts] == expect
    assert isos_ms(ms_of(np.array(ts))) == expect
    assert [iso_ms(int(m)) for m in ms_of(np.array(ts))] == expect


@pytest.mark.parametrize("ts", [0.0, 0.9995, 0.99949, 1.9996, -1.5, 951782400.0, 951868799.9996, 1_780_000_000.0005])
def test_iso_times_round_to_milliseconds_like_iso_utc(ts: float) -> None:
    arr = np.full(10, ts)
    assert isos(arr) == [iso_utc(ts)] * 10
    assert iso(ts) == iso_utc(ts)


_coords = st.one_of(
    st.floats(min_value=-180, max_value=180),
    st.integers(-180_000_000, 180_000_000).map(lambda k: (k + 0.5) / 1e6),  # exact ties in decimal
    st.integers(-1000, 1000).map(lambda k: k / 8.0),  # exact binary halves
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_coords, min_size=1, max_size=30), st.integers(0, 6))
def test_fast_rounding_equals_python_round(values: list[float], ndigits: int) -> None:
    for v in values:
        a, b = rnd(v, ndigits), round(v, ndigits)
        assert a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    assert round6(np.array(values)) == [round(v, 6) for v in values]


def test_new_alert_is_a_frozen_alert_equal_to_the_constructors() -> None:
    args: tuple[Any, ...] = (
        "0123456789abcdef",
        AlertType.ZONE_ENTER,
        Status.EVENT,
        Severity.INFO,
        "s",
        "vessel",
        "z",
        "v",
        1.5,
        2.0,
        3.0,
        {"track": []},
    )
    a = new_alert(*args)
    assert type(a) is Alert
    assert a == Alert(*args)
    assert a.to_json() == Alert(*args).to_json()
    with pytest.raises(AttributeError):
        a.ts_s = 2.0  # type: ignore[misc]


def test_evidence_times_outside_32_bit_seconds_are_kept_exactly() -> None:
    """Times before 1970 switch the evidence ring to floats; the output equals the per-record path's."""
    rows = [
        {"sid": "a", "ts": -86_400.0 + 10 * k + 0.25, "lon": 0.01 + 1e-4 * k, "lat": 0.01, "sog": 5.0}
        for k in range(20)
    ]
    fast = run(Engine(ZS), rows, 7)
    assert fast == run(Engine(ZS, fast=False), rows, 7)
    enter = orjson.loads(fast[0])
    assert enter["details"]["track"][-1][2] == iso_utc(rows[0]["ts"])
    cols = SubjectColumns()
    cols.ensure(1)
    cols.set_ring(np.array([0]), np.array([0]), [1.0], [2.0], np.array([5e9]))
    assert cols.ring_ms(np.array([0]), np.array([0])).tolist() == ms_of(np.array([5e9])).tolist()


def test_restore_under_another_zone_set_maps_memberships_by_fence_id() -> None:
    rows = [{"sid": "a", "ts": T0 + 10 * k, "lon": 0.01, "lat": 0.01, "sog": 5.0} for k in range(30)]
    eng = Engine(ZS)
    for k in range(0, 20, 5):
        eng.process(batch(rows[k : k + 5]))
    data = eng.snapshot()
    smaller = zones(fence("fw", "fairway", -0.05, -0.01, 0.1, 0.03))
    restored = Engine.restore(data, smaller)
    for k in range(20, 30, 5):
        restored.process(batch(rows[k : k + 5]))
    lines = [orjson.loads(a.to_json()) for a in restored.finish().alerts]
    assert all(d["zone_id"] != "port" for d in lines)  # no exit from a fence that no longer exists
    assert restored.stats().subjects == 1


def test_a_snapshot_of_another_format_is_refused_with_advice() -> None:
    data = Engine(ZS).snapshot()
    n = int.from_bytes(data[:8], "little")
    head = json.loads(data[8 : 8 + n])  # the head may hold -Infinity, which only json reads
    head["format"] = 1
    raw = json.dumps(head).encode()
    with pytest.raises(ConfigError, match="restart this checkpoint from its input"):
        Engine.restore(len(raw).to_bytes(8, "little") + raw + data[8 + n :], ZS)


@settings(max_examples=200, deadline=None)
@given(
    width=st.integers(1, 12),
    ids=st.lists(st.text(alphabet="a9\x00é", min_size=0, max_size=12), min_size=1, max_size=40),
)
def test_encoded_ids_equal_their_one_by_one_encoding(width: int, ids: list[str]) -> None:
    """A batch of ids of one byte width takes a shortcut (separators at fixed places); ids of mixed widths,
    with NULs inside or at the end, take the general path. Both give each id's own NUL-padded bytes."""
    same = [(x * width)[:width] if x else "9" * width for x in ids]  # equal length (bytes differ with é)
    for ids_ in (ids, same):
        got = encode_ids(ids_)
        one = [_encode_one(x) for x in ids_]
        assert got.shape == (len(ids_), max(1, (max(map(len, one)) + 7) // 8))
        want = np.frombuffer(b"".join(x.ljust(got.shape[1] * 8, b"\x00") for x in one), dtype=np.uint64)
        assert got.reshape(-1).tolist() == want.tolist()


@pytest.mark.parametrize(
    "ids",
    [["ab", "c", "def"], ["a", "\x00"], ["ab", "\x00b", "cd"], ["a\x00", "bc"], ["12345678", "12345679"]],
    ids=["same-total-other-widths", "nul-id", "nul-inside", "nul-at-end", "equal-widths"],
)
def test_encoded_ids_near_the_equal_width_shortcut(ids: list[str]) -> None:
    got = encode_ids(ids)
    one = [_encode_one(x) for x in ids]
    want = np.frombuffer(b"".join(x.ljust(got.shape[1] * 8, b"\x00") for x in one), dtype=np.uint64)
    assert got.reshape(-1).tolist() == want.tolist()
