"""Unit tests of the NMEA decoder on sentences built with pyais' encoder (geofence.decode.nmea).

Every test checks the accounting identity as well as its own point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import reduce
from operator import xor
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyais import decode as pyais_decode
from pyais import encode_dict

from geofence.decode import DecodeResult, NmeaDecoder
from geofence.decode.nmea import _lean_static

MMSI = 413_000_001
T0 = 1_717_200_000  # 2024-06-01T00:00:00Z


def _cs(body: str) -> str:
    return f"{reduce(xor, body.encode(), 0):02X}"


def tag(station: str | None = None, c: int | None = None, *, bad: bool = False) -> str:
    parts = []
    if station is not None:
        parts.append(f"s:{station}")
    if c is not None:
        parts.append(f"c:{c}")
    body = ",".join(parts)
    cs = _cs(body) if not bad else f"{(int(_cs(body), 16) ^ 0x5A):02X}"
    return f"\\{body}*{cs}\\"


def position(mmsi: int = MMSI, lon: float = 106.55, lat: float = 29.57, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"type": 1, "mmsi": mmsi, "lon": lon, "lat": lat, "speed": 8.5, "course": 90.0,
                               "heading": 88}
    data.update(extra)
    return data


def sentences(data: dict[str, Any], talker: str = "AI", kind: str = "VDM", channel: str = "A",
              seq: int | None = None) -> list[str]:
    return list(encode_dict(data, talker_id=talker, sentence_type=kind, radio_channel=channel, seq_id=seq))


def run(lines: Sequence[str | bytes], chunk: int | None = None, **kwargs: object) -> DecodeResult:
    raw = [x.encode() if isinstance(x, str) else x for x in lines]
    dec = NmeaDecoder("test", **kwargs)  # type: ignore[arg-type]
    step = chunk or max(1, len(raw))
    results = [dec.feed(raw[i : i + step], i + 1) for i in range(0, len(raw), step)]
    results.append(dec.close())
    out = DecodeResult.concat(results)
    assert out.counts.balanced(), out.counts.to_dict()
    assert out.counts.input_lines == len(raw)
    return out


def reasons(result: DecodeResult) -> list[str]:
    return [d.reason for d in result.dead]


# ---------------------------------------------------------------------------------------------- talkers


@pytest.mark.parametrize(
    ("talker", "kind"), [("AI", "VDM"), ("BS", "VDM"), ("AB", "VDM"), ("AI", "VDO"), ("--", "VDM")]
)
def test_any_talker_and_own_ship_sentences_decode(talker: str, kind: str) -> None:
    line = tag("r1", T0) + sentences(position(), talker=talker, kind=kind)[0]
    result = run([line])
    assert result.counts.positions == 1
    batch = result.positions
    assert batch.subject_id[0] == str(MMSI)
    assert batch.lon_deg[0] == pytest.approx(106.55, abs=1e-5) and batch.lat_deg[0] == pytest.approx(29.57, abs=1e-5)
    assert batch.ts_s[0] == T0 and batch.receiver[0] == "r1"


def test_position_fields_equal_pyais() -> None:
    s = sentences(position(speed=12.3, course=271.4, heading=270))[0]
    ref: Any = pyais_decode(s)
    batch = run([tag("r", T0) + s]).positions
    assert (batch.lon_deg[0], batch.lat_deg[0]) == (ref.lon, ref.lat)
    assert (batch.sog_kn[0], batch.cog_deg[0], batch.heading_deg[0]) == (ref.speed, ref.course, ref.heading)


# ---------------------------------------------------------------------------------------------- multipart


def _static5(mmsi: int, name: str, seq: int, channel: str = "A") -> list[str]:
    return sentences({"type": 5, "mmsi": mmsi, "shipname": name, "ship_type": 70, "to_bow": 60, "to_stern": 30,
                      "to_port": 6, "to_starboard": 8, "destination": "CHONGQING", "imo": 9_000_001,
                      "callsign": "BCQ1", "month": 6, "day": 2, "hour": 8, "minute": 30}, seq=seq, channel=channel)


def test_interleaved_multipart_groups_by_sequence_id_and_channel() -> None:
    a = _static5(413_000_010, "CHANGJIANG A", seq=1, channel="A")
    b = _static5(413_000_011, "CHANGJIANG B", seq=2, channel="A")
    c = _static5(413_000_012, "CHANGJIANG C", seq=1, channel="B")  # same sequence id, other channel
    lines = [tag("r", T0) + x for x in (a[0], b[0], c[0], b[1], a[1], c[1])]
    result = run(lines)
    assert result.counts.multipart_messages == 3
    assert result.counts.static == 3 and result.counts.fragments == 3
    assert sorted((r.subject_id, r.name) for r in result.statics) == [
        ("413000010", "CHANGJIANG A"), ("413000011", "CHANGJIANG B"), ("413000012", "CHANGJIANG C")]
    report = next(r for r in result.statics if r.subject_id == "413000010")
    assert (report.ship_type, report.length_m, report.beam_m, report.destination) == (70, 90.0, 14.0, "CHONGQING")
    assert (report.imo, report.callsign, report.eta, report.ts_s) == (9_000_001, "BCQ1", "06-02T08:30", T0)


def test_incomplete_group_expires_after_the_line_window() -> None:
    first, _ = _static5(413_000_010, "X", seq=3)
    filler = [tag("r", T0 + k) + sentences(position(mmsi=413_100_000 + k))[0] for k in range(6)]
    result = run([tag("r", T0) + first, *filler], multipart_timeout_lines=3)
    assert reasons(result) == ["incomplete_multipart"]
    assert result.dead[0].line == 1 and "window" in result.dead[0].detail
    assert result.counts.positions == 6


def test_incomplete_group_expires_after_the_time_window_and_orphan_is_dead() -> None:
    first, second = _static5(413_000_010, "X", seq=3)
    lines = [tag("r", T0) + first, tag("r", T0 + 500) + sentences(position())[0], tag("r", T0 + 501) + second]
    result = run(lines, multipart_timeout_s=120.0)
    assert sorted(reasons(result)) == ["incomplete_multipart", "incomplete_multipart"]
    assert {d.line for d in result.dead} == {1, 3}  # the expired fragment 1 and the orphan fragment 2


def test_incomplete_group_at_end_of_input_goes_to_the_dead_letter_on_close() -> None:
    first, _ = _static5(413_000_010, "X", seq=4)
    result = run([tag("r", T0) + first])
    assert reasons(result) == ["incomplete_multipart"] and "input ended" in result.dead[0].detail


def test_regression_future_timestamp_does_not_expire_later_groups() -> None:
    """A receiver clock in the future (or files concatenated out of time order) used to expire every later
    multipart group, because a group's age was measured against the largest time seen."""
    a1, a2 = _static5(413_000_010, "LATER", seq=5)
    lines = [tag("bad-clock", T0 + 10 * 365 * 86400) + sentences(position())[0], tag("r", T0) + a1,
             tag("r", T0 + 1) + a2]
    result = run(lines)
    assert result.counts.static == 1 and result.counts.dead_letter == 0


# ---------------------------------------------------------------------------------------------- time sources


def test_tag_block_time_seconds_and_milliseconds_and_station() -> None:
    s = sentences(position())[0]
    result = run([tag("2573238", T0) + s, tag("other", (T0 + 5) * 1000) + sentences(position(mmsi=MMSI + 1))[0]])
    assert result.positions.ts_s.tolist() == [T0, T0 + 5]
    assert result.positions.receiver.tolist() == ["2573238", "other"]


def test_tag_block_with_bad_checksum_is_ignored_but_the_sentence_decodes() -> None:
    result = run([tag("r", T0, bad=True) + sentences(position())[0]], untimed_start_s=0.0)
    assert result.counts.positions == 1 and result.counts.tag_blocks_ignored == 1
    assert result.positions.receiver[0] == ""  # the station of a distrusted tag block is not used either
    assert result.positions.ts_s[0] == 0.0  # no trusted time: the synthetic clock


def test_gatehouse_pghp_line_times_the_following_sentences() -> None:
    body = "PGHP,1,2013,3,18,9,19,9,500,219,219,1,25"
    lines = [f"${body}*{_cs(body)}", sentences(position())[0], sentences(position(mmsi=MMSI + 1))[0]]
    result = run(lines)
    want = 1363598349.5  # 2013-03-18T09:19:09.500Z
    assert result.positions.ts_s.tolist() == [want, want]
    assert result.counts.skipped == 1


def test_pghp_line_with_bad_checksum_is_dead_lettered() -> None:
    body = "PGHP,1,2013,3,18,9,19,9,500,219,219,1,25"
    result = run([f"${body}*00", sentences(position())[0]], untimed_start_s=0.0)
    assert reasons(result) == ["checksum"]


def test_leading_and_trailing_unix_receive_times() -> None:
    s1 = sentences(position())[0]
    s2 = sentences(position(mmsi=MMSI + 1))[0]
    s3 = sentences(position(mmsi=MMSI + 2))[0]
    lines = [f"{T0}.250 {s1}", f"{s2},{T0 + 7}", f"{s3},r003669945,{T0 + 9}"]
    result = run(lines)
    assert result.positions.ts_s.tolist() == [T0 + 0.25, T0 + 7, T0 + 9]


def test_lines_without_time_inherit_the_last_receiver_time() -> None:
    lines = [tag("r", T0) + sentences(position())[0], sentences(position(mmsi=MMSI + 1))[0]]
    assert run(lines).positions.ts_s.tolist() == [T0, T0]


def test_untimed_file_gets_the_documented_synthetic_clock() -> None:
    lines = [sentences(position(mmsi=MMSI + k))[0] for k in range(4)]
    result = run(lines, chunk=3, untimed_start_s=1000.0, untimed_step_s=2.5)
    assert result.positions.ts_s.tolist() == [1000.0, 1002.5, 1005.0, 1007.5]


def test_untimed_file_without_a_start_goes_to_the_dead_letter_as_no_time() -> None:
    lines = [sentences(position(mmsi=MMSI + k))[0] for k in range(3)]
    result = run(lines)
    assert reasons(result) == ["no_time"] * 3 and result.counts.positions == 0


def test_live_source_uses_arrival_time_when_the_line_has_none() -> None:
    dec = NmeaDecoder("udp://x", live=True)
    out = dec.feed([sentences(position())[0].encode()], 1, arrival_ts_s=T0 + 3.0)
    assert out.positions.ts_s.tolist() == [T0 + 3.0]


# ---------------------------------------------------------------------------------------------- bad input


def test_checksum_failure_is_dead_lettered_with_both_values() -> None:
    s = sentences(position())[0]
    broken = s[:-2] + ("00" if s[-2:] != "00" else "11")
    result = run([broken], untimed_start_s=0.0)
    assert reasons(result) == ["checksum"] and "computed" in result.dead[0].detail


def test_empty_payload_unknown_type_and_garbage() -> None:
    empty = "!AIVDM,1,1,,B,,0*25"
    unknown = sentences(position())[0]
    payload = unknown.split(",")[5]
    t40 = "X" + payload[1:]  # 6-bit value 40: no such AIS message type
    body = f"AIVDM,1,1,,A,{t40},0"
    lines = [empty, f"!{body}*{_cs(body)}", "this is not NMEA", "$GPGGA,1,2,3*00", "", "# comment", "!AIALR,1*00"]
    result = run(lines, untimed_start_s=0.0)
    assert sorted(reasons(result)) == ["empty_payload", "unparseable", "unparseable"]
    assert result.counts.skipped == 4


def test_too_long_line() -> None:
    result = run(["!AIVDM," + "A" * 5000], untimed_start_s=0.0)
    assert reasons(result) == ["too_long"]


def test_dead_letter_raw_keeps_512_characters_and_escapes_invalid_utf8() -> None:
    line = b"\xff\xfe" + b"x" * 1000
    result = run([line])
    raw = result.dead[0].raw
    assert raw.startswith("\\xff\\xfe") and len(raw) == 512


# ---------------------------------------------------------------------------------------------- not available


def test_not_available_position_is_other_never_a_coordinate() -> None:
    s = sentences(position(lon=181, lat=91))[0]
    result = run([tag("r", T0) + s])
    assert result.counts.positions == 0 and result.counts.other == 1 and result.counts.no_position == 1


def test_not_available_speed_course_heading_are_nan() -> None:
    s = sentences(position(speed=102.3, course=360, heading=511))[0]
    b = run([tag("r", T0) + s]).positions
    assert math.isnan(b.sog_kn[0]) and math.isnan(b.cog_deg[0]) and math.isnan(b.heading_deg[0])


@pytest.mark.parametrize("msg_type", [18, 19])
def test_not_available_values_class_b(msg_type: int) -> None:
    data = {"type": msg_type, "mmsi": MMSI, "lon": 106.5, "lat": 29.5, "speed": 102.3, "course": 360, "heading": 511}
    b = run([tag("r", T0) + x for x in sentences(data)]).positions
    assert len(b) == 1 and math.isnan(b.sog_kn[0]) and math.isnan(b.cog_deg[0]) and math.isnan(b.heading_deg[0])


def test_type_27_not_available_speed_and_course_and_no_heading() -> None:
    s = sentences({"type": 27, "mmsi": MMSI, "lon": 106.5, "lat": 29.5, "speed": 63, "course": 511})[0]
    b = run([tag("r", T0) + s]).positions
    assert b.lon_deg[0] == pytest.approx(106.5, abs=1e-3)
    assert math.isnan(b.sog_kn[0]) and math.isnan(b.cog_deg[0]) and math.isnan(b.heading_deg[0])
    ok = sentences({"type": 27, "mmsi": MMSI, "lon": 106.5, "lat": 29.5, "speed": 12, "course": 90})[0]
    b = run([tag("r", T0) + ok]).positions
    assert (b.sog_kn[0], b.cog_deg[0]) == (12.0, 90.0) and math.isnan(b.heading_deg[0])


def test_other_types_are_counted_not_errors() -> None:
    base = sentences({"type": 4, "mmsi": 2_573_238, "lon": 10.0, "lat": 59.0})[0]
    aton = sentences({"type": 21, "mmsi": 992_571_001, "lon": 10.0, "lat": 59.0, "name": "BUOY"})
    result = run([tag("r", T0) + x for x in [base, *aton]])
    assert result.counts.other == 1 + 1 and result.counts.fragments == len(aton) - 1
    assert result.counts.dead_letter == 0


# ---------------------------------------------------------------------------------------------- dedupe


def test_duplicates_within_the_window_count_once() -> None:
    s = sentences(position())[0]
    other_rx = "!AB" + s[3:]  # the same payload relayed by another station
    body = other_rx[1 : other_rx.index("*")]
    other_rx = f"!{body}*{_cs(body)}"
    lines = [tag("a", T0) + s, tag("b", T0 + 2) + other_rx, tag("a", T0 + 200) + s]
    result = run(lines, dedupe_window_s=60.0)
    assert result.counts.positions == 2 and result.counts.duplicates == 1
    assert result.positions.ts_s.tolist() == [T0, T0 + 200]


def test_duplicate_multipart_message_counts_its_fragments() -> None:
    a = _static5(413_000_010, "DUP", seq=1)
    lines = [tag("r", T0) + x for x in a] + [tag("s", T0 + 1) + x for x in a]
    result = run(lines)
    assert (result.counts.static, result.counts.duplicates, result.counts.fragments) == (1, 1, 2)


def test_dedupe_off_keeps_every_copy() -> None:
    s = tag("r", T0) + sentences(position())[0]
    assert run([s, s], dedupe_window_s=0.0).counts.positions == 2


# ---------------------------------------------------------------------------------------------- statics


@pytest.mark.parametrize(
    "data",
    [
        {"type": 24, "mmsi": MMSI, "partno": 0, "shipname": "CHANGJIANG 9"},
        {"type": 24, "mmsi": MMSI, "partno": 1, "ship_type": 52, "callsign": "BX9", "to_bow": 20, "to_stern": 10,
         "to_port": 3, "to_starboard": 4},
        {"type": 24, "mmsi": 981_234_567, "partno": 1, "ship_type": 52, "callsign": "AUX", "mothership_mmsi": MMSI},
        {"type": 5, "mmsi": MMSI, "shipname": "A@B", "ship_type": 39, "destination": "WUHAN@@@"},
    ],
)
def test_lean_static_decoder_equals_pyais(data: dict[str, Any]) -> None:
    payload = "".join(s.split(",")[5] for s in sentences(data))
    fill = int(sentences(data)[-1].split(",")[6][0])
    msg: Any = pyais_decode(*sentences(data))
    got = _lean_static(payload.encode(), fill, int(data["type"]), None)
    assert got.subject_id == str(msg.mmsi)
    assert got.name == ((getattr(msg, "shipname", None) or "").replace("@", " ").strip() or None)
    if data["type"] == 5 or data.get("partno") == 1:
        assert got.ship_type == int(msg.ship_type)
    if data.get("mmsi") == 981_234_567:
        assert got.length_m is None  # auxiliary craft carry the mothership's MMSI, not dimensions


# ---------------------------------------------------------------------------------------------- batches


def _mixed_stream() -> list[str]:
    out: list[str] = []
    body = "PGHP,1,2024,6,1,0,0,1,0,219,219,1,25"
    out.append(f"${body}*{_cs(body)}")
    for k in range(12):
        out.append(tag(f"r{k % 3}", T0 + 10 * k) + sentences(position(mmsi=MMSI + k, lon=106.5 + k / 100))[0])
        if k % 4 == 1:
            a, b = _static5(413_000_100 + k, f"S{k}", seq=k % 10)
            out += [tag("r", T0 + 10 * k) + a, "", tag("r", T0 + 10 * k) + b]
        if k % 5 == 2:
            out.append(sentences(position(mmsi=MMSI + k))[0])  # no tag: inherits the last time
            out.append("!AIVDM,1,1,,A,garbage*00")
        if k % 6 == 3:
            out.append(out[-1])  # a duplicate
    out.append(_static5(413_000_999, "TAIL", seq=9)[0])  # never completed
    return out


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([1, 2, 3, 7, 11, 1000]))
def test_batch_size_independence(chunk: int) -> None:
    lines = _mixed_stream()
    whole = run(lines)
    part = run(lines, chunk=chunk)
    assert part.counts.to_dict() == whole.counts.to_dict()
    for name in ("subject_id", "ts_s", "lon_deg", "lat_deg", "line", "receiver"):
        assert np.array_equal(getattr(part.positions, name), getattr(whole.positions, name)), name
    assert sorted((d.line, d.reason) for d in part.dead) == sorted((d.line, d.reason) for d in whole.dead)
    assert part.statics == whole.statics
