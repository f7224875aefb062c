"""Line accounting: every input line ends in exactly one bucket.

The identity ``input_lines == positions + static + other + duplicates +
fragments + skipped + dead_letter`` holds for every :class:`DecodeResult` a
decoder returns. Lines of a multipart group are counted when the group's fate is
known: an assembled message puts one line (its first) in the message's bucket
and the others in ``fragments``; a group that expires or fails to decode puts
every line in ``dead_letter``, each with its own dead letter. So ``positions``
is the number of position records that reached the rules, and a two-fragment
static message adds 1 to ``static`` and 1 to ``fragments``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from geofence.deadletter import REASONS, DeadLetter
from geofence.errors import DecodeError
from geofence.positions import PositionBatch, StaticReport

__all__ = ["BUCKETS", "Counts", "DecodeResult"]

#: The buckets an input line can end in, exactly one each.
BUCKETS: tuple[str, ...] = ("positions", "static", "other", "duplicates", "fragments", "skipped", "dead_letter")
#: Buckets a decoded record (as opposed to a single line) can land in.
_RECORD_BUCKETS: tuple[str, ...] = ("positions", "static", "other", "duplicates")
#: Informational sub-counts (not buckets: they overlap them).
_INFO: tuple[str, ...] = ("no_position", "multipart_messages", "tag_blocks_ignored")


@dataclass(slots=True)
class Counts:
    """Per-bucket line counts plus informational sub-counts.

    ``no_position`` (a sub-count of ``other``) counts valid position reports that
    carry the AIS "not available" position (lon 181 / lat 91); ``multipart_messages``
    counts assembled multipart groups (any bucket); ``tag_blocks_ignored`` counts
    sentences decoded without their tag block because the tag block's own checksum
    failed (its time and station are not trusted).
    """

    input_lines: int = 0
    positions: int = 0
    static: int = 0
    other: int = 0
    skipped: int = 0
    duplicates: int = 0
    fragments: int = 0
    dead_letter: int = 0
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)
    no_position: int = 0
    multipart_messages: int = 0
    tag_blocks_ignored: int = 0

    def add_record(self, bucket: str, lines: int = 1) -> None:
        """Count one record that took ``lines`` input lines: one in ``bucket``, the rest in ``fragments``."""
        if bucket not in _RECORD_BUCKETS or lines < 1:
            raise DecodeError("bad_value", f"add_record({bucket!r}, {lines}): bucket must be one of {_RECORD_BUCKETS}")
        self.input_lines += lines
        setattr(self, bucket, getattr(self, bucket) + 1)
        self.fragments += lines - 1

    def add_dead(self, reason: str, n: int = 1) -> None:
        """Count ``n`` input lines rejected for ``reason`` (also counts them as input)."""
        if reason not in REASONS:
            raise DecodeError("bad_value", f"unknown dead-letter reason {reason!r}; add it to REASONS")
        self.input_lines += n
        self.dead_letter += n
        self.dead_letter_reasons[reason] = self.dead_letter_reasons.get(reason, 0) + n

    def move_to_dead(self, n: int, reason: str) -> None:
        """Move ``n`` lines from ``positions`` to the dead letter (e.g. ``late`` records rejected by the engine)."""
        if n < 0 or n > self.positions:
            raise DecodeError("bad_value", f"cannot move {n} of {self.positions} position lines to {reason!r}")
        self.positions -= n
        self.add_dead(reason, n)
        self.input_lines -= n  # the lines were already counted as input

    def merge(self, other: Counts) -> None:
        """Add ``other`` into this object."""
        for name in ("input_lines", *BUCKETS, *_INFO):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, n in other.dead_letter_reasons.items():
            self.dead_letter_reasons[reason] = self.dead_letter_reasons.get(reason, 0) + n

    def bucket_sum(self) -> int:
        """Sum of all buckets; equals ``input_lines`` when the accounting is balanced."""
        return sum(int(getattr(self, name)) for name in BUCKETS)

    def balanced(self) -> bool:
        """True when every input line is in exactly one bucket and the reasons add up."""
        return self.bucket_sum() == self.input_lines and sum(self.dead_letter_reasons.values()) == self.dead_letter

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (reasons sorted by name)."""
        out: dict[str, Any] = {"input_lines": self.input_lines}
        for name in BUCKETS:
            out[name] = getattr(self, name)
        for name in _INFO:
            out[name] = getattr(self, name)
        out["dead_letter_reasons"] = dict(sorted(self.dead_letter_reasons.items()))
        return out


@dataclass(slots=True)
class DecodeResult:
    """What one ``feed``/``close`` call produced."""

    positions: PositionBatch
    statics: list[StaticReport] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    counts: Counts = field(default_factory=Counts)

    @classmethod
    def empty(cls) -> DecodeResult:
        """A result with nothing in it."""
        return cls(positions=PositionBatch.empty())

    @classmethod
    def concat(cls, results: Sequence[DecodeResult]) -> DecodeResult:
        """Join results in order (positions concatenated, counts summed)."""
        counts = Counts()
        statics: list[StaticReport] = []
        dead: list[DeadLetter] = []
        for r in results:
            counts.merge(r.counts)
            statics.extend(r.statics)
            dead.extend(r.dead)
        batches = [r.positions for r in results if len(r.positions)]
        return cls(positions=PositionBatch.concat(batches), statics=statics, dead=dead, counts=counts)
