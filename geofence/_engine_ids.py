"""Subject id -> dense slot, without a Python object per subject.

A ``dict[str, int]`` costs about 140 bytes per subject (the key ``str``, an
``int`` object and the table entry); at a million tracked subjects that alone is
half the memory budget of the rules issue. Here the ids live in one matrix of
NUL-padded UTF-8 bytes, ``words`` 64-bit words per id (widened when a longer id
arrives), and an open-addressing table of ``int32`` slots probed with numpy for a
whole batch at once: 16 + 8 bytes per subject for ids up to 16 bytes (an MMSI,
an ISO 6346 container number).

Slots are dense and allocated in first-seen order within the batch, so they are
a deterministic function of the input order (the engine breaks ties by slot).
The hash only places ids in the table; equality is always decided on the stored
bytes. Because ids are NUL-padded, an id that ends with ``"\\x00"`` is stored with
a ``0xff`` marker byte appended (``0xff`` never occurs in UTF-8).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

__all__ = ["IdMap", "encode_ids"]

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]

_MARK = b"\xff"
_MUL = np.uint64(0x9E3779B97F4A7C15)
_SH = np.uint64(31)


def _encode_one(sid: str) -> bytes:
    raw = sid.encode("utf-8", "surrogatepass")
    return raw + _MARK if raw.endswith(b"\x00") else raw


def encode_ids(ids: npt.NDArray[np.object_] | list[str], min_words: int = 1) -> U64:
    """Subject ids as an ``(n, words)`` uint64 matrix of NUL-padded UTF-8 (at least ``min_words`` words)."""
    lst = ids.tolist() if isinstance(ids, np.ndarray) else list(ids)
    n = len(lst)
    # one join, then the id boundaries from the separators (an id containing NUL takes the slow path)
    joined = "\x00".join(lst)
    raw = joined.encode("utf-8", "surrogatepass")
    buf = np.frombuffer(raw, dtype=np.uint8)
    w0 = raw.find(b"\x00")
    if n > 1 and w0 > 0 and len(raw) == n * (w0 + 1) - 1 and raw.count(b"\x00") == n - 1:
        # the usual batch: every id the same byte length (MMSIs, container numbers). The n - 1 NULs are the
        # separators (no id holds one); at the fixed places of equal widths, they are those widths
        grid = buf[: (n - 1) * (w0 + 1)].reshape(n - 1, w0 + 1)
        if not grid[:, w0].any():
            mat = np.zeros((n, max(min_words, (w0 + 7) // 8) * 8), dtype=np.uint8)
            mat[:, :w0] = np.lib.stride_tricks.as_strided(buf, shape=(n, w0), strides=(w0 + 1, 1))
            return mat.view(np.uint64)
    seps = np.flatnonzero(buf == 0)
    if seps.size == n - 1:
        starts = np.empty(n, dtype=np.int64)
        starts[0] = 0
        starts[1:] = seps + 1
        ends = np.empty(n, dtype=np.int64)
        ends[:-1] = seps
        ends[-1] = buf.size
    else:
        enc = [_encode_one(x) for x in lst]
        buf = np.frombuffer(b"".join(enc), dtype=np.uint8)
        lens_ = np.fromiter(map(len, enc), dtype=np.int64, count=n)
        ends = np.cumsum(lens_)
        starts = ends - lens_
    lens = ends - starts
    width = max(min_words, (int(lens.max(initial=0)) + 7) // 8)
    out = np.zeros((n, width * 8), dtype=np.uint8)
    if n and lens[0] and np.all(lens == lens[0]) and np.all(starts == np.arange(n) * (lens[0] + 1)):
        width0 = int(lens[0])
        out[:, :width0] = np.lib.stride_tricks.as_strided(buf, shape=(n, width0), strides=(width0 + 1, 1))
    elif buf.size:
        total = int(lens.sum())
        row = np.repeat(np.arange(n), lens)
        col = np.arange(total) - np.repeat(np.cumsum(lens) - lens, lens)
        out[row, col] = buf[np.repeat(starts - (np.cumsum(lens) - lens), lens) + np.arange(total)]
    return out.view(np.uint64)


class IdMap:
    """Dense slots for subject ids; see the module docstring."""

    def __init__(self, capacity: int = 1024) -> None:
        self.n = 0
        self._cap = max(16, capacity)
        self._w: list[U64] = [np.zeros(self._cap, dtype=np.uint64)]  # one column per 64-bit word
        self._table = np.full(_pow2(2 * self._cap), -1, dtype=np.int32)
        for words in (1, 2):  # load the compiled probe for ids up to 16 bytes now, not in the first batch
            _probe_table(np.zeros((0, words), dtype=np.uint64), tuple(self._w * words), self._table)

    @property
    def nbytes(self) -> int:
        """Memory held by the id words and the table."""
        return int(sum(w.nbytes for w in self._w) + self._table.nbytes)

    @property
    def ids(self) -> U64:
        """The stored ids of slots ``0..n-1`` as an ``(n, words)`` matrix (for snapshots, see :meth:`load`)."""
        return np.stack([w[: self.n] for w in self._w], axis=1)

    def id_of(self, slot: int) -> str:
        """The subject id of a slot."""
        return _decode_one(b"".join(w[slot].tobytes() for w in self._w))

    def ids_of(self, slots: npt.ArrayLike) -> list[str]:
        """Subject ids of many slots (in order)."""
        idx = np.asarray(slots, dtype=np.int64)
        rows = np.stack([w[idx] for w in self._w], axis=1)
        k = 8 * len(self._w)
        blob = rows.tobytes()
        return [_decode_one(blob[i : i + k]) for i in range(0, len(blob), k)]

    def get(self, sid: str) -> int | None:
        """The slot of one id, or None when it was never seen."""
        keys = encode_ids([sid], len(self._w))
        if keys.shape[1] > len(self._w):
            return None
        s = int(self._probe(keys)[0])
        return None if s < 0 else s

    def lookup(self, ids: npt.NDArray[np.object_]) -> tuple[I64, I64]:
        """Slots of ``ids`` (new ones allocated in first-seen order) and the rows that introduced new slots."""
        if len(ids) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        keys = encode_ids(ids, len(self._w))
        if keys.shape[1] > len(self._w):
            self._widen(keys.shape[1])
        slots = self._probe(keys)
        new_rows = np.flatnonzero(slots < 0)
        if new_rows.size == 0:
            return slots, new_rows
        nk = keys[new_rows]
        # distinct new ids: a stable lexsort of the words (np.unique(axis=0) compares rows as opaque records,
        # fifty times slower), then runs of equal rows; a run's first row is the id's first occurrence
        order = np.lexsort(tuple(nk[:, j] for j in range(nk.shape[1] - 1, -1, -1)))
        sk = nk[order]
        starts = np.ones(order.size, dtype=bool)
        starts[1:] = (sk[1:] != sk[:-1]).any(axis=1)
        first = order[starts]
        inv = np.empty(order.size, dtype=np.int64)
        inv[order] = np.cumsum(starts) - 1
        by_first = np.argsort(first, kind="stable")
        rank = np.empty(by_first.size, dtype=np.int64)
        rank[by_first] = np.arange(by_first.size)
        base = self.n
        self._append(nk[first[by_first]])
        slots[new_rows] = base + rank[inv.reshape(-1)]
        return slots, new_rows[np.sort(first)]

    def load(self, ids: U64) -> None:
        """Replace the content by a snapshot's :attr:`ids` (slot i = row i)."""
        ids = np.asarray(ids, dtype=np.uint64)
        n = ids.shape[0]
        self.n = 0
        self._cap = max(16, n)
        words = ids.shape[1] if ids.ndim == 2 and ids.shape[1] else 1
        self._w = [np.zeros(self._cap, dtype=np.uint64) for _ in range(words)]
        self._table = np.full(_pow2(2 * self._cap), -1, dtype=np.int32)
        if n:
            self._append(ids.reshape(n, words))

    # ------------------------------------------------------------------ internals
    def _hash_rows(self, slots: I64) -> U64:
        h = np.zeros(slots.size, dtype=np.uint64)
        for w in self._w:
            h = (h ^ w[slots]) * _MUL
            h ^= h >> _SH
        return h

    def _probe(self, keys: U64) -> I64:
        out: I64 = _probe_table(np.ascontiguousarray(keys), tuple(self._w), self._table)
        return out

    def _widen(self, words: int) -> None:
        while len(self._w) < words:
            self._w.append(np.zeros(self._cap, dtype=np.uint64))
        self._table.fill(-1)
        self._insert(np.arange(self.n, dtype=np.int64))

    def _append(self, keys: U64) -> None:
        """Append distinct, unseen keys as slots ``n..n+k-1``."""
        k = keys.shape[0]
        need = self.n + k
        if keys.shape[1] > len(self._w):
            self._widen(keys.shape[1])
        if need > self._cap:
            cap = self._cap
            while cap < need:
                cap *= 2
            for w in self._w:
                w.resize(cap, refcheck=False)  # in place (see SubjectColumns.ensure); new words are zeros
            self._cap = cap
        for j in range(keys.shape[1]):
            self._w[j][self.n : need] = keys[:, j]
        if 2 * need > self._table.size:
            self._table = np.full(_pow2(2 * need), -1, dtype=np.int32)
            self._insert(np.arange(need, dtype=np.int64))
        else:
            self._insert(np.arange(self.n, need, dtype=np.int64))
        self.n = need

    def _insert(self, slots: I64) -> None:
        table = self._table
        mask = table.size - 1
        pos = (self._hash_rows(slots) & np.uint64(mask)).astype(np.int64)
        todo = np.arange(slots.size)
        while todo.size:
            p = pos[todo]
            free = np.flatnonzero(table[p] < 0)
            won = np.zeros(todo.size, dtype=bool)
            if free.size:
                _, first = np.unique(p[free], return_index=True)
                win = free[first]
                table[p[win]] = slots[todo[win]]
                won[win] = True
            todo = todo[~won]
            pos[todo] = (pos[todo] + 1) & mask


@njit(cache=True, nogil=True)
def _probe_table(keys: U64, words: tuple[U64, ...], table: npt.NDArray[np.int32]) -> I64:
    """Slot of each key (row of ``keys``) in the open-addressing ``table``, -1 when absent.

    One loop per key (hash, then linear probing, comparing the stored words): with numpy each
    probe round was a handful of passes over the keys still looking.
    """
    mask = table.size - 1
    n, nw = keys.shape
    out = np.full(n, -1, dtype=np.int64)
    for i in range(n):
        h = np.uint64(0)
        for j in range(nw):
            h = (h ^ keys[i, j]) * _MUL
            h ^= h >> _SH
        p = np.int64(h & np.uint64(mask))
        while True:
            t = table[p]
            if t < 0:
                break
            same = True
            for j in range(nw):
                if words[j][t] != keys[i, j]:
                    same = False
                    break
            if same:
                out[i] = t
                break
            p = (p + 1) & mask
    return out


def _decode_one(raw: bytes) -> str:
    raw = raw.rstrip(b"\x00")
    if raw.endswith(_MARK):
        raw = raw[:-1]
    return raw.decode("utf-8", "surrogatepass")


def _pow2(n: int) -> int:
    p = 16
    while p < n:
        p *= 2
    return p
