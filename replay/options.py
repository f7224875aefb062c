"""The input and engine options replay and learn share with ``geofence run``.

Decoders and the engine are built by the runner's own factories from an
``argparse.Namespace`` shaped like ``geofence run``'s, so a replay decodes and
decides exactly as a run does. :func:`runner_namespace` makes that namespace
from the runner's defaults (whatever options the runner grows) plus the values
given; :func:`add_input_options` adds the subset that makes sense for
recordings to the ``replay`` and ``learn`` parsers, with the same names.
"""

from __future__ import annotations

import argparse
from typing import Any

from geofence.errors import ConfigError
from streams.runner import add_run_arguments

__all__ = [
    "FAST_BATCH_LINES",
    "INPUT_OPTIONS",
    "PACED_BATCH_LINES",
    "add_input_options",
    "batch_lines",
    "namespace_from",
    "runner_namespace",
]

#: The ``geofence run`` options replay and learn accept, by attribute name.
INPUT_OPTIONS: tuple[str, ...] = (
    "zones",
    "plans",
    "rules",
    "baseline",
    "format",
    "columns",
    "time_format",
    "tz",
    "untimed_start",
    "untimed_step_s",
    "batch_size",
    "sort_memory_mb",
)


#: Micro-batch of a replay as fast as possible: larger than ``geofence run``'s 4096 (a recording has no
#: latency to keep low, and the engine's cost per call is amortised); the alerts do not depend on it.
FAST_BATCH_LINES = 20_000
#: Micro-batch of a paced replay: pacing holds whole batches, so smaller batches pace more smoothly.
PACED_BATCH_LINES = 4096


def batch_lines(requested: int | None, speed: float | None) -> int:
    """``--batch-size`` when given, else :data:`FAST_BATCH_LINES` (``--speed max``) or :data:`PACED_BATCH_LINES`."""
    if requested is not None:
        if requested < 1:
            raise ConfigError(f"--batch-size {requested} must be >= 1")
        return requested
    return FAST_BATCH_LINES if speed is None else PACED_BATCH_LINES


def runner_namespace(**values: Any) -> argparse.Namespace:
    """``geofence run``'s namespace with every default, overridden by ``values`` (attribute names)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_run_arguments(parser)
    ns = parser.parse_args([])
    for key, value in values.items():
        if not hasattr(ns, key):
            raise ConfigError(f"{key!r} is not a geofence run option; known: {', '.join(sorted(vars(ns)))}")
        setattr(ns, key, value)
    return ns


def add_input_options(parser: argparse.ArgumentParser, *, baseline: bool = True) -> None:
    """Add the shared options (same names, defaults and meaning as in ``geofence run``)."""
    parser.add_argument(
        "--zones",
        nargs="+",
        action="extend",
        default=[],
        metavar="FILE",
        help="fence files (default: the built-in Yangtze catalogue)",
    )
    parser.add_argument("--plans", default=None, metavar="FILE", help="voyage plans (JSONL) for route deviation")
    parser.add_argument("--rules", default=None, metavar="FILE", help="rules file (TOML, or JSON by suffix)")
    if baseline:
        parser.add_argument(
            "--baseline",
            default=None,
            metavar="FILE",
            help="learned baseline for max_dwell_min = 'pNN' (written by geofence learn)",
        )
    parser.add_argument("--format", default="auto", choices=("auto", "nmea", "csv", "jsonl"), help="input format")
    parser.add_argument(
        "--columns", default=None, metavar="MAP", help="id=COL,ts=COL,lon=COL,lat=COL[,sog=,cog=,heading=]"
    )
    parser.add_argument("--time-format", default=None, metavar="FMT", help="strptime format of the ts column")
    parser.add_argument("--tz", default="UTC", help="time zone of naive times (default UTC)")
    parser.add_argument(
        "--untimed-start", default=None, metavar="ISO", help="synthetic clock start for untimed records"
    )
    parser.add_argument("--untimed-step-s", type=float, default=1.0, help="synthetic clock step (default 1 s)")
    parser.add_argument(
        "--sort-memory-mb",
        type=float,
        default=256.0,
        help="memory of the event-time sort of unsorted files before it spills to $TMPDIR (default 256)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help=f"lines per micro-batch (default {FAST_BATCH_LINES}; {PACED_BATCH_LINES} for a paced replay)",
    )


def namespace_from(args: argparse.Namespace, speed: float | None = None, **overrides: Any) -> argparse.Namespace:
    """The runner namespace for parsed ``replay``/``learn`` arguments (plus ``overrides``).

    An unset ``--batch-size`` becomes :func:`batch_lines`'s choice for ``speed``.
    """
    values = {k: getattr(args, k) for k in INPUT_OPTIONS if hasattr(args, k)}
    values["batch_size"] = batch_lines(values.get("batch_size"), speed)
    values.update(overrides)
    return runner_namespace(**values)
