"""Pure decoders for AIS NMEA, CSV and JSONL input: lines in, position batches and accounting out.

No I/O and no clock: adapters in ``streams`` read the bytes and pass them in.
Every decoder has ``feed(lines, first_line, arrival_ts_s=None) -> DecodeResult``
and ``close() -> DecodeResult``; see docs/ingest.md.
"""

from geofence.decode.accounting import BUCKETS, Counts, DecodeResult
from geofence.decode.csv import CsvDecoder
from geofence.decode.detect import detect_format
from geofence.decode.iso6346 import canonical_container_id, is_valid_iso6346, iso6346_check_digit
from geofence.decode.jsonl import JsonlDecoder
from geofence.decode.nmea import NmeaDecoder

__all__ = [
    "BUCKETS",
    "Counts",
    "CsvDecoder",
    "DecodeResult",
    "JsonlDecoder",
    "NmeaDecoder",
    "canonical_container_id",
    "detect_format",
    "is_valid_iso6346",
    "iso6346_check_digit",
]
