"""Dead-letter records and their reason vocabulary.

Bad input is never dropped silently: every rejected record becomes one
:class:`DeadLetter` with where it came from, a reason code from
:data:`REASONS`, a human-readable detail and the first 512 characters of the raw
input (invalid UTF-8 as ``\\xNN`` escapes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["REASONS", "DeadLetter", "raw_text"]

#: The documented reason vocabulary (docs/ingest.md explains each).
REASONS: dict[str, str] = {
    "checksum": "NMEA checksum does not match the sentence",
    "empty_payload": "AIS sentence with an empty payload",
    "incomplete_multipart": "multipart group never completed within the reassembly window",
    "bad_time": "timestamp present but unparseable or not finite",
    "no_time": "record has no time and no --untimed-start was given",
    "out_of_range": "coordinate or value outside its valid range",
    "unparseable": "not a recognisable record of the declared format",
    "bad_container_id": "container id fails ISO 6346 (format or check digit)",
    "late": "older than the subject's latest event time by more than the reorder tolerance",
    "missing_field": "a required field is absent",
    "bad_value": "a field has a value of the wrong type",
    "too_long": "line longer than the maximum accepted length",
}

_RAW_LIMIT = 512


def raw_text(raw: bytes | str) -> str:
    """Return the first 512 characters of ``raw``, invalid UTF-8 as ``\\xNN`` escapes."""
    if isinstance(raw, bytes):
        raw = raw[: _RAW_LIMIT * 4].decode("utf-8", errors="backslashreplace")
    return raw[:_RAW_LIMIT]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One rejected input record.

    ``line`` is 1-based for files; for streams it is the byte/record offset and
    :meth:`to_dict` names it ``offset``.
    """

    source: str
    line: int
    reason: str
    detail: str
    raw: str
    is_offset: bool = False

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"unknown dead-letter reason {self.reason!r}; add it to REASONS with its meaning")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping: source, line|offset, reason, detail, raw."""
        return {
            "source": self.source,
            "offset" if self.is_offset else "line": self.line,
            "reason": self.reason,
            "detail": self.detail,
            "raw": raw_text(self.raw),
        }
