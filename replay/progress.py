"""A progress bar for replays: rate and ETA on a terminal, silent when piped.

Drawn by tqdm on standard error only when that is a TTY (or when asked), so logs
and pipes stay clean. Updates come from the runner's core thread.
"""

from __future__ import annotations

import gzip
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

__all__ = ["Progress", "count_lines", "want_progress"]

_CHUNK = 1 << 22


def count_lines(paths: Sequence[Path]) -> int:
    """Total number of lines of the files (gzip detected by magic bytes); a last line without newline counts."""
    total = 0
    for path in paths:
        with open(path, "rb") as probe:
            gz = probe.read(2) == b"\x1f\x8b"
        opener: Any = gzip.open if gz else open
        with opener(path, "rb") as fh:
            last = b"\n"
            while chunk := fh.read(_CHUNK):
                total += chunk.count(b"\n")
                last = chunk[-1:]
            if last != b"\n":
                total += 1
    return total


def want_progress(flag: bool | None, stream: TextIO | None = None) -> bool:
    """``flag`` if given, else whether ``stream`` (default stderr) is a terminal."""
    if flag is not None:
        return flag
    s = stream if stream is not None else sys.stderr
    try:
        return bool(s.isatty())
    except (AttributeError, ValueError):
        return False


class Progress:
    """Two-phase progress (tqdm): input lines decoded, then positions through the engine; no-op when disabled.

    The runner decodes every file first and then hands the engine all positions merged
    in event-time order, so one bar per phase: ``decode`` counts lines against the total
    counted up front, ``engine`` counts positions against the number decoded, with the
    alert lines so far in its postfix.
    """

    def __init__(self, total_lines: int | None, *, enabled: bool, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.lines = 0
        self.decoded_positions = 0
        self.positions = 0
        self.alert_lines = 0
        self._stream = stream if stream is not None else sys.stderr
        self._bar: Any = None
        self._phase = ""
        if enabled:
            self._open("decode", total_lines, " lines")

    def _open(self, phase: str, total: int | None, unit: str) -> None:
        from tqdm import tqdm

        if self._bar is not None:
            self._bar.close()
        self._phase = phase
        self._bar = tqdm(
            total=total,
            desc=phase,
            unit=unit,
            unit_scale=True,
            file=self._stream,
            mininterval=0.25,
            dynamic_ncols=True,
            leave=True,
        )

    def add_lines(self, n: int, positions: int = 0) -> None:
        """Count ``n`` more input lines decoded, holding ``positions`` positions."""
        self.lines += n
        self.decoded_positions += positions
        if self._bar is not None and self._phase == "decode" and n:
            self._bar.update(n)

    def add_output(self, positions: int, alert_lines: int) -> None:
        """Count positions through the engine and the alert lines they produced."""
        if self._bar is not None and self._phase != "engine" and positions:
            self._open("engine", max(self.decoded_positions, positions), " positions")
        self.positions += positions
        self.alert_lines += alert_lines
        if self._bar is not None and self._phase == "engine":
            if self.positions > (self._bar.total or 0):
                self._bar.total = max(self.decoded_positions, self.positions)
            self._bar.update(positions)
            self._bar.set_postfix_str(f"{self.alert_lines:,} alert lines", refresh=False)

    def close(self) -> None:
        """Draw the final state and release the terminal line."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
