"""Wire formats of the Kafka topics: every record type round-trips exactly; bad records are refused clearly."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import Polygon, box

from geofence.deadletter import DeadLetter
from geofence.engine_api import EncounterRows
from geofence.errors import GeofenceError
from geofence.fence import Fence, FenceParams, ZoneKind, ZoneSet
from geofence.positions import PositionBatch, StaticReport
from streams import wire

_IDS = st.sampled_from(["413101221", "414101258", "OOLU5698210", "长江1号", ""])
_F = st.floats(allow_nan=True, allow_infinity=False, width=64)


@st.composite
def batches(draw: st.DrawFn) -> PositionBatch:
    n = draw(st.integers(min_value=0, max_value=40))

    def col(strategy: st.SearchStrategy[Any]) -> list[Any]:
        return draw(st.lists(strategy, min_size=n, max_size=n))

    return PositionBatch.from_columns(
        subject_id=col(_IDS),
        ts_s=col(st.floats(1.6e9, 1.9e9)),
        lon_deg=col(st.floats(-180, 180)),
        lat_deg=col(st.floats(-90, 90)),
        sog_kn=col(_F),
        cog_deg=col(_F),
        heading_deg=col(_F),
        kind=col(st.integers(0, 1)),
        carrier_id=col(_IDS),
        event=col(st.integers(0, 1)),
        event_zone=col(st.sampled_from(["", "cq-lianglu-cuntan-bonded"])),
        receiver=col(st.sampled_from(["", "cq-03", "st-01"])),
        source=col(st.sampled_from(["a.nmea", "b.jsonl"])),
        line=col(st.integers(0, 2**40)),
    )


def _same(a: PositionBatch, b: PositionBatch) -> None:
    assert len(a) == len(b)
    for name in ("ts_s", "lon_deg", "lat_deg", "sog_kn", "cog_deg", "heading_deg"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))  # NaN == NaN here
    for name in ("kind", "event", "line"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert getattr(b, name).dtype == getattr(a, name).dtype
    for name in ("subject_id", "carrier_id", "event_zone", "receiver", "source"):
        assert getattr(b, name).tolist() == getattr(a, name).tolist()
        assert getattr(b, name).dtype == object


@settings(max_examples=150, deadline=None)
@given(batch=batches())
def test_positions_round_trip(batch: PositionBatch) -> None:
    value = wire.encode_positions(batch)
    assert wire.record_type(value) == wire.POSITIONS
    out = wire.decode(value)
    assert isinstance(out, PositionBatch)
    _same(batch, out)


def test_decoded_columns_are_writable_native_arrays() -> None:
    batch = PositionBatch.from_columns(
        subject_id=["1", "2"], ts_s=[1.0, 2.0], lon_deg=[120.0, 121.0], lat_deg=[30.0, 31.0]
    )
    out = wire.decode(wire.encode_positions(batch))
    assert isinstance(out, PositionBatch)
    out.ts_s[0] = 5.0  # the engine may sort or mask in place
    assert out.ts_s.dtype == np.float64 and out.ts_s.dtype.isnative


def test_statics_and_end_of_stream_round_trip() -> None:
    reports = [
        StaticReport("413101221", 1.78e9, name="YUXIN 83", ship_type=85, length_m=62.0),
        StaticReport("414101258", None, destination="YC"),
    ]
    assert wire.decode(wire.encode_statics(reports)) == reports
    marker = wire.EndOfStream(3, 1_780_286_399.0, "host:1")
    assert wire.decode(wire.encode_end_of_stream(marker)) == marker
    empty = wire.EndOfStream(0, None, "p")
    assert wire.decode(wire.encode_end_of_stream(empty)) == empty


@pytest.mark.parametrize("watermark", [None, 1_780_280_000.5])
def test_encounter_feed_round_trip(watermark: float | None) -> None:
    sid = np.array(["a", "b", "a"], dtype=object)
    feed = wire.EncounterFeed(
        2,
        17,
        4,
        watermark,
        "e8fbff2e58f3",
        True,
        EncounterRows(
            sid,
            np.array([1.0, 2.0, 3.0]),
            np.array([110.0, 110.1, 110.2]),
            np.array([30.0, 30.1, 30.2]),
            np.array([0.3, np.nan, 2.5]),
            np.array([False, True, False]),
        ),
    )
    out = wire.decode(wire.encode_feed(feed))
    assert isinstance(out, wire.EncounterFeed)
    assert (out.partition, out.offset, out.partitions, out.watermark_s, out.zone_version, out.final) == (
        2,
        17,
        4,
        watermark,
        "e8fbff2e58f3",
        True,
    )
    assert out.rows.subject_id.tolist() == ["a", "b", "a"]
    np.testing.assert_array_equal(out.rows.speed_kn, feed.rows.speed_kn)
    assert out.rows.mooring.dtype == bool and out.rows.mooring.tolist() == [False, True, False]


def test_minus_infinite_watermark_is_sent_as_none() -> None:
    empty = np.empty(0)
    feed = wire.EncounterFeed(
        0,
        0,
        1,
        float("-inf"),
        "v",
        False,
        EncounterRows(np.empty(0, dtype=object), empty, empty, empty, empty, np.zeros(0, dtype=bool)),
    )
    out = wire.decode(wire.encode_feed(feed))
    assert isinstance(out, wire.EncounterFeed) and out.watermark_s is None and len(out) == 0


def test_zoneset_round_trip_keeps_the_version() -> None:
    hole = Polygon([(0, 0), (4, 0), (4, 4), (0, 4)], [[(1, 1), (2, 1), (2, 2), (1, 2)]])
    zs = ZoneSet.of(
        [
            Fence(
                "a",
                "A",
                ZoneKind.ANCHORAGE,
                hole,
                FenceParams(max_dwell_min="p99", hysteresis_m=20.0),
                {"name_zh": "锚地"},
            ),
            Fence("r", "R", ZoneKind.RESTRICTED, box(110.9, 30.8, 111.0, 30.9)),
        ]
    )
    out = wire.decode_zoneset(wire.encode_zoneset(zs))
    assert out.version == zs.version
    assert [f.id for f in out.fences] == ["a", "r"]
    assert out.by_id()["a"].params.max_dwell_min == "p99"


def test_dead_letter_is_its_json_object() -> None:
    d = DeadLetter("kafka:geofence.positions/1", 12, "unparseable", "bad magic", "xx", is_offset=True)
    assert (
        wire.encode_deadletter(d) == b'{"source":"kafka:geofence.positions/1","offset":12,'
        b'"reason":"unparseable","detail":"bad magic","raw":"xx"}'
    )


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (b"short", "shorter than"),
        (b'{"id": "413101221", "ts": 1}', "not a geofence v1 record"),
        (wire.MAGIC + bytes([9, 0, 0, 0]) + (2).to_bytes(4, "little") + b"{}", "unknown record type 9"),
        (wire.MAGIC + bytes([1, 0, 0, 0]) + (999).to_bytes(4, "little") + b"{}", "runs past"),
        (wire.MAGIC + bytes([1, 0, 0, 0]) + (2).to_bytes(4, "little") + b"{}", "malformed"),
    ],
)
def test_bad_records_are_refused_with_a_reason(value: bytes, match: str) -> None:
    with pytest.raises(wire.WireError, match=match):
        wire.decode(value)


def test_truncated_positions_record_is_refused() -> None:
    batch = PositionBatch.from_columns(
        subject_id=["1"] * 10, ts_s=np.arange(10.0), lon_deg=np.zeros(10), lat_deg=np.zeros(10)
    )
    value = wire.encode_positions(batch)
    with pytest.raises(wire.WireError, match="runs past the end"):
        wire.decode(value[:-9])


def test_wire_errors_are_geofence_errors() -> None:
    assert issubclass(wire.WireError, GeofenceError)


@pytest.mark.parametrize("value", [b"not json", b'{"format": "other"}'])
def test_bad_zone_records_are_refused(value: bytes) -> None:
    with pytest.raises(wire.WireError, match="geofence zones publish"):
        wire.decode_zoneset(value)


def test_zone_record_with_a_wrong_version_is_refused() -> None:
    zs = ZoneSet.of([Fence("r", "R", ZoneKind.RESTRICTED, box(0, 0, 1, 1))])
    tampered = wire.encode_zoneset(zs).replace(zs.version.encode(), b"000000000000")
    with pytest.raises(wire.WireError, match="decodes to version"):
        wire.decode_zoneset(tampered)
