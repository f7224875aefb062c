"""Assembled AIS messages of one batch as columns: those of the fast lines, those of the loop, in order.

Why a module: :class:`geofence.decode.nmea.NmeaDecoder` produces messages two ways, from the
*fast* lines the vectorised first pass worked out (:func:`fast_messages`, numpy and one list
comprehension) and from the per-line loop (tuples, :data:`Item`); :func:`merge` puts both in
completion order (the index of a message's last line), which dedupe and the synthetic clock
depend on. :func:`key_code` is the number the first pass gives a multipart group key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress

import numpy as np
import numpy.typing as npt

from geofence.decode._nmeascan import LineScan

__all__ = ["Item", "Messages", "fast_messages", "key_code", "merge", "station_text"]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Obj = npt.NDArray[np.object_]

_SENTENCE_KINDS = (b"VDM", b"VDO")
_CACHE_MAX = 4096


#: A message the loop assembled: (index of its last line in the batch, payload, fill bits, first line number,
#: time or NaN, receiver, (line, raw bytes) of each fragment or None for a single line).
Item = tuple[int, bytes, int, int, float, str, "list[tuple[int, bytes]] | None"]


@dataclass(slots=True)
class Messages:
    """Assembled messages of one feed call, in completion order, as columns.

    ``groups`` holds the (line, raw bytes) of every fragment of multipart messages, by message
    index; a message not in it takes ``nlines[k]`` adjacent lines from ``line[k]``, whose bytes are in ``lines``.
    """

    lines: Sequence[bytes]
    first_line: int
    payload: list[bytes]
    fill: I64
    line: I64
    ts: F64  # NaN: no time
    receiver: Obj
    nlines: I64
    groups: dict[int, list[tuple[int, bytes]]]

    @classmethod
    def empty(cls, lines: Sequence[bytes], first_line: int) -> Messages:
        z = np.zeros(0, dtype=np.int64)
        return cls(lines, first_line, [], z, z, np.zeros(0), np.zeros(0, dtype=object), z, {})

    def __len__(self) -> int:
        return len(self.payload)

    def raws(self, k: int) -> list[tuple[int, bytes]]:
        """(line number, raw bytes) of every line of message ``k``."""
        group = self.groups.get(k)
        if group is not None:
            return group
        ln = int(self.line[k])  # a message not in ``groups`` takes adjacent lines
        return [(ln + d, self.lines[ln - self.first_line + d]) for d in range(int(self.nlines[k]))]

    def drop(self, gone: I64) -> Messages:
        """The messages without those at indices ``gone``."""
        keep = np.ones(len(self.payload), dtype=bool)
        keep[gone] = False
        groups: dict[int, list[tuple[int, bytes]]] = {}
        if self.groups:
            new_index = np.cumsum(keep) - 1
            groups = {int(new_index[k]): g for k, g in self.groups.items() if keep[k]}
        return Messages(
            self.lines,
            self.first_line,
            list(compress(self.payload, keep.tolist())),
            self.fill[keep],
            self.line[keep],
            self.ts[keep],
            self.receiver[keep],
            self.nlines[keep],
            groups,
        )



def fast_messages(
    lines: Sequence[bytes],
    first_line: int,
    lay: LineScan,
    sent: I64,
    payloads: list[bytes],
    ts: F64,
    pair1: npt.NDArray[np.bool_],
    stations: dict[bytes, str],
) -> Messages:
    """The messages of the fast sentence lines ``sent`` (single lines and two-line groups), in line order.

    ``payloads`` and ``ts`` are those of the lines in ``sent``; ``pair1`` marks the first line of each
    two-line group; ``stations`` caches station texts.
    """
    receiver = np.full(sent.size, "", dtype=object)
    st0 = lay.st0[sent]
    with_station = np.flatnonzero(st0 >= 0)
    if with_station.size:
        rows = sent[with_station].tolist()
        keys = [
            lines[i][a:b]
            for i, a, b in zip(rows, st0[with_station].tolist(), lay.st1[sent][with_station].tolist(), strict=True)
        ]
        receiver[with_station] = [stations.get(key) or station_text(stations, key) for key in keys]
    first = pair1[sent]
    if not first.any():
        return Messages(lines, first_line, payloads, lay.fill[sent], first_line + sent, ts, receiver,
                         np.ones(sent.size, dtype=np.int64), {})
    # two-line groups: fragment 1 at k - 1, fragment 2 at k (positions in ``sent``)
    ends = np.flatnonzero(~first)
    second = np.zeros(sent.size, dtype=bool)
    second[1:] = first[:-1]
    is_pair = second[ends]
    at = np.flatnonzero(is_pair)
    k2 = ends[at]
    msg_payloads = list(map(payloads.__getitem__, ends.tolist()))
    for j, k in zip(at.tolist(), k2.tolist(), strict=True):
        msg_payloads[j] = payloads[k - 1] + payloads[k]
    msg_ts = ts[ends]
    t1 = ts[k2 - 1]  # the group's time is fragment 1's, when it has one
    msg_ts[at] = np.where(np.isnan(t1), msg_ts[at], t1)
    msg_rx = receiver[ends]
    rx1 = receiver[k2 - 1]
    msg_rx[at] = np.where(rx1 != "", rx1, msg_rx[at])
    end_lines = sent[ends]
    return Messages(lines, first_line, msg_payloads, lay.fill[end_lines], first_line + end_lines - is_pair,
                     msg_ts, msg_rx, 1 + is_pair.astype(np.int64), {})


def merge(fast: Messages, items: list[Item]) -> Messages:
    """The fast messages and the loop's, in completion order (the index of each message's last line)."""
    if not items:
        return fast
    end_fast = fast.line - fast.first_line + fast.nlines - 1
    m_fast = len(fast)
    end, p_slow, f_slow, l_slow, t_slow, r_slow, g_slow = zip(*items, strict=True)
    order = np.argsort(np.concatenate([end_fast, np.asarray(end, dtype=np.int64)]), kind="stable")
    all_payloads = fast.payload + list(p_slow)
    rx = np.empty(m_fast + len(items), dtype=object)
    rx[:m_fast] = fast.receiver
    rx[m_fast:] = r_slow
    where = np.empty(order.size, dtype=np.int64)
    where[order] = np.arange(order.size)
    groups = {int(where[m_fast + j]): g for j, g in enumerate(g_slow) if g is not None}
    nl_slow = np.asarray([1 if g is None else len(g) for g in g_slow], dtype=np.int64)
    return Messages(
        fast.lines,
        fast.first_line,
        list(map(all_payloads.__getitem__, order.tolist())),
        np.concatenate([fast.fill, np.asarray(f_slow, dtype=np.int64)])[order],
        np.concatenate([fast.line, np.asarray(l_slow, dtype=np.int64)])[order],
        np.concatenate([fast.ts, np.asarray(t_slow, dtype=np.float64)])[order],
        rx[order],
        np.concatenate([fast.nlines, nl_slow])[order],
        groups,
    )


def key_code(key: tuple[bytes, bytes, bytes, int]) -> int:
    """The number :func:`._nmeascan.scan_lines` gives a multipart group key (-1 for keys it cannot give)."""
    sentence, seq, chan, cnt = key
    if len(sentence) != 5 or sentence[2:] not in _SENTENCE_KINDS or len(seq) > 1 or len(chan) > 1 or not 0 < cnt < 10:
        return -1
    code = sentence[0] | (sentence[1] << 8) | (sentence[2] << 16)
    code = code * 2 + (sentence[4] == ord("O"))
    code = (code * 257 + (seq[0] if seq else 256)) * 257 + (chan[0] if chan else 256)
    return code * 10 + cnt


def station_text(cache: dict[bytes, str], key: bytes) -> str:
    """Tag-block station text, cached (a feed has a few hundred stations)."""
    text = key.decode("ascii", errors="backslashreplace")
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache[key] = text
    return text
