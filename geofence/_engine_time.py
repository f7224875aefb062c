"""Fast, exact formatting for alert lines: ISO times and 6-decimal coordinates, one or many at a time.

:func:`geofence.timefmt.iso_utc` goes through ``datetime.strftime`` (about 2 µs); an
alert line needs several ISO strings (``ts``, ``started``, the evidence track), so
the engine memoises it (:func:`iso`) and formats whole arrays with numpy
(:func:`isos`). :func:`round6` is Python's ``round(x, 6)`` for coordinate arrays.
Both give exactly the strings and floats of the scalar functions; the tests check
that on random and adversarial values.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from geofence.timefmt import iso_utc

__all__ = ["iso", "iso_ms", "isos", "isos_ms", "ms_of", "ms_of1", "remember", "rnd", "round6"]

F64 = npt.NDArray[np.float64]

_CACHE: dict[float, str] = {}
_MS_CACHE: dict[int, str] = {}
_DAY_CACHE: dict[int, str] = {}
_CACHE_MAX = 1 << 17
#: numpy formats years 1000..9999 like strftime; outside, fall back to iso_utc.
_LO_S = -30_610_224_000.0
_HI_S = 253_402_300_799.0


def remember(ts_s: list[float], strings: list[str]) -> None:
    """Seed the :func:`iso` memo with strings already formatted in bulk (for the alert lines' ``ts``)."""
    if len(_CACHE) + len(ts_s) > _CACHE_MAX:
        _CACHE.clear()
    _CACHE.update(zip(ts_s, strings, strict=True))


def iso(ts_s: float) -> str:
    """:func:`geofence.timefmt.iso_utc`, memoised (a bounded cache; a pure function of ``ts_s``)."""
    out = _CACHE.get(ts_s)
    if out is None:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        out = _CACHE[ts_s] = iso_ms(ms_of1(ts_s)) if _LO_S <= ts_s <= _HI_S else iso_utc(ts_s)
    return out


#: two ASCII digits "00".."99" as little-endian 16-bit values
_P = np.array([(48 + k // 10) | ((48 + k % 10) << 8) for k in range(100)], dtype=np.uint32)


def ms_of(ts_s: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Epoch seconds as the integer milliseconds :func:`geofence.timefmt.iso_utc` prints (same rounding)."""
    ts = np.asarray(ts_s, dtype=np.float64)
    if not np.isfinite(ts).all():
        iso_utc(float(ts[~np.isfinite(ts)].reshape(-1)[0]))  # raises DecodeError, as formatting it would
    whole = np.floor(ts)
    ms = np.rint((ts - whole) * 1000.0)
    out: npt.NDArray[np.int64] = whole.astype(np.int64) * 1000 + ms.astype(np.int64)
    return out


def ms_of1(ts_s: float) -> int:
    """:func:`ms_of` of one time (raises like ``iso_utc`` when it is not finite)."""
    if not math.isfinite(ts_s):
        iso_utc(ts_s)
    whole = math.floor(ts_s)
    return int(whole) * 1000 + round((ts_s - whole) * 1000)


def iso_ms(ms: int) -> str:
    """:func:`geofence.timefmt.iso_utc` of a time given in integer milliseconds (memoised).

    The date part comes from ``datetime`` once per day; the time of day is plain arithmetic.
    """
    out = _MS_CACHE.get(ms)
    if out is None:
        if len(_MS_CACHE) >= _CACHE_MAX:
            _MS_CACHE.clear()
        whole, frac = divmod(ms, 1000)
        day, sod = divmod(whole, 86400)
        date = _DAY_CACHE.get(day)
        if date is None:
            date = _DAY_CACHE[day] = datetime.fromtimestamp(day * 86400, tz=UTC).strftime("%Y-%m-%dT")
        hh, rem = divmod(sod, 3600)
        mi, ss = divmod(rem, 60)
        out = f"{date}{hh:02d}:{mi:02d}:{ss:02d}Z" if frac == 0 else f"{date}{hh:02d}:{mi:02d}:{ss:02d}.{frac:03d}Z"
        _MS_CACHE[ms] = out
    return out


def isos(ts_s: npt.ArrayLike) -> list[str]:
    """:func:`geofence.timefmt.iso_utc` of every element, vectorised."""
    ts = np.asarray(ts_s, dtype=np.float64).reshape(-1)
    if ts.size < 8 or not (np.isfinite(ts).all() and ts.min() >= _LO_S and ts.max() <= _HI_S):
        return [iso(float(x)) for x in ts.tolist()]
    return isos_ms(ms_of(ts))


def isos_ms(ms_all: npt.ArrayLike) -> list[str]:
    """:func:`iso_ms` of every element, vectorised.

    The calendar fields come from integer arithmetic (civil date from days since
    the epoch, proleptic Gregorian like ``datetime``); each row of 32 bytes is
    assembled as eight 32-bit words; the bytes of all rows are decoded once and split.
    """
    m_all = np.asarray(ms_all, dtype=np.int64).reshape(-1)
    n = m_all.size
    if n < 8 or not (m_all.min() >= _LO_S * 1000 and m_all.max() <= _HI_S * 1000):
        return [iso_ms(int(x)) for x in m_all.tolist()]
    w, ms = np.divmod(m_all, 1000)
    days, sod = np.divmod(w, 86400)
    z = days + 719468
    era = np.floor_divide(z, 146097)
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    hh, rem = np.divmod(sod, 3600)
    mi, ss = np.divmod(rem, 60)
    has_ms = ms != 0
    p = _P
    words = np.empty((n, 8), dtype=np.uint32)
    words[:, 0] = p[year // 100] | (p[year % 100] << 16)  # YYYY
    words[:, 1] = 45 | (p[month] << 8) | (45 << 24)  # -MM-
    ph = p[hh]
    words[:, 2] = p[day] | (84 << 16) | ((ph & 0xFF) << 24)  # DDTH
    words[:, 3] = (ph >> 8) | (58 << 8) | (p[mi] << 16)  # H:MM
    words[:, 4] = 58 | (p[ss] << 8) | (np.where(has_ms, 46, 90).astype(np.uint32) << 24)  # :SS. or :SSZ
    words[:, 5] = np.where(has_ms, p[ms // 10] | ((ms % 10 + 48).astype(np.uint32) << 16) | (90 << 24), 0)  # mmmZ
    words[:, 6] = 10  # row separator (byte 24); bytes 25..31 are dropped below
    words[:, 7] = 0
    mat = words.view(np.uint8).reshape(n, 32)
    if has_ms.all():
        raw = mat[:, :25].tobytes()
    else:  # whole seconds: drop the millisecond bytes 20..23 of those rows ("...:SSZ")
        keep = np.ones((n, 32), dtype=bool)
        keep[:, 25:] = False
        keep[~has_ms, 20:24] = False
        raw = mat[keep].tobytes()
    out = raw.decode("ascii").split("\n")
    out.pop()
    return out


_SCALE = (1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6)


def rnd(x: float, ndigits: int) -> float:
    """Python's ``round(x, ndigits)`` for 0 <= ndigits <= 6, without its decimal conversion (ten times faster).

    ``round`` converts through a correctly rounded decimal string; the float nearest to
    ``k / 10**ndigits`` with ``k`` the half-even rounding of ``x * 10**ndigits`` is the same
    number, and the product's own error (below 1e-7 while it is under 2**30) can only
    matter within 1e-6 of a tie, where Python's ``round`` decides.
    """
    s = _SCALE[ndigits]
    y = x * s
    if -1073741824.0 < y < 1073741824.0:
        f = math.floor(y)
        d = y - f
        if d < 0.499999 or d > 0.500001:
            k = f + 1 if d > 0.5 else f
            return k / s if k else math.copysign(0.0, x)
    return round(x, ndigits)


def round6(x: npt.ArrayLike) -> list[float]:
    """Python's ``round(v, 6)`` of every element (exact: near-ties are rounded by Python itself).

    ``rint(v * 1e6) / 1e6`` equals ``round(v, 6)`` unless ``v * 1e6`` lies within
    its rounding error of a half-integer (the product's error is below 1e-7 for
    |v| <= 1e9 / 1e6); those elements are rounded in Python.
    """
    v = np.asarray(x, dtype=np.float64).reshape(-1)
    y = v * 1e6
    out = np.rint(y) / 1e6
    with np.errstate(invalid="ignore"):
        frac = y - np.floor(y)
        risky = ~(np.abs(frac - 0.5) > 1e-6) | ~(np.abs(v) < 1e9)
    if risky.any():
        idx = np.flatnonzero(risky)
        out[idx] = [round(t, 6) for t in v[idx].tolist()]
    res: list[float] = out.tolist()
    return res
