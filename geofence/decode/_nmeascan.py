"""Vectorised first pass over a batch of NMEA lines: checksums, plain sentences, their times and stations.

Why: a Python loop that splits, validates and parses the tag block of every line
costs several microseconds a line, more than pyais' own decoding. Most lines of a
real feed have one of a few shapes, so numpy works them out for the whole batch
at once on the joined bytes:

* where the first ``!`` and the ``*hh`` after it are, and whether the XOR checksum
  matches (also for the first ``*`` of the line: ``$`` sentences, tag blocks);
* which lines are *plain*: ``!xxVDM,1,1,<seq>,<chan>,<payload>,<fill>*hh`` with a valid
  checksum, a non-empty payload and fill bits 0-5, and where the payload is (its
  characters are checked per line with ``bytes.translate``);
* for plain lines, the receiver time and station when the line starts with a
  standard tag block (``\\s:station,c:unix*hh\\``, one ``c:`` and at most one ``s:``)
  or with a unix time and spaces; numbers are converted by numpy's float parser, so
  the result equals ``float()`` of the same text;
* which lines are skipped without a look: empty, ``#`` comments, ``$`` sentences other
  than ``$PGHP,1,``.

Every line this pass is unsure about (another prefix, a bad tag checksum, several
``c:`` keys, a fraction in ``c:``, a trailing time...) is left to the exact per-line
code in :mod:`geofence.decode.nmea`; the tests check both paths against pyais.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from geofence.decode.tagblock import MAX_EPOCH_S

__all__ = ["LineScan", "scan_lines"]

I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

_HEX = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789ABCDEF"):
    _HEX[_c] = _i
for _i, _c in enumerate(b"abcdef"):
    _HEX[_c] = 10 + _i
#: 1 for bytes allowed in an AIS payload (6-bit armoring: '0'..'W' and '`'..'w').
_ARMOR_OK = np.zeros(256, dtype=np.int64)
_ARMOR_OK[48:88] = 1
_ARMOR_OK[96:120] = 1
_PAD = 160
_C_DIGITS = 14  # longest c: value read vectorised (13 digits = epoch milliseconds)
_LEAD_WIDTH = 21  # longest leading unix time read vectorised ("1452468552.123456789")
_MS_THRESHOLD = 1e11
_PGHP = np.frombuffer(b"$PGHP,1,", dtype=np.uint8)
_TAG_WINDOW = 96  # tag blocks longer than this take the exact per-line code


@dataclass(frozen=True, slots=True)
class LineScan:
    """Per-line results of :func:`scan_lines`, as Python lists (the per-line loop indexes them).

    Positions are relative to each line, -1 when absent. ``fast`` lines are plain single-part
    sentences whose time (``own_ts``, NaN when the line has none) and station (``line[st0:st1]``,
    none when ``st0`` < 0) were read here; ``plain`` lines are plain but need the exact prefix code.
    ``active`` lists the lines the loop must visit (all but the skipped ones, ``n_skip`` of them).
    """

    active: list[int]
    bang: list[int]
    star_b: list[int]
    ok_b: list[bool]
    star_a: list[int]
    ok_a: list[bool]
    plain: list[bool]
    fast: list[bool]
    pay0: list[int]
    pay1: list[int]
    fill: list[int]
    own_ts: list[float]
    st0: list[int]
    st1: list[int]
    n_skip: int


def _first_at_or_after(positions: I64, starts: I64, sentinel: int) -> I64:
    k = np.searchsorted(positions, starts)
    ext = np.append(positions, sentinel)
    return ext[k]


def _numbers(padded: npt.NDArray[np.uint8], start: I64, length: I64, width: int) -> npt.NDArray[np.float64]:
    """``float()`` of the ASCII number ``padded[start:start+length]`` per row (numpy's exact parser)."""
    mat = padded[start[:, None] + np.arange(width)[None, :]].copy()
    mat[np.arange(width)[None, :] >= length[:, None]] = 0
    text = np.frombuffer(mat.tobytes(), dtype=f"S{width}")
    out: npt.NDArray[np.float64] = text.astype(np.float64)
    return out


def scan_lines(lines: Sequence[bytes], max_line: int) -> LineScan:
    """First pass over one batch of lines (see the module docstring)."""
    n = len(lines)
    lens = np.fromiter(map(len, lines), dtype=np.int64, count=n)
    ends = np.cumsum(lens)
    starts = ends - lens
    buf = np.frombuffer(b"".join(lines), dtype=np.uint8)
    total = int(buf.size)
    sentinel = total + _PAD // 2
    padded = np.concatenate([buf, np.zeros(_PAD, dtype=np.uint8)])
    xor_prefix = np.zeros(total + 1, dtype=np.uint8)
    if total:
        np.bitwise_xor.accumulate(buf, out=xor_prefix[1:])
    ok_len = lens <= max_line

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
        h1 = _HEX[padded[s + 1]]
        h2 = _HEX[padded[s + 2]]
        got = h1.astype(np.int64) * 16 + h2
        calc = xor_prefix[s] ^ xor_prefix[b0]
        ok: Mask = valid & (h1 < 16) & (h2 < 16) & (calc == got)
        return ok

    ok_b = verify(bang + 1, star_b, valid_b)
    ok_a = verify(starts + 1, star_a, valid_a)

    # -- plain single-part sentences: "!" + talker + "VDM"/"VDO" + ",1,1," + seq + "," + chan + "," + payload
    #    + "," + fill + "*hh". The header is read from a small window after "!", the payload ends 2 bytes
    #    before "*". (Payload characters are checked per line, with bytes.translate.)
    b = np.where(ok_b, bang, 0)
    head = padded[b[:, None] + np.arange(16)[None, :]]
    plain = ok_b & ok_len & (head[:, 3] == 86) & (head[:, 4] == 68) & ((head[:, 5] == 77) | (head[:, 5] == 79))
    plain &= (head[:, 6] == 44) & (head[:, 7] == 49) & (head[:, 8] == 44) & (head[:, 9] == 49)
    plain &= (head[:, 10] == 44) & (head[:, 1] != 44) & (head[:, 2] != 44)
    # seq id and channel: 0 or 1 byte each
    seq_len = np.where(head[:, 11] == 44, 0, 1)
    c3 = 11 + seq_len
    plain &= head[np.arange(n), np.minimum(c3, 15)] == 44
    chan_len = np.where(head[np.arange(n), np.minimum(c3 + 1, 15)] == 44, 0, 1)
    c4 = c3 + 1 + chan_len
    plain &= head[np.arange(n), np.minimum(c4, 15)] == 44
    sb = np.where(ok_b, star_b, 0)
    pay0 = b + c4 + 1
    pay1 = sb - 2
    fill = padded[np.maximum(sb - 1, 0)].astype(np.int64) - 48
    plain &= (padded[np.maximum(pay1, 0)] == 44) & (pay1 > pay0) & (fill >= 0) & (fill <= 5)

    # -- time and station of plain lines
    rel_bang = bang - starts
    first = padded[np.minimum(starts, total + _PAD - 1)]
    own = np.full(n, np.nan)
    fast = plain & (rel_bang == 0)
    st0 = np.full(n, -1, dtype=np.int64)
    st1 = np.full(n, -1, dtype=np.int64)
    tag = plain & (rel_bang >= 2) & (rel_bang <= _TAG_WINDOW) & (first == 92)
    tag &= padded[np.maximum(bang - 1, 0)] == 92
    if tag.any():
        _tag_blocks(padded, starts, bang, star_a, ok_a, tag, own, st0, st1, fast)
    lead = plain & (rel_bang >= 2) & (first >= 48) & (first <= 57)
    if lead.any():
        _leading_times(padded, starts, bang, lead, own, fast)
    tail = sb + 3 < ends
    fast &= ~(np.isnan(own) & tail)  # a trailing receiver time needs the exact code

    # -- lines skipped without a look: empty, "#...", "$..." other than "$PGHP,1,"
    dollar = (first == 36) & ~has_bang & ok_len
    is_pghp = dollar & (lens >= 8)
    for j, ch in enumerate(_PGHP.tolist()):
        is_pghp &= padded[np.minimum(starts + j, total + _PAD - 1)] == ch
    skip = (lens == 0) | (((first == 35) & ~has_bang & ok_len) | (dollar & ~is_pghp))
    active = np.flatnonzero(~skip)
    return LineScan(
        active=active.tolist(),
        bang=np.where(has_bang, rel_bang, -1).tolist(),
        star_b=np.where(valid_b, star_b - starts, -1).tolist(),
        ok_b=ok_b.tolist(),
        star_a=np.where(valid_a, star_a - starts, -1).tolist(),
        ok_a=ok_a.tolist(),
        plain=plain.tolist(),
        fast=fast.tolist(),
        pay0=(pay0 - starts).tolist(),
        pay1=(pay1 - starts).tolist(),
        fill=fill.tolist(),
        own_ts=own.tolist(),
        st0=np.where(st0 >= 0, st0 - starts, -1).tolist(),
        st1=np.where(st0 >= 0, st1 - starts, -1).tolist(),
        n_skip=int(skip.sum()),
    )


def _tag_blocks(
    padded: npt.NDArray[np.uint8],
    starts: I64,
    bang: I64,
    star_a: I64,
    ok_a: Mask,
    tag: Mask,
    own: npt.NDArray[np.float64],
    st0: I64,
    st1: I64,
    fast: Mask,
) -> None:
    """``\\...\\`` right before ``!``: read one ``c:`` (digits only) and at most one ``s:``; mark those lines fast.

    Works on a window of the first bytes of each tagged line, not on the whole batch.
    """
    rows = np.flatnonzero(tag)
    w = _TAG_WINDOW
    s = starts[rows]
    close = bang[rows] - 1 - s  # relative position of the closing backslash
    star = star_a[rows] - s
    has_star = star < close
    tag_end = np.where(has_star, star, close)
    win = padded[s[:, None] + np.arange(w + _C_DIGITS + 2)[None, :]]
    col = np.arange(w + _C_DIGITS + 2)[None, :]
    inside = (col >= 1) & (col < close[:, None])
    ok = (~has_star | ok_a[rows]) & (((win == 92) & inside).sum(axis=1) == 0)
    ok &= ((win == 42) & inside).sum(axis=1) <= 1
    key_start = np.zeros(win.shape, dtype=bool)
    key_start[:, 1:] = (win[:, :-1] == 92) | (win[:, :-1] == 44)
    colon_next = np.zeros(win.shape, dtype=bool)
    colon_next[:, :-1] = win[:, 1:] == 58
    in_body = (col >= 1) & (col < tag_end[:, None])
    c_key = (win == 99) & colon_next & key_start & in_body
    s_key = (win == 115) & colon_next & key_start & in_body
    ok &= (c_key.sum(axis=1) <= 1) & (s_key.sum(axis=1) <= 1)
    # c: digits
    has_c = ok & c_key.any(axis=1)
    p = np.argmax(c_key, axis=1) + 2
    digits = np.take_along_axis(win, np.minimum(p[:, None] + np.arange(_C_DIGITS)[None, :], win.shape[1] - 1), axis=1)
    digits = digits.astype(np.int64) - 48
    is_digit = (digits >= 0) & (digits <= 9)
    length = np.where(is_digit.all(axis=1), _C_DIGITS, np.argmin(is_digit, axis=1))
    end = p + length
    term = win[np.arange(len(rows)), np.minimum(end, win.shape[1] - 1)]
    good = (length >= 1) & (length < _C_DIGITS) & ((end == tag_end) | (term == 44))
    value = np.zeros(len(rows))
    for j in range(_C_DIGITS):
        value = np.where(j < length, value * 10 + np.where(is_digit[:, j], digits[:, j], 0), value)
    value = np.where(value > _MS_THRESHOLD, value / 1000.0, value)
    good &= (value >= 0.0) & (value < MAX_EPOCH_S)
    ok &= ~has_c | good
    got_c = ok & has_c
    own[rows[got_c]] = value[got_c]
    # s: station, up to the next ',' or the end of the body
    has_s = ok & s_key.any(axis=1)
    q = np.argmax(s_key, axis=1) + 2
    after = (win == 44) & (col >= q[:, None])
    stop = np.where(after.any(axis=1), np.argmax(after, axis=1), w + _C_DIGITS + 2)
    st0[rows[has_s]] = (s + q)[has_s]
    st1[rows[has_s]] = (s + np.minimum(stop, tag_end))[has_s]
    fast[rows[ok]] = True


def _leading_times(
    padded: npt.NDArray[np.uint8],
    starts: I64,
    bang: I64,
    lead: Mask,
    own: npt.NDArray[np.float64],
    fast: Mask,
) -> None:
    """A unix time (digits, optional fraction) then one space or tab before ``!``; mark those lines fast."""
    rows = np.flatnonzero(lead)
    w = _LEAD_WIDTH
    s = starts[rows]
    window = padded[s[:, None] + np.arange(w + 1)[None, :]].astype(np.int64)
    is_digit = (window >= 48) & (window <= 57)
    int_len = np.argmin(is_digit, axis=1)
    has_dot = window[np.arange(len(s)), int_len] == 46
    frac_part = np.where(np.arange(w + 1)[None, :] > int_len[:, None], is_digit, True)
    frac_end = np.argmin(frac_part, axis=1)
    tok_len = np.where(has_dot, frac_end, int_len)
    ok = (int_len >= 1) & (tok_len < w) & ~(has_dot & (frac_end == int_len + 1))
    sep = window[np.arange(len(s)), np.minimum(tok_len, w)]
    ok &= (s + tok_len + 1 == bang[rows]) & ((sep == 32) | (sep == 9))
    rows, s, tok_len = rows[ok], s[ok], tok_len[ok]
    if not rows.size:
        return
    value = _numbers(padded, s, tok_len, w)
    value = np.where(value > _MS_THRESHOLD, value / 1000.0, value)
    good = np.isfinite(value) & (value >= 0.0) & (value < MAX_EPOCH_S)
    own[rows[good]] = value[good]
    fast[rows[good]] = True
