"""Append-only JSONL files for alerts and dead letters, flushed (and fsynced) per batch.

A file killed mid-write can end in a partial line. That line was never
acknowledged by a checkpoint, so the runner will emit it again after a restart;
:func:`open_append` therefore cuts the file back to its last newline before
appending, so the file stays one valid JSON object per line.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from geofence.alerts import Alert
from geofence.deadletter import DeadLetter

__all__ = ["DeadLetterJsonlSink", "JsonlSink", "open_append"]


def open_append(path: Path) -> BinaryIO:
    """Open ``path`` for appending after dropping a trailing partial line, if any."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+b")  # noqa: SIM115 - kept open for the life of the sink
    size = fh.seek(0, os.SEEK_END)
    if size:
        keep = _last_newline_end(fh, size)
        if keep != size:
            fh.truncate(keep)
            fh.flush()
            os.fsync(fh.fileno())
    return fh


def _last_newline_end(fh: BinaryIO, size: int) -> int:
    """Return the length of the prefix of the file that ends with its last ``\\n`` (0 if none)."""
    pos = size
    block = 65536
    while pos > 0:
        start = max(0, pos - block)
        fh.seek(start)
        chunk = fh.read(pos - start)
        idx = chunk.rfind(b"\n")
        if idx >= 0:
            return start + idx + 1
        pos = start
    return 0


class _JsonlFile:
    """An append-only JSON-lines file with per-batch flush + fsync."""

    def __init__(self, path: str | Path, *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.name = f"jsonl:{self.path}"
        self._fsync = fsync
        self._fh: BinaryIO | None = None

    async def start(self) -> None:
        """Open the file for appending (repairing a torn last line)."""
        if self._fh is None:
            self._fh = open_append(self.path)

    def _write_objects(self, objs: Iterable[dict[str, Any]]) -> None:
        if self._fh is None:
            raise RuntimeError(f"sink {self.name} written before start(); call await sink.start() first")
        self._fh.write(b"".join(orjson.dumps(o) + b"\n" for o in objs))

    def _write_lines(self, lines: Iterable[bytes]) -> None:
        if self._fh is None:
            raise RuntimeError(f"sink {self.name} written before start(); call await sink.start() first")
        self._fh.write(b"".join(line + b"\n" for line in lines))

    async def flush(self) -> None:
        """Flush to the OS, and to the disk when ``fsync`` is on (the default)."""
        if self._fh is not None:
            self._fh.flush()
            if self._fsync:
                os.fsync(self._fh.fileno())

    async def close(self) -> None:
        """Flush and close; idempotent."""
        if self._fh is not None:
            await self.flush()
            self._fh.close()
            self._fh = None


class JsonlSink(_JsonlFile):
    """Alert lines appended to a JSONL file."""

    async def write(self, alerts: Sequence[Alert]) -> None:
        """Append the batch; made durable by :meth:`flush`."""
        if alerts:
            self._write_lines(a.to_json() for a in alerts)


class DeadLetterJsonlSink(_JsonlFile):
    """Dead-letter records (``source``, ``line``/``offset``, ``reason``, ``detail``, ``raw``) appended to JSONL."""

    def __init__(self, path: str | Path, *, fsync: bool = True) -> None:
        super().__init__(path, fsync=fsync)
        self.name = f"dead-letter:{self.path}"

    async def write(self, dead: Sequence[DeadLetter]) -> None:
        """Append the batch of dead letters."""
        if dead:
            self._write_objects(d.to_dict() for d in dead)
