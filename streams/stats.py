"""The runner's periodic stats line (stderr) and its wall-clock timing figures.

Wall clock is allowed here (``streams/``), never in the core. Timing figures
(positions/s, lag behind the newest event) go to stderr only; the event-time
figures (watermark delay, open alerts, counts) also go into the run summary.

Stats line fields (``key=value``, space separated, one line every ``--stats-every-s``)::

    geofence-stats elapsed_s=… positions=… positions_per_s=… lag_s=… watermark_delay_s=…
                   dead_letter=… dead_letter_per_s=… dead_letter_pct=… open_alerts=… alert_lines=…
                   queue_in=n/max queue_out=n/max

``positions_per_s`` and ``dead_letter_per_s`` are over the interval since the
previous line; ``lag_s`` = wall now − newest event time; ``watermark_delay_s`` =
newest event time − watermark; ``dead_letter_pct`` = dead letters / input lines
so far; ``-`` marks a figure not known yet.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from geofence.engine_api import EngineStats

__all__ = ["RunStats", "fmt_num"]


def fmt_num(value: float | None, digits: int = 1) -> str:
    """Format a figure for the stats line; ``-`` when unknown."""
    return "-" if value is None else f"{value:.{digits}f}"


@dataclass
class RunStats:
    """Running figures of one runner process, for the stats line.

    Parameters
    ----------
    wall
        Wall clock (epoch seconds), injectable for tests.
    mono
        Monotonic clock for rates.
    """

    wall: Callable[[], float] = time.time
    mono: Callable[[], float] = time.monotonic
    positions: int = 0
    input_lines: int = 0
    dead_letter: int = 0
    alert_lines: int = 0
    engine: EngineStats | None = None
    started_mono: float = field(default=0.0)
    _last_mono: float = 0.0
    _last_positions: int = 0
    _last_dead: int = 0

    def __post_init__(self) -> None:
        self.started_mono = self._last_mono = self.mono()

    def record(self, *, input_lines: int, positions: int, dead_letter: int, alert_lines: int) -> None:
        """Count what one batch contributed (this process only, not restored totals)."""
        self.input_lines += input_lines
        self.positions += positions
        self.dead_letter += dead_letter
        self.alert_lines += alert_lines

    def lag_s(self) -> float | None:
        """Wall now − newest event time."""
        if self.engine is None or self.engine.max_event_ts_s is None:
            return None
        return self.wall() - self.engine.max_event_ts_s

    def watermark_delay_s(self) -> float | None:
        """Newest event time − watermark (event time only)."""
        if self.engine is None or self.engine.max_event_ts_s is None or self.engine.watermark_s is None:
            return None
        return self.engine.max_event_ts_s - self.engine.watermark_s

    def line(self, queue_in: tuple[int, int] = (0, 0), queue_out: tuple[int, int] = (0, 0)) -> str:
        """Render the stats line and start a new rate interval."""
        now = self.mono()
        dt = max(now - self._last_mono, 1e-9)
        pos_rate = (self.positions - self._last_positions) / dt
        dead_rate = (self.dead_letter - self._last_dead) / dt
        self._last_mono, self._last_positions, self._last_dead = now, self.positions, self.dead_letter
        pct = 100.0 * self.dead_letter / self.input_lines if self.input_lines else None
        open_alerts = None if self.engine is None else self.engine.open_alerts
        return (
            f"geofence-stats elapsed_s={now - self.started_mono:.1f} positions={self.positions} "
            f"positions_per_s={pos_rate:.0f} lag_s={fmt_num(self.lag_s())} "
            f"watermark_delay_s={fmt_num(self.watermark_delay_s())} dead_letter={self.dead_letter} "
            f"dead_letter_per_s={dead_rate:.1f} dead_letter_pct={fmt_num(pct, 3)} "
            f"open_alerts={'-' if open_alerts is None else open_alerts} alert_lines={self.alert_lines} "
            f"queue_in={queue_in[0]}/{queue_in[1]} queue_out={queue_out[0]}/{queue_out[1]}"
        )

    def final_line(self) -> str:
        """The whole run's figures (stderr only: the timing ones are never in the summary).

        Besides elapsed time and positions/s it repeats the stats line's event-time
        figures, which the summary also holds (``watermark_delay_s``, ``open_alerts``,
        the dead-letter share).
        """
        elapsed = max(self.mono() - self.started_mono, 1e-9)
        pct = 100.0 * self.dead_letter / self.input_lines if self.input_lines else None
        open_alerts = None if self.engine is None else self.engine.open_alerts
        return (
            f"geofence-run elapsed_s={elapsed:.2f} positions={self.positions} "
            f"positions_per_s={self.positions / elapsed:.0f} input_lines={self.input_lines} "
            f"dead_letter={self.dead_letter} dead_letter_pct={fmt_num(pct, 3)} alert_lines={self.alert_lines} "
            f"lag_s={fmt_num(self.lag_s())} watermark_delay_s={fmt_num(self.watermark_delay_s())} "
            f"open_alerts={'-' if open_alerts is None else open_alerts}"
        )
