"""Yangtze traffic simulator: vessels, containers, injected anomalies, labels and plans.

Pure (returns data, writes nothing) and deterministic for a seed. Typical use::

    sim = simulate(zoneset, SimConfig(vessels=200, hours=6, seed=1))
    lines = jsonl_lines(sim)          # or nmea_lines(sim)
    labels = label_lines(sim)

See ``docs/simulator.md`` for the options and the label and plan formats.
"""

from geofence.decode.iso6346 import is_valid_iso6346, iso6346_check_digit, iso6346_remainder
from geofence.simulate.anomalies import ANOMALY_TYPES
from geofence.simulate.batches import position_batch
from geofence.simulate.encode import container_lines, iso_z, jsonl_lines, label_lines, plan_lines
from geofence.simulate.nmea import nmea_checksum, nmea_lines, tag_block
from geofence.simulate.run import DEFAULT_START_S, Reports, SimConfig, Simulation, simulate
from geofence.simulate.tracks import report_interval_s

__all__ = [
    "ANOMALY_TYPES",
    "DEFAULT_START_S",
    "Reports",
    "SimConfig",
    "Simulation",
    "container_lines",
    "is_valid_iso6346",
    "iso6346_check_digit",
    "iso6346_remainder",
    "iso_z",
    "jsonl_lines",
    "label_lines",
    "nmea_checksum",
    "nmea_lines",
    "plan_lines",
    "position_batch",
    "report_interval_s",
    "simulate",
    "tag_block",
]
