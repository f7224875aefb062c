"""A compiled scan of flat JSON Lines into number columns and id strings (numba), for the common feed.

Most position feeds are lines such as ``{"id":"413000001","ts":1780000000.5,"lon":121.5,
"lat":31.2,"sog":8.2,"cog":90.0}``: a flat object whose schema fields hold numbers and
one short ASCII id. msgspec parses such a batch fast, but then every value is a Python
object that a column must be gathered from again, one attribute read per value (in
the pipeline benchmark that gathering cost more than the parse). This scan reads the
batch's bytes once, line by line, and writes the number fields straight into float64
columns and the ids into one ASCII buffer that a single ``str.split`` turns into the id
list. No per-value Python object is made except the ids.

It accepts only what it can read exactly as the typed msgspec path of
:class:`~geofence.decode.jsonl.JsonlDecoder` reads it, and gives up on the whole batch
(returns None) at the first line that holds anything else; the decoder then takes
that path. Accepted per line: one object and whitespace; keys without escapes;
the ``id`` key a string of printable ASCII without escapes, or a non-negative integer of
at most 18 digits (read as its decimal text, which is what ``str(int)`` gives); each
number field a JSON number or ``null`` (missing, NaN); any other key that is not an
eagerly read field (a static or container field, or a key the schema does not know)
a string, number, ``true``, ``false`` or ``null`` with no byte beyond ASCII (it is
skipped; the lazy fields are read later from the line by msgspec). Given up on:
a known key twice in a line, a missing ``id``, a string or boolean in a number
field, an eager field this scan does not read (``kind``, ``receiver``, ``type``),
a nested value, a non-ASCII byte, ``NaN``/``Infinity``, and any JSON syntax error.

Numbers: a decimal mantissa below 2**53 with a power of ten within +-22 is converted
with one IEEE multiplication or division, which is correctly rounded because both
operands are exact (Clinger's fast path, as in fast_float and msgspec itself); any
other number is converted by Python's ``float`` of its text afterwards. Either way the
result is the correctly rounded double that msgspec gives. A number whose ``float`` is
not finite (``1e999``) makes the batch give up too.

The tests compare this scan with the msgspec path on generated lines (hypothesis),
field by field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

__all__ = ["FlatScan"]

_JIT: dict[str, Any] = {"cache": True, "nogil": True}
_INLINE: dict[str, Any] = {**_JIT, "inline": "always"}

#: Key slots besides the number fields' (0, 1, ...).
_ID, _SKIP, _GIVE_UP = -1, -2, -3
_MAX_ID_DIGITS = 18
_TWO53 = 1 << 53
_POW10 = np.array([10.0**k for k in range(23)])  # exact doubles: 10**22 < 2**53 * 2**22

_NULL, _TRUE, _FALSE = (np.frombuffer(w, dtype=np.uint8) for w in (b"null", b"true", b"false"))
_QUOTE, _BACKSLASH, _COLON, _COMMA = 34, 92, 58, 44
_LBRACE, _RBRACE, _MINUS, _PLUS, _DOT = 123, 125, 45, 43, 46


@njit(**_INLINE)  # type: ignore[untyped-decorator]
def _ws(buf: npt.NDArray[np.uint8], i: int, end: int) -> int:
    """The first position from ``i`` that is not JSON whitespace (space, tab, CR, LF), at most ``end``."""
    while i < end:
        c = buf[i]
        if c != 32 and c != 10 and c != 13 and c != 9:
            return i
        i += 1
    return end


@njit(**_INLINE)  # type: ignore[untyped-decorator]
def _digit(c: int) -> bool:
    return 48 <= c <= 57


@njit(**_INLINE)  # type: ignore[untyped-decorator]
def _number(
    buf: npt.NDArray[np.uint8], i: int, end: int, pow10: npt.NDArray[np.float64]
) -> tuple[int, float, int, bool]:
    """Read the JSON number at ``i``: ``(end position, value, state, plain)``.

    ``state`` is 0 for a number read exactly here, 1 for a valid number to convert from its text
    (too many digits or too large a power of ten for the fast path), -1 for a syntax error.
    ``plain`` says the number is a non-negative integer written without fraction or exponent
    (an id may be one).
    """
    j = i
    neg = False
    if j < end and buf[j] == _MINUS:
        neg = True
        j += 1
    if j >= end or not _digit(buf[j]):
        return j, 0.0, -1, False
    m = 0
    nd = 0  # mantissa digits read into m (past 18 it may have wrapped: the number then goes the slow way)
    if buf[j] == 48:  # a leading zero stands alone
        j += 1
    else:
        s = j
        while j < end and _digit(buf[j]):
            m = m * 10 + (buf[j] - 48)
            j += 1
        nd = j - s
    integer = True  # no fraction, no exponent: msgspec reads an integer (so -0 is 0.0, not -0.0)
    frac = 0
    if j < end and buf[j] == _DOT:
        integer = False
        j += 1
        s = j
        while j < end and _digit(buf[j]):
            m = m * 10 + (buf[j] - 48)
            j += 1
        frac = j - s
        if frac == 0:
            return j, 0.0, -1, False
        nd += frac
    slow = nd > 18
    e = 0
    if j < end and (buf[j] == 101 or buf[j] == 69):  # e E
        integer = False
        j += 1
        eneg = False
        if j < end and (buf[j] == _MINUS or buf[j] == _PLUS):
            eneg = buf[j] == _MINUS
            j += 1
        if j >= end or not _digit(buf[j]):
            return j, 0.0, -1, False
        while j < end and _digit(buf[j]):
            if e < 100_000:
                e = e * 10 + (buf[j] - 48)
            j += 1
        if eneg:
            e = -e
    plain = integer and not neg
    if slow:
        return j, 0.0, 1, plain
    p = 0 if integer else e - frac
    if m == 0:
        v = 0.0
        if integer:
            return j, v, 0, plain
    elif m >= _TWO53 or p > 22 or p < -22:
        return j, 0.0, 1, plain
    elif p >= 0:
        v = float(m) * pow10[p]
    else:
        v = float(m) / pow10[-p]
    return j, -v if neg else v, 0, plain


@njit(**_INLINE)  # type: ignore[untyped-decorator]
def _at(buf: npt.NDArray[np.uint8], i: int, end: int, word: npt.NDArray[np.uint8]) -> bool:
    """Whether ``buf[i:end]`` starts with ``word``."""
    if i + word.size > end:
        return False
    for k in range(word.size):  # noqa: SIM110 (numba compiles the loop, not a generator)
        if buf[i + k] != word[k]:
            return False
    return True


@njit(**_INLINE)  # type: ignore[untyped-decorator]
def _slot(
    buf: npt.NDArray[np.uint8],
    a: int,
    b: int,
    keys: npt.NDArray[np.uint8],
    key_ptr: npt.NDArray[np.int64],
    key_slot: npt.NDArray[np.int64],
) -> int:
    """The slot of the key ``buf[a:b]`` (its bytes between the quotes), :data:`_SKIP` when unknown."""
    n = b - a
    for k in range(key_slot.size):
        p = key_ptr[k]
        if key_ptr[k + 1] - p != n:
            continue
        same = True
        for t in range(n):
            if keys[p + t] != buf[a + t]:
                same = False
                break
        if same:
            return int(key_slot[k])
    return _SKIP


@njit(**_INLINE)  # type: ignore[untyped-decorator]
def _string_end(buf: npt.NDArray[np.uint8], i: int, end: int, escapes: bool) -> int:
    """Position of the closing quote of the string whose content starts at ``i``; -1 for a byte this
    scan does not accept (a control character, a byte beyond ASCII, an escape where ``escapes`` is
    false) or no closing quote on the line."""
    while i < end:
        c = buf[i]
        if c == _QUOTE:
            return i
        if c < 32 or c >= 128:
            return -1
        if c == _BACKSLASH:
            if not escapes or i + 1 >= end or buf[i + 1] >= 128 or buf[i + 1] < 32:
                return -1
            i += 1
        i += 1
    return -1


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _scan(
    buf: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    ends: npt.NDArray[np.int64],
    keys: npt.NDArray[np.uint8],
    key_ptr: npt.NDArray[np.int64],
    key_slot: npt.NDArray[np.int64],
    pow10: npt.NDArray[np.float64],
    nums: npt.NDArray[np.float64],
    id_range: npt.NDArray[np.int64],
    slow: npt.NDArray[np.int64],
) -> tuple[int, int]:
    """Scan every line; ``(first line given up on or -1, count of numbers left in slow)``."""
    n_slow = 0
    for row in range(starts.size):
        end = ends[row]
        i = _ws(buf, starts[row], end)
        if i >= end or buf[i] != _LBRACE:
            return row, n_slow
        i = _ws(buf, i + 1, end)
        seen = 0  # bit per number slot; bit 62 for the id
        while True:
            if i >= end or buf[i] != _QUOTE:
                return row, n_slow
            ke = _string_end(buf, i + 1, end, False)
            if ke < 0:
                return row, n_slow
            slot = _slot(buf, i + 1, ke, keys, key_ptr, key_slot)
            if slot == _GIVE_UP:
                return row, n_slow
            i = _ws(buf, ke + 1, end)
            if i >= end or buf[i] != _COLON:
                return row, n_slow
            i = _ws(buf, i + 1, end)
            if i >= end:
                return row, n_slow
            c = buf[i]
            if slot != _SKIP:
                bit = 62 if slot == _ID else slot
                if seen & (1 << bit):  # a known key twice
                    return row, n_slow
                seen |= 1 << bit
            if c == _QUOTE:
                if slot >= 0:  # a string in a number field
                    return row, n_slow
                se = _string_end(buf, i + 1, end, slot == _SKIP)
                if se < 0:
                    return row, n_slow
                if slot == _ID:
                    id_range[row, 0] = i + 1
                    id_range[row, 1] = se
                i = se + 1
            elif c == _MINUS or _digit(c):
                j, v, state, plain = _number(buf, i, end, pow10)
                if state < 0:
                    return row, n_slow
                if slot >= 0:
                    if state == 1:
                        slow[n_slow, 0] = row
                        slow[n_slow, 1] = slot
                        slow[n_slow, 2] = i
                        slow[n_slow, 3] = j
                        n_slow += 1
                    else:
                        nums[slot, row] = v
                elif slot == _ID:
                    if not plain or j - i > _MAX_ID_DIGITS:
                        return row, n_slow
                    id_range[row, 0] = i
                    id_range[row, 1] = j
                i = j
            elif _at(buf, i, end, _NULL):
                if slot == _ID:
                    return row, n_slow
                i += 4
            elif slot == _SKIP and _at(buf, i, end, _TRUE):
                i += 4
            elif slot == _SKIP and _at(buf, i, end, _FALSE):
                i += 5
            else:
                return row, n_slow
            i = _ws(buf, i, end)
            if i >= end:
                return row, n_slow
            if buf[i] == _COMMA:
                i = _ws(buf, i + 1, end)
                continue
            if buf[i] != _RBRACE:
                return row, n_slow
            break
        if _ws(buf, i + 1, end) != end or not seen & (1 << 62):
            return row, n_slow
    return -1, n_slow


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _join_ids(buf: npt.NDArray[np.uint8], id_range: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
    """The ids' bytes, newline-separated (no id holds a newline: control characters are not accepted)."""
    n = id_range.shape[0]
    total = n - 1 if n else 0
    for r in range(n):
        total += id_range[r, 1] - id_range[r, 0]
    out = np.empty(total, dtype=np.uint8)
    p = 0
    for r in range(n):
        if r:
            out[p] = 10
            p += 1
        for k in range(id_range[r, 0], id_range[r, 1]):
            out[p] = buf[k]
            p += 1
    return out


class FlatScan:
    """The scan for one decoder's key names.

    Parameters
    ----------
    id_key
        The JSON key of the subject id.
    number_keys
        ``{field: key}`` of the fields read as numbers, ``ts`` among them.
    other_eager_keys
        Keys of the other eagerly read fields: a line holding one makes the scan give up.
    """

    def __init__(self, id_key: str, number_keys: Mapping[str, str], other_eager_keys: Sequence[str]) -> None:
        self.fields = tuple(number_keys)
        entries = [(id_key, _ID), *((key, k) for k, key in enumerate(number_keys.values()))]
        entries += [(key, _GIVE_UP) for key in other_eager_keys]
        encoded = [key.encode() for key, _ in entries]
        self._keys = np.frombuffer(b"".join(encoded) or b"\0", dtype=np.uint8)
        self._key_ptr = np.concatenate([[0], np.cumsum([len(e) for e in encoded])]).astype(np.int64)
        self._key_slot = np.array([slot for _, slot in entries], dtype=np.int64)
        # a key this scan cannot match byte for byte (escapes or non-ASCII) would be missed: never scan then
        self.usable = all(e.isascii() and b"\\" not in e and b'"' not in e for e in encoded)
        if self.usable:  # load (or compile) the kernels now rather than in the first batch
            self([b'{"%s":"0"}' % encoded[0]], 1 << 20)

    def __call__(
        self, lines: Sequence[bytes], max_line_bytes: int
    ) -> tuple[list[str], dict[str, npt.NDArray[np.float64]]] | None:
        """``(ids, {field: float64 column})`` of the batch ``lines``; None when a line does not fit
        (or is longer than ``max_line_bytes``: the decoder's other paths dead-letter it)."""
        n = len(lines)
        if not self.usable or n == 0:
            return None
        lens = np.fromiter(map(len, lines), dtype=np.int64, count=n)
        if int(lens.max()) > max_line_bytes:
            return None
        text = b"".join(lines)
        ends = np.cumsum(lens)
        starts = ends - lens
        buf = np.frombuffer(text, dtype=np.uint8)
        nums = np.full((len(self.fields), n), math.nan)
        id_range = np.empty((n, 2), dtype=np.int64)
        slow = np.empty((n * max(len(self.fields), 1), 4), dtype=np.int64)  # pages are touched only when used
        bad, n_slow = _scan(buf, starts, ends, self._keys, self._key_ptr, self._key_slot, _POW10, nums, id_range, slow)
        if bad >= 0:
            return None
        for row, slot, a, b in slow[:n_slow].tolist():
            v = float(text[a:b])
            if not math.isfinite(v):  # msgspec refuses such a number: the batch takes the other paths
                return None
            nums[slot, row] = v
        ids = _join_ids(buf, id_range).tobytes().decode("ascii").split("\n") if n else []
        return ids, dict(zip(self.fields, nums, strict=True))
