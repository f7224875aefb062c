"""Vectorised helpers for the NMEA hot path: checksums of many lines, and 168-bit position payloads.

``decode_positions_168`` reproduces pyais' scaling exactly (lon/lat use the
same integer rounding as ``pyais.messages.to_lat_lon``; speed and course are
``raw / 10.0``); tests compare it with pyais on every real sentence.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["FAST_FIRST_CHARS", "decode_positions_168", "line_checksums"]

#: First payload characters of types 1, 2, 3 and 18 (6-bit values 1, 2, 3, 18).
FAST_FIRST_CHARS = frozenset(b"123B")

_HEX = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789ABCDEF"):
    _HEX[_c] = _i
for _i, _c in enumerate(b"abcdef"):
    _HEX[_c] = 10 + _i

I64 = npt.NDArray[np.int64]


def _first_at_or_after(positions: I64, starts: I64, sentinel: int) -> I64:
    k = np.searchsorted(positions, starts)
    ext = np.append(positions, sentinel)
    return ext[k]


def line_checksums(lines: Sequence[bytes]) -> tuple[list[int], list[int], list[bool], list[int], list[bool]]:
    """Locate and verify NMEA checksums of many lines at once.

    Returns, per line (positions relative to the line start, -1 when absent):
    the first ``!``; the first ``*`` after it (with two bytes after it);
    whether the XOR of the bytes between them equals the hex after ``*``; the
    first ``*`` in the line; and whether the XOR of bytes 1..that ``*`` matches
    (the checksum of a ``$`` sentence or of a leading ``\\`` tag block).
    """
    n = len(lines)
    lens = np.fromiter(map(len, lines), dtype=np.int64, count=n)
    ends = np.cumsum(lens)
    starts = ends - lens
    buf = np.frombuffer(b"".join(lines), dtype=np.uint8)
    total = int(buf.size)
    sentinel = total + 8
    prefix = np.zeros(total + 1, dtype=np.uint8)
    if total:
        np.bitwise_xor.accumulate(buf, out=prefix[1:])
    padded = np.concatenate([buf, np.zeros(3, dtype=np.uint8)])
    bang_pos = np.flatnonzero(buf == 33)
    star_pos = np.flatnonzero(buf == 42)
    bang = _first_at_or_after(bang_pos, starts, sentinel)
    has_bang = bang < ends
    star_b = _first_at_or_after(star_pos, np.where(has_bang, bang, starts), sentinel)
    valid_b = has_bang & (star_b + 3 <= ends)
    star_a = _first_at_or_after(star_pos, starts, sentinel)
    valid_a = (star_a + 3 <= ends) & (lens > 0)

    def verify(body_start: I64, star: I64, valid: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
        s = np.where(valid, star, 0)
        b0 = np.where(valid, np.minimum(body_start, s), 0)
        h1 = _HEX[padded[s + 1]]
        h2 = _HEX[padded[s + 2]]
        got = h1.astype(np.int64) * 16 + h2
        calc = prefix[s] ^ prefix[b0]
        ok: npt.NDArray[np.bool_] = valid & (h1 < 16) & (h2 < 16) & (calc == got)
        return ok

    ok_b = verify(bang + 1, star_b, valid_b)
    ok_a = verify(starts + 1, star_a, valid_a)
    rel_bang = np.where(has_bang, bang - starts, -1)
    rel_star_b = np.where(valid_b, star_b - starts, -1)
    rel_star_a = np.where(valid_a, star_a - starts, -1)
    return rel_bang.tolist(), rel_star_b.tolist(), ok_b.tolist(), rel_star_a.tolist(), ok_a.tolist()


def _field(bits: npt.NDArray[np.uint8], offset: int, width: int, signed: bool = False) -> I64:
    weights = np.left_shift(np.int64(1), np.arange(width - 1, -1, -1, dtype=np.int64))
    value: I64 = bits[:, offset : offset + width].astype(np.int64) @ weights
    if signed:
        value = np.where(value >= (1 << (width - 1)), value - (1 << width), value)
    return value


def decode_positions_168(payloads: Sequence[bytes]) -> dict[str, npt.NDArray[np.float64] | I64]:
    """Decode 28-character (168-bit, fill 0) payloads of types 1/2/3/18 into columns.

    Returns ``type``, ``mmsi`` (int64) and ``lon``, ``lat``, ``sog``, ``cog``,
    ``heading`` (float64, raw AIS values: "not available" sentinels included).
    """
    n = len(payloads)
    armored = np.frombuffer(b"".join(payloads), dtype=np.uint8).reshape(n, 28)
    six = armored - 48
    six = np.where(six > 40, six - 8, six).astype(np.uint8)
    bits = np.unpackbits((six << 2).astype(np.uint8)[:, :, None], axis=2)[:, :, :6].reshape(n, 168)
    msg_type = _field(bits, 0, 6)
    mmsi = _field(bits, 8, 30)
    b18 = msg_type == 18
    # Class A: speed 50, lon 61, lat 89, course 116, heading 128; Class B (18): 46, 57, 85, 112, 124.
    sog = np.where(b18, _field(bits, 46, 10), _field(bits, 50, 10)) / 10.0
    lon_raw = np.where(b18, _field(bits, 57, 28, True), _field(bits, 61, 28, True))
    lat_raw = np.where(b18, _field(bits, 85, 27, True), _field(bits, 89, 27, True))
    cog = np.where(b18, _field(bits, 112, 12), _field(bits, 116, 12)) / 10.0
    heading = np.where(b18, _field(bits, 124, 9), _field(bits, 128, 9)).astype(np.float64)
    lon = ((10 * lon_raw + 3) // 6) / 1e6
    lat = ((10 * lat_raw + 3) // 6) / 1e6
    return {"type": msg_type, "mmsi": mmsi, "lon": lon, "lat": lat, "sog": sog, "cog": cog, "heading": heading}
