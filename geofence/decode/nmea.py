"""AIS NMEA 0183 decoder: envelope, tag blocks, time lines, multipart reassembly, dedupe, accounting.

pyais' layouts decode AIS payloads; this module handles everything around them: the
``!xxVDM``/``!xxVDO`` envelope of any talker, checksums, NMEA 4.0 tag blocks,
Gatehouse ``$PGHP`` time lines, leading/trailing receiver unix times,
multipart reassembly, dedupe of aggregated feeds, and accounting of every line
(docs/ingest.md).

A batch goes through four steps, so that Python touches as few lines as possible
(docs/ingest.md, "NMEA decoding speed"):

1. :func:`._nmeascan.scan_lines` (numpy, whole batch): checksums, the envelope of plain
   sentences, tag-block and leading receiver times, ``$PGHP`` time lines, skippable
   lines. The lines it works out completely (*fast* lines: single-part sentences with
   known times, two-fragment groups on adjacent lines, time lines; the bulk of any feed)
   never enter a Python loop: :meth:`NmeaDecoder._fast_sentences` slices their payloads
   in one comprehension, and a fast line without a time of its own gets the last one set
   before it, carried forward with numpy (:mod:`._messages` builds their columns);
2. one pass over the remaining lines in order (:meth:`NmeaDecoder._loop`): other multipart
   groups, dead letters, and the exact per-line code for every line the first step was
   unsure about. The time such a line inherits may come from a fast line before it: their
   times are known before the pass starts;
3. dedupe of the assembled messages, in completion order (:class:`._dedupe.PayloadMemory`);
4. payloads (:func:`._payloads.decode_payloads`): numpy for positions and full-length
   statics, pyais for the rest; then "not available" values, the synthetic clock and
   the accounting (:meth:`NmeaDecoder._finish`).

The tests compare the fast paths with the exact per-line code (on every real file and on
generated lines, in batches of any size) and the payload decoders with pyais.

Pure: no I/O and no clock. Time arrives in the data (or as ``arrival_ts_s``).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from geofence.deadletter import DeadLetter, raw_text
from geofence.decode._aisstatic import lean_static as _lean_static
from geofence.decode._dedupe import PayloadMemory
from geofence.decode._messages import Item, Messages, fast_messages, key_code, merge, station_text
from geofence.decode._nmeascan import LineScan, scan_lines
from geofence.decode._payloads import POSITION_TYPES, STATIC_TYPES, decode_payloads
from geofence.decode._payloads import pyais_decode as _pyais_decode
from geofence.decode.accounting import Counts, DecodeResult
from geofence.decode.tagblock import (
    BAD_TAG_CHECKSUM,
    nmea_checksum,
    parse_pghp,
    parse_prefix,
    trailing_epoch,
)
from geofence.errors import DecodeError
from geofence.positions import PositionBatch

__all__ = ["POSITION_TYPES", "STATIC_TYPES", "NmeaDecoder"]

# Re-exported for the tests, which compare them with pyais.
_ = (_lean_static, _pyais_decode)

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Obj = npt.NDArray[np.object_]

_ARMOR = bytes(range(48, 88)) + bytes(range(96, 120))  # valid 6-bit armoring characters
_SENTENCE_KINDS = (b"VDM", b"VDO")
_CACHE_MAX = 4096
_IDS_MAX = 65536


@dataclass(slots=True)
class _Group:
    """A multipart group waiting for its remaining fragments."""

    start_index: int  # decoder-global line index of fragment 1
    ts_s: float | None
    timed: bool
    receiver: str
    frags: list[tuple[int, bytes, bytes]] = field(default_factory=list)  # (line, raw, payload)


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
        self._memory = PayloadMemory(dedupe_window_s, dedupe_untimed_payloads)
        self._timeout_lines = int(multipart_timeout_lines)
        self._timeout_s = float(multipart_timeout_s)
        self._max_line = int(max_line_bytes)
        self._is_offset = line_is_offset
        self._last_time: float | None = None
        self._lines_seen = 0
        self._pending: dict[tuple[bytes, bytes, bytes, int], _Group] = {}
        self._prefix_cache: dict[bytes, tuple[float | None, str, DecodeError | None]] = {}
        self._stations: dict[bytes, str] = {}
        self._ids: dict[int, str] = {}

    # ------------------------------------------------------------------ public

    def feed(self, lines: Sequence[bytes], first_line: int, arrival_ts_s: float | None = None) -> DecodeResult:
        """Decode ``lines``; ``first_line`` is the 1-based line number (or offset) of ``lines[0]``."""
        counts = Counts()
        dead: list[DeadLetter] = []
        msgs = self._scan(lines, first_line, arrival_ts_s, counts, dead)
        duplicates = self._memory.find_duplicates(msgs.payload, msgs.ts)
        if duplicates.size:
            _count_records(counts, "duplicates", msgs.nlines[duplicates])
            msgs = msgs.drop(duplicates)
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
    ) -> Messages:
        """Steps 1 and 2 of the module docstring: every line counted or turned into a message."""
        n = len(lines)
        if n == 0:
            return Messages.empty(lines, first_line)
        lay = scan_lines(lines, self._max_line)
        fast = np.array(lay.fast, dtype=bool)
        plain = np.array(lay.plain, dtype=bool)
        own = lay.own_ts
        counts.input_lines += lay.n_skip
        counts.skipped += lay.n_skip  # blank lines, comments, non-AIS "$" sentences
        n_time = int(np.count_nonzero(fast & lay.time_line))
        counts.input_lines += n_time
        counts.skipped += n_time  # $PGHP time lines read by the first step
        sent, payloads, pair1 = self._fast_sentences(lines, lay, fast, plain)

        # -- receiver times set by fast lines, known before the loop
        setter = fast & ~np.isnan(own)
        fast_setters = np.flatnonzero(setter)
        loop = np.zeros(n, dtype=bool)
        loop[np.asarray(lay.active, dtype=np.int64)] = True
        loop &= ~fast
        loop_idx = np.flatnonzero(loop)
        carried = self._last_time
        set_at: list[int] = []
        set_ts: list[float] = []
        items: list[Item] = []
        if loop_idx.size:
            k = np.searchsorted(fast_setters, loop_idx) - 1
            prev_at = np.where(k >= 0, fast_setters[np.maximum(k, 0)], -1) if fast_setters.size else np.full(
                loop_idx.size, -1)
            self._loop(
                lines, first_line, arrival, counts, dead, lay, plain, loop_idx, prev_at, own, items, set_at, set_ts
            )

        # -- times of the fast sentences: their own, else the last one set before them
        setter[set_at] = True
        values = np.where(setter, own, np.nan)
        values[set_at] = set_ts
        last_at = np.maximum.accumulate(np.where(setter, np.arange(n), -1))
        fallback = carried if carried is not None else (arrival if self._live and arrival is not None else np.nan)
        if last_at[-1] >= 0:
            self._last_time = float(values[last_at[-1]])
        ts = own[sent]
        no_own = np.isnan(ts)
        if no_own.any():
            before = last_at[sent[no_own]]
            ts[no_own] = np.where(before >= 0, values[np.maximum(before, 0)], fallback)
        self._lines_seen += n
        counts.multipart_messages += int(np.count_nonzero(pair1))
        return merge(fast_messages(lines, first_line, lay, sent, payloads, ts, pair1, self._stations), items)

    def _fast_sentences(
        self, lines: Sequence[bytes], lay: LineScan, fast: npt.NDArray[np.bool_], plain: npt.NDArray[np.bool_]
    ) -> tuple[I64, list[bytes], npt.NDArray[np.bool_]]:
        """Fast sentence lines, their payloads and where the two-line groups start (``fast``/``plain`` updated).

        Payload characters are checked for all lines at once; a line whose payload has characters outside
        the armoring takes the exact path (which dead-letters it), and so do the two-line groups with the key
        of such a line, or with a key still pending from an earlier batch.
        """
        n = fast.size
        sent_mask = fast & ~lay.time_line
        pair1 = lay.pair & sent_mask
        pair1[:-1] &= sent_mask[1:]
        if self._timeout_lines < 0 or self._timeout_s < 0:
            pair1[:] = False  # negative timeouts could expire even adjacent fragments: the loop decides
        blocked: set[int] = set()
        if pair1.any() and self._pending:
            blocked = {key_code(key) for key in self._pending}
        while True:
            if blocked:
                pair1 &= ~np.isin(lay.code, list(blocked))
            pair2 = np.zeros(n, dtype=bool)
            pair2[1:] = pair1[:-1]
            lone = sent_mask & (lay.count > 1) & ~pair1 & ~pair2  # fragments whose group takes the loop
            fast[lone] = False
            sent_mask &= ~lone
            sent = np.flatnonzero(sent_mask)
            p0, p1 = lay.pay0[sent].tolist(), lay.pay1[sent].tolist()
            payloads = [lines[i][a:b] for i, a, b in zip(sent.tolist(), p0, p1, strict=True)]
            if not payloads or not b"".join(payloads).translate(None, _ARMOR):
                return sent, payloads, pair1
            bad = sent[[k for k, p in enumerate(payloads) if p.translate(None, _ARMOR)]]
            fast[bad] = False
            plain[bad] = False
            sent_mask[bad] = False
            blocked.update(lay.code[bad[lay.count[bad] > 1]].tolist())

    def _loop(
        self,
        lines: Sequence[bytes],
        first_line: int,
        arrival: float | None,
        counts: Counts,
        dead: list[DeadLetter],
        lay: LineScan,
        plain_mask: npt.NDArray[np.bool_],
        loop_idx: I64,
        prev_at: I64,
        own: F64,
        items: list[Item],
        set_at: list[int],
        set_ts: list[float],
    ) -> None:
        """Step 2: the lines the first step did not work out, in order. Hot loop: state lives in locals.

        ``prev_at[j]`` is the last fast line before ``loop_idx[j]`` that set a receiver time; the loop
        takes it over when it is later than the last time the loop itself set. Lines that set a
        time are reported in ``set_at``/``set_ts``; messages are appended to ``items``.
        *Plain* lines (envelope read by the first step) skip the parsing; every other line takes
        the exact per-line code.
        """
        sel = loop_idx
        bangs = lay.bang[sel].tolist()
        stars_b = lay.star_b[sel].tolist()
        ok_bs = lay.ok_b[sel].tolist()
        stars_a = lay.star_a[sel].tolist()
        ok_as = lay.ok_a[sel].tolist()
        plains = plain_mask[sel].tolist()
        knowns = (lay.known[sel] & plain_mask[sel]).tolist()
        pay0s = lay.pay0[sel].tolist()
        pay1s = lay.pay1[sel].tolist()
        fills = lay.fill[sel].tolist()
        counts_f = lay.count[sel].tolist()
        numbers = lay.number[sel].tolist()
        seq0s, seq1s, chan0s, chan1s = lay.seq[:, sel].tolist()
        st0s = lay.st0[sel].tolist()
        st1s = lay.st1[sel].tolist()
        owns = own[sel].tolist()
        prev = prev_at.tolist()
        prev_ts = own[np.maximum(prev_at, 0)].tolist()
        max_line = self._max_line
        live_time = arrival if self._live else None
        seen0 = self._lines_seen
        last_time = self._last_time
        last_at = -1  # batch index of the line that set last_time (-1: before this batch)
        prefix_of = self._prefix
        fragment = self._fragment
        stations = self._stations
        nan = math.nan
        kinds = _SENTENCE_KINDS
        armor = _ARMOR
        bad_tag = BAD_TAG_CHECKSUM
        dead_at = self._dead
        ts: float | None
        for j, i in enumerate(sel.tolist()):
            if prev[j] > last_at:
                last_time = prev_ts[j]
                last_at = prev[j]
            line = lines[i]
            lineno = first_line + i
            b = bangs[j]
            if plains[j] and not (payload := line[pay0s[j] : pay1s[j]]).translate(None, armor):
                # A well-formed sentence whose envelope the first step read.
                receiver = ""
                if knowns[j]:
                    ts = owns[j]
                    if ts != ts:
                        ts = None
                    if st0s[j] >= 0:
                        key = line[st0s[j] : st1s[j]]
                        receiver = stations.get(key) or station_text(stations, key)
                else:
                    ts, receiver, err = prefix_of(line[:b], stars_a[j], ok_as[j], b)
                    if err is bad_tag:
                        counts.tag_blocks_ignored += 1
                    elif err is not None:
                        dead_at(dead, counts, lineno, err.reason, err.detail, line)
                        continue
                if ts is None:
                    tail = line[stars_b[j] + 3 :].strip()
                    if tail:
                        ts = trailing_epoch(tail)
                last_before = last_time
                if ts is not None:
                    last_time = ts
                    last_at = i
                    set_at.append(i)
                    set_ts.append(ts)
                    timed = True
                elif last_time is not None:
                    ts = last_time
                    timed = True
                else:
                    ts = live_time
                    timed = ts is not None
                cnt = counts_f[j]
                if cnt == 1:
                    items.append((i, payload, fills[j], lineno, nan if ts is None else ts, receiver, None))
                else:
                    group_key = (line[b + 1 : b + 6], line[seq0s[j] : seq1s[j]], line[chan0s[j] : chan1s[j]], cnt)
                    fragment(
                        group_key,
                        numbers[j],
                        cnt,
                        i,
                        seen0 + i + 1,
                        lineno,
                        line,
                        payload,
                        fills[j],
                        ts,
                        timed,
                        receiver,
                        last_before,
                        counts,
                        dead,
                        items,
                    )
                continue
            if len(line) > max_line:
                dead_at(dead, counts, lineno, "too_long", f"{len(line)} bytes > {max_line}", line)
                continue
            if b < 0:
                got = self._non_sentence(line, lineno, stars_a[j], ok_as[j], counts, dead)
                if got is not None:
                    last_time = got
                    last_at = i
                    set_at.append(i)
                    set_ts.append(got)
                continue
            sb = stars_b[j]
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
            if not ok_bs[j]:
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
                ts, receiver, err = prefix_of(line[:b], stars_a[j], ok_as[j], b)
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
                last_at = i
                set_at.append(i)
                set_ts.append(ts)
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
                items.append((i, payload, fill, lineno, nan if ts is None else ts, receiver, None))
                continue
            if not (cnt_f.isdigit() and num_f.isdigit() and len(cnt_f) == 1 and len(num_f) == 1):
                dead_at(dead, counts, lineno, "unparseable", f"fragment fields {cnt_f[:8]!r},{num_f[:8]!r}", line)
                continue
            cnt = cnt_f[0] - 48
            num = num_f[0] - 48
            if not 1 <= num <= cnt:
                dead_at(dead, counts, lineno, "unparseable", f"fragment {num} of {cnt}", line)
                continue
            fragment(
                (f0, fields[3], fields[4], cnt),
                num,
                cnt,
                i,
                seen0 + i + 1,
                lineno,
                line,
                payload,
                fill,
                ts,
                timed,
                receiver,
                last_before,
                counts,
                dead,
                items,
            )

    def _fragment(
        self,
        key: tuple[bytes, bytes, bytes, int],
        num: int,
        cnt: int,
        i: int,
        seen: int,
        lineno: int,
        line: bytes,
        payload: bytes,
        fill: int,
        ts: float | None,
        timed: bool,
        receiver: str,
        last_before: float | None,
        counts: Counts,
        dead: list[DeadLetter],
        items: list[Item],
    ) -> None:
        """Fragment ``num`` of ``cnt`` (the ``seen``-th line of the input, index ``i`` of the batch) of group ``key``.

        ``ts``/``timed``: the line's receiver time; ``last_before``: the latest receiver time before the line.
        """
        pending = self._pending
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
            return
        if group is None or len(group.frags) != num - 1:
            self._dead(dead, counts, lineno, "incomplete_multipart", f"orphan fragment {num} of {cnt}", line)
            return
        group.frags.append((lineno, line, payload))
        if num == cnt:
            del pending[key]
            counts.multipart_messages += 1
            g_ts = group.ts_s if group.timed else ts
            g_timed = group.timed or timed
            items.append(
                (
                    i,
                    b"".join(f[2] for f in group.frags),
                    fill,
                    group.frags[0][0],
                    g_ts if g_timed and g_ts is not None else math.nan,
                    group.receiver or receiver,
                    [(f[0], f[1]) for f in group.frags],
                )
            )

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
        result = parse_prefix(prefix, star_a, ok_a, bang)
        if len(self._prefix_cache) >= _CACHE_MAX:
            self._prefix_cache.clear()
        if ok_a or star_a < 0 or star_a >= bang:
            self._prefix_cache[prefix] = result
        return result

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

    def _subject_ids(self, mmsi: I64) -> Obj:
        """MMSIs as an object array of ``str`` (cached: a feed repeats a few thousand vessels)."""
        cache = self._ids
        uniq, where = np.unique(mmsi, return_inverse=True)
        texts = np.empty(uniq.size, dtype=object)
        texts[:] = [cache.get(v) or _mmsi_text(cache, v) for v in uniq.tolist()]
        out: Obj = texts[where]
        return out

    def _finish(self, msgs: Messages, counts: Counts, dead: list[DeadLetter]) -> DecodeResult:
        """Step 4: decode the payloads, blank "not available" values, count every message, build the batch."""
        m = len(msgs)
        if m == 0:
            return DecodeResult(positions=PositionBatch.empty(), dead=dead, counts=counts)
        dec = decode_payloads(msgs.payload, msgs.fill, msgs.ts)
        nlines = msgs.nlines
        for k, exc in sorted(dec.errors.items()):
            for line, raw in msgs.raws(k):
                self._dead(dead, counts, line, exc.reason, exc.detail, raw)
        _count_records(counts, "static", nlines[dec.is_static])
        is_pos = dec.is_pos
        _count_records(counts, "other", nlines[(dec.ais_type >= 0) & ~is_pos & ~dec.is_static])
        lon, lat, sog, cog, hdg = dec.lon, dec.lat, dec.sog, dec.cog, dec.heading
        # "not available" values never become numbers
        t27 = dec.ais_type == 27
        sog[(~t27) & (sog >= 102.3)] = np.nan
        cog[(~t27) & (cog >= 360.0)] = np.nan
        sog[t27 & (sog >= 63)] = np.nan
        cog[t27 & (cog >= 360)] = np.nan
        hdg[t27 | (hdg >= 360)] = np.nan
        no_pos = is_pos & ((lon == 181.0) | (lat == 91.0))
        _count_records(counts, "other", nlines[no_pos])
        counts.no_position += int(np.count_nonzero(no_pos))
        is_pos &= ~no_pos
        bad = is_pos & ~((np.abs(lon) <= 180.0) & (np.abs(lat) <= 90.0))
        for k in np.flatnonzero(bad).tolist():
            for line, raw in msgs.raws(k):
                self._dead(dead, counts, line, "out_of_range", f"lon {lon[k]} lat {lat[k]} outside WGS84", raw)
        is_pos &= ~bad
        ts = msgs.ts.copy()
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
            return DecodeResult(positions=PositionBatch.empty(), statics=dec.statics, dead=dead, counts=counts)
        k = int(sel.size)
        blank = np.full(k, "", dtype=object)
        batch = PositionBatch(
            subject_id=self._subject_ids(dec.mmsi[sel]),
            ts_s=ts[sel],
            lon_deg=lon[sel],
            lat_deg=lat[sel],
            sog_kn=sog[sel],
            cog_deg=cog[sel],
            heading_deg=hdg[sel],
            kind=np.zeros(k, dtype=np.uint8),
            carrier_id=blank,
            event=np.zeros(k, dtype=np.uint8),
            event_zone=blank.copy(),
            receiver=msgs.receiver[sel],
            source=np.full(k, self.source, dtype=object),
            line=msgs.line[sel],
        )
        return DecodeResult(positions=batch, statics=dec.statics, dead=dead, counts=counts)


def _mmsi_text(cache: dict[int, str], value: int) -> str:
    text = str(value)
    if len(cache) >= _IDS_MAX:
        cache.clear()
    cache[value] = text
    return text


def _count_records(counts: Counts, bucket: str, nlines: I64) -> None:
    """Count records taking ``nlines[k]`` lines each: one line per record in ``bucket``, the rest ``fragments``."""
    records = int(nlines.size)
    lines = int(nlines.sum())
    counts.input_lines += lines
    setattr(counts, bucket, getattr(counts, bucket) + records)
    counts.fragments += lines - records
