"""Input format detection from the first bytes of an input."""

from __future__ import annotations

import re

__all__ = ["FORMATS", "detect_format"]

#: Formats the decoders understand.
FORMATS = ("nmea", "csv", "jsonl")

_NMEA = re.compile(rb"^\s*(?:\\[^\\]*\\)?(?:[0-9.]+\s+)?[!$][A-Z-]{2}[A-Z]{3},", re.MULTILINE)


def detect_format(first_bytes: bytes) -> str:
    """Guess ``"nmea"``, ``"csv"`` or ``"jsonl"`` from the start of an input.

    JSON lines start with ``{``; NMEA has ``!AIVDM``-like sentences (possibly
    behind a tag block or a unix time, between comments); anything else is CSV.
    """
    text = first_bytes.removeprefix(b"\xef\xbb\xbf")
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        if line.startswith(b"{"):
            return "jsonl"
        break
    if _NMEA.search(text[:65536]):
        return "nmea"
    return "csv"
