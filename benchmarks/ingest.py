"""Ingest benchmark: the NMEA, JSONL and CSV decoders against baselines measured in the same run.

``python -m benchmarks ingest [--json] [--quick]`` prints:

* ``nmea_sentences_per_s``: :class:`geofence.decode.NmeaDecoder` over every file of
  ``../shared/data/real/nmea/`` (22k lines of real logs: tag blocks, ``$PGHP`` lines, multipart,
  17 message types), looped to volume with each copy's times shifted by 30 days (so copies are
  not duplicates of each other), in micro-batches of 4,096 lines, counted in AIS sentences;
  without the real data, the simulator's NMEA output instead;
* ``pyais_sentences_per_s``: a plain pyais loop over the same sentences (``IterMessages`` to
  assemble multipart groups, then ``decode()`` each message); ``ratio`` the two divided (target >= 3);
* ``jsonl_records_per_s``: :class:`geofence.decode.JsonlDecoder` over seeded simulator-like records
  (``id``, ISO ``ts``, ``lon``, ``lat``, ``kind``, ``sog``, ``cog``, ``heading``, ``receiver``,
  plus 1 % static lines), batches of 4,096 lines (target >= 600k/s);
* ``parse_floor_records_per_s``: a bare ``orjson.loads`` per line, appending the same fields to
  lists, then arrays (:func:`jsonl_floor_columns`); ``jsonl_ratio_to_floor`` the two divided
  (target >= 0.8). The floor does not parse the ISO times; the decoder does. The two alternate
  batch by batch, so that both see the machine in the same state;
* ``csv_records_per_s`` over the real GFW CSV (MarineCadastre header, 72k rows) looped, and
  ``csv_floor_records_per_s``: the stdlib ``csv.reader`` with ``float()`` of the numeric cells;
  ``csv_ratio_to_floor`` the two divided.

Every rate is the best of several interleaved repetitions, timed in process CPU time with the
garbage collector off during the timed call (as ``timeit`` does), because the machine is shared
and wall-clock rates swing by a factor of two or more with the other load.
Quick mode (``--quick``) uses smaller volumes and runs in well under a minute.
"""

from __future__ import annotations

import argparse
import calendar
import csv
import gc
import json
import re
import time
from collections.abc import Callable, Sequence
from functools import reduce
from operator import xor
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from pyais.stream import IterMessages

from geofence.decode import CsvDecoder, JsonlDecoder, NmeaDecoder

__all__ = ["jsonl_floor_columns", "main"]

_REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
_BATCH = 4096
_SHIFT_S = 30 * 86400
_SENTENCE = re.compile(rb"![A-Z0-9-]{2}VD[MO],[^*]*\*[0-9A-Fa-f]{2}")
_TAG = re.compile(rb"^(\s*)\\([^\\]*)\\")
_C_FIELD = re.compile(rb"(?<![A-Za-z])c:(\d+)")
_LEADING = re.compile(rb"^(\s*)(\d{9,11})(\.\d+)?(\s)")
_TRAILING = re.compile(rb"(\*[0-9A-Fa-f]{2}(?:,[^,]*)*?,)(\d{10})(?=,|$)")


def _checksum(body: bytes) -> bytes:
    return b"%02X" % reduce(xor, body, 0)


def _shift_line(line: bytes, shift_s: int) -> bytes:
    """The same line with every receiver time in it moved by ``shift_s`` (tag block, $PGHP, unix stamps)."""
    if not shift_s:
        return line
    if line.lstrip().startswith(b"$PGHP,1,"):
        head, _, _ = line.partition(b"*")
        f = head[head.index(b"$") + 1 :].split(b",")
        try:
            ts = calendar.timegm((*(int(x) for x in f[2:8]), 0, 0, 0)) + shift_s
        except ValueError:
            return line
        t = time.gmtime(ts)
        f[2:8] = [str(v).encode() for v in (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)]
        body = b",".join(f)
        return b"$" + body + b"*" + _checksum(body)
    m = _TAG.match(line)
    if m:
        body = m.group(2)
        star = body.rfind(b"*")
        core = body[:star] if star >= 0 else body
        core = _C_FIELD.sub(
            lambda c: b"c:%d" % (int(c.group(1)) + shift_s * (1000 if len(c.group(1)) > 11 else 1)), core
        )
        new = core + (b"*" + _checksum(core) if star >= 0 else b"")
        line = m.group(1) + b"\\" + new + b"\\" + line[m.end() :]
    m = _LEADING.match(line)
    if m:
        line = (
            m.group(1)
            + b"%d" % (int(m.group(2)) + shift_s)
            + (m.group(3) or b"")
            + line[m.end(3) if m.group(3) else m.end(2) :]
        )
    return _TRAILING.sub(lambda t: t.group(1) + b"%d" % (int(t.group(2)) + shift_s), line)


def _nmea_lines(copies: int) -> tuple[list[bytes], str]:
    files = sorted((_REAL / "nmea").glob("*")) if (_REAL / "nmea").is_dir() else []
    if files:
        base = [line for p in files for line in p.read_bytes().splitlines()]
        out = [(_shift_line(line, k * _SHIFT_S) if k else line) for k in range(copies) for line in base]
        return out, f"real nmea/ ({len(files)} files, {len(base)} lines) x {copies}, times shifted per copy"
    from geofence.simulate import SimConfig, nmea_lines, simulate
    from zones.catalogue import default_catalogue_path
    from zones.loader import load_zones

    sim = simulate(load_zones(default_catalogue_path()), SimConfig(vessels=200 * copies, hours=1, seed=3))
    return [s.encode() for s in nmea_lines(sim)], "simulator NMEA (real data not found)"


def _nmea_ours(lines: list[bytes]) -> tuple[float, int]:
    t = time.process_time()
    dec = NmeaDecoder("bench", untimed_start_s=0.0)
    positions = 0
    for i in range(0, len(lines), _BATCH):
        positions += len(dec.feed(lines[i : i + _BATCH], i + 1).positions)
    dec.close()
    return time.process_time() - t, positions


def _pyais(sentences: list[bytes]) -> float:
    t = time.process_time()
    for msg in IterMessages(sentences):
        try:
            msg.decode()
        except Exception:  # pyais raises several types on bad payloads; the loop goes on
            continue
    return time.process_time() - t


# -- JSONL ------------------------------------------------------------------------------------------

_FLOOR_FIELDS = ("lon", "lat", "sog", "cog", "heading")


def _jsonl_lines(n: int, seed: int = 11) -> list[bytes]:
    """Seeded records shaped like ``geofence.simulate.jsonl_lines``: 1 % static lines, the rest positions."""
    rng = np.random.default_rng(seed)
    vessels = 5000
    t0 = 1_714_521_600  # 2024-05-01T00:00:00Z
    ts = t0 + np.sort(rng.integers(0, 6 * 3600, n))
    vid = rng.integers(0, vessels, n)
    lon = np.round(106.5 + 15.0 * rng.random(n), 6).tolist()
    lat = np.round(29.5 + 2.5 * rng.random(n), 6).tolist()
    sog = np.round(12.0 * rng.random(n), 1).tolist()
    cog = np.round(359.9 * rng.random(n), 1).tolist()
    hdg = rng.integers(0, 360, n).astype(float).tolist()
    iso = [s + "Z" for s in np.datetime_as_string(ts.astype("datetime64[s]"), unit="s").tolist()]
    static = rng.random(n) < 0.01
    out: list[bytes] = []
    dumps = orjson.dumps
    for k in range(n):
        sid = str(413_000_000 + int(vid[k]))
        if static[k]:
            out.append(
                dumps(
                    {
                        "type": "static",
                        "id": sid,
                        "ts": iso[k],
                        "name": f"CHANGJIANG {vid[k]}",
                        "ship_type": 70,
                        "length_m": 90.0,
                        "beam_m": 14.0,
                        "destination": "CNNKG",
                    }
                )
            )
        else:
            out.append(
                dumps(
                    {
                        "id": sid,
                        "ts": iso[k],
                        "lon": lon[k],
                        "lat": lat[k],
                        "kind": "vessel",
                        "sog": sog[k],
                        "cog": cog[k],
                        "heading": hdg[k],
                        "receiver": f"rx-{vid[k] % 40}",
                    }
                )
            )
    return out


def _jsonl_pair(lines: list[bytes]) -> tuple[float, float, int]:
    """``(decoder s, floor s, positions)``: each batch of lines read by the floor, then by the decoder.

    Interleaved batch by batch, both sides of the ratio see the machine in the same state (the
    shared machine's speed drifts by a factor of 1.5 within minutes).
    """
    dec = JsonlDecoder("bench")
    n = 0
    t_ours = t_floor = 0.0
    for i in range(0, len(lines), _BATCH):
        chunk = lines[i : i + _BATCH]
        t = time.process_time()
        jsonl_floor_columns(chunk)
        t_floor += time.process_time() - t
        t = time.process_time()
        n += len(dec.feed(chunk, i + 1).positions)
        t_ours += time.process_time() - t
    return t_ours, t_floor, n


def jsonl_floor_columns(lines: list[bytes]) -> None:
    """The bare parse floor of JSONL: ``orjson.loads`` per line into one list per schema field the decoder
    reads, then arrays. The pipeline benchmark uses the same floor."""
    ids: list[Any] = []
    ts: list[Any] = []
    kind: list[Any] = []
    rx: list[Any] = []
    nums: dict[str, list[Any]] = {k: [] for k in _FLOOR_FIELDS}
    lon, lat, sog, cog, hdg = (nums[k] for k in _FLOOR_FIELDS)
    loads = orjson.loads
    for line in lines:
        d = loads(line)
        ids.append(d.get("id"))
        ts.append(d.get("ts"))
        lon.append(d.get("lon"))
        lat.append(d.get("lat"))
        sog.append(d.get("sog"))
        cog.append(d.get("cog"))
        hdg.append(d.get("heading"))
        kind.append(d.get("kind"))
        rx.append(d.get("receiver"))
    for col in nums.values():
        np.asarray(col, dtype=np.float64)
    np.asarray(ids, dtype=object), np.asarray(ts, dtype=object), np.asarray(rx, dtype=object)


# -- CSV --------------------------------------------------------------------------------------------


def _csv_lines(copies: int) -> tuple[list[bytes], str]:
    path = _REAL / "csv" / "gfw_gpsdio-segment_tracks_2021-01-01_09.csv"
    if path.is_file():
        lines = path.read_bytes().splitlines()
        return [lines[0]] + lines[1:] * copies, f"real {path.name} x {copies}"
    rows = _jsonl_lines(70_000 * copies)
    out = [b"MMSI,BaseDateTime,LAT,LON,SOG,COG,Heading"]
    for line in rows:
        d = orjson.loads(line)
        if "lon" in d:
            out.append(f"{d['id']},{d['ts'][:-1]},{d['lat']},{d['lon']},{d['sog']},{d['cog']},{d['heading']}".encode())
    return out, "synthetic MarineCadastre CSV (real data not found)"


def _csv_ours(lines: list[bytes]) -> tuple[float, int]:
    t = time.process_time()
    dec = CsvDecoder("bench")
    n = 0
    for i in range(0, len(lines), _BATCH):
        n += len(dec.feed(lines[i : i + _BATCH], i + 1).positions)
    return time.process_time() - t, n


def _csv_floor(lines: list[bytes]) -> float:
    """The stdlib ``csv.reader`` over the decoded lines, ``float()`` of LAT/LON/SOG/COG/Heading, then arrays."""
    t = time.process_time()
    text = b"\n".join(lines).decode("utf-8").split("\n")
    reader = csv.reader(text)
    header = next(reader)
    at = [header.index(c) for c in ("LAT", "LON", "SOG", "COG", "Heading")]
    ids: list[str] = []
    ts: list[str] = []
    cols: list[list[float]] = [[] for _ in at]
    for row in reader:
        ids.append(row[0])
        ts.append(row[1])
        for col, j in zip(cols, at, strict=True):
            col.append(float(row[j]) if row[j] else float("nan"))
    for col in cols:
        np.asarray(col)
    np.asarray(ids, dtype=object)
    return time.process_time() - t


def _timed(fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)`` with the garbage collector off (as ``timeit`` does), after a full collection."""
    gc.collect()
    gc.disable()
    try:
        return fn(*args)
    finally:
        gc.enable()


def run(quick: bool) -> dict[str, Any]:
    """Build the workloads (not timed), then time each decoder and its baseline, interleaved."""
    reps = 2 if quick else 3
    nmea, nmea_workload = _nmea_lines(2 if quick else 8)
    sentences = [m.group(0) for line in nmea if (m := _SENTENCE.search(line))]
    jsonl = _jsonl_lines(150_000 if quick else 1_000_000)
    csv_lines, csv_workload = _csv_lines(1 if quick else 6)

    t_ours = t_pyais = t_json = t_floor = t_csv = t_csvf = float("inf")
    positions = json_positions = csv_positions = 0
    _nmea_ours(nmea[:5000]), _jsonl_pair(jsonl[:5000]), _csv_ours(csv_lines[:5000])  # warm caches and imports
    for _ in range(reps):
        dt, positions = _timed(_nmea_ours, nmea)
        t_ours = min(t_ours, dt)
        t_pyais = min(t_pyais, _timed(_pyais, sentences))
        dt, dt_floor, json_positions = _timed(_jsonl_pair, jsonl)
        t_json = min(t_json, dt)
        t_floor = min(t_floor, dt_floor)
        dt, csv_positions = _timed(_csv_ours, csv_lines)
        t_csv = min(t_csv, dt)
        t_csvf = min(t_csvf, _timed(_csv_floor, csv_lines))
    n_sent = len(sentences)
    ours, base = n_sent / t_ours, n_sent / t_pyais
    jr, fr = len(jsonl) / t_json, len(jsonl) / t_floor
    n_csv = len(csv_lines) - 1
    cr, cf = n_csv / t_csv, n_csv / t_csvf
    return {
        "nmea_sentences_per_s": round(ours),
        "pyais_sentences_per_s": round(base),
        "ratio": round(ours / base, 2),
        "jsonl_records_per_s": round(jr),
        "parse_floor_records_per_s": round(fr),
        "jsonl_ratio_to_floor": round(jr / fr, 3),
        "csv_records_per_s": round(cr),
        "csv_floor_records_per_s": round(cf),
        "csv_ratio_to_floor": round(cr / cf, 3),
        "nmea_lines": len(nmea),
        "nmea_sentences": n_sent,
        "nmea_positions": positions,
        "jsonl_records": len(jsonl),
        "jsonl_positions": json_positions,
        "csv_records": n_csv,
        "csv_positions": csv_positions,
        "nmea_workload": nmea_workload,
        "csv_workload": csv_workload,
        "repetitions": reps,
        "batch_lines": _BATCH,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print a summary (or one JSON object with ``--json``)."""
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks ingest", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--quick", action="store_true", help="smaller volumes, under a minute")
    args = ap.parse_args(None if argv is None else list(argv))
    result = run(args.quick)
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:28s} {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
