"""Decode a batch of assembled AIS payloads into columns: positions, static reports, other types, failures.

Which path a payload takes (all with pyais' semantics; the tests compare each with pyais):

* positions of types 1/2/3/18/19/27 long enough for the fields read (168-bit class A/B
  reports are the bulk of any feed): numpy, all at once (:mod:`._aisfast`);
* types 5 and 24: :func:`._aisstatic.decode_statics` (numpy for full-length payloads);
* other types pyais knows: counted by their number, not decoded;
* the rest (positions too short for their fields, unknown type numbers): pyais' own
  decoder, one message at a time; its failures become ``unparseable``.

Values are raw: the AIS "not available" sentinels are left for the caller to blank.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt
from pyais.bit_vector import bit_vector
from pyais.messages import MSG_CLASS

from geofence.decode._aisfast import (
    CLASS_A_BITS,
    CLASS_B_BITS,
    TYPE27_BITS,
    decode_armored_27,
    decode_armored_168,
)
from geofence.decode._aisstatic import decode_statics
from geofence.errors import DecodeError
from geofence.positions import StaticReport

__all__ = ["POSITION_TYPES", "STATIC_TYPES", "Decoded", "decode_payloads", "pyais_decode"]

#: AIS message types that carry a vessel position.
POSITION_TYPES = frozenset({1, 2, 3, 18, 19, 27})
#: AIS message types that carry static/voyage data.
STATIC_TYPES = frozenset({5, 24})

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]

#: 6-bit value of the first payload character = the message type (payload characters are valid armoring).
_TYPE_OF_CHAR = np.array(
    [(c - 56 if c - 48 > 40 else c - 48) if 48 <= c <= 119 else 0 for c in range(256)], dtype=np.int64
)


def _kinds(types: frozenset[int] | set[int]) -> npt.NDArray[np.bool_]:
    out = np.zeros(64, dtype=bool)
    out[sorted(types)] = True
    return out


_CLASS_A = _kinds({1, 2, 3})
_CLASS_B = _kinds({18, 19})
_STATIC_KIND = _kinds(STATIC_TYPES)
#: Message types counted as ``other`` without decoding (pyais knows them; the rules do not use them).
_OTHER_KIND = _kinds({t for t in MSG_CLASS if 0 <= t < 64} - POSITION_TYPES - STATIC_TYPES)


@dataclass(slots=True)
class Decoded:
    """Per-message columns of :func:`decode_payloads`.

    ``ais_type`` is -1 where decoding failed (``errors`` holds why); ``is_pos`` marks position
    reports (coordinates in ``lon``/``lat``, possibly "not available"), ``is_static`` static
    reports (``statics`` holds them in message order); the rest are ``other``.
    """

    ais_type: I64
    mmsi: I64
    lon: F64
    lat: F64
    sog: F64
    cog: F64
    heading: F64
    is_pos: Mask
    is_static: Mask
    statics: list[StaticReport] = field(default_factory=list)
    errors: dict[int, DecodeError] = field(default_factory=dict)


def pyais_decode(payload: bytes, fill: int) -> Any:
    """Decode one assembled payload with pyais; failures become :class:`DecodeError` ``unparseable``."""
    try:
        bv = bit_vector(payload, fill)
        ais_id = bv.get(0, 6)
    except Exception as exc:  # pyais raises several unrelated types on garbage
        raise DecodeError("unparseable", f"payload cannot be unpacked ({type(exc).__name__}: {exc})") from None
    cls = MSG_CLASS.get(ais_id)
    if cls is None:
        raise DecodeError("unparseable", f"unknown AIS message type {ais_id}")
    try:
        return cls.from_vector(bv)
    except Exception as exc:
        raise DecodeError("unparseable", f"AIS type {ais_id} payload invalid ({type(exc).__name__}: {exc})") from None


def _num(value: Any) -> float:
    return np.nan if value is None else float(value)


def _armored28(payloads: Sequence[bytes], rows: I64, lengths: I64) -> npt.NDArray[np.uint8]:
    """The first 28 characters of the selected payloads (shorter ones padded with ``"0"``), one row each."""
    exact = lengths[rows] == 28
    if exact.all():
        joined = b"".join(map(payloads.__getitem__, rows.tolist()))
        return np.frombuffer(joined, dtype=np.uint8).reshape(rows.size, 28)
    out = np.empty((rows.size, 28), dtype=np.uint8)
    same = rows[exact].tolist()
    out[exact] = np.frombuffer(b"".join(map(payloads.__getitem__, same)), dtype=np.uint8).reshape(len(same), 28)
    other = rows[~exact].tolist()
    odd = b"".join([payloads[k][:28].ljust(28, b"0") for k in other])
    out[~exact] = np.frombuffer(odd, dtype=np.uint8).reshape(len(other), 28)
    return out


def _put(out: Decoded, rows: I64, cols: dict[str, npt.NDArray[np.float64] | I64]) -> None:
    out.ais_type[rows] = cols["type"]
    out.mmsi[rows] = cols["mmsi"]
    out.lon[rows] = cols["lon"]
    out.lat[rows] = cols["lat"]
    out.sog[rows] = cols["sog"]
    out.cog[rows] = cols["cog"]
    out.heading[rows] = cols["heading"]
    out.is_pos[rows] = True


def decode_payloads(payloads: Sequence[bytes], fill: I64, ts_s: F64) -> Decoded:
    """Decode non-empty armored payloads (with their fill bits and times, NaN = none) into :class:`Decoded`."""
    m = len(payloads)
    firsts = np.frombuffer(bytes(map(itemgetter(0), payloads)), dtype=np.uint8)
    lengths = np.fromiter(map(len, payloads), dtype=np.int64, count=m)
    kind = _TYPE_OF_CHAR[firsts]
    nbits = 6 * lengths - fill
    out = Decoded(
        ais_type=kind.copy(),
        mmsi=np.zeros(m, dtype=np.int64),
        lon=np.full(m, np.nan),
        lat=np.full(m, np.nan),
        sog=np.full(m, np.nan),
        cog=np.full(m, np.nan),
        heading=np.full(m, np.nan),
        is_pos=np.zeros(m, dtype=bool),
        is_static=np.zeros(m, dtype=bool),
    )
    # positions whose fields all lie inside the payload: numpy
    class_ab = (_CLASS_A[kind] & (nbits >= CLASS_A_BITS)) | (_CLASS_B[kind] & (nbits >= CLASS_B_BITS))
    t27 = (kind == 27) & (nbits >= TYPE27_BITS)
    for rows, decode in ((np.flatnonzero(class_ab), decode_armored_168), (np.flatnonzero(t27), decode_armored_27)):
        if rows.size:
            _put(out, rows, decode(_armored28(payloads, rows, lengths)))
    # statics, other types, the rest
    static = _STATIC_KIND[kind]
    slow = ~class_ab & ~t27 & ~static & ~_OTHER_KIND[kind]  # short positions, unknown type numbers
    si = np.flatnonzero(static).tolist()
    if si:
        ts_list = ts_s.tolist()
        fills = fill.tolist()
        reports = decode_statics(
            [payloads[k] for k in si],
            [fills[k] for k in si],
            [int(kind[k]) for k in si],
            [None if ts_list[k] != ts_list[k] else ts_list[k] for k in si],
        )
        for k, rep in zip(si, reports, strict=True):
            if isinstance(rep, DecodeError):
                out.errors[k] = rep
                out.ais_type[k] = -1
            else:
                out.statics.append(rep)
                out.is_static[k] = True
    for k in np.flatnonzero(slow).tolist():
        try:
            msg = pyais_decode(payloads[k], int(fill[k]))
        except DecodeError as exc:
            out.errors[k] = exc
            out.ais_type[k] = -1
            continue
        t = int(msg.msg_type)
        out.ais_type[k] = t
        out.mmsi[k] = int(msg.mmsi)
        if t in POSITION_TYPES:
            x, y = msg.lon, msg.lat
            if x is None or y is None:
                out.errors[k] = DecodeError("unparseable", f"type {t} payload too short for a position")
                out.ais_type[k] = -1
                continue
            out.lon[k], out.lat[k] = float(x), float(y)
            out.sog[k] = _num(msg.speed)
            out.cog[k] = _num(msg.course)
            out.heading[k] = _num(getattr(msg, "heading", None))
            out.is_pos[k] = True
    return out
