"""A compiled scan of flat JSON Lines into columns (numba), for the common feed.

Most position feeds are lines such as ``{"id":"413000001","ts":1780000000.5,"lon":121.5,
"lat":31.2,"sog":8.2,"cog":90.0}``: a flat object of scalars. msgspec parses such a batch
fast, but every value then is a Python object that a column must be gathered from again,
one attribute read per value (in the pipeline benchmark that gathering cost more than the
parse). This scan reads the batch's bytes once, line by line: number fields go straight
into float64 columns, and each text field into ``(start, end, state)`` ranges that
:class:`TextColumn` turns into a list with one ``str.split`` of one buffer, or hands over
as packed bytes (text times, which the time parser reads without a string per value).

It accepts only what it reads exactly as the typed msgspec path of
:class:`~geofence.decode.jsonl.JsonlDecoder` reads it, and gives up on the whole batch
(None) at the first line that holds anything else; the decoder then takes that path.
Accepted per line: one object and whitespace; keys without escapes; a number field a
JSON number or ``null`` (NaN); a text field a string of printable ASCII without escapes,
a non-negative integer of at most 18 digits, or ``null``; any other key (a static or
container field read later by msgspec, or a key the schema does not know) a string,
number, ``true``, ``false`` or ``null``, its string unchecked beyond what msgspec checks
when it skips a value (escapes valid and no unpaired surrogate, no raw control character;
bytes beyond ASCII are not checked by msgspec there, and the decoder checks the batch's
UTF-8 as a whole). Given up on: a known key twice in a line, a missing or null required
text field, a string or boolean in a number field, a float in a text field, a nested
value, ``NaN``/``Infinity``, and any JSON syntax error.

Numbers: a decimal mantissa below 2**53 with a power of ten within +-22 is converted with
one IEEE multiplication or division, which is correctly rounded because both operands are
exact (Clinger's fast path, as in fast_float); any other number is converted by Python's
``float`` of its text afterwards. Either way the result is the correctly rounded double
msgspec gives (and an integer ``-0`` is 0.0, as msgspec reads integers). A number whose
``float`` is not finite (``1e999``), which msgspec refuses, makes the batch give up too.

Compiled without ``error_model="numpy"``: with it this scan ran 2.5 times slower. The tests
compare the scan with the msgspec path on generated lines (hypothesis), value by value.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

__all__ = ["FlatScan", "TextColumn"]

_JIT: dict[str, Any] = {"cache": True, "nogil": True}
_INLINE: dict[str, Any] = {**_JIT, "inline": "always"}

_MAX_INT_DIGITS = 18  # a text field's integer fits int64 (msgspec's typed path reads wider ones otherwise)
_MAX_KEY = 64
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
def _key_index(
    buf: npt.NDArray[np.uint8], a: int, b: int, keys: npt.NDArray[np.uint8], key_ptr: npt.NDArray[np.int64], hint: int
) -> int:
    """The index of the key ``buf[a:b]`` (its bytes between the quotes) in the key table, -1 when unknown.

    ``hint`` is tried first: lines of one feed mostly hold their keys in the same order.
    """
    n = b - a
    nk = key_ptr.size - 1
    for t in range(-1, nk):
        k = hint if t < 0 else t
        if k < 0 or k >= nk or (t >= 0 and k == hint):
            continue
        p = key_ptr[k]
        if key_ptr[k + 1] - p != n:
            continue
        same = True
        for q in range(n):
            if keys[p + q] != buf[a + q]:
                same = False
                break
        if same:
            return k
    return -1


@njit(**_INLINE)  # type: ignore[untyped-decorator]
def _hex(c: int) -> int:
    """The value of a hex digit, -1 for another byte."""
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return -1


@njit(**_INLINE)  # type: ignore[untyped-decorator]
def _escape_end(buf: npt.NDArray[np.uint8], i: int, end: int) -> int:
    """The position after the escape whose backslash is at ``i``, or -1 for one this scan does not accept.

    Accepted: the two-character escapes of JSON and ``\\uXXXX`` outside the surrogates (msgspec refuses
    an unpaired surrogate; a pair is rare enough to leave to it).
    """
    if i + 1 >= end:
        return -1
    c = buf[i + 1]
    if c == _QUOTE or c == _BACKSLASH or c == 47 or c == 98 or c == 102 or c == 110 or c == 114 or c == 116:  # noqa: SIM109
        return i + 2  # \" \\ \/ \b \f \n \r \t
    if c != 117 or i + 6 > end:  # u
        return -1
    v = 0
    for q in range(i + 2, i + 6):
        h = _hex(buf[q])
        if h < 0:
            return -1
        v = v * 16 + h
    if 0xD800 <= v <= 0xDFFF:
        return -1
    return i + 6


@njit(**_INLINE)  # type: ignore[untyped-decorator]
def _string_end(buf: npt.NDArray[np.uint8], i: int, end: int, plain: bool) -> int:
    """Position of the closing quote of the string whose content starts at ``i``, or -1.

    A ``plain`` string (a key, or a value this scan keeps) must be printable ASCII without escapes. Any
    other string (a value that is skipped) may hold the escapes :func:`_escape_end` accepts and bytes
    beyond ASCII, which msgspec does not check in a value it skips. -1 also for a control character
    (JSON has none raw in a string) or no closing quote on the line.
    """
    while i < end:
        c = buf[i]
        if c == _QUOTE:
            return i
        if c < 32 or (plain and c >= 128):
            return -1
        if c == _BACKSLASH:
            if plain:
                return -1
            i = _escape_end(buf, i, end)
            if i < 0:
                return -1
        else:
            i += 1
    return -1


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _scan(
    buf: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    ends: npt.NDArray[np.int64],
    keys: npt.NDArray[np.uint8],
    key_ptr: npt.NDArray[np.int64],
    key_num: npt.NDArray[np.int64],
    key_text: npt.NDArray[np.int64],
    pow10: npt.NDArray[np.float64],
    nums: npt.NDArray[np.float64],
    texts: npt.NDArray[np.int64],
    slow: npt.NDArray[np.int64],
) -> tuple[int, int]:
    """Scan every line; ``(first line given up on or -1, count of numbers left in slow)``.

    Key ``k`` of the table is read as number field ``key_num[k]`` (a row of ``nums``) and/or text field
    ``key_text[k]`` (``texts[t, row]`` = start, end, state: 0 absent or null, 1 string, 2 plain
    integer). A key not in the table is skipped.
    """
    n_slow = 0
    order = np.full(64, -1, dtype=np.int64)  # the key index at each member position of the last lines
    for row in range(starts.size):
        end = ends[row]
        i = _ws(buf, starts[row], end)
        if i >= end or buf[i] != _LBRACE:
            return row, n_slow
        i = _ws(buf, i + 1, end)
        seen = 0  # bit per key of the table
        member = 0
        while True:
            if i >= end or buf[i] != _QUOTE:
                return row, n_slow
            ke = _string_end(buf, i + 1, end, True)
            if ke >= 0:
                k = _key_index(buf, i + 1, ke, keys, key_ptr, order[member] if member < 64 else -1)
                if k >= 0 and member < 64:
                    order[member] = k
            else:  # not a key of the table (they are plain ASCII), unless spelt with escapes: give up on those
                ke = _string_end(buf, i + 1, end, False)
                if ke < 0:
                    return row, n_slow
                for q in range(i + 1, ke):
                    if buf[q] == _BACKSLASH:
                        return row, n_slow
                k = -1
            member += 1
            num = -1
            txt = -1
            if k >= 0:
                if seen & (1 << k):  # a known key twice
                    return row, n_slow
                seen |= 1 << k
                num = key_num[k]
                txt = key_text[k]
            i = _ws(buf, ke + 1, end)
            if i >= end or buf[i] != _COLON:
                return row, n_slow
            i = _ws(buf, i + 1, end)
            if i >= end:
                return row, n_slow
            c = buf[i]
            if c == _QUOTE:
                if k < 0:
                    se = _string_end(buf, i + 1, end, False)
                else:
                    if txt < 0:  # a string in a number field
                        return row, n_slow
                    se = _string_end(buf, i + 1, end, True)
                    texts[txt, row, 0] = i + 1
                    texts[txt, row, 1] = se
                    texts[txt, row, 2] = 1
                if se < 0:
                    return row, n_slow
                i = se + 1
            elif c == _MINUS or _digit(c):
                j, v, state, plain = _number(buf, i, end, pow10)
                if state < 0:
                    return row, n_slow
                if num >= 0:
                    if state == 1:
                        slow[n_slow, 0] = row
                        slow[n_slow, 1] = num
                        slow[n_slow, 2] = i
                        slow[n_slow, 3] = j
                        n_slow += 1
                    else:
                        nums[num, row] = v
                elif txt >= 0:  # a text field holding an integer (an MMSI as id, an AIS type number)
                    if not plain or j - i > _MAX_INT_DIGITS:
                        return row, n_slow
                    texts[txt, row, 0] = i
                    texts[txt, row, 1] = j
                    texts[txt, row, 2] = 2
                i = j
            elif _at(buf, i, end, _NULL) or (k < 0 and _at(buf, i, end, _TRUE)):
                i += 4
            elif k < 0 and _at(buf, i, end, _FALSE):
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
        if _ws(buf, i + 1, end) != end:
            return row, n_slow
    return -1, n_slow


@njit(**_JIT)  # type: ignore[untyped-decorator]
def _join(buf: npt.NDArray[np.uint8], ranges: npt.NDArray[np.int64], sep: bool) -> npt.NDArray[np.uint8]:
    """The bytes of ``buf[start:end]`` for each row of ``ranges``, end to end, or newline-separated with
    ``sep`` (no kept text holds a newline: control characters are not accepted)."""
    n = ranges.shape[0]
    total = n - 1 if sep and n else 0
    for r in range(n):
        total += ranges[r, 1] - ranges[r, 0]
    out = np.empty(total, dtype=np.uint8)
    p = 0
    for r in range(n):
        if sep and r:
            out[p] = 10
            p += 1
        for k in range(ranges[r, 0], ranges[r, 1]):
            out[p] = buf[k]
            p += 1
    return out


class TextColumn:
    """One text field of a scanned batch: its values, made into Python objects only when asked for.

    Parameters
    ----------
    buf
        The batch's bytes.
    ranges
        Per line ``(start, end, state)`` of the value in ``buf``; state 0 absent or null, 1 string, 2 integer.
    int_as_str
        Integers are given as their decimal text (an integer id is a string id).
    """

    __slots__ = ("_buf", "_int_as_str", "_ranges")

    def __init__(self, buf: npt.NDArray[np.uint8], ranges: npt.NDArray[np.int64], int_as_str: bool) -> None:
        self._buf = buf
        self._ranges = ranges
        self._int_as_str = int_as_str

    def values(self) -> list[Any]:
        """One str, int or None (absent or null) per line, as msgspec reads them."""
        state = self._ranges[:, 2]
        rows = None if state.all() else np.flatnonzero(state)
        got = self._ranges if rows is None else self._ranges[rows]
        col: list[Any] = _join(self._buf, got, True).tobytes().decode("ascii").split("\n")
        if not self._int_as_str and (got[:, 2] == 2).any():  # integers as msgspec reads them
            col = [int(v) if k == 2 else v for v, k in zip(col, got[:, 2].tolist(), strict=True)]
        if rows is None:
            return col
        full = np.full(state.size, None, dtype=object)  # None where absent or null
        full[rows] = col
        out: list[Any] = full.tolist()
        return out

    def packed(self) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]] | None:
        """Every line's string, end to end, and their lengths; None unless every line holds a string."""
        r = self._ranges
        if not (r[:, 2] == 1).all():
            return None
        return _join(self._buf, r, False), r[:, 1] - r[:, 0]


class FlatScan:
    """The scan for one decoder's key names.

    Parameters
    ----------
    number_keys
        ``{field: key}`` of the fields read as numbers (float64 columns, NaN where absent or null).
    text_keys
        ``{field: key}`` of the fields read as JSON strings or integers (lists of str, int or None).
        A field in both (``ts``) is read as whichever its values are in the batch, all alike.
    text_int_as_str
        Text fields whose integers are given as their decimal text (an integer id is a string id).
    required
        Text fields every line must hold (not null); the scan declines a batch where one does not.
    """

    def __init__(
        self,
        number_keys: Mapping[str, str],
        text_keys: Mapping[str, str],
        *,
        text_int_as_str: Sequence[str] = (),
        required: Sequence[str] = (),
    ) -> None:
        self.numbers = tuple(number_keys)
        self.texts = tuple(text_keys)
        self._int_as_str = frozenset(text_int_as_str)
        self._required = frozenset(required)
        num_of = {key: k for k, key in enumerate(number_keys.values())}
        text_of = {key: t for t, key in enumerate(text_keys.values())}
        names = list(dict.fromkeys([*num_of, *text_of]))  # a key may be both (``ts``)
        encoded = [key.encode() for key in names]
        self._keys = np.frombuffer(b"".join(encoded) or b"\0", dtype=np.uint8)
        self._key_ptr = np.concatenate([[0], np.cumsum([len(e) for e in encoded])]).astype(np.int64)
        self._key_num = np.array([num_of.get(key, -1) for key in names], dtype=np.int64)
        self._key_text = np.array([text_of.get(key, -1) for key in names], dtype=np.int64)
        # a key this scan cannot match byte for byte (escapes, quotes, non-ASCII, too long), or one shared by
        # two fields of a kind, would be read wrongly: never scan then
        self.usable = (
            0 < len(names) <= 62
            and all(e.isascii() and b"\\" not in e and b'"' not in e and 0 < len(e) <= _MAX_KEY for e in encoded)
            and len(set(number_keys.values())) == len(number_keys)
            and len(set(text_keys.values())) == len(text_keys)
        )
        if self.usable:  # load (or compile) the kernels now rather than in the first batch
            self([b'{"%s":"0"}' % encoded[0]], 1 << 20)

    def __call__(
        self, lines: Sequence[bytes], max_line_bytes: int, accept: Callable[[bytes], bool] | None = None
    ) -> tuple[dict[str, npt.NDArray[np.float64]], dict[str, TextColumn | None]] | None:
        """``({number field: float64 column}, {text field: column, or None when absent from every line})`` of
        the batch ``lines``; None when a line does not fit (or is longer than ``max_line_bytes``: the
        decoder's other paths dead-letter it), or when ``accept`` of the batch's bytes is false.
        """
        n = len(lines)
        if not self.usable or n == 0:
            return None
        lens = np.fromiter(map(len, lines), dtype=np.int64, count=n)
        if int(lens.max()) > max_line_bytes:
            return None
        text = b"".join(lines)
        if accept is not None and not accept(text):
            return None
        ends = np.cumsum(lens)
        starts = ends - lens
        buf = np.frombuffer(text, dtype=np.uint8)
        nums = np.full((len(self.numbers), n), math.nan)
        texts = np.zeros((len(self.texts), n, 3), dtype=np.int64)
        slow = np.empty((n * max(len(self.numbers), 1), 4), dtype=np.int64)  # pages are touched only when used
        bad, n_slow = _scan(
            buf, starts, ends, self._keys, self._key_ptr, self._key_num, self._key_text, _POW10, nums, texts, slow
        )
        if bad >= 0:
            return None
        for row, slot, a, b in slow[:n_slow].tolist():
            v = float(text[a:b])
            if not math.isfinite(v):  # msgspec refuses such a number: the batch takes the other paths
                return None
            nums[slot, row] = v
        columns: dict[str, TextColumn | None] = {}
        for t, name in enumerate(self.texts):
            state = texts[t, :, 2]
            if name in self._required and not state.all():
                return None
            columns[name] = TextColumn(buf, texts[t], name in self._int_as_str) if state.any() else None
        return dict(zip(self.numbers, nums, strict=True)), columns
