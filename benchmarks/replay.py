"""Replay benchmark: ``geofence replay --speed max`` against the pipeline benchmark, same workload, same run.

``python -m benchmarks replay [--json] [--quick]`` prints:

* ``replay_positions_per_s``: :func:`replay.driver.run_replay` over the workload file, as fast as possible:
  the embedded runner (JSONL decoder, event-time merge of the file, engine with every rule on, alert and
  dead-letter JSONL files, recording of the positions for the statistics); report generation excluded,
  and so are the per-zone/per-subject statistics of ``summary.json``, timed apart as ``summary_s``;
* ``pipeline_positions_per_s``: ``benchmarks.pipeline``'s timed loop (``JsonlDecoder``, engine, alert
  serialisation) over the same file, measured in the same run;
* ``ratio``: ``pipeline_positions_per_s / replay_positions_per_s`` (target <= 1.5);
* ``positions``, ``alert_lines``, ``subjects``, ``fences``, ``summary_s``, ``repeats``;
* ``batch_size``: the replay's micro-batch, by default what ``geofence replay --speed max`` uses (20,000 lines;
  the pipeline loop reads ~20,000 lines per call too).

The workload is ``benchmarks.pipeline``'s (its writer, zones and loop are imported, not copied): 2,000
fences along 1,500 km of river, 10,000 vessels reporting every 10 s for 20 minutes (quick: 3 minutes).
Each measurement is repeated (quick: once) and the best rate kept, the two kinds alternating.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.pipeline import bench_zones, run_pipeline, write_positions
from geofence.fence import ZoneSet
from replay.driver import run_replay
from replay.options import FAST_BATCH_LINES, runner_namespace

__all__ = ["main"]


def _replay(path: Path, zones: ZoneSet, out: Path, batch_size: int) -> tuple[float, int, int, float]:
    """(positions/s, positions, alert lines, summary statistics seconds) of one replay at --speed max."""
    run = run_replay([path], zones, out, options=runner_namespace(batch_size=batch_size))
    return run.positions / run.elapsed_s, run.positions, len(run.alerts), run.summary_s


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print a summary (or one JSON object with ``--json``)."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks replay", description=__doc__)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--quick", action="store_true", help="small run (under a minute)")
    ap.add_argument("--vessels", type=int, default=10_000)
    ap.add_argument("--minutes", type=float, default=None, help="simulated minutes (default 20, quick 3)")
    ap.add_argument("--repeats", type=int, default=None, help="measurements of each kind (default 2, quick 1)")
    ap.add_argument(
        "--batch-size",
        type=int,
        default=FAST_BATCH_LINES,
        help=f"replay micro-batch lines (default {FAST_BATCH_LINES})",
    )
    args = ap.parse_args(argv)
    minutes = args.minutes if args.minutes is not None else (3.0 if args.quick else 20.0)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 2)
    zones, workload = bench_zones(2000)
    best = {"replay": 0.0, "pipeline": 0.0}
    info: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="geofence-bench-replay-") as tmp:
        path = Path(tmp) / "positions.jsonl"
        write_positions(path, args.vessels, minutes)
        for _ in range(repeats):
            rate, n, alerts, summary_s = _replay(path, zones, Path(tmp) / "out", args.batch_size)
            best["replay"] = max(best["replay"], rate)
            info.update(positions=n, alert_lines=alerts, summary_s=round(summary_s, 2))
            n_pipe, _, t_pipe, _ = run_pipeline(path, zones, clock=time.perf_counter)  # wall, as the replay
            best["pipeline"] = max(best["pipeline"], n_pipe / t_pipe)
    result = {
        "replay_positions_per_s": round(best["replay"]),
        "pipeline_positions_per_s": round(best["pipeline"]),
        "ratio": round(best["pipeline"] / best["replay"], 3),
        **info,
        "subjects": args.vessels,
        "fences": len(zones),
        "batch_size": args.batch_size,
        "repeats": repeats,
        "workload": workload,
    }
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:36s} {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
