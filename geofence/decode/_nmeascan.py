"""Vectorised first pass over a batch of NMEA lines: checksums, plain sentences, their times and stations.

Why: a Python loop that splits, validates and parses the tag block of every line
costs several microseconds a line, more than pyais' own decoding. Most lines of a
real feed have one of a few shapes, so numpy works them out for the whole batch
at once on the joined bytes, mostly through 8-byte words read at any offset (an
overlapping ``uint64`` view), so that a field costs one gather per line, not a
matrix of bytes:

* where the first ``!`` and the ``*hh`` after it are, and whether the XOR checksum
  matches (also for the first ``*`` of the line where it precedes the ``!``: tag blocks,
  ``$`` sentences); the checksums come from one XOR prefix over 64-bit words;
* which lines are *plain*: ``!xxVDM,<count>,<number>,<seq>,<chan>,<payload>,<fill>[,...]*hh``
  with a valid checksum, single-digit fragment fields, a non-empty payload and fill bits
  0-5, and where the payload is (its characters are checked by the decoder, for all plain
  lines at once); which of them are two-line groups on adjacent lines;
* for plain lines, the receiver time and station when the line starts with a
  standard tag block (``\\s:station,c:unix*hh\\``, one ``c:`` and at most one ``s:``)
  or with a unix time and a space or tab; digits are read eight at a time (SWAR) and a
  time ``N / 10**k`` with ``N < 2**53`` is exactly what ``float()`` gives for the text;
* Gatehouse ``$PGHP,1,yyyy,mm,dd,hh,mm,ss,ms,...*hh`` time lines with a valid checksum
  and plain digit fields: their time, with the arithmetic of
  :func:`geofence.decode.tagblock.parse_pghp`;
* which lines are skipped without a look: empty, ``#`` comments, ``$`` sentences other
  than ``$PGHP,1,``.

Every line this pass is unsure about (another prefix, a bad tag checksum, several
``c:`` keys, a fraction in ``c:``, a trailing time, a ``$PGHP`` field that is not plain
digits...) is left to the exact per-line code in :mod:`geofence.decode.nmea`; the
tests check both paths against each other on every real file and on generated lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from geofence.decode.tagblock import MAX_EPOCH_S

__all__ = ["LineScan", "scan_lines"]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.bool_]

_HEX = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789ABCDEF"):
    _HEX[_c] = _i
for _i, _c in enumerate(b"abcdef"):
    _HEX[_c] = 10 + _i
_FAR = np.iinfo(np.int64).max // 4  # "no such position"
_FRONT = 16  # zero bytes before the batch: word reads ending at a line's start stay inside the buffer
_FRONT_BYTES = bytes(_FRONT)
_PAD = 192  # zero bytes after the batch: every window read below stays inside the buffer
_C_DIGITS = 14  # longest c: value read vectorised (13 digits = epoch milliseconds)
_MS_THRESHOLD = 1e11
_PGHP = b"$PGHP,1,"
_PGHP_WORD = np.frombuffer(_PGHP, dtype="<u8")[0]
#: Bytes 3..10 after "!": "VD", "M" or "O" (bit 1 of that byte masked), ",", count digit, ",", number digit, ",".
_HEAD = np.frombuffer(b"VDM,\0,\0,", dtype="<u8")[0]
_HEAD_MASK = np.frombuffer(b"\xff\xff\xfd\xff\0\xff\0\xff", dtype="<u8")[0]
_TAG_WINDOW = 96  # tag blocks longer than this take the exact per-line code
#: ``_LOW[r]``: the low ``r`` bytes of a little-endian 64-bit word.
_LOW = np.array([(1 << (8 * r)) - 1 for r in range(8)], dtype=np.uint64)


@dataclass(frozen=True, slots=True)
class LineScan:
    """Per-line results of :func:`scan_lines` (numpy arrays, one entry per line).

    Positions are relative to each line, -1 when absent. ``plain`` lines are well-formed
    sentences whose envelope was read here: fragment ``number`` of ``count``, sequence id
    ``line[seq[0]:seq[1]]``, channel ``line[seq[2]:seq[3]]``, payload ``line[pay0:pay1]``,
    ``fill`` bits, and ``code``, a number for the multipart group key. Where ``known`` is
    set, their receiver time (``own_ts``, NaN when the line has none) and station
    (``line[st0:st1]``, none when ``st0`` < 0) were read too. ``fast`` lines were worked out
    completely: known single-part sentences, two-line groups on adjacent lines (``pair``
    marks the first line), and, where ``time_line`` is set, ``$PGHP`` time lines whose time
    is ``own_ts``. ``ok_a``, the checksum of the line's first ``*``, is computed only where
    that ``*`` comes before the ``!`` or the line has none (False elsewhere). ``active``
    lists the lines the decoder must look at (all but the skipped ones, ``n_skip`` of them).

    The decoder reads ``active``, ``fast`` and ``plain`` with ``np.asarray`` and uses nothing
    else for a line that is neither fast nor plain, so replacing them (lists do) forces the
    exact per-line code for every line; the tests do that.
    """

    active: I64 | list[int]
    fast: Mask | list[bool]
    plain: Mask | list[bool]
    n_skip: int
    time_line: Mask
    known: Mask
    count: I64
    number: I64
    code: I64
    pair: Mask
    seq: I64
    bang: I64
    star_b: I64
    ok_b: Mask
    star_a: I64
    ok_a: Mask
    pay0: I64
    pay1: I64
    fill: I64
    own_ts: F64
    st0: I64
    st1: I64


def _at(positions: I64, k: I64) -> I64:
    """``positions[k]``, and a position past every line where ``k`` is past the end."""
    if positions.size == 0:
        return np.full(k.shape, _FAR, dtype=np.int64)
    out: I64 = np.where(k < positions.size, positions[np.minimum(k, positions.size - 1)], _FAR)
    return out


def _first_at_or_after(positions: I64, starts: I64, sentinel: int) -> I64:
    k = np.searchsorted(positions, starts)
    ext = np.append(positions, sentinel)
    out: I64 = ext[k]
    return out


class _XorPrefix:
    """XOR of any byte range of the batch, from one prefix XOR over 64-bit words.

    ``P(p)``, the XOR of bytes ``[0, p)``, is the XOR of the word prefix before ``p``'s word
    and of the low bytes of that word; the XOR of ``[a, b)`` is ``P(a) ^ P(b)``. Eight times
    fewer elements than a byte-wise prefix (numpy's uint8 ``accumulate`` is slow).
    """

    def __init__(self, padded: U8) -> None:
        self._words = padded.view("<u8")
        self._prefix = np.zeros(self._words.size + 1, dtype=np.uint64)
        np.bitwise_xor.accumulate(self._words, out=self._prefix[1:])

    def _raw(self, p: I64) -> npt.NDArray[np.uint64]:
        k = p >> 3
        out: npt.NDArray[np.uint64] = self._prefix[k] ^ (self._words[k] & _LOW[p & 7])
        return out

    def xor(self, a: I64, b: I64) -> U8:
        """XOR of the bytes ``[a, b)`` per entry."""
        x = self._raw(a) ^ self._raw(b)
        x ^= x >> np.uint64(32)
        x ^= x >> np.uint64(16)
        x ^= x >> np.uint64(8)
        out: U8 = (x & np.uint64(0xFF)).astype(np.uint8)
        return out


def scan_lines(lines: Sequence[bytes], max_line: int) -> LineScan:
    """First pass over one batch of lines (see the module docstring)."""
    n = len(lines)
    lens = np.fromiter(map(len, lines), dtype=np.int64, count=n)
    ends = np.cumsum(lens) + _FRONT
    starts = ends - lens
    total = int(ends[-1]) if n else _FRONT
    padded = np.frombuffer(b"".join([_FRONT_BYTES, *lines, bytes(_PAD + (-total) % 8)]), dtype=np.uint8)
    buf = padded[:total]  # positions in buf are positions in padded
    sentinel = total + _PAD // 2
    ok_len = lens <= max_line
    xor = _XorPrefix(padded)
    words = _words(padded)

    # -- checksums
    bang_pos = np.flatnonzero(buf == 33)
    star_pos = np.flatnonzero(buf == 42)
    bang = _first_at_or_after(bang_pos, starts, sentinel)
    has_bang = bang < ends
    star_b = _first_at_or_after(star_pos, np.where(has_bang, bang, starts), sentinel)
    valid_b = has_bang & (star_b + 3 <= ends)
    star_a = _first_at_or_after(star_pos, starts, sentinel)
    valid_a = (star_a + 3 <= ends) & (lens > 0)

    def verify(body_start: I64, star: I64, valid: Mask) -> Mask:
        s = np.where(valid, star, 0)
        b0 = np.where(valid, np.minimum(body_start, s), 0)
        w = words[s]  # "*", then the two hex digits
        h1 = _HEX[((w >> _U64(8)) & _U64(0xFF)).astype(np.intp)]
        h2 = _HEX[((w >> _U64(16)) & _U64(0xFF)).astype(np.intp)]
        ok: Mask = valid & (h1 < 16) & (h2 < 16) & (xor.xor(b0, s) == (h1 << 4) + h2)
        return ok

    ok_b = verify(bang + 1, star_b, valid_b)
    # the first "*" matters only before the "!" (tag blocks) or without one ("$" sentences, bare tag blocks)
    before = np.flatnonzero(valid_a & (star_a < bang))
    ok_a = np.zeros(n, dtype=bool)
    ok_a[before] = verify(starts[before] + 1, star_a[before], np.ones(before.size, dtype=bool))

    # -- plain sentences: "!" + talker + "VDM"/"VDO" + "," + count + "," + number + "," + seq + "," + chan + ","
    #    + payload + "," + fill + "*hh", count and number single digits 1-9 (number <= count), seq and chan
    #    0 or 1 byte. The header is read as three 8-byte words after "!", the payload ends 2 bytes before "*".
    #    (Payload characters are checked by the decoder.)
    b = np.where(ok_b, bang, 0)
    w0, w3, w11 = words[b], words[b + 3], words[b + 11]
    plain = ok_b & ok_len & ((w3 & _HEAD_MASK) == _HEAD)
    cnt = ((w3 >> _U64(32)) & _U64(0xFF)).astype(np.int64) - 48
    num = ((w3 >> _U64(48)) & _U64(0xFF)).astype(np.int64) - 48
    plain &= (cnt >= 1) & (cnt <= 9) & (num >= 1) & (num <= cnt)
    plain &= ((w0 >> _U64(8)) & _U64(0xFF)) != 44
    plain &= ((w0 >> _U64(16)) & _U64(0xFF)) != 44
    seq_len = np.where((w11 & _U64(0xFF)) == 44, 0, 1)  # byte 11
    plain &= ((w11 >> (seq_len * 8).astype(np.uint64)) & _U64(0xFF)) == 44
    chan_len = np.where(((w11 >> ((seq_len + 1) * 8).astype(np.uint64)) & _U64(0xFF)) == 44, 0, 1)
    c4 = 12 + seq_len + chan_len  # the comma before the payload
    plain &= ((w11 >> ((c4 - 11) * 8).astype(np.uint64)) & _U64(0xFF)) == 44
    sb = np.where(ok_b, star_b, 0)
    pay0 = b + c4 + 1
    comma = np.flatnonzero(buf == 44)
    pay1 = np.minimum(_at(comma, np.searchsorted(comma, pay0)), sentinel)  # the payload ends at the next ","
    fill = padded[pay1 + 1].astype(np.int64) - 48
    # then the fill bits, and "*" or further fields (ignored, as B&G GoFree logs have them)
    plain &= (pay1 > pay0) & (pay1 + 2 <= sb) & ((padded[pay1 + 2] == 44) | (pay1 + 2 == sb))
    plain &= (fill >= 0) & (fill <= 5)

    # -- time and station of plain lines
    rel_bang = bang - starts
    first = padded[starts]
    own = np.full(n, np.nan)
    known = plain & (rel_bang == 0)
    st0 = np.full(n, -1, dtype=np.int64)
    st1 = np.full(n, -1, dtype=np.int64)
    tag = plain & (rel_bang >= 2) & (rel_bang <= _TAG_WINDOW) & (first == 92)
    tag &= padded[np.maximum(bang - 1, 0)] == 92
    if tag.any():
        _tag_blocks(padded, words, starts, bang, star_a, ok_a, tag, own, st0, st1, known)
    lead = plain & (rel_bang >= 2) & (first >= 48) & (first <= 57)
    if lead.any():
        _leading_times(padded, words, starts, bang, lead, own, known)
    tail = sb + 3 < ends
    ready = known & ~(np.isnan(own) & tail)  # a trailing receiver time needs the exact code
    fast = ready & (cnt == 1)
    q0 = b + 11
    r0 = q0 + seq_len + 1
    # multipart group key: sentence id, sequence id, channel, count (an empty field codes as 256)
    code = ((w0 >> _U64(8)) & _U64(0xFFFFFF)).astype(np.int64)  # talker and "VDM"/"VDO" differ in bytes 1..3, 5
    code = code * 2 + (((w3 >> _U64(17)) & _U64(1)).astype(np.int64))  # "M" or "O"
    code = (code * 257 + np.where(seq_len == 1, padded[q0], 256)) * 257 + np.where(chan_len == 1, padded[r0], 256)
    code = code * 10 + cnt
    pair = _pairs(ready, plain, cnt, num, code)
    fast[:-1] |= pair
    fast[1:] |= pair

    # -- lines skipped without a look: empty, "#...", "$..." other than "$PGHP,1,"
    dollar = (first == 36) & ~has_bang & ok_len
    is_pghp = dollar & (lens >= len(_PGHP)) & (words[starts] == _PGHP_WORD)
    skip = (lens == 0) | (((first == 35) & ~has_bang & ok_len) | (dollar & ~is_pghp))
    time_line = np.zeros(n, dtype=bool)
    pghp = is_pghp & ok_a
    if pghp.any():
        _pghp_times(words, starts, star_a, comma, pghp, own, time_line)
        fast |= time_line
    return LineScan(
        active=np.flatnonzero(~skip),
        fast=fast,
        plain=plain,
        n_skip=int(np.count_nonzero(skip)),
        time_line=time_line,
        known=known,
        count=cnt,
        number=num,
        code=code,
        pair=np.append(pair, False),
        seq=np.stack([q0, q0 + seq_len, r0, r0 + chan_len]) - starts,
        bang=np.where(has_bang, rel_bang, -1),
        star_b=np.where(valid_b, star_b - starts, -1),
        ok_b=ok_b,
        star_a=np.where(valid_a, star_a - starts, -1),
        ok_a=ok_a,
        pay0=pay0 - starts,
        pay1=pay1 - starts,
        fill=fill,
        own_ts=own,
        st0=np.where(st0 >= 0, st0 - starts, -1),
        st1=np.where(st0 >= 0, st1 - starts, -1),
    )


def _pairs(ready: Mask, plain: Mask, cnt: I64, num: I64, code: I64) -> Mask:
    """Two-part groups on adjacent lines that the decoder can assemble without the group bookkeeping.

    ``out[i]``: lines ``i`` and ``i + 1`` are fragments 1 and 2 of 2 of the same group, both plain with
    known times. Such a group can neither expire (its fragments are adjacent) nor meet an orphan. It is
    left to the loop when another multipart line of the batch has the same key (it could supersede or
    be superseded); the decoder also leaves those whose key is still pending from an earlier batch.
    A fragment the first step could not read never has the key of a plain one: the exact code takes a
    line into a group only when its envelope has every property that makes a line plain, except that
    its sequence id or channel may be longer than one character, which gives a different key.
    """
    n = cnt.size
    if n < 2:
        return np.zeros(max(n - 1, 0), dtype=bool)
    two = ready & (cnt == 2)
    pair: Mask = two[:-1] & two[1:] & (num[:-1] == 1) & (num[1:] == 2) & (code[:-1] == code[1:])
    if not pair.any():
        return pair
    in_pair = np.zeros(n, dtype=bool)
    in_pair[:-1] |= pair
    in_pair[1:] |= pair
    others = plain & (cnt > 1) & ~in_pair
    if others.any():
        pair &= ~np.isin(code[:-1], code[others])
    return pair


def _tag_blocks(
    padded: U8,
    words: npt.NDArray[np.uint64],
    starts: I64,
    bang: I64,
    star_a: I64,
    ok_a: Mask,
    tag: Mask,
    own: F64,
    st0: I64,
    st1: I64,
    known: Mask,
) -> None:
    """``\\...\\`` right before ``!``: read one ``c:`` (digits only) and at most one ``s:``; mark those lines known.

    Works on a window of the first bytes of each tagged line (as wide as the longest tag block in
    the batch), not on the whole batch.
    """
    rows = np.flatnonzero(tag)
    s = starts[rows]
    close = bang[rows] - 1 - s  # relative position of the closing backslash
    width = int(close.max()) + _C_DIGITS + 2
    star = star_a[rows] - s
    has_star = star < close
    tag_end = np.where(has_star, star, close)
    col = np.arange(width)[None, :]
    win = padded[s[:, None] + col]
    inside = (col >= 1) & (col < close[:, None])
    ok = (~has_star | ok_a[rows]) & ~((win == 92) & inside).any(axis=1)
    ok &= np.count_nonzero((win == 42) & inside, axis=1) <= 1
    key_start = np.zeros(win.shape, dtype=bool)
    key_start[:, 1:] = (win[:, :-1] == 92) | (win[:, :-1] == 44)
    key_start[:, :-1] &= win[:, 1:] == 58
    key_start[:, -1] = False
    key_start &= (col >= 1) & (col < tag_end[:, None])
    c_key = (win == 99) & key_start
    s_key = (win == 115) & key_start
    ok &= (np.count_nonzero(c_key, axis=1) <= 1) & (np.count_nonzero(s_key, axis=1) <= 1)
    # c: digits
    has_c = ok & c_key.any(axis=1)
    p = np.argmax(c_key, axis=1) + 2
    digits = np.take_along_axis(win, np.minimum(p[:, None] + np.arange(_C_DIGITS)[None, :], width - 1), axis=1)
    is_digit = (digits >= 48) & (digits <= 57)
    length = np.where(is_digit.all(axis=1), _C_DIGITS, np.argmin(is_digit, axis=1))
    end = p + length
    term = win[np.arange(len(rows)), np.minimum(end, width - 1)]
    good = (length >= 1) & (length < _C_DIGITS) & ((end == tag_end) | (term == 44))
    number, _ = _digits16(words, s + end, length)
    value = number.astype(np.float64)
    value = np.where(value > _MS_THRESHOLD, value / 1000.0, value)
    good &= (value >= 0.0) & (value < MAX_EPOCH_S)
    ok &= ~has_c | good
    got_c = ok & has_c
    own[rows[got_c]] = value[got_c]
    # s: station, up to the next ',' or the end of the body
    has_s = ok & s_key.any(axis=1)
    q = np.argmax(s_key, axis=1) + 2
    after = (win == 44) & (col >= q[:, None])
    stop = np.where(after.any(axis=1), np.argmax(after, axis=1), width)
    st0[rows[has_s]] = (s + q)[has_s]
    st1[rows[has_s]] = (s + np.minimum(stop, tag_end))[has_s]
    known[rows[ok]] = True


_U64 = np.uint64
_ZEROS = _U64(0x3030303030303030)  # "00000000"
_NIBBLE_HI = _U64(0xF0F0F0F0F0F0F0F0)
_SIXES = _U64(0x0606060606060606)
_THREES = _U64(0x3333333333333333)
#: ``_TOP[k]``: the top ``k`` bytes of a 64-bit word (k = 0..8).
_TOP = np.array([((1 << 64) - 1) ^ ((1 << (64 - 8 * k)) - 1) for k in range(9)], dtype=np.uint64)
_POW10_U = 10 ** np.arange(20, dtype=np.uint64)


def _words(padded: U8) -> npt.NDArray[np.uint64]:
    """``out[p]``: the eight bytes ``padded[p : p + 8]`` as one little-endian word (an overlapping view)."""
    return np.ndarray((padded.size - 7,), dtype="<u8", buffer=padded, strides=(1,))


def _digits8(words: npt.NDArray[np.uint64], end: I64, length: I64) -> tuple[npt.NDArray[np.uint64], Mask]:
    """Value of the ASCII digits ``[end - length, end)`` (0 <= length <= 8) per entry, and whether all are digits.

    SWAR: the eight bytes ending at ``end`` in one word, the bytes before the field replaced by
    ``"0"``, checked and converted with a few word operations (no per-byte matrix).
    """
    top = _TOP[np.clip(length, 0, 8)]
    w = (words[np.maximum(end - 8, 0)] & top) | (_ZEROS & ~top)
    ok: Mask = ((w & _NIBBLE_HI) | (((w + _SIXES) & _NIBBLE_HI) >> _U64(4))) == _THREES
    v = w - _ZEROS
    v = (v * _U64(10) + (v >> _U64(8))) & _U64(0x00FF00FF00FF00FF)
    v = (v * _U64(100) + (v >> _U64(16))) & _U64(0x0000FFFF0000FFFF)
    v = (v * _U64(10000) + (v >> _U64(32))) & _U64(0xFFFFFFFF)
    return v, ok & (length >= 0) & (length <= 8)


def _digits16(words: npt.NDArray[np.uint64], end: I64, length: I64) -> tuple[npt.NDArray[np.uint64], Mask]:
    """:func:`_digits8` for up to 16 digits (two words)."""
    low, ok_low = _digits8(words, end, np.minimum(length, 8))
    high, ok_high = _digits8(words, end - 8, length - 8)
    high_len = length - 8
    value = np.where(high_len > 0, high * _U64(100_000_000) + low, low)
    return value, ok_low & ((high_len <= 0) | ok_high) & (length <= 16)


def _decimal(words: npt.NDArray[np.uint64], dots: I64, begin: I64, end: I64) -> tuple[F64, Mask]:
    """``float()`` of the ASCII decimal ``[begin, end)`` per entry: ``digits`` or ``digits.digits``.

    ``dots`` holds the positions of every ``.`` in the batch. Returns ``(value, ok)``; ``ok`` is
    False for any other text and for 16 or more digits. The value is ``N / 10**k`` for the digit
    string ``N`` and ``k`` digits after the point: both exact doubles (``N`` < 2**53), so their
    IEEE quotient is the correctly rounded value of the text, which is what ``float()`` returns.
    """
    k = np.searchsorted(dots, begin)
    dot = _at(dots, k)
    has_dot = dot < end
    int_end = np.where(has_dot, dot, end)
    frac_len = np.where(has_dot, end - dot - 1, 0)
    whole, ok_w = _digits16(words, int_end, int_end - begin)
    frac, ok_f = _digits8(words, end, frac_len)
    ok = ok_w & ok_f & (int_end > begin) & (~has_dot | ((frac_len >= 1) & (_at(dots, k + 1) >= end)))
    ok &= (int_end - begin) + frac_len <= 15
    scale = _POW10_U[np.clip(frac_len, 0, 8)]
    value: F64 = (whole * scale + frac).astype(np.float64) / scale.astype(np.float64)
    return value, ok


def _leading_times(
    padded: U8,
    words: npt.NDArray[np.uint64],
    starts: I64,
    bang: I64,
    lead: Mask,
    own: F64,
    known: Mask,
) -> None:
    """A unix time (digits, optional fraction) then one space or tab before ``!``; mark those lines known."""
    rows = np.flatnonzero(lead)
    end = bang[rows] - 1
    sep = padded[end]
    value, ok = _decimal(words, np.flatnonzero(padded == 46), starts[rows], end)
    ok &= (sep == 32) | (sep == 9)
    value = np.where(value > _MS_THRESHOLD, value / 1000.0, value)
    ok &= np.isfinite(value) & (value >= 0.0) & (value < MAX_EPOCH_S)
    own[rows[ok]] = value[ok]
    known[rows[ok]] = True


def _days_from_civil(y: I64, m: I64, d: I64) -> I64:
    """Days since 1970-01-01 of a proleptic Gregorian date, linear in ``d`` (as ``calendar.timegm``: Feb 31 = Mar 3).

    H. Hinnant's ``days_from_civil``; ``y`` must be positive.
    """
    y = y - (m <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((m + 9) % 12) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    out: I64 = era * 146097 + doe - 719468
    return out


def _pghp_times(
    words: npt.NDArray[np.uint64], starts: I64, star_a: I64, comma: I64, cand: Mask, own: F64, time_line: Mask
) -> None:
    """``$PGHP,1,yyyy,mm,dd,hh,mm,ss,ms,...*hh`` lines (checksum already valid): their time, as ``parse_pghp``.

    ``comma`` holds the positions of every ``,`` in the batch. A line qualifies when its date
    fields (the 3rd to 9th of the sentence body, before ``*``) are 1 to 8 plain digits each and
    the date passes ``parse_pghp``'s range checks with a year in 1970..2099; anything else
    (signs, spaces, missing fields, other years) is left to the exact code, which gives the same
    time or the dead letter.
    """
    rows = np.flatnonzero(cand)
    k0 = np.searchsorted(comma, starts[rows])  # the comma after "$PGHP"
    c = _at(comma, k0[:, None] + np.arange(9)[None, :])  # the first nine commas of each line
    star = star_a[rows]
    ok = c[:, 7] < star  # at least nine fields before "*"
    c[:, 8] = np.minimum(c[:, 8], star)
    c = np.where(ok[:, None], c, starts[rows, None] + 8)  # rejected lines: empty fields, reads stay in the buffer
    end = c[:, 2:9]
    length = end - c[:, 1:8] - 1
    value, digits_ok = _digits8(words, end, length)
    ok &= (digits_ok & (length >= 1)).all(axis=1)
    y, mo, d, h, mi, sec, ms = value.astype(np.int64).T
    ok &= (mo >= 1) & (mo <= 12) & (d >= 1) & (d <= 31) & (h < 24) & (mi < 60) & (sec <= 60) & (ms < 1000)
    ok &= (y >= 1970) & (y < 2100)
    if not ok.any():
        return
    rows, y, mo, d, h, mi, sec, ms = (a[ok] for a in (rows, y, mo, d, h, mi, sec, ms))
    whole = _days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec
    ts = whole.astype(np.float64) + ms / 1000.0
    good = (ts >= 0.0) & (ts < MAX_EPOCH_S)
    own[rows[good]] = ts[good]
    time_line[rows[good]] = True
