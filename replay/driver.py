"""The replay driver: recordings through the embedded runner's own pipeline, then the analyst's outputs.

A replay is ``streams.runner.run`` over file inputs, with the runner's decoder
factory and engine factory built from ``geofence run``'s options
(:mod:`replay.options`). Only three things are added, none of them on the
decision path:

* the engine is wrapped in a :class:`~replay.tap.TapEngine`, which forwards every
  call and keeps the accepted positions for the statistics and the report, and,
  with ``speed``, paces the positions by event time (:mod:`replay.pacing`);
* the decoders are wrapped to feed a progress bar (TTY only);
* the sinks are a JSONL file (``alerts.jsonl``, the same bytes ``geofence run
  --alerts FILE`` writes) and an in-memory list for the statistics.

Hence the replay's alert lines are the run's, line for line, and two replays of
the same input write the same bytes. Wall-clock figures (elapsed time, rate)
are returned for stderr and never written to the output files.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geofence.alerts import Alert
from geofence.errors import ConfigError
from geofence.fence import ZoneSet
from replay.options import runner_namespace
from replay.outputs import build_replay_summary, clear_outputs, write_replay_summary, write_report_files
from replay.pacing import Pacer
from replay.progress import Progress, count_lines, want_progress
from replay.tap import Recording, TapEngine, counting_factory
from streams.runner import (
    DecoderFactory,
    DefaultEngineFactory,
    EngineFactory,
    FileInput,
    RunResult,
    build_inputs,
    default_decoder_factory,
    run,
)
from streams.sinks import DeadLetterJsonlSink, JsonlSink

__all__ = ["MemorySink", "ReplayRun", "engine_factory_for", "run_replay", "write_report"]


class MemorySink:
    """Keeps every alert line in memory, in output order (for statistics and comparisons)."""

    def __init__(self) -> None:
        self.name = "memory"
        self.alerts: list[Alert] = []

    async def start(self) -> None:
        """Nothing to open."""

    async def write(self, alerts: Sequence[Alert]) -> None:
        """Keep the batch."""
        self.alerts.extend(alerts)

    async def flush(self) -> None:
        """Nothing to flush."""

    async def close(self) -> None:
        """Nothing to close."""


@dataclass(slots=True)
class ReplayRun:
    """One finished replay: the runner's result, what the engine saw, the alert lines and the summary."""

    out_dir: Path | None
    zones: ZoneSet
    result: RunResult
    recording: Recording | None
    alerts: list[Alert]
    summary: dict[str, Any]
    elapsed_s: float
    summary_s: float
    slept_s: float = 0.0
    _lines: list[dict[str, Any]] | None = None

    @property
    def alert_lines(self) -> list[dict[str, Any]]:
        """The alert lines as decoded JSON objects (the contract's flat mapping)."""
        if self._lines is None:
            self._lines = [a.to_dict() for a in self.alerts]
        return self._lines

    @property
    def positions(self) -> int:
        """Positions that reached the rules."""
        return int(self.result.counts.positions)


def engine_factory_for(options: argparse.Namespace) -> EngineFactory:
    """The runner's engine factory for ``--rules``, ``--baseline`` and ``--plans`` (the same one ``run`` uses)."""
    return DefaultEngineFactory(options.rules, options.baseline, options.plans)


def _file_inputs(specs: Sequence[str | Path]) -> list[FileInput]:
    if not specs:
        raise ConfigError("no input; give one or more recordings (files, plain or .gz)")
    out: list[FileInput] = []
    for inp in build_inputs([str(s) for s in specs]):
        if not isinstance(inp, FileInput):
            raise ConfigError(
                f"replay reads recordings (files); {inp.name!r} is a live source, use geofence run for it"
            )
        out.append(inp)
    return out


def run_replay(
    inputs: Sequence[str | Path],
    zones: ZoneSet,
    out_dir: Path | None,
    *,
    options: argparse.Namespace | None = None,
    speed: float | None = None,
    progress: bool | None = False,
    record: bool = True,
    engine_factory: EngineFactory | None = None,
    decoder_factory: DecoderFactory | None = None,
) -> ReplayRun:
    """Replay recordings through the embedded runner; write ``alerts.jsonl``, ``dead_letter.jsonl``, ``summary.json``.

    Parameters
    ----------
    inputs
        Recording files (plain or gzip), in the order ``geofence run --input`` would take them.
    zones
        The fences to decide under.
    out_dir
        Output directory (created; earlier replay outputs in it are replaced); None writes nothing.
    options
        ``geofence run``'s options (:func:`replay.options.runner_namespace`): format, columns, rules, plans, ...
    speed
        None: as fast as possible; N: N times real time, paced by event time.
    progress
        Progress bar on stderr: True, False, or None for "when stderr is a terminal".
    record
        Keep the accepted positions (needed for per-zone/per-subject figures, plots and the report).
    engine_factory, decoder_factory
        Replace the runner's factories (tests, benchmarks); the default is exactly ``geofence run``'s.
    """
    opts = options if options is not None else runner_namespace()
    files = _file_inputs(inputs)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        clear_outputs(out_dir)
    show = want_progress(progress)
    bar = Progress(count_lines([f.path for f in files]) if show else None, enabled=show)
    pacer = Pacer(speed) if speed is not None else None
    factory = engine_factory if engine_factory is not None else engine_factory_for(opts)
    engine = TapEngine(factory.new(zones), record=record, pacer=pacer, progress=bar)
    decoders = decoder_factory if decoder_factory is not None else default_decoder_factory(opts)
    if show:
        decoders = counting_factory(decoders, bar)
    memory = MemorySink()
    sinks: list[Any] = [memory]
    dead: DeadLetterJsonlSink | None = None
    if out_dir is not None:
        sinks.insert(0, JsonlSink(out_dir / "alerts.jsonl", fsync=False))
        dead = DeadLetterJsonlSink(out_dir / "dead_letter.jsonl", fsync=False)
    t0 = time.perf_counter()
    try:
        result = asyncio.run(
            run(
                files,
                decoders,
                engine,
                sinks,
                dead,
                batch_size=opts.batch_size,
                stats_every_s=0,
                handle_signals=False,
                sort_memory_bytes=int(opts.sort_memory_mb * (1 << 20)),
            )
        )
    finally:
        if pacer is not None:
            pacer.cancel()
        bar.close()
    elapsed = time.perf_counter() - t0
    t1 = time.perf_counter()
    recording = engine.recording() if record else None
    lines = [a.to_dict() for a in memory.alerts]
    summary = build_replay_summary(result, zones, recording, lines)
    if out_dir is not None:
        write_replay_summary(out_dir / "summary.json", summary)
    return ReplayRun(
        out_dir=out_dir,
        zones=zones,
        result=result,
        recording=recording,
        alerts=memory.alerts,
        summary=summary,
        elapsed_s=elapsed,
        summary_s=time.perf_counter() - t1,
        slept_s=0.0 if pacer is None else pacer.slept_s,
        _lines=lines,
    )


def write_report(run_: ReplayRun, *, title: str | None = None) -> list[Path]:
    """Write ``report.html`` and the plots of a recorded replay into its output directory."""
    if run_.out_dir is None or run_.recording is None:
        raise ConfigError("the report needs an output directory and a recorded replay (record=True)")
    names = ", ".join(Path(n).name for n in run_.result.inputs)
    return write_report_files(
        run_.out_dir,
        run_.zones,
        run_.recording,
        run_.alert_lines,
        run_.summary,
        title=title or f"geofence replay: {names}",
    )
