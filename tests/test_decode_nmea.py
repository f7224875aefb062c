"""Unit tests of the NMEA decoder on sentences built with pyais' encoder (geofence.decode.nmea).

Every test checks the accounting identity as well as its own point.
"""

from __future__ import annotations

import calendar
import dataclasses
import itertools
import math
from collections.abc import Sequence
from functools import reduce
from operator import xor
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyais import decode as pyais_decode
from pyais import encode_dict

import geofence.decode._aisstatic as aisstatic_mod
import geofence.decode.nmea as nmea_mod
from geofence.decode import DecodeResult, NmeaDecoder
from geofence.decode._aisstatic import decode_statics, make_static
from geofence.decode._dedupe import MAX_MESSAGES, PayloadMemory
from geofence.decode._nmeascan import _days_from_civil, _decimal, _words
from geofence.decode._payloads import decode_payloads
from geofence.decode.nmea import _lean_static, _pyais_decode
from geofence.errors import DecodeError
from geofence.positions import StaticReport

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


# ---------------------------------------------------------------------------------------------- fast paths
# The vectorised first pass (_nmeascan), the two-line groups, the numpy payload decoders and the dedupe
# rounds change nothing but speed: each is compared here with the exact per-line code, pyais or a plain
# one-by-one reference, on generated input that exercises their edges.


def _exact_only(scan: Any) -> Any:
    """A scan result that sends every line through the exact per-line code (as the real-data test does)."""
    n = len(scan.bang)
    return dataclasses.replace(scan, active=list(range(n)), plain=[False] * n, fast=[False] * n, n_skip=0)


def _decode(lines: Sequence[bytes], chunk: int, exact: bool, **kwargs: Any) -> DecodeResult:
    real = nmea_mod.scan_lines
    with mock.patch.object(nmea_mod, "scan_lines", (lambda ls, m: _exact_only(real(ls, m))) if exact else real):
        dec = NmeaDecoder("gen", **kwargs)
        results = [dec.feed(lines[i : i + chunk], i + 1, arrival_ts_s=T0 + i) for i in range(0, len(lines), chunk)]
        results.append(dec.close())
    return DecodeResult.concat(results)


def _assert_same(a: DecodeResult, b: DecodeResult) -> None:
    assert a.counts.to_dict() == b.counts.to_dict()
    for name in ("subject_id", "ts_s", "lon_deg", "lat_deg", "sog_kn", "cog_deg", "heading_deg", "receiver", "line"):
        x, y = getattr(a.positions, name), getattr(b.positions, name)
        assert x.shape == y.shape, name
        same = np.array_equal(x, y, equal_nan=True) if x.dtype.kind == "f" else bool((x == y).all())
        assert same, name
    def letters(r: DecodeResult) -> list[tuple[int, str, str, str]]:
        return [(d.line, d.reason, d.detail, d.raw) for d in r.dead]

    assert letters(a) == letters(b)
    assert a.statics == b.statics


_POSITIONS = [sentences(position(mmsi=MMSI + k, lon=106 + k / 7, lat=29 + k / 9))[0] for k in range(3)] + [
    sentences({"type": 18, "mmsi": MMSI + 5, "lon": 112.1, "lat": 30.2, "speed": 7.5, "course": 12.5})[0],
    sentences({"type": 27, "mmsi": MMSI + 6, "lon": 114.3, "lat": 30.6, "speed": 9, "course": 45})[0],
    sentences({"type": 24, "mmsi": MMSI + 7, "partno": 0, "shipname": "HAN JIANG"})[0],
]
def _split(sentence: str, parts: int, seq: int) -> list[str]:
    """A single-part sentence re-sent as a ``parts``-fragment group (valid multipart: pyais reassembles it)."""
    f = sentence[1 : sentence.index("*")].split(",")
    payload, fill = f[5], f[6]
    cut = [len(payload) * k // parts for k in range(parts + 1)]
    bodies = [f"{f[0]},{parts},{k + 1},{seq},{f[4]},{payload[cut[k] : cut[k + 1]]},{fill if k == parts - 1 else 0}"
              for k in range(parts)]
    return [f"!{b}*{_cs(b)}" for b in bodies]


_GROUPS = [_static5(MMSI + 20 + k, f"YANGTZE {k}", seq=k % 4, channel="AB"[k % 2]) for k in range(3)] + [
    sentences({"type": 19, "mmsi": MMSI + 30, "lon": 120.0, "lat": 31.0, "shipname": "WUHU"}, seq=7),
    _split(_POSITIONS[0], 2, 3), _split(_POSITIONS[3], 2, 5), _split(_POSITIONS[1], 3, 1),
]


def _nmea(body: str, checksum_ok: bool) -> str:
    cs = _cs(body)
    return f"{body}*{cs if checksum_ok else f'{int(cs, 16) ^ 0x11:02X}'}"


@st.composite
def _prefix(draw: st.DrawFn, clean: bool) -> str:
    kind = draw(st.sampled_from(["none", "tag", "tag", "lead"]))
    if kind == "tag":
        stamp = st.sampled_from([f"c:{T0 + draw(st.integers(-5, 500))}", f"c:{(T0 + 9) * 1000}"])
        odd = st.sampled_from(["c:1.5", "c:", "c:99999999999999", "t:x", "s:"])
        parts = draw(st.lists(st.one_of(stamp, st.just(f"s:r{draw(st.integers(0, 3))}"), st.just("g:1-2-77"))
                              if clean else st.one_of(stamp, odd, st.just("s:r1")), max_size=3))
        body = ",".join(parts)
        ok = True if clean else draw(st.sampled_from([True, False, None]))
        return "\\" + (body if ok is None else _nmea(body, ok)) + "\\"
    if kind == "lead":
        number = draw(st.sampled_from([f"{T0 + draw(st.integers(0, 99))}", f"{T0}.25", f"0{T0}.125000"] + (
            [] if clean else [f"{T0}.", f"{T0 * 1000}", "12", "1e9", f"{T0}.1.2", "99999999999999999"])))
        return number + draw(st.sampled_from([" ", "\t"] if clean else ["  ", ""]))
    return ""


@st.composite
def _sentence_line(draw: st.DrawFn, clean: bool) -> list[str]:
    """One line, or the lines of a group (adjacent, or out of order when not clean), with prefixes and tails."""
    if draw(st.booleans()):
        frags = [s[1 : s.index("*")] for s in draw(st.sampled_from(_GROUPS))]
        if not clean and draw(st.integers(0, 5)) == 0:
            frags = frags[::-1]
    else:
        frags = [draw(st.sampled_from(_POSITIONS))[1:].split("*")[0]]
    out = []
    for body in frags:
        f = body.split(",")
        if not clean and draw(st.integers(0, 6)) == 0:
            f[draw(st.integers(1, 6))] = draw(st.sampled_from(["", "0", "12", "a", "A,B", "6", "X"]))
        if draw(st.integers(0, 6)) == 0:
            f.append(draw(st.sampled_from(["0", "", "x,y"])))  # extra fields after the fill bits
        tails = [""] * 7 + [f",{T0 + 3}"] if clean else ["", f",r003669945,{T0 + 4}", ",d-109", " "]
        line = draw(_prefix(clean)) + "!" + _nmea(",".join(f), clean or draw(st.integers(0, 9)) > 0)
        out.append(line + draw(st.sampled_from(tails)))
    return out


@st.composite
def _other_line(draw: st.DrawFn) -> str:
    y, mo, d, h, mi, s, ms = (draw(st.sampled_from(v)) for v in (
        ["2013", "1969", "2100", "+2013", "0", ""], ["3", "12", "13", "0", "02", ""], ["18", "31", "0", "32", ""],
        ["9", "23", "24", ""], ["19", "60", ""], ["9", "60", "61", ""], ["500", "999", "1000", "0", " 5", ""]))
    pghp = f"PGHP,1,{y},{mo},{d},{h},{mi},{s},{ms}" + draw(st.sampled_from([",219,,1,28", "", ",x"]))
    return draw(st.sampled_from([
        "$" + _nmea(pghp, draw(st.integers(0, 5)) > 0), "$" + _nmea(pghp, True), "", "# comment", "  ",
        "$GPGGA,1,2*00", "\\" + _nmea(f"c:{T0 + 50}", True) + "\\", "garbage", "!AIALR,1*00",
    ]))


@st.composite
def _generated(draw: st.DrawFn) -> list[list[str]]:
    """Lines as real feeds have them (clean) or with damage of every kind; ``clean`` batches let the two-line
    groups through, which any line the first step cannot read would send to the loop."""
    clean = draw(st.booleans())
    other = _other_line().map(lambda x: [x])
    return draw(st.lists(_sentence_line(clean) if clean else st.one_of(_sentence_line(clean), other),
                         min_size=1, max_size=40))


@settings(max_examples=120, deadline=None)
@given(_generated(), st.sampled_from([1, 2, 3, 7, 1000]), st.sampled_from([
    {}, {"untimed_start_s": 0.0}, {"live": True}, {"dedupe_window_s": 0.0, "untimed_start_s": 5.0},
    {"multipart_timeout_lines": 1, "dedupe_untimed_payloads": 3}, {"multipart_timeout_lines": -1},
    {"multipart_timeout_s": -1.0}]))
def test_fast_paths_equal_the_exact_per_line_code_on_generated_lines(
    groups: list[list[str]], chunk: int, kwargs: dict[str, Any]
) -> None:
    lines = [x.encode() for g in groups for x in g]
    exact = _decode(lines, len(lines), True, **kwargs)
    assert exact.counts.balanced() and exact.counts.input_lines == len(lines)
    _assert_same(_decode(lines, len(lines), False, **kwargs), exact)
    _assert_same(_decode(lines, chunk, False, **kwargs), _decode(lines, chunk, True, **kwargs))


_TAG_PART = st.one_of(
    st.builds(lambda k, v: f"{k}:{v}", st.sampled_from(["c", "c", "c", "s", "g", "t", "cc", ""]),
              st.one_of(st.integers(-10, 10**14).map(str), st.sampled_from(["", "1.5", "12a", " 7", "1e9", "r1,x"]))),
    st.just(f"c:{T0}"), st.just(f"c:{T0 * 1000 + 250}"), st.just("s:r9"))


@st.composite
def _time_prefix(draw: st.DrawFn) -> str:
    """A tag block (well formed or not) or a leading number, then the sentence."""
    if draw(st.booleans()):
        body = ",".join(draw(st.lists(_TAG_PART, max_size=4)))
        ok = draw(st.sampled_from([True, True, True, False, None]))
        close = draw(st.sampled_from(["\\", "\\", "\\", "\\ ", ""]))
        return "\\" + (body if ok is None else _nmea(body, ok)) + close
    number = draw(st.from_regex(r"[0-9]{0,14}(\.[0-9]{0,4})?(\.)?", fullmatch=True))
    return number + draw(st.sampled_from([" ", " ", "\t", "", "x "]))


@settings(max_examples=300, deadline=None)
@given(st.lists(_time_prefix(), min_size=1, max_size=12))
def test_time_prefixes_equal_the_exact_code(prefixes: list[str]) -> None:
    lines = [(p + _POSITIONS[k % 4]).encode() for k, p in enumerate(prefixes)]
    fast = _decode(lines, len(lines), False, dedupe_window_s=0.0)
    _assert_same(fast, _decode(lines, len(lines), True, dedupe_window_s=0.0))


_ODD_VALUES = [str(v) for v in (0, 1, 12, 13, 23, 24, 29, 30, 31, 32, 59, 60, 61, 999, 1000, 1969, 1970, 2099, 2100)]
_ODD_VALUES += ["", "+5", "-1", " 7", "007", "1_0", "12345678", "1.5", "x"]
_ODD_FIELD = st.sampled_from(_ODD_VALUES)


@st.composite
def _pghp_fields(draw: st.DrawFn) -> list[str]:
    """A valid Gatehouse date (day up to 31 in any month), with up to two fields replaced, extra fields or fewer."""
    fields = [str(draw(st.integers(1970, 2099))), str(draw(st.integers(1, 12))), str(draw(st.integers(1, 31))),
              str(draw(st.integers(0, 23))), str(draw(st.integers(0, 59))), str(draw(st.integers(0, 60))),
              str(draw(st.integers(0, 999)))]
    for _ in range(draw(st.integers(0, 2))):
        fields[draw(st.integers(0, 6))] = draw(_ODD_FIELD)
    return fields[: draw(st.sampled_from([5, 6, 7, 7, 7]))] + draw(st.sampled_from([[], ["219", "", "1", "28"]]))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_pghp_fields(), st.integers(0, 5)), min_size=1, max_size=8))
def test_pghp_time_lines_equal_the_exact_code(specs: list[tuple[list[str], int]]) -> None:
    lines = []
    for k, (fields, bad) in enumerate(specs):
        lines.append(("$" + _nmea(",".join(["PGHP", "1", *fields]), bad > 0)).encode())
        lines.append(_POSITIONS[k % 4].encode())
    fast = _decode(lines, len(lines), False, dedupe_window_s=0.0)
    _assert_same(fast, _decode(lines, len(lines), True, dedupe_window_s=0.0))


def test_pghp_field_boundaries_equal_the_exact_code() -> None:
    """Every field of a valid date replaced by every boundary or odd value, each line followed by a position."""
    valid = ["2013", "3", "18", "9", "19", "9", "500"]
    lines = []
    for at in range(7):
        for odd in _ODD_VALUES:
            fields = valid.copy()
            fields[at] = odd
            pghp = "$" + _nmea(",".join(["PGHP", "1", *fields, "219"]), True)
            lines += [pghp.encode(), _POSITIONS[at % 4].encode()]
    fast = _decode(lines, len(lines), False, dedupe_window_s=0.0)
    _assert_same(fast, _decode(lines, len(lines), True, dedupe_window_s=0.0))
    assert 0 < fast.counts.dead_letter_reasons["bad_time"] < len(lines) // 2


@pytest.mark.parametrize("chunk", [1, 2, 3])
def test_regression_two_line_group_supersedes_a_group_pending_from_an_earlier_batch(chunk: int) -> None:
    """A two-line group assembled without the loop must still supersede an incomplete group with its key
    that an earlier batch left pending (as the loop does), not leave it to expire later."""
    stale, _ = _static5(MMSI + 1, "STALE", seq=1)
    fresh = _static5(MMSI + 2, "FRESH", seq=1)
    lines = [(tag("r", T0) + x).encode() for x in [stale, "!AIVDM,1,1,,A,13aI8e?P00PGpU:NR6s00?vT2000,0*70", *fresh]]
    fast, exact = _decode(lines, chunk, False), _decode(lines, chunk, True)
    _assert_same(fast, exact)
    assert [(d.line, d.reason) for d in fast.dead] == [(1, "incomplete_multipart")]
    assert "superseded" in fast.dead[0].detail and [r.name for r in fast.statics] == ["FRESH"]


def test_fast_paths_equal_the_exact_code_on_all_real_files_in_benchmark_batches(real_data: Path) -> None:
    lines = [x for p in sorted((real_data / "nmea").glob("*")) for x in p.read_bytes().splitlines()]
    for kwargs in ({"untimed_start_s": 0.0}, {}, {"live": True, "dedupe_untimed_payloads": 50}):
        _assert_same(_decode(lines, 4096, False, **kwargs), _decode(lines, 4096, True, **kwargs))


# ---------------------------------------------------------------------------------------------- numpy decoders


def _armored(bits: str) -> tuple[bytes, int]:
    """A payload (6-bit armoring) carrying ``bits``, with its fill bits."""
    fill = -len(bits) % 6
    bits += "0" * fill
    chars = [int(bits[i : i + 6], 2) for i in range(0, len(bits), 6)]
    return bytes(c + 48 if c < 40 else c + 56 for c in chars), fill


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([1, 2, 3, 18, 19, 27]), st.integers(60, 320), st.randoms(use_true_random=False))
def test_numpy_position_decoders_equal_pyais_at_any_length(msg_type: int, nbits: int, rnd: Any) -> None:
    bits = f"{msg_type:06b}" + "".join(rnd.choice("01") for _ in range(nbits - 6))
    payload, fill = _armored(bits)
    got = decode_payloads([payload], np.array([fill]), np.array([np.nan]))
    try:
        msg: Any = _pyais_decode(payload, fill)
    except DecodeError:
        assert not got.is_pos[0]
        return
    if not got.is_pos[0]:
        assert msg.lon is None or msg.lat is None  # too short: not a position
        return
    assert (got.ais_type[0], got.mmsi[0], got.lon[0], got.lat[0]) == (msg.msg_type, msg.mmsi, msg.lon, msg.lat)
    heading = getattr(msg, "heading", None)
    for value, want in ((got.sog[0], msg.speed), (got.cog[0], msg.course), (got.heading[0], heading)):
        assert (want is None and math.isnan(value)) or value == want


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([5, 24]), st.integers(30, 440), st.randoms(use_true_random=False)),
                min_size=1, max_size=6))
def test_batched_static_decoder_equals_the_lean_one(specs: list[tuple[int, int, Any]]) -> None:
    payloads, fills, types = [], [], []
    for msg_type, nbits, rnd in specs:
        payload, fill = _armored(f"{msg_type:06b}" + "".join(rnd.choice("01") for _ in range(nbits - 6)))
        payloads.append(payload)
        fills.append(fill)
        types.append(msg_type)
    got = decode_statics(payloads, fills, types, [T0] * len(specs))
    for rep, payload, fill, msg_type in zip(got, payloads, fills, types, strict=True):
        try:
            want: object = _lean_static(payload, fill, msg_type, T0)
        except DecodeError as exc:
            want = exc
        assert (rep.detail if isinstance(rep, DecodeError) else rep) == (
            want.detail if isinstance(want, DecodeError) else want)


def test_fast_static_constructor_equals_the_dataclass() -> None:
    args = ("413000001", 1.5, "A", 70, 90.0, 14.0, "WUHAN", "06-02T08:30", 9000001, "BCQ1")
    made, real = make_static(*args), StaticReport(*args)
    assert made == real and hash(made) == hash(real) and repr(made) == repr(real)
    assert make_static("1", None, "N") == StaticReport("1", None, "N")
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.name = "X"  # type: ignore[misc]
    with mock.patch.object(aisstatic_mod, "_SETTERS", None):  # the constructor, should StaticReport change
        assert make_static(*args) == real and make_static("1", None, "N") == StaticReport("1", None, "N")


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"[0-9]{1,12}(\.[0-9]{0,6})?(\.[0-9])?", fullmatch=True))
def test_vectorised_decimal_equals_float(text: str) -> None:
    raw = text.encode()
    line = b"xx " + raw + b" !"
    padded = np.frombuffer(bytes(16) + line + bytes(64), dtype=np.uint8)
    dots = np.flatnonzero(padded == 46)
    value, ok = _decimal(_words(padded), dots, np.array([16 + 3]), np.array([16 + 3 + len(raw)]))
    if ok[0]:
        assert value[0] == float(text)
    else:  # left to the exact code: a form it does not read
        assert text.count(".") > 1 or text.endswith(".") or len(text.replace(".", "")) > 15


@settings(max_examples=300, deadline=None)
@given(st.integers(1970, 2099), st.integers(1, 12), st.integers(1, 31))
def test_days_from_civil_equals_timegm(y: int, m: int, d: int) -> None:
    got = _days_from_civil(np.array([y]), np.array([m]), np.array([d]))[0] * 86400
    assert got == calendar.timegm((y, m, d, 0, 0, 0, 0, 0, 0))  # Feb 31 = Mar 3, as timegm


# ---------------------------------------------------------------------------------------------- dedupe memory


def _reference_dedupe(stream: list[tuple[bytes, float]], window_s: float, window_n: int) -> list[int]:
    """The dedupe rule message by message, with an unbounded memory: indices of the duplicates."""
    last: dict[bytes, tuple[float, int]] = {}
    out = []
    for seq, (payload, t) in enumerate(stream):
        prev = last.get(payload)
        if prev is not None:
            pts, pseq = prev
            timed = not math.isnan(t) and not math.isnan(pts)
            if (timed and abs(t - pts) <= window_s and seq - pseq <= MAX_MESSAGES) or (
                not timed and seq - pseq <= window_n
            ):
                out.append(seq)
                continue
        last[payload] = (t, seq)
    return out


def _batched_dedupe(stream: list[tuple[bytes, float]], cuts: list[int], window_s: float, window_n: int) -> list[int]:
    memory = PayloadMemory(window_s, window_n)
    out: list[int] = []
    bounds = [0, *sorted(set(cuts)), len(stream)]
    for a, b in itertools.pairwise(bounds):
        part = stream[a:b]
        dup = memory.find_duplicates([bytes(p) for p, _ in part], np.array([t for _, t in part], dtype=float))
        out.extend(a + int(k) for k in dup)
    return out


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.one_of(st.floats(0, 400), st.just(math.nan))), max_size=200),
       st.lists(st.integers(0, 200), max_size=6),
       st.sampled_from([(60.0, 2000), (10.0, 3), (1e9, 0), (60.0, 3_000_000)]))  # the last: times in a dict
def test_dedupe_rounds_equal_the_one_by_one_rule(
    items: list[tuple[int, float]], cuts: list[int], windows: tuple[float, int]
) -> None:
    stream = [(b"P%d" % p, t) for p, t in items]
    assert _batched_dedupe(stream, [c for c in cuts if c < len(stream)], *windows) == _reference_dedupe(
        stream, *windows)


def test_dedupe_memory_stays_exact_past_its_ring_and_forgets() -> None:
    """More messages than the ring of times holds: old entries are forgotten, never mistaken for recent ones."""
    rng = np.random.default_rng(7)
    n = 300_000
    ids = rng.integers(0, 40_000, n)
    ts = np.cumsum(rng.random(n) * 0.01)
    ts[rng.random(n) < 0.05] = np.nan
    stream = [(b"%d" % i, float(t)) for i, t in zip(ids.tolist(), ts.tolist(), strict=True)]
    cuts = list(range(0, n, 4096))
    assert _batched_dedupe(stream, cuts, 60.0, 2000) == _reference_dedupe(stream, 60.0, 2000)
    memory = PayloadMemory(60.0, 2000)
    for a in cuts:
        memory.find_duplicates([p for p, _ in stream[a : a + 4096]], np.array([t for _, t in stream[a : a + 4096]]))
    assert len(memory) <= 40_000
