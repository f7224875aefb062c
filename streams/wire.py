"""The bytes on every geofence Kafka topic (format version 1; docs/streams.md describes it).

``geofence.positions`` records are *packed*: one record carries many positions
of one partition as numpy column buffers, so a worker pays the per-message cost
of Kafka and faust once per few thousand positions instead of once per position.

Record value layout (all integers little-endian)::

    0   4 bytes  magic  b"GFW1"
    4   u8       record type: 1 positions, 2 static reports, 3 end of stream
    5   3 bytes  reserved, zero
    8   u32      header length H
    12  H bytes  header: UTF-8 JSON object
    12+H         body

* positions: header ``{"n": N, "cols": [[name, dtype, offset, nbytes], ...],
  "dict": {name: [values...]}}``. Numeric columns are raw numpy buffers in the
  body at ``offset`` (relative to the body start). String columns are
  dictionary-encoded: the distinct values go in ``dict[name]`` and the body holds
  a ``<u4`` index column under the same name.
* static reports: header ``{"n": N}``, body a JSON array of StaticReport objects.
* end of stream: header ``{"final_ts_s": float | null, "partition": P,
  "publisher": str}``, empty body.

The other topics carry JSON: an alert line per record (``Alert.to_json()``), a
dead-letter object per record (``DeadLetter.to_dict()``), and on the zones topic
a whole zone set (:func:`encode_zoneset`) that decodes to the *same* version.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import orjson
import shapely

from geofence.deadletter import DeadLetter
from geofence.fence import Fence, FenceParams, ZoneKind, ZoneSet
from geofence.positions import PositionBatch, StaticReport

__all__ = [
    "END_OF_STREAM",
    "MAGIC",
    "POSITIONS",
    "STATICS",
    "ZONESET_KEY",
    "EndOfStream",
    "WireError",
    "decode",
    "decode_zoneset",
    "encode_deadletter",
    "encode_end_of_stream",
    "encode_positions",
    "encode_statics",
    "encode_zoneset",
    "record_type",
]

MAGIC = b"GFW1"
POSITIONS = 1
STATICS = 2
END_OF_STREAM = 3
_HEAD = struct.Struct("<4sB3xI")
_STRING_COLUMNS = ("subject_id", "carrier_id", "event_zone", "receiver", "source")
_NUMERIC = {
    "ts_s": "<f8",
    "lon_deg": "<f8",
    "lat_deg": "<f8",
    "sog_kn": "<f8",
    "cog_deg": "<f8",
    "heading_deg": "<f8",
    "kind": "|u1",
    "event": "|u1",
    "line": "<i8",
}
#: Key of the single record on the compacted zones topic (compaction keeps the latest).
ZONESET_KEY = b"zoneset"
_ZONESET_FORMAT = "geofence.zoneset"


class WireError(ValueError):
    """A record is not a valid geofence wire record (wrong magic, version, or truncated)."""


@dataclass(frozen=True, slots=True)
class EndOfStream:
    """Marker a publisher sends on every partition after its last batch.

    ``final_ts_s`` is the largest event time the publisher sent to any partition.
    """

    partition: int
    final_ts_s: float | None
    publisher: str


def _pack(kind: int, header: dict[str, Any], body: bytes | list[bytes]) -> bytes:
    head = orjson.dumps(header)
    parts = [_HEAD.pack(MAGIC, kind, len(head)), head]
    if isinstance(body, bytes):
        parts.append(body)
    else:
        parts.extend(body)
    return b"".join(parts)


def _dict_encode(col: np.ndarray) -> tuple[list[str], np.ndarray]:
    n = len(col)
    if n == 0:
        return [], np.zeros(0, dtype="<u4")
    first = col[0]
    if bool((col == first).all()):
        return [str(first)], np.zeros(n, dtype="<u4")
    values, inverse = np.unique(col.astype(str), return_inverse=True)
    return [str(v) for v in values], inverse.astype("<u4")


def encode_positions(batch: PositionBatch) -> bytes:
    """Pack a position batch into one record value."""
    cols: list[list[Any]] = []
    body: list[bytes] = []
    offset = 0
    dicts: dict[str, list[str]] = {}

    def add(name: str, arr: np.ndarray) -> None:
        nonlocal offset
        buf = np.ascontiguousarray(arr).tobytes()
        cols.append([name, arr.dtype.str, offset, len(buf)])
        body.append(buf)
        offset += len(buf)

    for name, dtype in _NUMERIC.items():
        add(name, np.asarray(getattr(batch, name)).astype(dtype, copy=False))
    for name in _STRING_COLUMNS:
        values, index = _dict_encode(getattr(batch, name))
        dicts[name] = values
        add(name, index)
    return _pack(POSITIONS, {"n": len(batch), "cols": cols, "dict": dicts}, body)


def encode_statics(reports: Sequence[StaticReport]) -> bytes:
    """Pack static reports into one record value."""
    return _pack(STATICS, {"n": len(reports)}, orjson.dumps([asdict(r) for r in reports]))


def encode_end_of_stream(marker: EndOfStream) -> bytes:
    """Pack an end-of-stream marker."""
    return _pack(END_OF_STREAM, asdict(marker), b"")


def record_type(value: bytes) -> int:
    """Return the record type of a wire value, raising :class:`WireError` when it is not one."""
    if len(value) < _HEAD.size:
        raise WireError(f"record of {len(value)} bytes is shorter than the {_HEAD.size}-byte wire header")
    magic, kind, _ = _HEAD.unpack_from(value)
    if magic != MAGIC:
        raise WireError(f"magic {magic!r} is not {MAGIC!r}: not a geofence v1 record (publish with `geofence publish`)")
    return int(kind)


def decode(value: bytes) -> PositionBatch | list[StaticReport] | EndOfStream:
    """Decode one record value into a batch, a list of static reports or an end-of-stream marker."""
    kind = record_type(value)
    (hlen,) = struct.unpack_from("<I", value, 8)
    start = _HEAD.size + hlen
    if len(value) < start:
        raise WireError(f"header of {hlen} bytes runs past the {len(value)}-byte record")
    header = orjson.loads(value[_HEAD.size : start])
    body = memoryview(value)[start:]
    if kind == POSITIONS:
        return _decode_positions(header, body)
    if kind == STATICS:
        names = {f.name for f in fields(StaticReport)}
        return [StaticReport(**{k: v for k, v in d.items() if k in names}) for d in orjson.loads(bytes(body))]
    if kind == END_OF_STREAM:
        return EndOfStream(int(header["partition"]), header["final_ts_s"], str(header["publisher"]))
    raise WireError(f"unknown record type {kind}; this worker understands 1 (positions), 2 (statics), 3 (end)")


def _decode_positions(header: dict[str, Any], body: memoryview) -> PositionBatch:
    n = int(header["n"])
    arrays: dict[str, np.ndarray] = {}
    for name, dtype, offset, nbytes in header["cols"]:
        if offset + nbytes > len(body):
            raise WireError(f"column {name!r} runs past the end of the record body")
        arr = np.frombuffer(body[offset : offset + nbytes], dtype=dtype)
        if len(arr) != n:
            raise WireError(f"column {name!r} has {len(arr)} rows, header says {n}")
        arrays[name] = arr
    out: dict[str, np.ndarray] = {}
    for name, dtype in _NUMERIC.items():
        out[name] = arrays[name].astype(np.dtype(dtype).newbyteorder("="), copy=True)
    for name in _STRING_COLUMNS:
        values = np.empty(len(header["dict"][name]), dtype=object)
        values[:] = header["dict"][name]
        out[name] = values[arrays[name]] if n else np.empty(0, dtype=object)
    return PositionBatch(**out)


def encode_deadletter(dead: DeadLetter) -> bytes:
    """One dead letter per record: its JSON object."""
    return orjson.dumps(dead.to_dict())


def encode_zoneset(zones: ZoneSet) -> bytes:
    """Serialise a whole zone set for the compacted zones topic (exact: same version after decoding)."""
    return orjson.dumps(
        {
            "format": _ZONESET_FORMAT,
            "v": 1,
            "version": zones.version,
            "fences": [f.canonical() for f in zones.fences],
        }
    )


def decode_zoneset(value: bytes) -> ZoneSet:
    """Rebuild a zone set from :func:`encode_zoneset` bytes, checking its content version."""
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise WireError(f"zones record is not JSON ({exc}); publish it with `geofence zones publish`") from None
    if not isinstance(obj, dict) or obj.get("format") != _ZONESET_FORMAT or obj.get("v") != 1:
        raise WireError("zones record lacks format 'geofence.zoneset' v1; publish it with `geofence zones publish`")
    fences = [
        Fence(
            id=f["id"],
            name=f["name"],
            kind=ZoneKind.parse(f["kind"], f["id"]),
            geometry=shapely.from_wkb(bytes.fromhex(f["geometry"])),
            params=FenceParams(**f["params"]),
            metadata=f["metadata"],
        )
        for f in obj["fences"]
    ]
    zones = ZoneSet.of(fences)
    if zones.version != obj["version"]:
        raise WireError(f"zone set decodes to version {zones.version}, record says {obj['version']}")
    return zones
