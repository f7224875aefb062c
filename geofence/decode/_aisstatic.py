"""AIS static reports (types 5 and 24) with pyais' field semantics, one by one or a whole batch at once.

Why: a full pyais decode of a type 5 message builds about 25 fields this project
does not use and costs several times more than reading the ten it needs.
:func:`lean_static` reads those fields from pyais' own ``bit_vector``, for any
payload, truncated ones included (a field that starts past the end is absent, as
in pyais). :func:`decode_statics` does the same for every payload of a batch that
is long enough to hold all the fields, with numpy: the 6-bit characters of all
payloads in one matrix, each field a few shifts and masks over its columns, the
text fields through pyais' 6-bit character table. The tests compare both with
pyais' full decode on every real message and on generated ones.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import deque
from collections.abc import Sequence
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt
from pyais.bit_vector import bit_vector
from pyais.constants import ShipType
from pyais.util import is_auxiliary_craft

from geofence.errors import DecodeError
from geofence.positions import StaticReport

__all__ = ["decode_statics", "lean_static", "make_static", "make_statics"]

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]

_SIXBIT: tuple[str, ...] = tuple(chr(c + 64 if c < 32 else c) for c in range(64))  # pyais' 6-bit ASCII table
_SIXBIT_PAIRS: tuple[str, ...] = tuple(_SIXBIT[i >> 6] + _SIXBIT[i & 63] for i in range(4096))
_SIXBIT_BYTES = np.frombuffer("".join(_SIXBIT).encode("ascii"), dtype=np.uint8)
#: 6-bit value of each armoring character (pyais' table; other bytes never reach here).
_DEARMOR = np.array([(c - 56 if c - 48 > 40 else c - 48) if 48 <= c <= 119 else 0 for c in range(256)], dtype=np.uint8)
#: ``int(ShipType.from_value(v) or 0)`` for every 8-bit value: reserved codes become 0, as in pyais.
_SHIP_TYPE = np.array([int(ShipType.from_value(v) or 0) for v in range(256)], dtype=np.int64)
#: Bits a payload needs for :func:`decode_statics`: type 5 reads up to bit 422 (destination), type 24
#: part A up to 160 (name), part B up to 162 (dimensions).
_TYPE5_BITS = 422
_TYPE24_BITS = 162
_TYPE24A_BITS = 160


class _Bits:
    """Fields of one AIS payload read from pyais' ``bit_vector`` integer, with pyais' semantics.

    A field wholly inside the payload is a shift and a mask (strings two 6-bit characters per
    table lookup); a field running past the end falls back to pyais' own ``get``/``get_str``,
    which return the bits that are there.
    """

    __slots__ = ("_bv", "_len", "_value")

    def __len__(self) -> int:
        return len(self._bv)

    def __init__(self, payload: bytes, fill: int) -> None:
        try:
            self._bv = bit_vector(payload, fill)
        except Exception as exc:  # pyais raises several unrelated types on garbage
            raise DecodeError("unparseable", f"payload cannot be unpacked ({type(exc).__name__}: {exc})") from None
        value = getattr(self._bv, "_value", None)  # CPython's int_bit_vector; other builds: pyais' getters only
        self._value: int = value if isinstance(value, int) else 0
        self._len = len(self._bv) if isinstance(value, int) else -1

    def raw(self, start: int, width: int) -> int:
        """pyais ``get``: the bits that are there (0 past the end)."""
        if start + width > self._len:
            return int(self._bv.get(start, width))
        return (self._value >> (self._len - start - width)) & ((1 << width) - 1)

    def num(self, start: int, width: int) -> int | None:
        """A message field as pyais decodes it: None when it starts past the end of the payload."""
        if start >= len(self._bv):
            return None
        return self.raw(start, width)

    def text(self, start: int, width: int) -> str | None:
        if start >= len(self._bv):
            return None
        if start + width > self._len:
            return str(self._bv.get_str(start, width))
        field_ = (self._value >> (self._len - start - width)) & ((1 << width) - 1)
        parts: list[str] = []
        n = width // 6
        if n % 2:
            parts.append(_SIXBIT[field_ & 63])
            field_ >>= 6
        for _ in range(n // 2):
            parts.append(_SIXBIT_PAIRS[field_ & 4095])
            field_ >>= 12
        return "".join(reversed(parts)).rstrip("@").strip()


def lean_static(payload: bytes, fill: int, ais_type: int, ts_s: float | None) -> StaticReport:
    """StaticReport of a type 5 or 24 payload, reading only the fields it needs.

    Field offsets and string handling are pyais' (``MessageType5``, ``MessageType24PartA/B``), also for
    truncated payloads (a field that starts past the end is absent); the tests compare the result with
    pyais' full decode of every real message. A full pyais decode builds ~25 fields this report does
    not use, and costs several times more.
    """
    bits = _Bits(payload, fill)
    num, text = bits.num, bits.text
    if len(bits) < 38:
        raise DecodeError("unparseable", f"AIS type {ais_type} payload of {len(bits)} bits is too short for an MMSI")
    mmsi = str(bits.raw(8, 30))
    if ais_type == 5:
        month, day, hour, minute = num(274, 4), num(278, 5), num(283, 5), num(288, 6)
        ship_type = num(232, 8)
        imo = num(40, 30)
        return StaticReport(
            subject_id=mmsi,
            ts_s=ts_s,
            name=_text(text(112, 120)),
            ship_type=None if ship_type is None else int(ShipType.from_value(ship_type) or 0),  # reserved codes -> 0
            length_m=_sum_positive(num(240, 9), num(249, 9)),
            beam_m=_sum_positive(num(258, 6), num(264, 6)),
            destination=_text(text(302, 120)),
            eta=(
                f"{month:02d}-{day:02d}T{hour:02d}:{minute:02d}"
                if month and day is not None and hour is not None and minute is not None
                else None
            ),
            imo=imo or None,
            callsign=_text(text(70, 42)),
        )
    partno = bits.raw(38, 2)
    if partno == 0:
        return StaticReport(subject_id=mmsi, ts_s=ts_s, name=_text(text(40, 120)))
    if partno != 1:
        raise DecodeError("unparseable", f"AIS type 24 payload invalid (part number {partno}, expected 0 or 1)")
    length = beam = None
    if not is_auxiliary_craft(int(mmsi)):  # auxiliary craft carry the mothership's MMSI instead of dimensions
        length = _sum_positive(num(132, 9), num(141, 9))
        beam = _sum_positive(num(150, 6), num(156, 6))
    return StaticReport(
        subject_id=mmsi, ts_s=ts_s, ship_type=num(40, 8), length_m=length, beam_m=beam, callsign=_text(text(90, 42))
    )


def _sum_positive(a: int | None, b: int | None) -> float | None:
    """Length (bow + stern) or beam (port + starboard) in metres; None when a part is missing or both are 0."""
    if a is None or b is None or a + b <= 0:
        return None
    return float(a + b)


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.replace("@", " ").strip()
    return value or None


# ------------------------------------------------------------------------------------------ batch


_STATIC_FIELDS = ("subject_id", "ts_s", "name", "ship_type", "length_m", "beam_m", "destination", "eta", "imo",
                  "callsign")
#: The slot setters of StaticReport, while it has exactly these fields and no ``__post_init__`` (nothing to skip).
_SETTERS = (
    [StaticReport.__dict__[name].__set__ for name in _STATIC_FIELDS]
    if tuple(f.name for f in dataclasses.fields(StaticReport)) == _STATIC_FIELDS
    and not hasattr(StaticReport, "__post_init__")
    else None
)


def make_statics(n: int, columns: dict[str, Sequence[Any]]) -> list[StaticReport]:
    """``n`` StaticReports from columns (absent fields None), three times cheaper than the constructor.

    The frozen dataclass's ``__init__`` sets each slot through ``object.__setattr__``; this sets the
    slots through their descriptors, one C-level ``map`` per field. Only while ``StaticReport`` has
    exactly the ten fields above and no ``__post_init__``; otherwise the constructor. The tests compare both.
    """
    if _SETTERS is None:
        rows = zip(*(columns.get(name, repeat(None, n)) for name in _STATIC_FIELDS), strict=False)
        return [StaticReport(*row) for row in itertools.islice(rows, n)]
    out: list[StaticReport] = list(map(object.__new__, repeat(StaticReport, n)))
    for name, setter in zip(_STATIC_FIELDS, _SETTERS, strict=True):
        deque(map(setter, out, columns.get(name, repeat(None, n))), maxlen=0)
    return out


def make_static(*args: Any) -> StaticReport:
    """``StaticReport(*args)`` through :func:`make_statics` (for the tests)."""
    return make_statics(1, {name: [value] for name, value in zip(_STATIC_FIELDS, args, strict=False)})[0]


def _six_matrix(payloads: Sequence[bytes], width: int) -> U8:
    """6-bit values of the first ``width`` characters of each payload, one row per payload."""
    joined = b"".join(p[:width] for p in payloads)
    armored = np.frombuffer(joined, dtype=np.uint8).reshape(len(payloads), width)
    out: U8 = _DEARMOR[armored]
    return out


class _Layout:
    """Numeric fields ``(start, width)`` and text fields ``(start, width)`` of one message layout, read for a
    whole batch with a handful of numpy operations (whatever the number of fields)."""

    def __init__(self, width: int, numbers: Sequence[tuple[int, int]], texts: Sequence[tuple[int, int]]) -> None:
        self.width = width
        c0 = np.array([start // 6 for start, _ in numbers])
        # six characters from the field's first (36 bits >= any field of up to 30 bits), clipped at the end
        self._cols = np.minimum(c0[:, None] + np.arange(6)[None, :], width - 1)
        self._shift = np.array([(c + 6) * 6 - start - w for c, (start, w) in zip(c0.tolist(), numbers, strict=True)])
        self._mask = np.array([(1 << w) - 1 for _, w in numbers])
        q = [(start + 6 * k) // 6 for start, w in texts for k in range(w // 6)]
        self._q = np.array(q)
        self._q1 = np.minimum(self._q + 1, width - 1)
        self._r = np.array([6 - start % 6 for start, w in texts for _ in range(w // 6)], dtype=np.uint16)
        bounds = np.cumsum([0] + [w // 6 for _, w in texts]).tolist()
        self._slices = [slice(a, b) for a, b in itertools.pairwise(bounds)]
        self._n_chars = bounds[-1]

    def numbers(self, six: U8) -> I64:
        """``n x fields`` matrix of the numeric fields."""
        acc = six[:, self._cols].astype(np.int64) @ _SIX_WEIGHTS  # n x fields, 36 bits each
        out: I64 = (acc >> self._shift) & self._mask
        return out

    def texts(self, six: U8) -> list[list[str | None]]:
        """The text fields, one list per field, as pyais ``get_str`` and :func:`_text` leave them."""
        pair = (six[:, self._q].astype(np.uint16) << 6) | six[:, self._q1]
        chars = np.ascontiguousarray(_SIXBIT_BYTES[(pair >> self._r) & 63])
        rows: list[bytes] = chars.view(f"S{self._n_chars}").ravel().tolist()  # no NUL in the table: nothing cut
        cache = _TEXT_CACHE
        out: list[list[str | None]] = []
        for sl in self._slices:
            raws = [row[sl] for row in rows]
            out.append([cache[raw] if raw in cache else _clean(raw) for raw in raws])
        return out


_SIX_WEIGHTS = np.left_shift(np.int64(1), 6 * np.arange(5, -1, -1, dtype=np.int64))


_TEXT_CACHE: dict[bytes, str | None] = {}
_TEXT_CACHE_MAX = 65536


def _clean(raw: bytes) -> str | None:
    """pyais ``get_str`` (``rstrip("@").strip()``), then :func:`_text` (``"@"`` -> space, strip, empty -> None).

    On bytes: the 6-bit table only yields ASCII 32..95, where space is the only whitespace.
    """
    text = raw.rstrip(b"@").strip().replace(b"@", b" ").strip()
    out = text.decode("ascii") if text else None
    if len(_TEXT_CACHE) >= _TEXT_CACHE_MAX:
        _TEXT_CACHE.clear()
    _TEXT_CACHE[raw] = out
    return out


def decode_statics(
    payloads: Sequence[bytes], fills: Sequence[int], ais_type: Sequence[int], ts_s: Sequence[float | None]
) -> list[StaticReport | DecodeError]:
    """``lean_static`` of every payload (its :class:`DecodeError` in place of a report when it raises), batched.

    Payloads long enough for every field they report (type 5: 422 bits; type 24 part A: 160,
    part B: 162) are read with numpy, all at once; the others take :func:`lean_static` one by one.
    """
    m = len(payloads)
    out: list[StaticReport | DecodeError | None] = [None] * m
    t5: list[int] = []
    t24: list[int] = []
    for k, (p, f, t) in enumerate(zip(payloads, fills, ais_type, strict=True)):
        nbits = 6 * len(p) - f
        if t == 5 and nbits >= _TYPE5_BITS:
            t5.append(k)
        elif t == 24 and nbits >= _TYPE24A_BITS and (part := (_DEARMOR[p[6]] >> 2) & 3) <= 1 and (
            part == 0 or nbits >= _TYPE24_BITS
        ):
            t24.append(k)
        else:
            try:
                out[k] = lean_static(p, f, t, ts_s[k])
            except DecodeError as exc:
                out[k] = exc
    if t5:
        for k, report in zip(t5, _type5([payloads[k] for k in t5], [ts_s[k] for k in t5]), strict=True):
            out[k] = report
    if t24:
        for k, report in zip(t24, _type24([payloads[k] for k in t24], [ts_s[k] for k in t24]), strict=True):
            out[k] = report
    return out  # type: ignore[return-value]  # every entry is set above


def _dimension(a: I64, b: I64) -> list[float | None]:
    total = a + b
    return [float(v) if v > 0 else None for v in total.tolist()]


# type 5: mmsi, imo, ship type, bow, stern, port, starboard, month, day, hour, minute; call sign, name, destination
_TYPE5 = _Layout(71, [(8, 30), (40, 30), (232, 8), (240, 9), (249, 9), (258, 6), (264, 6), (274, 4), (278, 5),
                      (283, 5), (288, 6)], [(70, 42), (112, 120), (302, 120)])
# type 24: mmsi, part number, ship type, bow, stern, port, starboard; name (part A), call sign (part B)
_TYPE24 = _Layout(27, [(8, 30), (38, 2), (40, 8), (132, 9), (141, 9), (150, 6), (156, 6)], [(40, 120), (90, 42)])


def _type5(payloads: list[bytes], ts_s: list[float | None]) -> list[StaticReport]:
    six = _six_matrix(payloads, 71)
    f = _TYPE5.numbers(six)
    callsign, name, destination = _TYPE5.texts(six)
    mmsi = f[:, 0].astype(str).tolist()
    imo = f[:, 1].tolist()
    ship_type = _SHIP_TYPE[f[:, 2]].tolist()
    length = _dimension(f[:, 3], f[:, 4])
    beam = _dimension(f[:, 5], f[:, 6])
    eta = [f"{mo:02d}-{d:02d}T{h:02d}:{mi:02d}" if mo else None for mo, d, h, mi in f[:, 7:11].tolist()]
    return make_statics(len(payloads), {
        "subject_id": mmsi, "ts_s": ts_s, "name": name, "ship_type": ship_type, "length_m": length, "beam_m": beam,
        "destination": destination, "eta": eta, "imo": [v or None for v in imo], "callsign": callsign,
    })


def _type24(payloads: list[bytes], ts_s: list[float | None]) -> list[StaticReport]:
    six = _six_matrix(payloads, 27)
    f = _TYPE24.numbers(six)
    name, callsign = _TYPE24.texts(six)
    mmsi_num = f[:, 0]
    mmsi = mmsi_num.astype(str).tolist()
    part_b = (f[:, 1] == 1).tolist()
    dims = ((mmsi_num < 980_000_000) | (mmsi_num > 989_999_999)).tolist()  # not pyais is_auxiliary_craft
    ship_type = f[:, 2].tolist()
    length = _dimension(f[:, 3], f[:, 4])
    beam = _dimension(f[:, 5], f[:, 6])
    # part A: the name; part B: type, call sign and, unless an auxiliary craft (mothership MMSI), dimensions
    return make_statics(len(payloads), {
        "subject_id": mmsi,
        "ts_s": ts_s,
        "name": [None if b else x for b, x in zip(part_b, name, strict=True)],
        "ship_type": [x if b else None for b, x in zip(part_b, ship_type, strict=True)],
        "length_m": [x if b and d else None for b, d, x in zip(part_b, dims, length, strict=True)],
        "beam_m": [x if b and d else None for b, d, x in zip(part_b, dims, beam, strict=True)],
        "callsign": [x if b else None for b, x in zip(part_b, callsign, strict=True)],
    })
