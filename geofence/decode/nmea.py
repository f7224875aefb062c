"""AIS NMEA 0183 decoder: envelope, tag blocks, time lines, multipart reassembly, dedupe, accounting.

pyais decodes AIS payloads; this module handles everything around them: the
``!xxVDM``/``!xxVDO`` envelope of any talker, checksums, NMEA 4.0 tag blocks,
Gatehouse ``$PGHP`` time lines, leading/trailing receiver unix times,
multipart reassembly, dedupe of aggregated feeds, and accounting of every line.
Class A/B position payloads of exactly 168 bits (types 1/2/3/18, the bulk of any
feed) are unpacked with numpy in one vectorised step (:mod:`._aisfast`); the
tests check it against pyais field by field on every real file.

Pure: no I/O and no clock. Time arrives in the data (or as ``arrival_ts_s``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from pyais.bit_vector import bit_vector
from pyais.messages import MSG_CLASS

from geofence.deadletter import DeadLetter, raw_text
from geofence.decode._aisfast import FAST_FIRST_CHARS, decode_positions_168, line_checksums
from geofence.decode.accounting import Counts, DecodeResult
from geofence.decode.tagblock import nmea_checksum, parse_epoch, parse_pghp, parse_tag_block, trailing_epoch
from geofence.errors import DecodeError
from geofence.positions import PositionBatch, StaticReport

__all__ = ["POSITION_TYPES", "STATIC_TYPES", "NmeaDecoder"]

#: AIS message types that carry a vessel position.
POSITION_TYPES = frozenset({1, 2, 3, 18, 19, 27})
#: AIS message types that carry static/voyage data.
STATIC_TYPES = frozenset({5, 24})

_ARMOR = bytes(range(48, 88)) + bytes(range(96, 120))  # valid 6-bit armoring characters
_SENTENCE_KINDS = (b"VDM", b"VDO")
_CACHE_MAX = 4096
#: A tag block whose own ``*hh`` does not match: its fields are ignored, the sentence is still decoded.
_BAD_TAG_CHECKSUM = DecodeError("checksum", "tag block checksum does not match its body")


@dataclass(slots=True)
class _Group:
    """A multipart group waiting for its remaining fragments."""

    start_index: int  # decoder-global line index of fragment 1
    ts_s: float | None
    timed: bool
    receiver: str
    frags: list[tuple[int, bytes, bytes]] = field(default_factory=list)  # (line, raw, payload)


@dataclass(slots=True)
class _Messages:
    """Assembled messages of one feed call, in completion order, waiting for payload decoding."""

    payload: list[bytes] = field(default_factory=list)
    fill: list[int] = field(default_factory=list)
    line: list[int] = field(default_factory=list)
    ts: list[float] = field(default_factory=list)
    receiver: list[str] = field(default_factory=list)
    raws: list[list[tuple[int, bytes]]] = field(default_factory=list)
    fast: list[int] = field(default_factory=list)


class NmeaDecoder:
    """Stateful decoder for one NMEA input (multipart groups, dedupe memory and last time carry over).

    Parameters
    ----------
    source
        Name of the input, copied into positions and dead letters.
    untimed_start_s
        Start of the synthetic clock for records without any time: the k-th such
        position record (0-based, per decoder) gets ``untimed_start_s + k * untimed_step_s``.
        ``None`` sends them to the dead letter as ``no_time``.
    untimed_step_s
        Step of the synthetic clock.
    live
        Live source: records without a time of their own use ``arrival_ts_s``.
    dedupe_window_s
        An identical payload within this many seconds of record time counts as a duplicate;
        ``0`` disables dedupe.
    dedupe_untimed_payloads
        For records without time, a payload repeated within this many messages is a duplicate.
    multipart_timeout_lines, multipart_timeout_s
        An incomplete multipart group expires after this many lines or seconds of record time.
    max_line_bytes
        Longer lines go to the dead letter as ``too_long``.
    line_is_offset
        Dead letters name ``offset`` instead of ``line`` (streams).
    """

    def __init__(
        self,
        source: str,
        *,
        untimed_start_s: float | None = None,
        untimed_step_s: float = 1.0,
        live: bool = False,
        dedupe_window_s: float = 60.0,
        dedupe_untimed_payloads: int = 2000,
        multipart_timeout_lines: int = 1000,
        multipart_timeout_s: float = 120.0,
        max_line_bytes: int = 4096,
        line_is_offset: bool = False,
    ) -> None:
        if untimed_start_s is not None and not math.isfinite(untimed_start_s):
            raise DecodeError("bad_time", f"untimed_start_s={untimed_start_s!r} must be finite")
        if not untimed_step_s > 0:
            raise DecodeError("bad_value", f"untimed_step_s={untimed_step_s!r} must be > 0")
        self.source = source
        self._untimed_start_s = untimed_start_s
        self._untimed_step_s = float(untimed_step_s)
        self._untimed_k = 0
        self._live = live
        self._window_s = float(dedupe_window_s)
        self._window_n = int(dedupe_untimed_payloads)
        self._timeout_lines = int(multipart_timeout_lines)
        self._timeout_s = float(multipart_timeout_s)
        self._max_line = int(max_line_bytes)
        self._is_offset = line_is_offset
        self._last_time: float | None = None
        self._max_time: float | None = None
        self._lines_seen = 0
        self._pending: dict[tuple[bytes, bytes, bytes, int], _Group] = {}
        self._seen: dict[bytes, tuple[float | None, int]] = {}
        self._seen_order: deque[tuple[bytes, int, float | None]] = deque()
        self._msg_seq = 0
        self._prefix_cache: dict[bytes, tuple[float | None, str, DecodeError | None]] = {}

    # ------------------------------------------------------------------ public

    def feed(self, lines: Sequence[bytes], first_line: int, arrival_ts_s: float | None = None) -> DecodeResult:
        """Decode ``lines``; ``first_line`` is the 1-based line number (or offset) of ``lines[0]``."""
        counts = Counts()
        dead: list[DeadLetter] = []
        msgs = _Messages()
        self._scan(lines, first_line, arrival_ts_s, counts, dead, msgs)
        self._expire(counts, dead, final=False)
        return self._finish(msgs, counts, dead)

    def close(self) -> DecodeResult:
        """End of input: expire every incomplete multipart group to the dead letter."""
        counts = Counts()
        dead: list[DeadLetter] = []
        self._expire(counts, dead, final=True)
        return DecodeResult(positions=PositionBatch.empty(), dead=dead, counts=counts)

    # ------------------------------------------------------------------ scanning

    def _dead(self, dead: list[DeadLetter], counts: Counts, line: int, reason: str, detail: str, raw: bytes) -> None:
        counts.add_dead(reason)
        dead.append(DeadLetter(self.source, line, reason, detail, raw_text(raw), self._is_offset))

    def _scan(
        self,
        lines: Sequence[bytes],
        first_line: int,
        arrival: float | None,
        counts: Counts,
        dead: list[DeadLetter],
        msgs: _Messages,
    ) -> None:
        n = len(lines)
        if n == 0:
            return
        bangs, stars_b, ok_b, stars_a, ok_a = line_checksums(lines)
        live_time = arrival if self._live else None
        emit = self._emit
        max_line = self._max_line
        for i in range(n):
            line = lines[i]
            lineno = first_line + i
            self._lines_seen += 1
            if len(line) > max_line:
                self._dead(dead, counts, lineno, "too_long", f"{len(line)} bytes > {max_line}", line)
                continue
            b = bangs[i]
            if b < 0:
                self._non_sentence(line, lineno, stars_a[i], ok_a[i], counts, dead)
                continue
            sb = stars_b[i]
            if sb < 0:
                self._dead(dead, counts, lineno, "unparseable", "AIS sentence without '*hh' checksum", line)
                continue
            fields = line[b + 1 : sb].split(b",")
            f0 = fields[0]
            if len(f0) != 5 or f0[2:] not in _SENTENCE_KINDS:
                if len(f0) >= 3 and f0.isalpha():
                    counts.input_lines += 1
                    counts.skipped += 1  # other encapsulated NMEA (e.g. !AIALR)
                else:
                    self._dead(dead, counts, lineno, "unparseable", f"unknown sentence {f0[:12]!r}", line)
                continue
            if not ok_b[i]:
                detail = f"checksum {line[sb + 1 : sb + 3]!r} != computed {nmea_checksum(line[b + 1 : sb]):02X}"
                self._dead(dead, counts, lineno, "checksum", detail, line)
                continue
            if len(fields) < 7:
                self._dead(dead, counts, lineno, "unparseable", f"{len(fields)} fields, need 7", line)
                continue
            # time and receiver of this line
            ts: float | None = None
            receiver = ""
            if b > 0:
                ts, receiver, err = self._prefix(line[:b], stars_a[i], ok_a[i], b)
                if err is _BAD_TAG_CHECKSUM:
                    # The sentence has a valid checksum of its own: keep it, distrust the tag block's time/station.
                    counts.tag_blocks_ignored += 1
                elif err is not None:
                    self._dead(dead, counts, lineno, err.reason, err.detail, line)
                    continue
            if len(line) > sb + 3:
                tail = line[sb + 3 :].strip()
                if tail:
                    tt = trailing_epoch(tail)
                    if ts is None:
                        ts = tt
            if ts is not None:
                self._note_time(ts)
                timed = True
            elif self._last_time is not None:
                ts = self._last_time
                timed = True
            else:
                ts = live_time
                timed = ts is not None
            payload = fields[5]
            fill_f = fields[6]
            fill = fill_f[0] - 48 if len(fill_f) == 1 else -1
            if not 0 <= fill <= 5:
                self._dead(dead, counts, lineno, "unparseable", f"fill bits {fill_f[:8]!r} not 0..5", line)
                continue
            if not payload:
                self._dead(dead, counts, lineno, "empty_payload", "sentence carries no payload", line)
                continue
            if payload.translate(None, _ARMOR):
                self._dead(dead, counts, lineno, "unparseable", "payload has characters outside AIS armoring", line)
                continue
            cnt_f = fields[1]
            num_f = fields[2]
            if cnt_f == b"1":
                if num_f != b"1":
                    self._dead(dead, counts, lineno, "unparseable", f"fragment {num_f[:8]!r} of 1", line)
                    continue
                emit(payload, fill, lineno, [(lineno, line)], ts, timed, receiver, counts, msgs)
                continue
            if not (cnt_f.isdigit() and num_f.isdigit() and len(cnt_f) == 1 and len(num_f) == 1):
                self._dead(dead, counts, lineno, "unparseable", f"fragment fields {cnt_f[:8]!r},{num_f[:8]!r}", line)
                continue
            cnt = cnt_f[0] - 48
            num = num_f[0] - 48
            if not 1 <= num <= cnt:
                self._dead(dead, counts, lineno, "unparseable", f"fragment {num} of {cnt}", line)
                continue
            key = (f0, fields[3], fields[4], cnt)
            if num == 1:
                old = self._pending.pop(key, None)
                if old is not None:
                    self._expire_group(old, "superseded by a new group with the same sequence id", counts, dead)
                self._pending[key] = _Group(self._lines_seen, ts, timed, receiver, [(lineno, line, payload)])
                continue
            group = self._pending.get(key)
            if group is None or len(group.frags) != num - 1:
                self._dead(dead, counts, lineno, "incomplete_multipart", f"orphan fragment {num} of {cnt}", line)
                continue
            group.frags.append((lineno, line, payload))
            if num == cnt:
                del self._pending[key]
                counts.multipart_messages += 1
                g_ts = group.ts_s if group.timed else ts
                emit(
                    b"".join(f[2] for f in group.frags),
                    fill,
                    group.frags[0][0],
                    [(f[0], f[1]) for f in group.frags],
                    g_ts,
                    group.timed or timed,
                    group.receiver or receiver,
                    counts,
                    msgs,
                )

    def _note_time(self, ts: float) -> None:
        self._last_time = ts
        if self._max_time is None or ts > self._max_time:
            self._max_time = ts

    def _non_sentence(
        self, line: bytes, lineno: int, star_a: int, ok_a: bool, counts: Counts, dead: list[DeadLetter]
    ) -> None:
        """A line without ``!``: blank, comment, other NMEA, $PGHP time, bare tag block or garbage."""
        text = line.strip()
        if not text or text[:1] == b"#":
            counts.input_lines += 1
            counts.skipped += 1
            return
        first = text[:1]
        if first == b"$":
            if text.startswith(b"$PGHP,1,"):
                if star_a < 0 or not ok_a:
                    self._dead(dead, counts, lineno, "checksum", "$PGHP time line with a bad checksum", line)
                    return
                try:
                    self._note_time(parse_pghp(line[line.index(b"$") + 1 : star_a].split(b",")))
                except DecodeError as exc:
                    self._dead(dead, counts, lineno, exc.reason, exc.detail, line)
                    return
            counts.input_lines += 1
            counts.skipped += 1
            return
        if first == b"\\" and text.endswith(b"\\") and len(text) > 1:
            ts, _, err = self._prefix(text, star_a - (len(line) - len(line.lstrip())), ok_a, len(text))
            if err is not None:
                self._dead(dead, counts, lineno, err.reason, err.detail, line)
                return
            if ts is not None:
                self._note_time(ts)
            counts.input_lines += 1
            counts.skipped += 1
            return
        self._dead(dead, counts, lineno, "unparseable", "not an NMEA sentence", line)

    def _prefix(
        self, prefix: bytes, star_a: int, ok_a: bool, bang: int
    ) -> tuple[float | None, str, DecodeError | None]:
        """Time and station from what precedes ``!``: a tag block and/or a leading unix time."""
        cached = self._prefix_cache.get(prefix)
        if cached is not None and (ok_a or star_a < 0 or star_a >= bang):
            return cached
        result = self._parse_prefix(prefix, star_a, ok_a, bang)
        if len(self._prefix_cache) >= _CACHE_MAX:
            self._prefix_cache.clear()
        if ok_a or star_a < 0 or star_a >= bang:
            self._prefix_cache[prefix] = result
        return result

    @staticmethod
    def _parse_prefix(
        prefix: bytes, star_a: int, ok_a: bool, bang: int
    ) -> tuple[float | None, str, DecodeError | None]:
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
                        return None, "", _BAD_TAG_CHECKSUM
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

    def _emit(
        self,
        payload: bytes,
        fill: int,
        line: int,
        raws: list[tuple[int, bytes]],
        ts: float | None,
        timed: bool,
        receiver: str,
        counts: Counts,
        msgs: _Messages,
    ) -> None:
        """Dedupe one assembled message and queue it for payload decoding."""
        if self._window_s > 0:
            seq = self._msg_seq
            self._msg_seq = seq + 1
            prev = self._seen.get(payload)
            if prev is not None:
                pts, pseq = prev
                if (ts is not None and pts is not None and abs(ts - pts) <= self._window_s) or (
                    (ts is None or pts is None) and seq - pseq <= self._window_n
                ):
                    counts.input_lines += len(raws)
                    counts.duplicates += len(raws)
                    return
            self._seen[payload] = (ts if timed else None, seq)
            order = self._seen_order
            order.append((payload, seq, ts if timed else None))
            if len(order) > self._window_n:
                self._prune_seen(seq, ts if timed else None)
        if len(payload) == 28 and fill == 0 and payload[0] in FAST_FIRST_CHARS:
            msgs.fast.append(len(msgs.payload))
        msgs.payload.append(payload)
        msgs.fill.append(fill)
        msgs.line.append(line)
        msgs.ts.append(ts if ts is not None else math.nan)
        msgs.receiver.append(receiver)
        msgs.raws.append(raws)

    def _prune_seen(self, seq: int, ts: float | None) -> None:
        order = self._seen
        q = self._seen_order
        hard_cap = 200_000
        while q:
            payload, pseq, pts = q[0]
            old_by_count = seq - pseq > self._window_n
            old_by_time = ts is None or pts is None or pts < ts - self._window_s
            if not ((old_by_count and old_by_time) or len(q) > hard_cap):
                break
            q.popleft()
            entry = order.get(payload)
            if entry is not None and entry[1] == pseq:
                del order[payload]

    # ------------------------------------------------------------------ expiry

    def _expire_group(self, group: _Group, why: str, counts: Counts, dead: list[DeadLetter]) -> None:
        n = len(group.frags)
        for line, raw, _ in group.frags:
            self._dead(dead, counts, line, "incomplete_multipart", f"{why} ({n} fragment(s) received)", raw)

    def _expire(self, counts: Counts, dead: list[DeadLetter], *, final: bool) -> None:
        if not self._pending:
            return
        limit = self._lines_seen - self._timeout_lines
        for key in list(self._pending):
            g = self._pending[key]
            too_old = final or g.start_index < limit
            if not too_old and g.timed and g.ts_s is not None and self._max_time is not None:
                too_old = self._max_time - g.ts_s > self._timeout_s
            if too_old:
                del self._pending[key]
                why = "input ended" if final else "reassembly window exceeded"
                self._expire_group(g, why, counts, dead)

    # ------------------------------------------------------------------ payload decoding

    def _finish(self, msgs: _Messages, counts: Counts, dead: list[DeadLetter]) -> DecodeResult:
        m = len(msgs.payload)
        if m == 0:
            return DecodeResult(positions=PositionBatch.empty(), dead=dead, counts=counts)
        ais_type = np.zeros(m, dtype=np.int64)
        mmsi = np.zeros(m, dtype=np.int64)
        lon = np.full(m, np.nan)
        lat = np.full(m, np.nan)
        sog = np.full(m, np.nan)
        cog = np.full(m, np.nan)
        hdg = np.full(m, np.nan)
        is_pos = np.zeros(m, dtype=bool)
        statics: list[StaticReport] = []
        if msgs.fast:
            fi = np.asarray(msgs.fast, dtype=np.int64)
            cols = decode_positions_168([msgs.payload[k] for k in msgs.fast])
            ais_type[fi] = cols["type"]
            mmsi[fi] = cols["mmsi"]
            lon[fi] = cols["lon"]
            lat[fi] = cols["lat"]
            sog[fi] = cols["sog"]
            cog[fi] = cols["cog"]
            hdg[fi] = cols["heading"]
            is_pos[fi] = True
        fast_set = set(msgs.fast)
        for k in range(m):
            if k in fast_set:
                continue
            nl = len(msgs.raws[k])
            try:
                msg = _pyais_decode(msgs.payload[k], msgs.fill[k])
            except DecodeError as exc:
                for line, raw in msgs.raws[k]:
                    self._dead(dead, counts, line, exc.reason, exc.detail, raw)
                ais_type[k] = -1
                continue
            t = int(msg.msg_type)
            ais_type[k] = t
            mmsi[k] = int(msg.mmsi)
            if t in POSITION_TYPES:
                x, y = msg.lon, msg.lat
                if x is None or y is None:
                    for line, raw in msgs.raws[k]:
                        self._dead(dead, counts, line, "unparseable", f"type {t} payload too short for a position", raw)
                    ais_type[k] = -1
                    continue
                lon[k], lat[k] = float(x), float(y)
                sog[k] = _num(msg.speed)
                cog[k] = _num(msg.course)
                hdg[k] = _num(getattr(msg, "heading", None))
                is_pos[k] = True
            elif t in STATIC_TYPES:
                ts = msgs.ts[k]
                statics.append(_static_report(msg, t, None if math.isnan(ts) else ts))
                counts.input_lines += nl
                counts.static += nl
            else:
                counts.input_lines += nl
                counts.other += nl
        return self._positions(msgs, ais_type, mmsi, lon, lat, sog, cog, hdg, is_pos, statics, counts, dead)

    def _positions(
        self,
        msgs: _Messages,
        ais_type: npt.NDArray[np.int64],
        mmsi: npt.NDArray[np.int64],
        lon: npt.NDArray[np.float64],
        lat: npt.NDArray[np.float64],
        sog: npt.NDArray[np.float64],
        cog: npt.NDArray[np.float64],
        hdg: npt.NDArray[np.float64],
        is_pos: npt.NDArray[np.bool_],
        statics: list[StaticReport],
        counts: Counts,
        dead: list[DeadLetter],
    ) -> DecodeResult:
        nlines = np.fromiter((len(r) for r in msgs.raws), dtype=np.int64, count=len(msgs.raws))
        # "not available" values never become numbers
        t27 = ais_type == 27
        sog[(~t27) & (sog >= 102.3)] = np.nan
        cog[(~t27) & (cog >= 360.0)] = np.nan
        sog[t27 & (sog >= 63)] = np.nan
        cog[t27 & (cog >= 360)] = np.nan
        hdg[t27 | (hdg >= 360)] = np.nan
        no_pos = is_pos & ((lon == 181.0) | (lat == 91.0))
        n_np = int(nlines[no_pos].sum())
        counts.input_lines += n_np
        counts.other += n_np
        counts.no_position += int(no_pos.sum())
        is_pos &= ~no_pos
        bad = is_pos & ~((np.abs(lon) <= 180.0) & (np.abs(lat) <= 90.0))
        for k in np.flatnonzero(bad).tolist():
            for line, raw in msgs.raws[k]:
                self._dead(dead, counts, line, "out_of_range", f"lon {lon[k]} lat {lat[k]} outside WGS84", raw)
        is_pos &= ~bad
        ts = np.asarray(msgs.ts, dtype=np.float64)
        untimed = is_pos & np.isnan(ts)
        if untimed.any():
            idx = np.flatnonzero(untimed)
            if self._untimed_start_s is not None:
                k0 = self._untimed_k
                ts[idx] = self._untimed_start_s + (k0 + np.arange(idx.size)) * self._untimed_step_s
                self._untimed_k = k0 + int(idx.size)
            else:
                for k in idx.tolist():
                    for line, raw in msgs.raws[k]:
                        self._dead(dead, counts, line, "no_time", "no receiver time and no --untimed-start", raw)
                is_pos &= ~untimed
        sel = np.flatnonzero(is_pos)
        n_lines = int(nlines[sel].sum())
        counts.input_lines += n_lines
        counts.positions += n_lines
        if sel.size == 0:
            return DecodeResult(positions=PositionBatch.empty(), statics=statics, dead=dead, counts=counts)
        receivers = msgs.receiver
        batch = PositionBatch.from_columns(
            subject_id=[str(v) for v in mmsi[sel].tolist()],
            ts_s=ts[sel],
            lon_deg=lon[sel],
            lat_deg=lat[sel],
            sog_kn=sog[sel],
            cog_deg=cog[sel],
            heading_deg=hdg[sel],
            receiver=[receivers[k] for k in sel.tolist()],
            source=_repeat(self.source, int(sel.size)),
            line=np.asarray(msgs.line, dtype=np.int64)[sel],
        )
        return DecodeResult(positions=batch, statics=statics, dead=dead, counts=counts)


def _repeat(value: str, n: int) -> npt.NDArray[np.object_]:
    out = np.empty(n, dtype=object)
    out[:] = value
    return out


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


def _pyais_decode(payload: bytes, fill: int) -> Any:
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


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.replace("@", " ").strip()
    return value or None


def _dims(msg: Any) -> tuple[float | None, float | None]:
    bow, stern = getattr(msg, "to_bow", None), getattr(msg, "to_stern", None)
    port, star = getattr(msg, "to_port", None), getattr(msg, "to_starboard", None)
    length = float(bow + stern) if isinstance(bow, int) and isinstance(stern, int) and bow + stern > 0 else None
    beam = float(port + star) if isinstance(port, int) and isinstance(star, int) and port + star > 0 else None
    return length, beam


def _static_report(msg: Any, ais_type: int, ts_s: float | None) -> StaticReport:
    """StaticReport from a pyais type 5 or 24 message (missing pieces are ``None``)."""
    length, beam = _dims(msg)
    ship_type = getattr(msg, "ship_type", None)
    eta: str | None = None
    imo: int | None = None
    destination: str | None = None
    if ais_type == 5:
        month, day = getattr(msg, "month", 0) or 0, getattr(msg, "day", 0) or 0
        hour, minute = getattr(msg, "hour", 24), getattr(msg, "minute", 60)
        if month:
            eta = f"{month:02d}-{day:02d}T{hour:02d}:{minute:02d}"
        imo = int(msg.imo) if getattr(msg, "imo", None) else None
        destination = _text(getattr(msg, "destination", None))
    return StaticReport(
        subject_id=str(msg.mmsi),
        ts_s=ts_s,
        name=_text(getattr(msg, "shipname", None)),
        ship_type=int(ship_type) if ship_type is not None and (ais_type == 5 or msg.partno == 1) else None,
        length_m=length,
        beam_m=beam,
        destination=destination,
        eta=eta,
        imo=imo,
        callsign=_text(getattr(msg, "callsign", None)),
    )
