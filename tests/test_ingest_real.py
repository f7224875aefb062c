"""Acceptance tests of ingest on every real file in ../shared/data/real (nmea/, csv/, tracks/).

Reference figures come from pyais, the csv module and the json module, run here, never from stored numbers
(the few literal figures below are the issue's, and the test also derives them independently).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from pyais.messages import NMEAMessage
from pyais.stream import IterMessages

from geofence.decode import CsvDecoder, DecodeResult, JsonlDecoder, NmeaDecoder
from geofence.decode._aisfast import FAST_FIRST_CHARS, decode_positions_168
from geofence.decode.nmea import POSITION_TYPES, _lean_static, _pyais_decode
from geofence.errors import DecodeError
from geofence.positions import StaticReport
from geofence.timefmt import parse_iso_utc

_SENTENCE = re.compile(rb"![A-Z0-9-]{2}VD[MO],[^*]*\*[0-9A-Fa-f]{2}")
_NMEA_FILES = sorted(p.name for p in (Path(__file__).resolve().parents[2] / "shared/data/real/nmea").glob("*"))


def _decode_file(path: Path, chunk: int = 997, **kwargs: object) -> DecodeResult:
    lines = path.read_bytes().splitlines()
    dec = NmeaDecoder(path.name, untimed_start_s=0.0, **kwargs)  # type: ignore[arg-type]
    results = [dec.feed(lines[i : i + chunk], i + 1) for i in range(0, len(lines), chunk)]
    results.append(dec.close())
    return DecodeResult.concat(results)


def _reference(path: Path) -> list[tuple[bytes, object]]:
    """(assembled payload, pyais message) of every checksum-valid message pyais assembles from the file."""
    sentences = []
    for line in path.read_bytes().splitlines():
        m = _SENTENCE.search(line)
        if m:
            sentences.append(m.group(0))
    out: list[tuple[bytes, object]] = []
    for msg in IterMessages(sentences):
        if not msg.is_valid or not msg.payload:
            continue
        try:
            decoded = msg.decode()
        except Exception:
            continue
        out.append((bytes(msg.payload), decoded))
    return out


def _ref_positions(ref: list[tuple[bytes, object]]) -> list[tuple[bytes, object]]:
    """Position reports pyais decodes, less "not available" and out-of-range positions."""
    out = []
    for payload, msg in ref:
        if msg.msg_type not in POSITION_TYPES or msg.lon is None or msg.lat is None:  # type: ignore[attr-defined]
            continue
        lon, lat = msg.lon, msg.lat  # type: ignore[attr-defined]
        if lon == 181.0 or lat == 91.0 or abs(lon) > 180 or abs(lat) > 90:
            continue
        out.append((payload, msg))
    return out


def _na(value: object, sentinel: float) -> float:
    return math.nan if value is None or float(value) >= sentinel else float(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", _NMEA_FILES)
def test_nmea_file_accounting_and_pyais_agreement(real_data: Path, name: str) -> None:
    path = real_data / "nmea" / name
    result = _decode_file(path, dedupe_window_s=0.0)
    c = result.counts
    assert c.input_lines == len(path.read_bytes().splitlines())
    assert c.balanced(), c.to_dict()
    ref = _ref_positions(_reference(path))
    batch = result.positions
    assert len(batch) == len(ref)
    for k, (_, msg) in enumerate(ref):
        t = msg.msg_type  # type: ignore[attr-defined]
        assert batch.subject_id[k] == str(msg.mmsi)  # type: ignore[attr-defined]
        assert batch.lon_deg[k] == msg.lon and batch.lat_deg[k] == msg.lat  # type: ignore[attr-defined]
        sog = _na(msg.speed, 63 if t == 27 else 102.3)  # type: ignore[attr-defined]
        cog = _na(msg.course, 360)  # type: ignore[attr-defined]
        hdg = math.nan if t == 27 else _na(msg.heading, 360)  # type: ignore[attr-defined]
        for got, want in ((batch.sog_kn[k], sog), (batch.cog_deg[k], cog), (batch.heading_deg[k], hdg)):
            assert (math.isnan(got) and math.isnan(want)) or got == want, (k, t, got, want)


@pytest.mark.parametrize("name", _NMEA_FILES)
def test_nmea_file_dedupe(real_data: Path, name: str) -> None:
    """With a window longer than the file, every distinct position payload counts exactly once."""
    path = real_data / "nmea" / name
    result = _decode_file(path, dedupe_window_s=1e9)
    assert result.counts.balanced()
    ref = _ref_positions(_reference(path))
    assert result.counts.positions == len({p for p, _ in ref})
    assert len(result.positions) == result.counts.positions


def test_identical_payload_after_the_window_counts_again(real_data: Path) -> None:
    """simpleais_sample.ais spans 7 minutes: a payload repeated more than 60 s after its last
    counted copy (a moored vessel's unchanged report) is a new position, not a duplicate."""
    path = real_data / "nmea" / "simpleais_sample.ais"
    window_s = 60.0
    kept: dict[bytes, float] = {}
    want = 0
    positions = {p for p, _ in _ref_positions(_reference(path))}
    for line in path.read_bytes().splitlines():
        ts, _, sentence = line.partition(b" ")
        f = sentence.split(b",")
        if len(f) < 7 or f[1] != b"1" or f[5] not in positions:
            continue
        last = kept.get(f[5])
        if last is None or float(ts) - last > window_s:
            kept[f[5]] = float(ts)
            want += 1
    result = _decode_file(path, dedupe_window_s=window_s)
    assert result.counts.positions == want
    assert want > len(positions)  # the file really has such repeats


@pytest.mark.parametrize("name", _NMEA_FILES)
def test_fast_path_matches_pyais(real_data: Path, name: str) -> None:
    """The numpy unpacking of 168-bit position payloads equals pyais field by field."""
    ref = [(p, m) for p, m in _reference(real_data / "nmea" / name) if len(p) == 28 and p[0] in FAST_FIRST_CHARS]
    ref = [(p, m) for p, m in ref if m.msg_type in (1, 2, 3, 18)]  # type: ignore[attr-defined]
    if not ref:
        return
    cols = decode_positions_168([p for p, _ in ref])
    for k, (_, m) in enumerate(ref):
        got = {key: cols[key][k] for key in cols}
        assert got["type"] == m.msg_type and got["mmsi"] == m.mmsi  # type: ignore[attr-defined]
        assert got["lon"] == m.lon and got["lat"] == m.lat  # type: ignore[attr-defined]
        assert got["sog"] == m.speed and got["cog"] == m.course and got["heading"] == m.heading  # type: ignore


def test_empty_payloads_dead_lettered(real_data: Path) -> None:
    path = real_data / "nmea" / "pyais_nmea_data_sample.txt"
    lines = path.read_bytes().splitlines()
    expected = [i + 1 for i, line in enumerate(lines) if re.fullmatch(rb"!AIVDM,1,1,,[AB],,0\*[0-9A-F]{2}", line)]
    assert len(expected) == 100
    result = _decode_file(path)
    got = [d.line for d in result.dead if d.reason == "empty_payload"]
    assert got == expected
    assert result.counts.dead_letter_reasons["empty_payload"] == 100


def test_pghp_time_is_used(real_data: Path) -> None:
    path = real_data / "nmea" / "dma_aislib_replay_dump.txt"
    lines = path.read_bytes().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(b"!"))
    pghp = lines[first - 1].split(b",")
    y, mo, d, h, mi, s, ms = (int(f) for f in pghp[2:9])
    want = parse_iso_utc(f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}.{ms:03d}Z")
    batch = _decode_file(path).positions
    row = int(np.flatnonzero(batch.line == first + 1)[0])
    assert batch.ts_s[row] == pytest.approx(want)
    assert batch.subject_id[row] == str(NMEAMessage(lines[first]).decode().mmsi)


def test_tag_block_time_is_used(real_data: Path) -> None:
    path = real_data / "nmea" / "aisdb_test_data_20211101.nm4"
    lines = path.read_bytes().splitlines()
    batch = _decode_file(path).positions
    for row in (0, len(batch) // 2, len(batch) - 1):
        line = lines[int(batch.line[row]) - 1]
        c = re.search(rb"c:(\d+)", line)
        assert c is not None
        assert batch.ts_s[row] == float(c.group(1))
        assert batch.receiver[row] == re.search(rb"s:([^,*]+)", line).group(1).decode()  # type: ignore[union-attr]


def test_leading_unix_time_is_used(real_data: Path) -> None:
    path = real_data / "nmea" / "simpleais_sample.ais"
    lines = path.read_bytes().splitlines()
    batch = _decode_file(path).positions
    for row in (0, 100, len(batch) - 1):
        assert batch.ts_s[row] == float(lines[int(batch.line[row]) - 1].split()[0])


def _pyais_multipart_groups(path: Path, strip_leading_time: bool = False) -> int:
    sentences = []
    for line in path.read_bytes().splitlines():
        if strip_leading_time and b" " in line:
            line = line.split(b" ", 1)[1]
        if line.startswith(b"!"):
            sentences.append(line)
    return sum(1 for m in IterMessages(sentences) if m.frag_cnt > 1)


def test_multipart_reassembly_gfw(real_data: Path) -> None:
    path = real_data / "nmea" / "gfw_aistools_multi-part.nmea"
    result = _decode_file(path, dedupe_window_s=0.0)
    assert result.counts.input_lines == 93
    assert result.counts.multipart_messages == _pyais_multipart_groups(path) == 43
    assert result.counts.dead_letter == 0


def test_multipart_reassembly_simpleais(real_data: Path) -> None:
    path = real_data / "nmea" / "simpleais_sample.ais"
    result = _decode_file(path)
    want = _pyais_multipart_groups(path, strip_leading_time=True)
    assert want == 450
    assert result.counts.multipart_messages == want
    assert result.counts.balanced()


def test_multipart_fragments_bucket(real_data: Path) -> None:
    """Each assembled group puts its first line in the message's bucket and the others in ``fragments``."""
    path = real_data / "nmea" / "gfw_aistools_multi-part.nmea"
    result = _decode_file(path, dedupe_window_s=0.0)
    groups = _pyais_multipart_groups(path)
    assert result.counts.fragments == result.counts.input_lines - groups == 93 - 43
    assert result.counts.static + result.counts.other + result.counts.positions == groups


@pytest.mark.parametrize("name", _NMEA_FILES)
def test_vectorised_scan_equals_the_exact_per_line_path(real_data: Path, name: str, monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    """The numpy first pass (plain sentences, tag-block/leading times, skipped lines) changes nothing but speed."""
    import dataclasses

    import geofence.decode.nmea as nmea_mod

    path = real_data / "nmea" / name
    fast = _decode_file(path)
    real_scan = nmea_mod.scan_lines  # type: ignore[attr-defined]

    def exact_only(lines: list[bytes], max_line: int) -> object:
        scan = real_scan(lines, max_line)
        n = len(lines)
        return dataclasses.replace(scan, active=list(range(n)), plain=[False] * n, fast=[False] * n, n_skip=0)

    monkeypatch.setattr(nmea_mod, "scan_lines", exact_only)
    exact = _decode_file(path)
    assert exact.counts.to_dict() == fast.counts.to_dict()
    for col in ("subject_id", "ts_s", "lon_deg", "lat_deg", "receiver", "line"):
        assert np.array_equal(getattr(exact.positions, col), getattr(fast.positions, col)), col
    assert [(d.line, d.reason, d.detail) for d in exact.dead] == [(d.line, d.reason, d.detail) for d in fast.dead]
    assert exact.statics == fast.statics


@pytest.mark.parametrize("name", ["dma_aislib_small_cb_example.txt", "pyais_mixed.txt", "kystverket_norwegian.raw",
                                  "gfw_aistools_multi-part.nmea", "libais_tagblock.nmea", "pyais_gatehouse.nmea"])
def test_nmea_batch_size_independence_on_real_files(real_data: Path, name: str) -> None:
    path = real_data / "nmea" / name
    whole = _decode_file(path, chunk=1 << 30)
    for chunk in (1, 7):
        part = _decode_file(path, chunk=chunk)
        assert part.counts.to_dict() == whole.counts.to_dict()
        for col in ("subject_id", "ts_s", "lon_deg", "lat_deg", "line"):
            assert np.array_equal(getattr(part.positions, col), getattr(whole.positions, col)), (chunk, col)
        assert sorted((d.line, d.reason) for d in part.dead) == sorted((d.line, d.reason) for d in whole.dead)


def _pyais_static(msg: object, ais_type: int) -> StaticReport:
    """The StaticReport a full pyais decode implies (the reference for the decoder's lean static path)."""

    def text(value: object) -> str | None:
        if not isinstance(value, str):
            return None
        return value.replace("@", " ").strip() or None

    def get(name: str) -> object:
        return getattr(msg, name, None)

    def total(a: object, b: object) -> float | None:
        return float(a + b) if isinstance(a, int) and isinstance(b, int) and a + b > 0 else None

    eta = None
    month, day, hour, minute = get("month"), get("day"), get("hour"), get("minute")
    if ais_type == 5 and month and None not in (day, hour, minute):
        eta = f"{month:02d}-{day:02d}T{hour:02d}:{minute:02d}"
    ship_type = get("ship_type") if ais_type == 5 or get("partno") == 1 else None
    return StaticReport(
        subject_id=str(get("mmsi")),
        ts_s=None,
        name=text(get("shipname")),
        ship_type=None if ship_type is None else int(ship_type),  # type: ignore[call-overload]
        length_m=total(get("to_bow"), get("to_stern")),
        beam_m=total(get("to_port"), get("to_starboard")),
        destination=text(get("destination")) if ais_type == 5 else None,
        eta=eta,
        imo=int(get("imo")) if ais_type == 5 and get("imo") else None,  # type: ignore[call-overload]
        callsign=text(get("callsign")),
    )


def test_static_reports_equal_pyais_on_every_real_message(real_data: Path) -> None:
    """The decoder reads types 5/24 without pyais' full decode; every real one must give what pyais gives."""
    checked = 0
    for name in _NMEA_FILES:
        for payload, msg in _reference(real_data / "nmea" / name):
            t = msg.msg_type  # type: ignore[attr-defined]
            if t not in (5, 24):
                continue
            for fill in (0, 2):
                try:
                    got = _lean_static(payload, fill, t, None)
                except DecodeError:
                    continue
                assert got == _pyais_static(_pyais_decode(payload, fill), t), (name, payload, fill)
                checked += 1
    assert checked > 1000


# -- CSV and JSONL ------------------------------------------------------------------------------------------------

_CSV_OPTIONS: dict[str, dict[str, object]] = {
    "movingpandas_evergiven_boat-positions.csv": {
        "columns": {"id": "ID", "ts": "ais_pos_timestamp", "lon": "longitude", "lat": "latitude"},
        "time_format": "%d/%m/%Y %H:%M",
    },
    "aisdb_test_data_20210701.csv": {
        "columns": {"msg_type": "Message_ID", "name": "Vessel_Name", "ship_type": "Ship_Type"},
        "time_format": "%Y%m%d_%H%M%S",
    },
}
_TRACK_COLUMNS = {"id": "ssvid", "ts": "timestamp", "sog": "speed", "cog": "course", "name": "shipname",
                  "ship_type": "shiptype", "length": "length", "beam": "width"}
_CSV_FILES = sorted(p.name for p in (Path(__file__).resolve().parents[2] / "shared/data/real/csv").glob("*.csv"))
_TRACK_FILES = sorted(p.name for p in (Path(__file__).resolve().parents[2] / "shared/data/real/tracks").glob("*"))


def _decode_with(decoder: object, path: Path, chunk: int = 4096) -> DecodeResult:
    lines = path.read_bytes().splitlines()
    results = [decoder.feed(lines[i : i + chunk], i + 1) for i in range(0, len(lines), chunk)]  # type: ignore[attr-defined]
    results.append(decoder.close())  # type: ignore[attr-defined]
    out = DecodeResult.concat(results)
    assert out.counts.input_lines == len(lines)
    assert out.counts.balanced(), out.counts.to_dict()
    return out


@pytest.mark.parametrize("name", _CSV_FILES)
def test_csv_file_accounting(real_data: Path, name: str) -> None:
    path = real_data / "csv" / name
    result = _decode_with(CsvDecoder(name, **_CSV_OPTIONS.get(name, {})), path)  # type: ignore[arg-type]
    assert result.counts.dead_letter == 0, result.dead[:3]
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    assert result.counts.input_lines - result.counts.skipped == len(rows)
    assert all(type(s) is str for s in result.positions.subject_id)


def test_suez_csv_positions(real_data: Path) -> None:
    path = real_data / "csv" / "movingpandas_evergiven_boat-positions.csv"
    result = _decode_with(CsvDecoder(path.name, **_CSV_OPTIONS[path.name]), path)  # type: ignore[arg-type]
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    want = [r for r in rows if r["longitude"] and r["latitude"]]
    assert result.counts.positions == len(want) == 22_287
    first = want[0]
    ts = datetime.strptime(first["ais_pos_timestamp"], "%d/%m/%Y %H:%M").replace(tzinfo=UTC).timestamp()
    assert result.positions.subject_id[0] == first["ID"] and result.positions.ts_s[0] == ts
    assert result.positions.lon_deg[0] == float(first["longitude"])
    assert np.isnan(result.positions.sog_kn).all()


@pytest.mark.parametrize("name", _TRACK_FILES)
def test_tracks_jsonl_positions(real_data: Path, name: str) -> None:
    path = real_data / "tracks" / name
    result = _decode_with(JsonlDecoder(name, columns=_TRACK_COLUMNS), path)
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    with_position = [r for r in records if _finite(r.get("lon")) and _finite(r.get("lat"))]
    assert result.counts.positions == len(with_position)
    assert result.counts.static == len(records) - len(with_position)  # the rest carry names / ship types
    assert result.counts.dead_letter == 0
    if "412588888" in name:
        assert result.counts.positions == 110
    else:
        assert result.counts.positions >= 2000
    assert result.positions.subject_id.tolist() == [str(r["ssvid"]) for r in with_position]
    assert result.positions.ts_s.tolist() == [datetime.fromisoformat(r["timestamp"]).timestamp() for r in with_position]


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
