"""Unit and property tests of the CSV decoder (geofence.decode.csv)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geofence.decode import CsvDecoder, DecodeResult
from geofence.decode._times import TimeParser
from geofence.errors import ConfigError
from geofence.positions import SubjectKind

MC_HEADER = "MMSI,BaseDateTime,LAT,LON,SOG,COG,Heading,VesselName,IMO,CallSign,VesselType,Status,Length,Width"
MC_ROW = "413000001,2024-06-01T08:00:00,29.57,106.55,8.5,90.0,88.0,CHANGJIANG 1,IMO9000001,BCQ1,70,0,90,14"


def run(lines: Sequence[str | bytes], chunk: int | None = None, **kwargs: object) -> DecodeResult:
    raw = [x.encode() if isinstance(x, str) else x for x in lines]
    dec = CsvDecoder("test.csv", **kwargs)  # type: ignore[arg-type]
    step = chunk or max(1, len(raw))
    results = [dec.feed(raw[i : i + step], i + 1) for i in range(0, len(raw), step)]
    results.append(dec.close())
    out = DecodeResult.concat(results)
    assert out.counts.balanced(), out.counts.to_dict()
    assert out.counts.input_lines == len(raw)
    return out


def utc(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_marinecadastre_header_is_detected_with_bom() -> None:
    result = run(["\ufeff" + MC_HEADER, MC_ROW])
    b = result.positions
    assert result.counts.skipped == 1 and result.counts.positions == 1
    assert b.subject_id.tolist() == ["413000001"]
    assert (b.lon_deg[0], b.lat_deg[0], b.sog_kn[0], b.cog_deg[0], b.heading_deg[0]) == (106.55, 29.57, 8.5, 90.0, 88.0)
    assert b.ts_s[0] == utc("2024-06-01T08:00:00+00:00")  # naive MarineCadastre times are UTC
    assert b.source[0] == "test.csv" and b.line[0] == 2


def test_ais_not_available_values_become_nan_or_other() -> None:
    rows = [
        "413000001,2024-06-01T08:00:00,29.57,106.55,102.3,360.0,511.0,,,,,,,",
        "413000002,2024-06-01T08:00:00,91.0,181.0,102.3,360.0,511.0,,,,,,,",
    ]
    result = run([MC_HEADER, *rows])
    b = result.positions
    assert len(b) == 1 and all(math.isnan(v) for v in (b.sog_kn[0], b.cog_deg[0], b.heading_deg[0]))
    assert result.counts.other == 1 and result.counts.no_position == 1


def test_columns_mapping_time_format_and_time_zone() -> None:
    lines = ["ID,ais_pos_timestamp,longitude,latitude", "1,20/03/2021 00:22,32.32925,31.4386"]
    cols = {"id": "ID", "ts": "ais_pos_timestamp", "lon": "longitude", "lat": "latitude"}
    b = run(lines, columns=cols, time_format="%d/%m/%Y %H:%M").positions
    assert b.ts_s[0] == datetime(2021, 3, 20, 0, 22, tzinfo=ZoneInfo("UTC")).timestamp()
    assert math.isnan(b.sog_kn[0])  # no SOG column: speed is derived later
    b = run(lines, columns=cols, time_format="%d/%m/%Y %H:%M", tz="Asia/Shanghai").positions
    assert b.ts_s[0] == datetime(2021, 3, 20, 0, 22, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()


def test_time_zone_dst_matches_zoneinfo() -> None:
    times = ["2021-03-28 01:30:00", "2021-03-28 03:30:00", "2021-10-31 02:30:00", "2021-07-01 12:00:00"]
    lines = ["id,ts,lon,lat", *(f"v,{t},8.5,47.3" for t in times)]
    b = run(lines, tz="Europe/Berlin").positions
    want = [datetime.fromisoformat(t).replace(tzinfo=ZoneInfo("Europe/Berlin")).timestamp() for t in times]
    assert b.ts_s.tolist() == want


def test_epoch_seconds_and_iso_with_offsets() -> None:
    lines = ["id,ts,lon,lat", "a,1717228800,1,2", "b,2024-06-01T16:00:00+08:00,1,2", "c,2024-06-01T08:00:00.5Z,1,2"]
    assert run(lines).positions.ts_s.tolist() == [1717228800.0, 1717228800.0, 1717228800.5]


def test_wide_quoted_csv_and_message_types() -> None:
    header = '"MMSI","Message_ID","Time","Vessel_Name","Ship_Type","SOG","Longitude","Latitude","COG","Heading"'
    rows = [
        '"432905000","1","20210701_185151","","","13.6","-103.63687","8.87747666667","314.8","315.0"',
        '"412549014","5","20210701_185152","YU ZHOU 7","30","","","","",""',
        '"3669713","4","20210701_185153","","","","-122.4","37.8","",""',
    ]
    result = run([header, *rows], columns={"msg_type": "Message_ID", "name": "Vessel_Name"},
                 time_format="%Y%m%d_%H%M%S")
    assert (result.counts.positions, result.counts.static, result.counts.other) == (1, 1, 1)
    assert result.statics[0].subject_id == "412549014" and result.statics[0].name == "YU ZHOU 7"
    assert result.statics[0].ship_type == 30


def test_static_row_without_position() -> None:
    row = "413000001,2024-06-01T08:00:00,,,,,,CHANGJIANG 1,IMO9000001,BCQ1,70,0,90,14"
    result = run([MC_HEADER, row])
    assert result.counts.static == 1
    s = result.statics[0]
    assert (s.name, s.imo, s.callsign, s.ship_type, s.length_m, s.beam_m) == ("CHANGJIANG 1", 9000001, "BCQ1", 70,
                                                                               90.0, 14.0)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("413000001,2024-06-01T08:00:00,95.0,106.55,1,1,1,,,,,,,", "out_of_range"),
        ("413000001,2024-06-01T08:00:00,nan,106.55,1,1,1,,,,,,,", "out_of_range"),
        ("413000001,not a time,29.5,106.55,1,1,1,,,,,,,", "bad_time"),
        ("413000001,1969-01-01T00:00:00,29.5,106.55,1,1,1,,,,,,,", "bad_time"),
        ("413000001,,29.5,106.55,1,1,1,,,,,,,", "missing_field"),
        (",2024-06-01T08:00:00,29.5,106.55,1,1,1,,,,,,,", "missing_field"),
        ("413000001,2024-06-01T08:00:00,29.5,,1,1,1,,,,,,,", "missing_field"),
        ("413000001,2024-06-01T08:00:00,north,106.55,1,1,1,,,,,,,", "bad_value"),
        ("413000001,2024-06-01T08:00:00,29.5", "unparseable"),
        ('413000001,"2024-06-01T08:00:00,29.5,106.55,1,1,1,,,,,,,', "unparseable"),
    ],
)
def test_bad_rows_are_dead_lettered_with_their_reason(row: str, reason: str) -> None:
    result = run([MC_HEADER, row, MC_ROW])
    assert [(d.line, d.reason) for d in result.dead] == [(2, reason)]
    assert result.counts.positions == 1


def test_blank_comment_and_repeated_header_lines_are_skipped() -> None:
    result = run(["# export of 2024-06-01", MC_HEADER, MC_ROW, "", MC_HEADER, "# more", MC_ROW])
    assert result.counts.skipped == 5 and result.counts.positions == 2


def test_header_without_required_columns_is_dead_lettered_with_the_fix() -> None:
    result = run(["ID,when,x,y", "1,2024-06-01T00:00:00Z,1,2", "id,ts,lon,lat", "1,2024-06-01T00:00:00Z,1,2"])
    assert [d.reason for d in result.dead] == ["missing_field", "missing_field"]
    assert "--columns" in result.dead[0].detail
    assert result.counts.positions == 1 and result.counts.skipped == 1


def test_columns_naming_a_missing_cell() -> None:
    result = run([MC_HEADER, MC_ROW], columns={"sog": "SPEED_KN"})
    assert result.dead[0].reason == "missing_field" and "SPEED_KN" in result.dead[0].detail


def test_semicolon_delimiter_is_detected() -> None:
    b = run(["id;ts;lon;lat", "7;2024-06-01T00:00:00Z;1.5;2.5"]).positions
    assert (b.subject_id[0], b.lon_deg[0]) == ("7", 1.5)


def test_containers_in_csv() -> None:
    lines = ["id,ts,lon,lat,kind,carrier,event,zone_id", "CSQU3054383,2024-06-01T00:00:00Z,106.5,29.5,container,"
             "413000001,release,CQ-CUSTOMS-1", "CSQU3054384,2024-06-01T00:00:00Z,106.5,29.5,container,,,"]
    result = run(lines)
    b = result.positions
    assert b.kind.tolist() == [SubjectKind.CONTAINER] and b.carrier_id.tolist() == ["413000001"]
    assert b.event_zone.tolist() == ["CQ-CUSTOMS-1"] and b.event[0] == 1
    assert [d.reason for d in result.dead] == ["bad_container_id"]


def test_snapshot_and_restore_carry_the_header() -> None:
    first = CsvDecoder("x.csv", columns={"id": "ID", "ts": "T", "lon": "X", "lat": "Y"})
    first.feed([b"ID,T,X,Y"], 1)
    second = CsvDecoder("x.csv", columns={"id": "ID", "ts": "T", "lon": "X", "lat": "Y"})
    second.restore(first.snapshot())
    out = second.feed([b"9,2024-06-01T00:00:00Z,1,2"], 2)
    assert out.counts.positions == 1 and second.header == ["ID", "T", "X", "Y"]


def test_bad_options_raise_config_errors() -> None:
    with pytest.raises(ConfigError, match="speed"):
        CsvDecoder("x", columns={"speed": "SOG"})
    with pytest.raises(ConfigError, match="IANA"):
        CsvDecoder("x", tz="Mars/Olympus")


# ---------------------------------------------------------------------------------------------- properties

_cells = st.sampled_from(["413000001", "", "x", "29.5", "106.5", "2024-06-01T00:00:00Z", "511", "nan", '"', "\ufeff"])
_row = st.lists(_cells, min_size=0, max_size=8).map(",".join)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=30), st.booleans())
def test_every_byte_line_is_accounted_for(lines: list[bytes], with_header: bool) -> None:
    head = [b"MMSI,BaseDateTime,LAT,LON,SOG"] if with_header else []
    result = run(head + lines)
    assert all(isinstance(s, str) for s in result.positions.subject_id)
    assert len(result.dead) == result.counts.dead_letter


@settings(max_examples=60, deadline=None)
@given(st.lists(_row, min_size=1, max_size=40), st.sampled_from([1, 7]))
def test_batch_size_independence(rows: list[str], chunk: int) -> None:
    lines = ["MMSI,BaseDateTime,LAT,LON,SOG,COG,Heading,VesselName", *rows]
    whole = run(lines)
    part = run(lines, chunk=chunk)
    assert part.counts.to_dict() == whole.counts.to_dict()
    assert part.positions.subject_id.tolist() == whole.positions.subject_id.tolist()
    for name in ("ts_s", "lon_deg", "lat_deg", "sog_kn", "line"):
        assert np.array_equal(getattr(part.positions, name), getattr(whole.positions, name), equal_nan=True), name
    assert [(d.line, d.reason) for d in part.dead] == [(d.line, d.reason) for d in whole.dead]
    assert all(type(s) is str for s in whole.positions.subject_id)


_time_texts = st.one_of(
    st.sampled_from(["2024-05-01T00:00:00Z", "2024-05-01T00:00:01Z", "2024-05-01T08:00:00+08:00", "01/05/2024 00:00"]),
    st.integers(0, 4000).map(lambda s: f"2024-05-01T00:{s // 60 % 60:02d}:{s % 60:02d}.{s % 1000:03d}Z"),
    st.sampled_from(["", "not a time", "2024-13-01T00:00:00Z", "2024-02-30T00:00:00"]),
)


@settings(max_examples=80, deadline=None)
@given(st.lists(_time_texts, min_size=1, max_size=150), st.sampled_from([None, "%d/%m/%Y %H:%M"]))
def test_repeated_time_texts_parse_as_each_text_alone(texts: list[str], fmt: str | None) -> None:
    """A batch that repeats its texts is parsed once per distinct text: the results are those of each text alone."""
    parser = TimeParser(fmt, "Asia/Shanghai")
    ts, status = parser.parse(texts)
    alone = [parser.parse([t]) for t in texts]
    assert status.tolist() == [int(s[0]) for _, s in alone]
    np.testing.assert_array_equal(ts, [float(t[0]) for t, _ in alone])
