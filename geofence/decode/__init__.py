"""Pure decoders for AIS NMEA, CSV and JSONL input: lines in, position batches and accounting out.

No I/O and no clock: adapters in ``streams`` read the bytes and pass them in.
"""

from geofence.decode.accounting import BUCKETS, Counts, DecodeResult
from geofence.decode.detect import detect_format
from geofence.decode.nmea import NmeaDecoder

__all__ = ["BUCKETS", "Counts", "DecodeResult", "NmeaDecoder", "detect_format"]
