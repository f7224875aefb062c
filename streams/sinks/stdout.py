"""Alert lines to standard output, one JSON object per line, flushed per batch."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from typing import BinaryIO

from geofence.alerts import Alert

__all__ = ["StdoutSink"]


class StdoutSink:
    """Write each alert as one JSON line to ``stream`` (default: ``sys.stdout``'s buffer).

    Parameters
    ----------
    stream
        A binary stream; tests pass a ``BytesIO``.
    """

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self.name = "stdout"
        self._stream = stream

    def _out(self) -> BinaryIO:
        # Resolved lazily so pytest's capture (which swaps sys.stdout) is honoured.
        return self._stream if self._stream is not None else sys.stdout.buffer

    async def start(self) -> None:
        """Nothing to open."""

    async def write(self, alerts: Sequence[Alert]) -> None:
        """Write the batch as JSON lines."""
        if alerts:
            self._out().write(b"".join(a.to_json() + b"\n" for a in alerts))

    async def flush(self) -> None:
        """Flush the stream (a pipe reader sees the batch now)."""
        with contextlib.suppress(BrokenPipeError):  # e.g. `| head`: nobody reads any more
            self._out().flush()

    async def close(self) -> None:
        """Flush; stdout itself stays open."""
        await self.flush()
