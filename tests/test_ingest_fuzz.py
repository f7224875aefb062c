"""Fuzz tests: random mutations of real lines never raise out of a decoder, and every line is accounted for.

Mutations: truncation, flipped characters, inserted garbage bytes, huge lines, invalid UTF-8. Each
dead letter must point at its line, and its ``raw`` must be that line's first 512 characters with
invalid UTF-8 written as ``\\xNN``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geofence.deadletter import raw_text
from geofence.decode import CsvDecoder, DecodeResult, JsonlDecoder, NmeaDecoder

_TRACK_COLUMNS = {"id": "ssvid", "ts": "timestamp", "sog": "speed", "cog": "course", "name": "shipname"}
_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def _lines(root: str, folder: str) -> tuple[bytes, ...]:
    out: list[bytes] = []
    for path in sorted((Path(root) / folder).glob("*")):
        lines = path.read_bytes().splitlines()
        out.extend(lines[1:400] if folder == "csv" else lines[:400])
    return tuple(line for line in out if line.strip())


@st.composite
def _mutated(draw: st.DrawFn, pool: tuple[bytes, ...]) -> bytes:
    line = draw(st.sampled_from(pool))
    how = draw(st.sampled_from(["keep", "truncate", "flip", "garbage", "huge", "utf8"]))
    if how == "keep" or not line:
        return line
    at = draw(st.integers(0, len(line)))
    if how == "truncate":
        return line[:at]
    if how == "flip":
        at = min(at, len(line) - 1)
        return line[:at] + bytes([draw(st.integers(0, 255))]) + line[at + 1 :]
    if how == "garbage":
        return line[:at] + draw(st.binary(min_size=1, max_size=20)) + line[at:]
    if how == "huge":
        return line * draw(st.integers(50, 2000))
    return line[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])) + line[at:]


def _check(decoder: object, lines: list[bytes], chunk: int) -> DecodeResult:
    results = [decoder.feed(lines[i : i + chunk], i + 1) for i in range(0, len(lines), chunk)]  # type: ignore
    results.append(decoder.close())  # type: ignore[attr-defined]
    out = DecodeResult.concat(results)
    assert out.counts.input_lines == len(lines)
    assert out.counts.balanced(), out.counts.to_dict()
    assert len(out.dead) == out.counts.dead_letter
    for dead in out.dead:
        assert 1 <= dead.line <= len(lines)
        assert len(dead.raw) <= 512
        assert dead.raw == raw_text(lines[dead.line - 1])
        assert dead.to_dict()["raw"] == dead.raw
    assert all(type(s) is str for s in out.positions.subject_id)
    assert len(out.positions) <= out.counts.positions
    return out


def test_raw_text_escapes_invalid_utf8_and_keeps_512_characters() -> None:
    assert raw_text(b"ok \xff\xfe") == "ok \\xff\\xfe"
    assert raw_text("é".encode() * 600) == "é" * 512
    assert len(raw_text(b"\xff" * 600)) == 512


@_SETTINGS
@given(data=st.data(), chunk=st.sampled_from([1, 5, 4096]))
def test_nmea_decoder_survives_mutated_real_lines(real_data: Path, data: st.DataObject, chunk: int) -> None:
    pool = _lines(str(real_data), "nmea")
    lines = data.draw(st.lists(_mutated(pool), min_size=1, max_size=60))
    _check(NmeaDecoder("fuzz", untimed_start_s=0.0), lines, chunk)


@_SETTINGS
@given(data=st.data(), chunk=st.sampled_from([1, 5, 4096]))
def test_csv_decoder_survives_mutated_real_lines(real_data: Path, data: st.DataObject, chunk: int) -> None:
    pool = _lines(str(real_data), "csv")
    lines = data.draw(st.lists(_mutated(pool), min_size=1, max_size=60))
    header = b"MMSI,BaseDateTime,LAT,LON,SOG,COG,Heading,VesselName,MsgType,Source,ReceiverType"
    _check(CsvDecoder("fuzz.csv"), [header, *lines], chunk)


@_SETTINGS
@given(data=st.data(), chunk=st.sampled_from([1, 5, 4096]))
def test_jsonl_decoder_survives_mutated_real_lines(real_data: Path, data: st.DataObject, chunk: int) -> None:
    pool = _lines(str(real_data), "tracks")
    lines = data.draw(st.lists(_mutated(pool), min_size=1, max_size=60))
    _check(JsonlDecoder("fuzz.jsonl", columns=_TRACK_COLUMNS), lines, chunk)


@_SETTINGS
@given(data=st.data())
def test_any_decoder_survives_any_real_line_mutated(real_data: Path, data: st.DataObject) -> None:
    """Every decoder also takes the other formats' lines (a mis-set --format must not crash the stream)."""
    pool = _lines(str(real_data), "nmea") + _lines(str(real_data), "csv")[:200] + _lines(str(real_data), "tracks")[:50]
    lines = data.draw(st.lists(_mutated(pool), min_size=1, max_size=40))
    for decoder in (NmeaDecoder("x"), CsvDecoder("x"), JsonlDecoder("x")):
        _check(decoder, lines, 7)
