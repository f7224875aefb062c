"""Timestamp columns to UTC epoch seconds, vectorised: ISO 8601, strptime formats, epoch numbers.

Why vectorised: at 600k records/s a per-record ``datetime`` parse (2-5 µs) alone would
eat the whole budget. Timestamps in one file almost always share one layout, so the
strings of a column are joined into one byte buffer, viewed as an ``(n, width)``
matrix of characters and converted with integer arithmetic on whole columns
(days from the civil date, then seconds). Rows that do not fit the layout seen in
the column (another length, a leap second, a typo) fall back to ``datetime`` one
by one, with a cache, so the result is the same either way; only the speed differs.

Rules (documented in docs/ingest.md):

* ISO 8601 ``YYYY-MM-DD[T ]HH:MM:SS[.fff][Z|±HH:MM|±HHMM|±HH]``; any other form
  ``datetime.fromisoformat`` accepts also works (slower).
* With ``time_format`` (strptime), the fixed-width numeric directives ``%Y %m %d %H %M %S %y``
  are vectorised; other directives (``%b``, ``%f``, ``%z`` ...) go through ``datetime.strptime``.
* Naive times are local times of ``tz`` (IANA name, default UTC).
* Numbers (or numeric strings) are epoch seconds, or milliseconds when above 1e11.
* Accepted range 1970-01-01 .. 2100-01-01 UTC; anything else is ``bad_time``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from itertools import count
from typing import cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from geofence.decode.tagblock import MAX_EPOCH_S
from geofence.errors import ConfigError

__all__ = ["BAD", "MISSING", "OK", "TimeParser"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.bool_]

#: Status codes returned per value by :meth:`TimeParser.parse`.
OK, MISSING, BAD = 0, 1, 2

_MS_THRESHOLD = 1e11
_CACHE_MAX = 65536
_BUCKET_S = 900  # local-time buckets for zone offsets: every real DST transition falls on a 15-min boundary
_WIDTHS = {"Y": 4, "m": 2, "d": 2, "H": 2, "M": 2, "S": 2, "y": 2}
_DIM = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
_ISO_DIGITS = (0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18)


def _zone(tz: str | None) -> tzinfo:
    if tz is None or tz.upper() in ("UTC", "Z", "ETC/UTC", "GMT"):
        return UTC
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"--tz {tz!r} is not an IANA time zone name; use e.g. UTC or Asia/Shanghai") from None


def _compile_layout(fmt: str) -> list[tuple[str, int]] | None:
    """Fixed-width layout of a strptime format: ``[(directive or literal char, position)]``; None if not fixed."""
    out: list[tuple[str, int]] = []
    pos = 0
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c == "%":
            if i + 1 >= len(fmt):
                return None
            d = fmt[i + 1]
            if d == "%":
                out.append(("%lit", pos))
                pos += 1
            elif d in _WIDTHS:
                out.append((d, pos))
                pos += _WIDTHS[d]
            else:
                return None
            i += 2
            continue
        if not c.isascii():
            return None
        out.append((c, pos))
        pos += 1
        i += 1
    have = {d for d, _ in out}
    if not ({"Y", "y"} & have and "m" in have and "d" in have):
        return None
    return out


def _digits(mat: U8, start: int, width: int) -> tuple[I64, Mask]:
    """Integer value of ``width`` ASCII digits at ``start`` of every row, and which rows had digits there."""
    cols = mat[:, start : start + width].astype(np.int64) - 48
    ok: Mask = np.asarray(((cols >= 0) & (cols <= 9)).all(axis=1))
    value = np.zeros(mat.shape[0], dtype=np.int64)
    for j in range(width):
        value = value * 10 + cols[:, j]
    return value, ok


def _civil_seconds(y: I64, mo: I64, d: I64, hh: I64, mi: I64, ss: I64) -> tuple[I64, Mask]:
    """Seconds since 1970 of a proleptic Gregorian date and time (as if UTC), and which rows are valid dates."""
    mo_c = np.clip(mo, 1, 12)
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    dim = _DIM[mo_c - 1] + ((mo_c == 2) & leap)
    valid: Mask = np.asarray((mo >= 1) & (mo <= 12) & (d >= 1) & (d <= dim))
    valid &= (hh < 24) & (mi < 60) & (ss < 60) & (y >= 1)
    yy = y - (mo_c <= 2)
    era = yy // 400
    yoe = yy - era * 400
    doy = (153 * ((mo_c + 9) % 12) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    secs: I64 = days * 86400 + hh * 3600 + mi * 60 + ss
    return secs, valid


#: Texts :meth:`TimeParser._texts` looks at to decide whether a batch repeats them.
_SAMPLE = 64


def _epoch_seconds(values: F64) -> tuple[F64, Mask]:
    """Epoch numbers as seconds (values above :data:`_MS_THRESHOLD` are milliseconds), and which are valid."""
    sec = np.where(values > _MS_THRESHOLD, values / 1000.0, values)
    ok: Mask = np.isfinite(sec) & (sec >= 0.0) & (sec < MAX_EPOCH_S)
    return sec, ok


class TimeParser:
    """Parse a column of timestamps to UTC epoch seconds (see the module docstring for the rules).

    Parameters
    ----------
    time_format
        strptime format of the column, e.g. ``"%d/%m/%Y %H:%M"``; ``None`` for ISO 8601 or epoch numbers.
    tz
        IANA zone of naive times (``"UTC"`` default, ``"Asia/Shanghai"`` ...).
    """

    def __init__(self, time_format: str | None = None, tz: str | None = "UTC") -> None:
        self.time_format = time_format or None
        self.tz = tz or "UTC"
        self._zone = _zone(tz)
        self._is_utc = self._zone is UTC
        self._layout = _compile_layout(time_format) if time_format else None
        self._cache: dict[object, float] = {}
        self._offsets: dict[int, int] = {}

    # ------------------------------------------------------------------ public

    def parse(self, values: Sequence[object]) -> tuple[F64, U8]:
        """Return ``(epoch seconds, status)`` per value; status is :data:`OK`, :data:`MISSING` or :data:`BAD`.

        ``None``, empty strings and NaN are missing; ``ts`` is NaN where status is not OK.
        """
        n = len(values)
        if n == 0:
            return np.full(0, np.nan), np.full(0, BAD, dtype=np.uint8)
        try:
            kinds = set(map(type, values))
        except TypeError:
            kinds = set()
        if kinds == {str}:
            return self._texts(cast("Sequence[str]", values))
        return self._parse(values, kinds)

    def _texts(self, values: Sequence[str]) -> tuple[F64, U8]:
        """Text times, each distinct text parsed once when the batch repeats them.

        A feed sorted by time with second or minute resolution repeats each text tens of times
        (tens of reports per second): the distinct texts (a ``dict``, in C) are parsed and mapped
        back, instead of parsing every row. Whether to look is decided on the first
        :data:`_SAMPLE` texts, so a batch of distinct (millisecond) times pays almost nothing.
        """
        n = len(values)
        head = values[:_SAMPLE]
        if 4 * len(set(head)) > 3 * len(head):  # under a quarter repeats: parse every row
            return self._parse(values, {str})
        first: dict[str, int] = {}  # text -> row of its first occurrence, in one pass (setdefault)
        row = np.fromiter(map(first.setdefault, values, count()), dtype=np.int64, count=n)
        u_ts, u_status = self._parse(list(first), {str})
        at = np.fromiter(first.values(), dtype=np.int64, count=len(first))
        ts = np.empty(n)
        status = np.empty(n, dtype=np.uint8)
        ts[at], status[at] = u_ts, u_status
        return ts[row], status[row]

    def _parse(self, values: Sequence[object], kinds: set[type]) -> tuple[F64, U8]:
        n = len(values)
        ts = np.full(n, np.nan)
        status = np.full(n, BAD, dtype=np.uint8)
        done = np.zeros(n, dtype=bool)
        if kinds in ({str}, {bytes}):
            done = self._text_vector(values, ts)
        elif kinds and kinds <= {int, float}:
            done = self._number_vector(values, ts)
        else:
            for kind in (str, bytes):
                idx = [k for k, v in enumerate(values) if type(v) is kind]
                if len(idx) > 1:
                    sub = np.full(len(idx), np.nan)
                    got = self._text_vector([values[k] for k in idx], sub)
                    at = np.asarray(idx, dtype=np.int64)[got]
                    ts[at] = sub[got]
                    done[at] = True
        return self._rest(values, ts, status, done)

    def parse_numbers(self, values: F64) -> tuple[F64, U8]:
        """:meth:`parse` of epoch numbers a decoder already read as float64 (NaN where missing): same results."""
        n = values.size
        ts = np.full(n, np.nan)
        status = np.full(n, BAD, dtype=np.uint8)
        return self._rest(values, ts, status, self._number_vector(values, ts))

    @staticmethod
    def numbers_all_valid(values: F64) -> bool:
        """Whether :meth:`parse_numbers` gives OK for every one of these epoch numbers (NaN: missing, not OK)."""
        return bool(_epoch_seconds(values)[1].all())

    def _rest(self, values: Sequence[object] | F64, ts: F64, status: U8, done: Mask) -> tuple[F64, U8]:
        """Statuses of the rows a vector path decided, and the others one by one."""
        status[done] = OK
        for k in np.flatnonzero(~done).tolist():
            value = self._one(values[k])
            if value is None:
                status[k] = MISSING
            elif not math.isnan(value):
                ts[k] = value
                status[k] = OK
        return ts, status

    def describe(self, value: object) -> str:
        """Why ``value`` is not a valid time, for a dead letter's ``detail`` (names the value and the fix)."""
        shown = value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value
        if isinstance(shown, str):
            shown = shown[:60]
        if self.time_format:
            return f"time {shown!r} does not match --time-format {self.time_format!r} or is outside 1970..2100"
        return (
            f"time {shown!r} is not ISO 8601 (e.g. 2024-05-01T08:00:00Z) or epoch seconds within 1970..2100; "
            "give --time-format for other layouts"
        )

    # ------------------------------------------------------------------ vector paths

    @staticmethod
    def _number_vector(values: Sequence[object] | F64, ts: F64) -> Mask:
        """Epoch numbers (int/float only: the caller checked the types, so no bools)."""
        arr, ok = _epoch_seconds(np.array(values, dtype=np.float64))
        ts[ok] = arr[ok]
        return ok

    def _text_vector(self, values: Sequence[object], ts: F64) -> Mask:
        """Strings (all ``str`` or all ``bytes``) through the fixed-layout matrix; False where not handled."""
        n = len(values)
        try:
            buf = "".join(values).encode("ascii") if isinstance(values[0], str) else b"".join(values)  # type: ignore
        except (TypeError, UnicodeEncodeError):
            return np.zeros(n, dtype=bool)
        lens = np.fromiter(map(len, values), dtype=np.int64, count=n)  # type: ignore[arg-type]
        return self._packed_vector(np.frombuffer(buf, dtype=np.uint8), lens, ts)

    def parse_packed(self, raw: U8, lens: I64) -> F64 | None:
        """Epoch seconds of ASCII texts packed end to end in ``raw`` (``lens`` bytes each), or None.

        None unless the vector path reads every one of them (a decoder that holds a batch's time
        texts as bytes then skips making a string of each); the values are those :meth:`parse` gives
        the same texts as strings, all OK. Otherwise the caller parses the strings.
        """
        ts = np.full(lens.size, np.nan)
        return ts if lens.size and self._packed_vector(raw, lens, ts).all() else None

    def _packed_vector(self, raw: U8, lens: I64, ts: F64) -> Mask:
        """:meth:`_text_vector` of texts packed end to end in ``raw``."""
        n = lens.size
        done = np.zeros(n, dtype=bool)
        lo, hi = int(lens.min()), int(lens.max())
        widths = np.array([lo]) if lo == hi else np.unique(lens)  # usually one layout: skip the sort
        for width in widths.tolist():
            if width == 0:
                continue
            if widths.size == 1:
                idx = None
                mat = raw.reshape(n, width)
            else:
                idx = np.flatnonzero(lens == width)
                starts = (np.cumsum(lens) - lens)[idx]
                mat = raw[starts[:, None] + np.arange(width)[None, :]]
            got, ok = self._matrix(mat)
            if idx is None:
                ts[ok] = got[ok]
                done |= ok
            else:
                ts[idx[ok]] = got[ok]
                done[idx[ok]] = True
        return done

    def _matrix(self, mat: U8) -> tuple[F64, Mask]:
        if self._layout is not None:
            return self._layout_matrix(mat, self._layout)
        if self.time_format is None:
            return self._iso_matrix(mat)
        return np.full(mat.shape[0], np.nan), np.zeros(mat.shape[0], dtype=bool)

    def _layout_matrix(self, mat: U8, layout: list[tuple[str, int]]) -> tuple[F64, Mask]:
        n, width = mat.shape
        total = layout[-1][1] + _WIDTHS.get(layout[-1][0], 1)
        none = np.zeros(n, dtype=bool)
        if width != total:
            return np.full(n, np.nan), none
        ok = np.ones(n, dtype=bool)
        parts: dict[str, I64] = {}
        for d, pos in layout:
            if d in _WIDTHS:
                value, good = _digits(mat, pos, _WIDTHS[d])
                parts[d] = value
                ok &= good
            else:
                ok &= mat[:, pos] == ord("%" if d == "%lit" else d)
        zero = np.zeros(n, dtype=np.int64)
        if "Y" in parts:
            year = parts["Y"]
        else:
            yy = parts["y"]
            year = np.where(yy < 69, 2000 + yy, 1900 + yy)
        secs, valid = _civil_seconds(year, parts["m"], parts["d"], parts.get("H", zero), parts.get("M", zero),
                                     parts.get("S", zero))
        ok &= valid
        out = self._naive_to_utc(secs.astype(np.float64), ok)
        return self._in_range(out, ok)

    def _iso_matrix(self, mat: U8) -> tuple[F64, Mask]:
        n, width = mat.shape
        nan = np.full(n, np.nan)
        if width < 19:
            return nan, np.zeros(n, dtype=bool)
        ok = (mat[:, 4] == 45) & (mat[:, 7] == 45) & (mat[:, 13] == 58) & (mat[:, 16] == 58)
        ok &= (mat[:, 10] == 84) | (mat[:, 10] == 32) | (mat[:, 10] == 116)  # 'T', ' ', 't'
        dig = mat[:, list(_ISO_DIGITS)].astype(np.int64) - 48
        ok &= ((dig >= 0) & (dig <= 9)).all(axis=1)
        if not ok.any():
            return nan, ok
        y = dig[:, 0] * 1000 + dig[:, 1] * 100 + dig[:, 2] * 10 + dig[:, 3]
        mo = dig[:, 4] * 10 + dig[:, 5]
        d = dig[:, 6] * 10 + dig[:, 7]
        hh = dig[:, 8] * 10 + dig[:, 9]
        mi = dig[:, 10] * 10 + dig[:, 11]
        ss = dig[:, 12] * 10 + dig[:, 13]
        secs, valid = _civil_seconds(y, mo, d, hh, mi, ss)
        ok &= valid
        # The tail (fraction and zone) must have one shape for the vector path; take it from the first good row.
        r0 = int(np.argmax(ok))
        shape = _tail_shape(bytes(mat[r0, 19:].astype(np.uint8).tolist()))
        if shape is None:
            return nan, np.zeros(n, dtype=bool)
        frac_digits, zone_kind = shape
        pos = 19
        frac = np.zeros(n)
        if frac_digits:
            ok &= (mat[:, 19] == 46) | (mat[:, 19] == 44)  # '.' or ','
            value, good = _digits(mat, 20, frac_digits)
            ok &= good
            frac = value / float(10**frac_digits)
            pos = 20 + frac_digits
        out = secs.astype(np.float64) + frac
        if zone_kind == "naive":
            out = self._naive_to_utc(out, ok)
        elif zone_kind == "Z":
            ok &= (mat[:, pos] == 90) | (mat[:, pos] == 122)
        else:
            sign_c = mat[:, pos]
            ok &= (sign_c == 43) | (sign_c == 45)
            oh, g1 = _digits(mat, pos + 1, 2)
            om = np.zeros(n, dtype=np.int64)
            g2 = np.ones(n, dtype=bool)
            if zone_kind == "+hh:mm":
                ok &= mat[:, pos + 3] == 58
                om, g2 = _digits(mat, pos + 4, 2)
            elif zone_kind == "+hhmm":
                om, g2 = _digits(mat, pos + 3, 2)
            ok &= g1 & g2 & (oh < 24) & (om < 60)
            sign = np.where(sign_c == 45, -1, 1)
            out = out - sign * (oh * 3600 + om * 60)
        return self._in_range(out, ok)

    @staticmethod
    def _in_range(out: F64, ok: Mask) -> tuple[F64, Mask]:
        ok = ok & (out >= 0.0) & (out < MAX_EPOCH_S)
        return out, ok

    def _naive_to_utc(self, local_s: F64, ok: Mask) -> F64:
        """Local wall-clock seconds (as if UTC) of ``tz`` to UTC, with one zone lookup per 15-min bucket."""
        if self._is_utc:
            return local_s
        buckets = np.floor(np.where(ok, local_s, 0.0) / _BUCKET_S).astype(np.int64)
        uniq, inverse = np.unique(buckets, return_inverse=True)
        offs = np.array([self._offset(int(b)) for b in uniq.tolist()], dtype=np.float64)
        out: F64 = local_s - offs[inverse]
        return out

    def _offset(self, bucket: int) -> int:
        off = self._offsets.get(bucket)
        if off is None:
            try:
                local = datetime.fromtimestamp(bucket * _BUCKET_S, UTC).replace(tzinfo=None)
                delta = local.replace(tzinfo=self._zone).utcoffset()
                off = 0 if delta is None else int(delta.total_seconds())
            except (OverflowError, ValueError, OSError):
                off = 0
            if len(self._offsets) >= _CACHE_MAX:
                self._offsets.clear()
            self._offsets[bucket] = off
        return off

    # ------------------------------------------------------------------ scalar path

    def _one(self, value: object) -> float | None:
        """Epoch seconds of one value; None when missing; NaN when bad."""
        if value is None:
            return None
        if isinstance(value, bool):
            return math.nan
        if isinstance(value, int | float):
            if isinstance(value, float) and math.isnan(value):
                return None
            return self._epoch(float(value))
        if not isinstance(value, str | bytes):
            return math.nan
        cached = self._cache.get(value)
        if cached is not None:
            return cached
        result = self._text(value)
        if result is None:
            return None
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[value] = result
        return result

    def _text(self, value: str | bytes) -> float | None:
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                return math.nan
        text = value.strip()
        if not text:
            return None
        try:
            if self.time_format:
                dt = datetime.strptime(text, self.time_format)
            else:
                if text[0] in "0123456789+-." and text.replace(".", "", 1).lstrip("+-").isdigit():
                    return self._epoch(float(text))
                dt = datetime.fromisoformat(text)
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=self._zone)
            return self._epoch(dt.timestamp(), ms=False)
        except (ValueError, OverflowError, OSError):
            return math.nan

    @staticmethod
    def _epoch(value: float, ms: bool = True) -> float:
        if ms and value > _MS_THRESHOLD:
            value /= 1000.0
        if not math.isfinite(value) or value < 0.0 or value >= MAX_EPOCH_S:
            return math.nan
        return value


def _tail_shape(tail: bytes) -> tuple[int, str] | None:
    """``(fraction digits, zone kind)`` of what follows ``YYYY-MM-DDTHH:MM:SS``, or None if unsupported."""
    frac = 0
    rest = tail
    if rest[:1] in (b".", b","):
        k = 1
        while k < len(rest) and 48 <= rest[k] <= 57:
            k += 1
        frac = k - 1
        if frac == 0 or frac > 9:
            return None
        rest = rest[k:]
    if rest == b"":
        return frac, "naive"
    if rest in (b"Z", b"z"):
        return frac, "Z"
    if rest[:1] in (b"+", b"-"):
        body = rest[1:]
        if len(body) == 5 and body[2:3] == b":" and body[:2].isdigit() and body[3:].isdigit():
            return frac, "+hh:mm"
        if len(body) == 4 and body.isdigit():
            return frac, "+hhmm"
        if len(body) == 2 and body.isdigit():
            return frac, "+hh"
    return None
