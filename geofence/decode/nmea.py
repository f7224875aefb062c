"""AIS NMEA 0183 decoder: envelope, tag blocks, time lines, multipart reassembly, dedupe, accounting.

pyais decodes AIS payloads; this module handles everything around them: the
``!xxVDM``/``!xxVDO`` envelope of any talker, checksums, NMEA 4.0 tag blocks,
Gatehouse ``$PGHP`` time lines, leading/trailing receiver unix times,
multipart reassembly, dedupe of aggregated feeds, and accounting of every line
(docs/ingest.md).

A batch goes through four steps, so that Python touches each line as little as possible:

1. :func:`._nmeascan.scan_lines` (numpy, whole batch): checksums, plain single-part
   sentences and their payloads, tag-block and leading receiver times, skippable lines;
2. one pass over the lines in order (:meth:`NmeaDecoder._scan`): times that carry
   over from line to line, multipart groups, dead letters, and the exact per-line
   code for every line the first step was unsure about;
3. dedupe of the assembled messages (:meth:`NmeaDecoder._dedupe`), in bulk where
   payloads are new;
4. payloads: 168-bit class A/B positions (types 1/2/3/18, the bulk of any feed) are
   unpacked with numpy (:mod:`._aisfast`), types 5 and 24 read field by field
   (:func:`_lean_static`), positions of types 19/27 and odd lengths by pyais; other
   types are counted by number. The tests compare every path with pyais, and step 1
   with the exact per-line code, on every real file.

Pure: no I/O and no clock. Time arrives in the data (or as ``arrival_ts_s``).
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from pyais.bit_vector import bit_vector
from pyais.constants import ShipType
from pyais.messages import MSG_CLASS
from pyais.util import is_auxiliary_craft

from geofence.deadletter import DeadLetter, raw_text
from geofence.decode._aisfast import FAST_FIRST_CHARS, decode_positions_168
from geofence.decode._nmeascan import scan_lines
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


#: A repeat more than this many messages after the last counted copy is never a duplicate (bounds the memory).
_DEDUPE_MAX_MESSAGES = 100_000
#: One queued message: (payload, fill bits, first line, time or NaN, receiver, its lines or None).
#: ``None`` lines mean a single sentence: line number ``first line``, raw bytes in the feed's ``lines``.
_Item = tuple[bytes, int, int, float, str, "list[tuple[int, bytes]] | None"]


@dataclass(slots=True)
class _Messages:
    """Assembled messages of one feed call, in completion order, waiting for payload decoding."""

    lines: Sequence[bytes]
    first_line: int
    items: list[_Item] = field(default_factory=list)
    fast: list[int] = field(default_factory=list)  # 168-bit class A/B positions: numpy unpacking
    slow: list[int] = field(default_factory=list)  # everything else
    payload: list[bytes] = field(default_factory=list)
    fill: list[int] = field(default_factory=list)
    line: list[int] = field(default_factory=list)
    ts: list[float] = field(default_factory=list)
    receiver: list[str] = field(default_factory=list)
    groups: list[list[tuple[int, bytes]] | None] = field(default_factory=list)

    def unpack(self) -> None:
        """Turn ``items`` into the per-field lists the payload decoding reads; split fast and slow messages."""
        if not self.items:
            return
        payload, fill, line, ts, receiver, groups = zip(*self.items, strict=True)
        self.payload, self.fill, self.line, self.ts, self.receiver = (
            list(payload), list(fill), list(line), list(ts), list(receiver)
        )
        self.groups = list(groups)
        fast_first = FAST_FIRST_CHARS
        flags = [f == 0 and len(p) == 28 and p[0] in fast_first for p, f in zip(payload, fill, strict=True)]
        self.fast = [k for k, flag in enumerate(flags) if flag]
        self.slow = [k for k, flag in enumerate(flags) if not flag]

    def raws(self, k: int) -> list[tuple[int, bytes]]:
        """(line number, raw bytes) of every line of message ``k``."""
        group = self.groups[k]
        if group is not None:
            return group
        ln = self.line[k]
        return [(ln, self.lines[ln - self.first_line])]

    def nlines(self) -> npt.NDArray[np.int64]:
        """How many input lines each message took."""
        return np.fromiter((1 if g is None else len(g) for g in self.groups), dtype=np.int64, count=len(self.groups))


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
        self._lines_seen = 0
        self._pending: dict[tuple[bytes, bytes, bytes, int], _Group] = {}
        self._seen: dict[bytes, tuple[float | None, int]] = {}
        self._seen_order: deque[tuple[bytes, int]] = deque()
        self._msg_seq = 0
        self._prefix_cache: dict[bytes, tuple[float | None, str, DecodeError | None]] = {}
        self._stations: dict[bytes, str] = {}

    # ------------------------------------------------------------------ public

    def feed(self, lines: Sequence[bytes], first_line: int, arrival_ts_s: float | None = None) -> DecodeResult:
        """Decode ``lines``; ``first_line`` is the 1-based line number (or offset) of ``lines[0]``."""
        counts = Counts()
        dead: list[DeadLetter] = []
        msgs = _Messages(lines, first_line)
        self._scan(lines, first_line, arrival_ts_s, counts, dead, msgs)
        self._dedupe(msgs, counts)
        msgs.unpack()
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
        """One pass over the lines. Hot loop: state lives in locals and is written back at the end."""
        n = len(lines)
        if n == 0:
            return
        max_line = self._max_line
        lay = scan_lines(lines, max_line)
        bangs, stars_b, ok_b, stars_a, ok_a = lay.bang, lay.star_b, lay.ok_b, lay.star_a, lay.ok_a
        plain, fast, own_ts, pay0, pay1, fills = lay.plain, lay.fast, lay.own_ts, lay.pay0, lay.pay1, lay.fill
        st0, st1 = lay.st0, lay.st1
        stations = self._stations
        counts.input_lines += lay.n_skip
        counts.skipped += lay.n_skip  # blank lines, comments, non-AIS "$" sentences
        live_time = arrival if self._live else None
        seen0 = self._lines_seen
        last_time = self._last_time
        pending = self._pending
        prefix_of = self._prefix
        emit = self._emit
        items = msgs.items
        nan = math.nan
        kinds = _SENTENCE_KINDS
        armor = _ARMOR
        bad_tag = _BAD_TAG_CHECKSUM
        dead_at = self._dead
        ts: float | None
        for i in lay.active:
            line = lines[i]
            lineno = first_line + i
            seen = seen0 + i + 1
            if (fast[i] or plain[i]) and not (payload := line[pay0[i] : pay1[i]]).translate(None, armor):
                # A well-formed single-part sentence (checked for the whole batch at once): time, dedupe, queue.
                # (A payload with other characters, e.g. a non-standard extra field, takes the exact path below.)
                receiver = ""
                if fast[i]:  # time and station read by the vectorised pass too
                    t = own_ts[i]
                    ts = None if t != t else t
                    if st0[i] >= 0:
                        station = line[st0[i] : st1[i]]
                        receiver = stations.get(station) or _station(stations, station)
                else:
                    ts = None
                    b = bangs[i]
                    if b > 0:
                        ts, receiver, err = prefix_of(line[:b], stars_a[i], ok_a[i], b)
                        if err is bad_tag:
                            counts.tag_blocks_ignored += 1
                        elif err is not None:
                            dead_at(dead, counts, lineno, err.reason, err.detail, line)
                            continue
                    if ts is None:
                        tail = line[stars_b[i] + 3 :].strip()
                        if tail:
                            ts = trailing_epoch(tail)
                if ts is not None:
                    last_time = ts
                elif last_time is not None:
                    ts = last_time
                else:
                    ts = live_time
                items.append((payload, fills[i], lineno, nan if ts is None else ts, receiver, None))
                continue
            if len(line) > max_line:
                dead_at(dead, counts, lineno, "too_long", f"{len(line)} bytes > {max_line}", line)
                continue
            b = bangs[i]
            if b < 0:
                got = self._non_sentence(line, lineno, stars_a[i], ok_a[i], counts, dead)
                if got is not None:
                    last_time = got
                continue
            sb = stars_b[i]
            if sb < 0:
                dead_at(dead, counts, lineno, "unparseable", "AIS sentence without '*hh' checksum", line)
                continue
            fields = line[b + 1 : sb].split(b",")
            f0 = fields[0]
            if len(f0) != 5 or f0[2:] not in kinds:
                if len(f0) >= 3 and f0.isalpha():
                    counts.input_lines += 1
                    counts.skipped += 1  # other encapsulated NMEA (e.g. !AIALR)
                else:
                    dead_at(dead, counts, lineno, "unparseable", f"unknown sentence {f0[:12]!r}", line)
                continue
            if not ok_b[i]:
                detail = f"checksum {line[sb + 1 : sb + 3]!r} != computed {nmea_checksum(line[b + 1 : sb]):02X}"
                dead_at(dead, counts, lineno, "checksum", detail, line)
                continue
            if len(fields) < 7:
                dead_at(dead, counts, lineno, "unparseable", f"{len(fields)} fields, need 7", line)
                continue
            # time and receiver of this line
            ts = None
            receiver = ""
            if b > 0:
                ts, receiver, err = prefix_of(line[:b], stars_a[i], ok_a[i], b)
                if err is bad_tag:
                    # The sentence has a valid checksum of its own: keep it, distrust the tag block's time/station.
                    counts.tag_blocks_ignored += 1
                elif err is not None:
                    dead_at(dead, counts, lineno, err.reason, err.detail, line)
                    continue
            if len(line) > sb + 3 and ts is None:
                tail = line[sb + 3 :].strip()
                if tail:
                    ts = trailing_epoch(tail)
            last_before = last_time  # the state a feed boundary just before this line would have seen
            if ts is not None:
                last_time = ts
                timed = True
            elif last_time is not None:
                ts = last_time
                timed = True
            else:
                ts = live_time
                timed = ts is not None
            payload = fields[5]
            fill_f = fields[6]
            fill = fill_f[0] - 48 if len(fill_f) == 1 else -1
            if not 0 <= fill <= 5:
                dead_at(dead, counts, lineno, "unparseable", f"fill bits {fill_f[:8]!r} not 0..5", line)
                continue
            if not payload:
                dead_at(dead, counts, lineno, "empty_payload", "sentence carries no payload", line)
                continue
            if payload.translate(None, armor):
                dead_at(dead, counts, lineno, "unparseable", "payload has characters outside AIS armoring", line)
                continue
            cnt_f = fields[1]
            num_f = fields[2]
            if cnt_f == b"1":
                if num_f != b"1":
                    dead_at(dead, counts, lineno, "unparseable", f"fragment {num_f[:8]!r} of 1", line)
                    continue
                emit(payload, fill, lineno, [(lineno, line)], ts, timed, receiver, msgs)
                continue
            if not (cnt_f.isdigit() and num_f.isdigit() and len(cnt_f) == 1 and len(num_f) == 1):
                dead_at(dead, counts, lineno, "unparseable", f"fragment fields {cnt_f[:8]!r},{num_f[:8]!r}", line)
                continue
            cnt = cnt_f[0] - 48
            num = num_f[0] - 48
            if not 1 <= num <= cnt:
                dead_at(dead, counts, lineno, "unparseable", f"fragment {num} of {cnt}", line)
                continue
            key = (f0, fields[3], fields[4], cnt)
            group = pending.get(key)
            if group is not None and self._too_old(group, seen - 1, last_before):
                # Expire exactly as the end-of-feed check would have, so that batch boundaries change nothing.
                del pending[key]
                self._expire_group(group, "reassembly window exceeded", counts, dead)
                group = None
            if num == 1:
                if group is not None:
                    del pending[key]
                    self._expire_group(group, "superseded by a new group with the same sequence id", counts, dead)
                pending[key] = _Group(seen, ts, timed, receiver, [(lineno, line, payload)])
                continue
            if group is None or len(group.frags) != num - 1:
                dead_at(dead, counts, lineno, "incomplete_multipart", f"orphan fragment {num} of {cnt}", line)
                continue
            group.frags.append((lineno, line, payload))
            if num == cnt:
                del pending[key]
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
                    msgs,
                )
        self._lines_seen = seen0 + n
        self._last_time = last_time

    def _non_sentence(
        self, line: bytes, lineno: int, star_a: int, ok_a: bool, counts: Counts, dead: list[DeadLetter]
    ) -> float | None:
        """A line without ``!``: blank, comment, other NMEA, $PGHP time, bare tag block or garbage.

        Returns the receiver time the line sets for the lines after it ($PGHP, bare tag block), if any.
        """
        text = line.strip()
        if not text or text[:1] == b"#":
            counts.input_lines += 1
            counts.skipped += 1
            return None
        first = text[:1]
        ts: float | None = None
        if first == b"$":
            if text.startswith(b"$PGHP,1,"):
                if star_a < 0 or not ok_a:
                    self._dead(dead, counts, lineno, "checksum", "$PGHP time line with a bad checksum", line)
                    return None
                try:
                    ts = parse_pghp(line[line.index(b"$") + 1 : star_a].split(b","))
                except DecodeError as exc:
                    self._dead(dead, counts, lineno, exc.reason, exc.detail, line)
                    return None
            counts.input_lines += 1
            counts.skipped += 1
            return ts
        if first == b"\\" and text.endswith(b"\\") and len(text) > 1:
            ts, _, err = self._prefix(text, star_a - (len(line) - len(line.lstrip())), ok_a, len(text))
            if err is not None:
                self._dead(dead, counts, lineno, err.reason, err.detail, line)
                return None
            counts.input_lines += 1
            counts.skipped += 1
            return ts
        self._dead(dead, counts, lineno, "unparseable", "not an NMEA sentence", line)
        return None

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
        msgs: _Messages,
    ) -> None:
        """Queue one assembled message (dedupe and decoding come after the scan)."""
        msgs.items.append((payload, fill, line, ts if timed and ts is not None else math.nan, receiver, raws))

    def _dedupe(self, msgs: _Messages, counts: Counts) -> None:
        """Drop repeated payloads from ``msgs.items`` (in completion order); count them as ``duplicates``.

        An identical payload is a duplicate when its last counted copy is within ``dedupe_window_s`` of
        record time and at most :data:`_DEDUPE_MAX_MESSAGES` messages back, or, when either copy has no
        time, at most ``dedupe_untimed_payloads`` messages back. Every message gets a sequence number,
        duplicates too. The decision for a payload depends only on its own copies, so payloads new to
        the memory and unique in the batch are accepted in bulk; only repeats are checked one by one.
        Entries too old to ever match again are dropped, so the memory stays bounded and pruning never
        changes a decision.
        """
        items = msgs.items
        m = len(items)
        if self._window_s <= 0 or m == 0:
            return
        seq0 = self._msg_seq
        self._msg_seq = seq0 + m
        seen = self._seen
        order = self._seen_order
        payloads = [it[0] for it in items]
        in_batch = Counter(payloads)
        special = {p for p, c in in_batch.items() if c > 1} | (seen.keys() & in_batch.keys())
        seqs = range(seq0, seq0 + m)
        if not special:
            marks = [None if it[3] != it[3] else it[3] for it in items]
            seen.update(zip(payloads, zip(marks, seqs, strict=True), strict=True))
            order.extend(zip(payloads, seqs, strict=True))
            self._prune_seen(seq0 + m)
            return
        # Payloads nobody has seen and that occur once here: accepted in bulk (dict updates of distinct keys
        # commute). Repeated ones: one by one, in order.
        window_s, window_n, cap = self._window_s, self._window_n, _DEDUPE_MAX_MESSAGES
        rest = [k for k, p in enumerate(payloads) if p not in special]
        seen.update((payloads[k], (None if items[k][3] != items[k][3] else items[k][3], seq0 + k)) for k in rest)
        order.extend((payloads[k], seq0 + k) for k in rest)
        dropped: set[int] = set()
        for k, payload in enumerate(payloads):
            if payload not in special:
                continue
            it = items[k]
            mark = None if it[3] != it[3] else it[3]
            seq = seq0 + k
            prev = seen.get(payload)
            if prev is not None:
                pts, pseq = prev
                if (mark is not None and pts is not None and abs(mark - pts) <= window_s and seq - pseq <= cap) or (
                    (mark is None or pts is None) and seq - pseq <= window_n
                ):
                    counts.add_record("duplicates", 1 if it[5] is None else len(it[5]))
                    dropped.add(k)
                    continue
            seen[payload] = (mark, seq)
            order.append((payload, seq))
        if dropped:
            msgs.items = [it for k, it in enumerate(items) if k not in dropped]
        self._prune_seen(seq0 + m)

    def _prune_seen(self, seq: int) -> None:
        """Forget payloads whose last counted copy can no longer match (more messages back than any window)."""
        limit = seq - max(self._window_n, _DEDUPE_MAX_MESSAGES)
        order = self._seen_order
        seen = self._seen
        while order and order[0][1] < limit:
            payload, pseq = order.popleft()
            entry = seen.get(payload)
            if entry is not None and entry[1] == pseq:
                del seen[payload]

    # ------------------------------------------------------------------ expiry

    def _expire_group(self, group: _Group, why: str, counts: Counts, dead: list[DeadLetter]) -> None:
        n = len(group.frags)
        for line, raw, _ in group.frags:
            self._dead(dead, counts, line, "incomplete_multipart", f"{why} ({n} fragment(s) received)", raw)

    def _too_old(self, g: _Group, lines_seen: int, latest: float | None) -> bool:
        """Whether group ``g`` is past the reassembly window after ``lines_seen`` lines, at receiver time ``latest``.

        Age is measured against the latest time seen, not the largest: one receiver with a clock in the
        future, or files concatenated out of time order, must not expire every group after it.
        """
        if g.start_index < lines_seen - self._timeout_lines:
            return True
        return g.timed and g.ts_s is not None and latest is not None and latest - g.ts_s > self._timeout_s

    def _expire(self, counts: Counts, dead: list[DeadLetter], *, final: bool) -> None:
        if not self._pending:
            return
        for key in list(self._pending):
            g = self._pending[key]
            if final or self._too_old(g, self._lines_seen, self._last_time):
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
        for k in msgs.slow:
            group = msgs.groups[k]
            nl = 1 if group is None else len(group)
            payload = msgs.payload[k]
            first = payload[0] - 48
            kind = first - 8 if first > 40 else first
            if kind not in POSITION_TYPES and kind not in STATIC_TYPES and kind in MSG_CLASS:
                # A type the rules do not use: counted by its number, not decoded (pyais raises only
                # for unknown type numbers, which stay dead letters below).
                ais_type[k] = kind
                counts.add_record("other", nl)
                continue
            if kind in STATIC_TYPES:
                try:
                    ts = msgs.ts[k]
                    statics.append(_lean_static(payload, msgs.fill[k], kind, None if math.isnan(ts) else ts))
                except DecodeError as exc:
                    for line, raw in msgs.raws(k):
                        self._dead(dead, counts, line, exc.reason, exc.detail, raw)
                    ais_type[k] = -1
                    continue
                ais_type[k] = kind
                counts.add_record("static", nl)
                continue
            try:
                msg = _pyais_decode(payload, msgs.fill[k])
            except DecodeError as exc:
                for line, raw in msgs.raws(k):
                    self._dead(dead, counts, line, exc.reason, exc.detail, raw)
                ais_type[k] = -1
                continue
            t = int(msg.msg_type)
            ais_type[k] = t
            mmsi[k] = int(msg.mmsi)
            if t in POSITION_TYPES:
                x, y = msg.lon, msg.lat
                if x is None or y is None:
                    for line, raw in msgs.raws(k):
                        self._dead(dead, counts, line, "unparseable", f"type {t} payload too short for a position", raw)
                    ais_type[k] = -1
                    continue
                lon[k], lat[k] = float(x), float(y)
                sog[k] = _num(msg.speed)
                cog[k] = _num(msg.course)
                hdg[k] = _num(getattr(msg, "heading", None))
                is_pos[k] = True
            else:
                counts.add_record("other", nl)
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
        nlines = msgs.nlines()
        # "not available" values never become numbers
        t27 = ais_type == 27
        sog[(~t27) & (sog >= 102.3)] = np.nan
        cog[(~t27) & (cog >= 360.0)] = np.nan
        sog[t27 & (sog >= 63)] = np.nan
        cog[t27 & (cog >= 360)] = np.nan
        hdg[t27 | (hdg >= 360)] = np.nan
        no_pos = is_pos & ((lon == 181.0) | (lat == 91.0))
        _count_records(counts, "other", nlines[no_pos])
        counts.no_position += int(no_pos.sum())
        is_pos &= ~no_pos
        bad = is_pos & ~((np.abs(lon) <= 180.0) & (np.abs(lat) <= 90.0))
        for k in np.flatnonzero(bad).tolist():
            for line, raw in msgs.raws(k):
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
                    for line, raw in msgs.raws(k):
                        self._dead(dead, counts, line, "no_time", "no receiver time and no --untimed-start", raw)
                is_pos &= ~untimed
        sel = np.flatnonzero(is_pos)
        _count_records(counts, "positions", nlines[sel])
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


def _station(cache: dict[bytes, str], key: bytes) -> str:
    """Tag-block station text, cached (a feed has a few hundred stations)."""
    text = key.decode("ascii", errors="backslashreplace")
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache[key] = text
    return text


def _count_records(counts: Counts, bucket: str, nlines: npt.NDArray[np.int64]) -> None:
    """Count records taking ``nlines[k]`` lines each: one line per record in ``bucket``, the rest ``fragments``."""
    records = int(nlines.size)
    lines = int(nlines.sum())
    counts.input_lines += lines
    setattr(counts, bucket, getattr(counts, bucket) + records)
    counts.fragments += lines - records


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


_SIXBIT: tuple[str, ...] = tuple(chr(c + 64 if c < 32 else c) for c in range(64))  # pyais' 6-bit ASCII table
_SIXBIT_PAIRS: tuple[str, ...] = tuple(_SIXBIT[i >> 6] + _SIXBIT[i & 63] for i in range(4096))


def _lean_static(payload: bytes, fill: int, ais_type: int, ts_s: float | None) -> StaticReport:
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
