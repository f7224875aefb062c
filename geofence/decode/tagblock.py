"""Envelope helpers for NMEA lines: tag blocks, Gatehouse ``$PGHP`` time lines, receiver timestamps.

These parse the *wrapping* of AIS sentences, never the AIS payload (pyais does
that). All functions are pure and return ``None`` rather than raising when a
piece is absent; a piece that is present but broken raises :class:`DecodeError`.
"""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass
from functools import lru_cache, reduce
from operator import xor

from geofence.errors import DecodeError

__all__ = [
    "BAD_TAG_CHECKSUM",
    "MAX_EPOCH_S",
    "TagBlock",
    "nmea_checksum",
    "parse_epoch",
    "parse_pghp",
    "parse_prefix",
    "parse_tag_block",
    "trailing_epoch",
]

#: Latest accepted receiver time (2100-01-01T00:00:00Z); later values are treated as garbage.
MAX_EPOCH_S = 4102444800.0
#: ``c:`` values above this are milliseconds (1e11 s is the year 5138).
_MS_THRESHOLD = 1e11
#: A tag block whose own ``*hh`` does not match: its fields are ignored, the sentence is still decoded.
BAD_TAG_CHECKSUM = DecodeError("checksum", "tag block checksum does not match its body")


def nmea_checksum(body: bytes) -> int:
    """XOR of all bytes of ``body`` (the text between ``!``/``$``/``\\`` and ``*``)."""
    return reduce(xor, body, 0)


def parse_epoch(text: bytes) -> float:
    """Parse a unix time in seconds (or milliseconds when > 1e11) from ASCII digits.

    Raises
    ------
    DecodeError
        ``bad_time`` when the text is not a finite number within 1970..2100.
    """
    try:
        value = float(text)
    except ValueError:
        raise DecodeError("bad_time", f"receiver time {text[:40]!r} is not a number") from None
    if value > _MS_THRESHOLD:
        value /= 1000.0
    if not math.isfinite(value) or value < 0.0 or value >= MAX_EPOCH_S:
        raise DecodeError("bad_time", f"receiver time {text[:40]!r} is outside 1970..2100")
    return value


@dataclass(frozen=True, slots=True)
class TagBlock:
    """The fields of an NMEA 4.0 tag block that matter here."""

    time_s: float | None
    station: str
    group: tuple[int, int, str] | None  # (sentence number, total, group id)


def parse_tag_block(body: bytes) -> TagBlock:
    """Parse a tag block body ``s:station,c:unix,g:1-2-77`` (without the ``\\`` and ``*hh``).

    Unknown keys are ignored. ``c:`` may be seconds or milliseconds.
    """
    time_s: float | None = None
    station = ""
    group: tuple[int, int, str] | None = None
    for part in body.split(b","):
        key, sep, value = part.partition(b":")
        if not sep:
            continue
        if key == b"c":
            time_s = parse_epoch(value)
        elif key == b"s":
            station = value.decode("ascii", errors="backslashreplace")
        elif key == b"g":
            bits = value.split(b"-")
            if len(bits) == 3 and bits[0].isdigit() and bits[1].isdigit():
                group = (int(bits[0]), int(bits[1]), bits[2].decode("ascii", errors="backslashreplace"))
    return TagBlock(time_s=time_s, station=station, group=group)


@lru_cache(maxsize=4096)
def _day_start_s(y: int, mo: int, d: int) -> int:
    """UTC epoch seconds of midnight of a date (cached: a feed's $PGHP lines share a handful of days)."""
    return calendar.timegm((y, mo, d, 0, 0, 0, 0, 0, 0))


def parse_pghp(fields: list[bytes]) -> float:
    """UTC epoch seconds of a Gatehouse ``$PGHP,1,yyyy,mm,dd,hh,mm,ss,ms,...`` line (fields split on ``,``).

    Raises
    ------
    DecodeError
        ``bad_time`` when the date fields are missing or impossible.
    """
    try:
        y, mo, d, h, mi, s, ms = (int(f) for f in fields[2:9])
        if not (1 <= mo <= 12 and 1 <= d <= 31 and 0 <= h < 24 and 0 <= mi < 60 and 0 <= s <= 60 and 0 <= ms < 1000):
            raise ValueError("field out of range")
        ts = _day_start_s(y, mo, d) + h * 3600 + mi * 60 + s + ms / 1000.0
    except (ValueError, OverflowError) as exc:
        raise DecodeError("bad_time", f"$PGHP date {b','.join(fields[2:9])!r} is invalid ({exc})") from None
    if not 0.0 <= ts < MAX_EPOCH_S:
        raise DecodeError("bad_time", f"$PGHP time {ts} is outside 1970..2100")
    return float(ts)


def trailing_epoch(tail: bytes) -> float | None:
    """Receiver time appended after the checksum (``*hh,1241544035`` or ``*hh,r<station>,<unix>``).

    The first comma-separated field that is a plausible unix time (all digits,
    optional fraction) wins; other fields (``d-109``, ``S2105``, garbage) are ignored.
    """
    for field in tail.split(b","):
        head, _, frac = field.partition(b".")
        if len(head) >= 9 and head.isdigit() and (not frac or frac.isdigit()):
            try:
                return parse_epoch(field)
            except DecodeError:
                continue
    return None


def parse_prefix(prefix: bytes, star_a: int, ok_a: bool, bang: int) -> tuple[float | None, str, DecodeError | None]:
    """Time and station from what precedes a sentence's ``!``: a tag block and/or a leading unix time.

    ``star_a``/``ok_a``: position of the line's first ``*`` and whether its checksum matched;
    ``bang``: position of the ``!``. Returns ``(time, station, error)``; the error is
    :data:`BAD_TAG_CHECKSUM` when only the tag block's own checksum fails (the sentence is still good).
    """
    text = prefix.strip()
    ts: float | None = None
    station = ""
    try:
        if text[:1] == b"\\":
            end = text.find(b"\\", 1)
            if end < 0:
                raise DecodeError("unparseable", "tag block without closing '\\'")
            body = text[1:end]
            star = body.rfind(b"*")
            if star >= 0:
                if 0 <= star_a < bang and not ok_a:
                    return None, "", BAD_TAG_CHECKSUM
                body = body[:star]
            tb = parse_tag_block(body)
            ts, station = tb.time_s, tb.station
            rest = text[end + 1 :].strip()
            if rest:
                raise DecodeError("unparseable", f"unexpected {rest[:20]!r} between tag block and sentence")
        elif text[:1].isdigit():
            ts = parse_epoch(text.split()[0])
        elif text:
            raise DecodeError("unparseable", f"unexpected {text[:20]!r} before the sentence")
    except DecodeError as exc:
        return None, "", exc
    return ts, station, None
