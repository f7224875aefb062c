"""Shared inputs for the replay tests (helpers only; this module holds no tests).

Simulated traffic is generated once per test process and parameter set
(:func:`simulated`) and written, with its labels and plans, into a temporary
directory removed at exit: as JSONL (vessel reports, static lines carrying the
ship types, and the containers' e-seal reports merged by time), or as NMEA with
tag-block times and AIS statics (types 5/24).
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from geofence.baseline import Baseline

__all__ = ["SimFiles", "alert_lines", "flat_baseline", "run_cli", "run_geofence_run", "simulated", "triples"]

_ROOT: Path | None = None


def _root() -> Path:
    global _ROOT
    if _ROOT is None:
        _ROOT = Path(tempfile.mkdtemp(prefix="geofence-replay-tests-"))
        atexit.register(shutil.rmtree, _ROOT, True)
    return _ROOT


@dataclass(frozen=True)
class SimFiles:
    """Paths of one simulated recording and its ground truth."""

    feed: Path
    labels: Path
    plans: Path
    zones: Path
    label_rows: tuple[dict[str, Any], ...]


@functools.cache
def simulated(
    vessels: int,
    hours: float,
    seed: int,
    downsample_s: float = 0.0,
    zones: str | None = None,
    anomalies: int | None = None,
    fmt: str = "jsonl",
) -> SimFiles:
    """Simulate once per process (per arguments) and write feed (``fmt``: jsonl or nmea), labels and plans.

    ``anomalies=0`` gives normal traffic only; None the simulator's default (~3 % of the fleet per type).
    """
    from geofence.simulate import (
        SimConfig,
        container_lines,
        jsonl_lines,
        label_lines,
        nmea_lines,
        plan_lines,
        simulate,
    )
    from zones import default_catalogue_path, load_zones

    zones_path = Path(zones) if zones else Path(default_catalogue_path())
    zs = load_zones([zones_path])
    config = SimConfig(
        vessels=vessels, hours=hours, seed=seed, downsample_s=downsample_s, anomalies_per_type=anomalies
    )
    sim = simulate(zs, config)
    d = _root() / f"sim-{vessels}-{hours}-{seed}-{downsample_s}-{anomalies}-{fmt}-{abs(hash(str(zones_path)))}"
    d.mkdir(parents=True, exist_ok=True)
    if fmt == "nmea":
        feed = d / "traffic.nmea"
        feed.write_bytes(b"".join(s.encode("ascii") + b"\n" for s in nmea_lines(sim)))
    else:
        feed = d / "traffic.jsonl"
        keyed = [(orjson.loads(x)["ts"], x) for x in (*jsonl_lines(sim), *container_lines(sim))]
        keyed.sort(key=lambda kx: kx[0])  # ISO times sort as times; stable, vessels before containers
        feed.write_bytes(b"".join(x + b"\n" for _, x in keyed))
    labels = d / "labels.jsonl"
    label_bytes = label_lines(sim, include_containers=fmt != "nmea")
    labels.write_bytes(b"".join(x + b"\n" for x in label_bytes))
    plans = d / "plans.jsonl"
    plans.write_bytes(b"".join(x + b"\n" for x in plan_lines(sim)))
    rows = tuple(orjson.loads(x) for x in label_bytes)
    return SimFiles(feed=feed, labels=labels, plans=plans, zones=zones_path, label_rows=rows)


def flat_baseline(path: Path, zones_file: Path | None = None, minutes: float = 24 * 60.0) -> Path:
    """A baseline that puts every percentile fence's limit at ``minutes`` (far above any simulated dwell)."""
    from zones import default_catalogue_path, load_zones

    zs = load_zones([zones_file or default_catalogue_path()])
    pct = [f.id for f in zs.fences if isinstance(f.params.max_dwell_min, str)]
    b = Baseline.learn([(z, None, minutes * 60.0) for z in pct for _ in range(10)])
    path.write_bytes(orjson.dumps(b.to_dict()))
    return path


def run_cli(argv: list[str]) -> int:
    """``geofence ARGV`` in process."""
    from geofence_cli.main import main

    return main(argv)


def run_geofence_run(options: list[str]) -> int:
    """``geofence run OPTIONS`` (the embedded runner's CLI; ``python -m streams.runner`` until cmd_run lands)."""
    if importlib.util.find_spec("geofence_cli.cmd_run") is not None:
        return run_cli(["run", *options])
    from streams.runner import main

    return main(options)


def alert_lines(path: Path) -> list[dict[str, Any]]:
    """Decoded alert lines of a JSONL file."""
    return [orjson.loads(x) for x in path.read_bytes().splitlines() if x.strip()]


def triples(path: Path) -> list[tuple[str, str, str]]:
    """(alert_id, status, ts) of every line, in file order."""
    return [(str(a["alert_id"]), str(a["status"]), str(a["ts"])) for a in alert_lines(path)]
