"""Compatibility alias: the ISO 6346 code lives in :mod:`geofence.decode.iso6346`.

Ingest validates container ids and the simulator generates them with the same
functions; the implementation moved to the decoder package, which owns the rule.
"""

from geofence.decode.iso6346 import is_valid_iso6346, iso6346_check_digit, iso6346_remainder

__all__ = ["is_valid_iso6346", "iso6346_check_digit", "iso6346_remainder"]
