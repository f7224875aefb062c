"""Dedupe memory of an aggregated AIS feed: the same payload from several receivers counts once.

An identical payload is a duplicate when its last counted copy is within ``window_s`` of
record time and at most :data:`MAX_MESSAGES` messages back, or, when either copy has no
time, at most ``window_n`` messages back (docs/ingest.md, "Dedupe").

Why a module of its own, and why numpy: the decision for a message depends only on the
earlier copies of its own payload, so a batch is decided in *rounds*: round ``r`` decides
the ``r``-th copy in the batch of every payload at once, against the last counted copy
(from earlier batches, or accepted in an earlier round). Most payloads occur once in a
batch, so most batches take one or two rounds. Python touches each message only in a few
C-level passes (``map(hash, ...)``, ``map(dict.get, ...)``, ``dict.update``): the memory
maps a payload to the sequence number of its last counted copy, whose time sits in a ring
of numpy floats.

The memory forgets whole batches of payloads once they are too many messages back to ever
match again, so it stays bounded and forgetting never changes a decision.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from itertools import repeat
from operator import eq

import numpy as np
import numpy.typing as npt

__all__ = ["MAX_MESSAGES", "PayloadMemory"]

#: A repeat more than this many messages after the last counted copy is never a duplicate (bounds the memory).
MAX_MESSAGES = 100_000

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


class PayloadMemory:
    """Last counted copy of every recent payload: ``payload -> message sequence number``, its time in a ring.

    Parameters
    ----------
    window_s
        Copies with times at most this far apart are duplicates (``<= 0``: dedupe off).
    window_n
        Copies without time are duplicates at most this many messages apart.
    """

    def __init__(self, window_s: float, window_n: int) -> None:
        self.window_s = float(window_s)
        self.window_n = int(window_n)
        self._reach = max(self.window_n, MAX_MESSAGES)  # no copy further back than this can match
        self._times: _RingTimes | _DictTimes = _RingTimes(self._reach) if self._reach < _RING_MAX else _DictTimes()
        self._seen: dict[bytes, int] = {}
        self._chunks: deque[tuple[int, list[bytes], list[int]]] = deque()  # (last seq, payloads, their seqs)
        self._seq = 0

    def __len__(self) -> int:
        return len(self._seen)

    def find_duplicates(self, payloads: Sequence[bytes], ts_s: F64) -> I64:
        """Indices of the duplicates among ``payloads`` (sorted; ``ts_s`` NaN = no time); remember the rest.

        Every message takes a sequence number, duplicates too.
        """
        m = len(payloads)
        if self.window_s <= 0 or m == 0:
            return np.zeros(0, dtype=np.int64)
        seq0 = self._seq
        self._seq = seq0 + m
        seen = self._seen
        group, rank = _groups(payloads)  # group: index of the first copy of the payload in the batch
        firsts = np.flatnonzero(rank == 0)
        # the state of each group: its last counted copy (sequence number, time) before this batch, -1 if none
        state_seq = np.full(m, -1, dtype=np.int64)
        state_seq[firsts] = np.fromiter(map(seen.get, map(payloads.__getitem__, firsts.tolist()), repeat(-1)),
                                        dtype=np.int64, count=firsts.size)
        state_ts = np.full(m, np.nan)
        had = firsts[state_seq[firsts] >= 0]
        state_ts[had] = self._times.read(state_seq[had])
        seq = seq0 + np.arange(m)
        dup = np.zeros(m, dtype=bool)
        self._decide(firsts, firsts, seq, ts_s, state_seq, state_ts, dup)
        if firsts.size < m:
            seconds = np.flatnonzero(rank == 1)
            self._decide(seconds, group[seconds], seq, ts_s, state_seq, state_ts, dup)
            later = np.flatnonzero(rank >= 2)
            if later.size:  # third and later copies in the batch: rare, one by one
                state_seq, state_ts = self._decide_each(later, group, seq, ts_s, state_seq, state_ts, dup)
        # remember the last counted copy of every payload that had one counted in this batch
        counted = firsts[state_seq[firsts] >= seq0]
        kept_p = list(map(payloads.__getitem__, counted.tolist()))
        kept = state_seq[counted]
        kept_s = kept.tolist()
        seen.update(zip(kept_p, kept_s, strict=True))
        self._times.write(kept, ts_s[kept - seq0])
        self._chunks.append((seq0 + m - 1, kept_p, kept_s))
        self._forget(seq0 + m)
        out: I64 = np.flatnonzero(dup)
        return out

    def _decide(
        self, rows: I64, groups: I64, seq: I64, ts_s: F64, state_seq: I64, state_ts: F64, dup: npt.NDArray[np.bool_]
    ) -> None:
        """Decide the messages ``rows`` (at most one per group) against their groups' last counted copies."""
        pseq = state_seq[groups]
        pts = state_ts[groups]
        t = ts_s[rows]
        q = seq[rows]
        both_timed = ~np.isnan(t) & ~np.isnan(pts)
        is_dup = (pseq >= 0) & np.where(
            both_timed, (np.abs(t - pts) <= self.window_s) & (q - pseq <= MAX_MESSAGES), q - pseq <= self.window_n
        )
        dup[rows] = is_dup
        counted = ~is_dup
        state_seq[groups[counted]] = q[counted]
        state_ts[groups[counted]] = t[counted]

    def _decide_each(
        self, rows: I64, group: I64, seq: I64, ts_s: F64, state_seq: I64, state_ts: F64, dup: npt.NDArray[np.bool_]
    ) -> tuple[I64, F64]:
        """:meth:`_decide` one message at a time, in order (for groups with many copies in one batch)."""
        sseq = state_seq.tolist()
        sts = state_ts.tolist()
        window_s, window_n, cap = self.window_s, self.window_n, MAX_MESSAGES
        for k, g, q, t in zip(
            rows.tolist(), group[rows].tolist(), seq[rows].tolist(), ts_s[rows].tolist(), strict=True
        ):
            pseq = sseq[g]
            if pseq >= 0:
                pts = sts[g]
                if t == t and pts == pts:  # both timed
                    if abs(t - pts) <= window_s and q - pseq <= cap:
                        dup[k] = True
                        continue
                elif q - pseq <= window_n:
                    dup[k] = True
                    continue
            sseq[g] = q
            sts[g] = t
        return np.asarray(sseq, dtype=np.int64), np.asarray(sts, dtype=np.float64)

    def _forget(self, seq: int) -> None:
        """Drop batches whose every payload is too many messages back to match a message numbered ``seq``."""
        limit = seq - self._reach
        chunks = self._chunks
        seen = self._seen
        while chunks and chunks[0][0] < limit:
            _, payloads, seqs = chunks.popleft()
            for payload, pseq in zip(payloads, seqs, strict=True):
                if seen.get(payload) == pseq:
                    del seen[payload]
            self._times.forget(seqs)


#: Above this reach the times of counted copies live in a dict rather than a ring of floats (memory).
_RING_MAX = 1 << 21


class _RingTimes:
    """Time of each counted message by sequence number, in a ring longer than the reach.

    A slot is reused only by a message more than the ring's length later, when the copy it held
    can no longer match: a read of an overwritten slot never decides anything.
    """

    def __init__(self, reach: int) -> None:
        self._ring = np.full(1 << max(reach, 1).bit_length(), np.nan)

    def read(self, seqs: I64) -> F64:
        out: F64 = self._ring[seqs % self._ring.size]
        return out

    def write(self, seqs: I64, ts_s: F64) -> None:
        self._ring[seqs % self._ring.size] = ts_s

    def forget(self, seqs: list[int]) -> None:
        """Nothing to do: slots are reused."""


class _DictTimes:
    """:class:`_RingTimes` for a very long reach (``dedupe_untimed_payloads`` in the millions): a dict."""

    def __init__(self) -> None:
        self._times: dict[int, float] = {}

    def read(self, seqs: I64) -> F64:
        return np.fromiter(map(self._times.get, seqs.tolist(), repeat(np.nan)), dtype=np.float64, count=seqs.size)

    def write(self, seqs: I64, ts_s: F64) -> None:
        self._times.update(zip(seqs.tolist(), ts_s.tolist(), strict=True))

    def forget(self, seqs: list[int]) -> None:
        for seq in seqs:
            self._times.pop(seq, None)


def _groups(payloads: Sequence[bytes]) -> tuple[I64, I64]:
    """For each payload, the index of its first copy in the sequence and how many copies came before it.

    Grouped by Python's hash (sorted with numpy), then every copy is compared with the first one
    of its hash group: equal payloads always share a group; should two different payloads ever
    share a hash, the grouping is redone with a dict.
    """
    m = len(payloads)
    hashes = np.fromiter(map(hash, payloads), dtype=np.int64, count=m)
    group, rank = _ranks(hashes)
    later = np.flatnonzero(rank > 0)
    if later.size:
        get = payloads.__getitem__
        if not all(map(eq, map(get, later.tolist()), map(get, group[later].tolist()))):
            first: dict[bytes, int] = {}
            ids = np.fromiter((first.setdefault(p, k) for k, p in enumerate(payloads)), dtype=np.int64, count=m)
            group, rank = _ranks(ids)
    return group, rank


def _ranks(keys: I64) -> tuple[I64, I64]:
    """Index of the first entry with the same key, and the number of earlier entries with it."""
    m = keys.size
    order = np.argsort(keys, kind="stable")
    ks = keys[order]
    new = np.ones(m, dtype=bool)
    new[1:] = ks[1:] != ks[:-1]
    start = np.maximum.accumulate(np.where(new, np.arange(m), 0))
    group = np.empty(m, dtype=np.int64)
    group[order] = order[start]
    rank = np.empty(m, dtype=np.int64)
    rank[order] = np.arange(m) - start
    return group, rank
