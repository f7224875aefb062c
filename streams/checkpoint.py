"""Durable runner checkpoints: engine state, source offsets and running totals in one file.

File ``STATE/checkpoint.bin``::

    GEOFENCE-CHECKPOINT 2\n
    {JSON header}\n
    <engine snapshot bytes>

The header holds ``seq`` (increasing), ``finished`` (input fully consumed and
``engine.finish()`` done), ``inputs`` (per input, see :class:`InputOffset`),
``totals`` (counts, dead-letter reasons, alert lines) and
``engine_len``/``engine_sha256`` of the trailing snapshot. It is written
atomically: temp file in the same directory, fsync, rename over the old one,
fsync of the directory. A torn or corrupt file, or one of another format
version, is refused with an error instead of being half-used.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from geofence.errors import ConfigError

__all__ = ["CHECKPOINT_NAME", "Checkpoint", "InputOffset", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_NAME = "checkpoint.bin"
_MAGIC = b"GEOFENCE-CHECKPOINT 2\n"
_MAGIC_PREFIX = b"GEOFENCE-CHECKPOINT "


@dataclass(frozen=True, slots=True)
class InputOffset:
    """How far one input has been processed (and made durable downstream).

    Attributes
    ----------
    name
        The input's name (file path or URL).
    lines
        Live input: lines processed. File input: lines whose decode results
        (accounting, dead letters) are delivered; the file's records themselves
        are counted by ``records``.
    eof
        The input is completely processed (a file: all its records delivered).
    closed
        File input: the decoder's end-of-input results (expired multipart groups) are delivered.
    records
        File input: elements (positions + static reports) of the event-time merge of all
        file inputs that came from this input and are delivered.
    reordered
        File input: it was not in event-time order and is processed sorted.
    """

    name: str
    lines: int
    eof: bool = False
    closed: bool = False
    records: int = 0
    reordered: bool = False

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "lines": self.lines,
            "eof": self.eof,
            "closed": self.closed,
            "records": self.records,
            "reordered": self.reordered,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> InputOffset:
        """Inverse of :meth:`to_json`."""
        return cls(
            name=str(obj["name"]),
            lines=int(obj["lines"]),
            eof=bool(obj.get("eof", False)),
            closed=bool(obj.get("closed", False)),
            records=int(obj.get("records", 0)),
            reordered=bool(obj.get("reordered", False)),
        )


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One consistent cut: engine state after exactly the offsets in ``inputs``."""

    seq: int
    engine_state: bytes
    inputs: tuple[InputOffset, ...]
    totals: dict[str, Any] = field(default_factory=dict)
    finished: bool = False


def _path(state_dir: str | Path) -> Path:
    return Path(state_dir) / CHECKPOINT_NAME


def save_checkpoint(state_dir: str | Path, ckpt: Checkpoint) -> Path:
    """Write ``ckpt`` atomically (temp + fsync + rename + directory fsync); return its path."""
    directory = Path(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    header = {
        "seq": ckpt.seq,
        "finished": ckpt.finished,
        "inputs": [i.to_json() for i in ckpt.inputs],
        "totals": ckpt.totals,
        "engine_len": len(ckpt.engine_state),
        "engine_sha256": hashlib.sha256(ckpt.engine_state).hexdigest(),
    }
    final = _path(directory)
    tmp = directory / f".{CHECKPOINT_NAME}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(_MAGIC)
        fh.write(orjson.dumps(header))
        fh.write(b"\n")
        fh.write(ckpt.engine_state)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return final


def load_checkpoint(state_dir: str | Path) -> Checkpoint | None:
    """Return the checkpoint in ``state_dir``, ``None`` when there is none.

    Raises
    ------
    ConfigError
        When the file exists but is not a complete checkpoint (it names the file and the fix).
    """
    path = _path(state_dir)
    if not path.exists():
        return None
    data = path.read_bytes()
    fix = f"move {path} away to start from the beginning"
    if not data.startswith(_MAGIC):
        if data.startswith(_MAGIC_PREFIX):
            version = data[len(_MAGIC_PREFIX) : data.find(b"\n")][:16].decode("ascii", "replace")
            raise ConfigError(f"{path} is a version {version} checkpoint, this runner reads version 2; {fix}")
        raise ConfigError(f"{path} is not a geofence checkpoint (bad magic); {fix}")
    end = data.find(b"\n", len(_MAGIC))
    if end < 0:
        raise ConfigError(f"{path} is truncated (no header); {fix}")
    try:
        header = orjson.loads(data[len(_MAGIC) : end])
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{path} has a corrupt header ({exc}); {fix}") from None
    engine = data[end + 1 :]
    if len(engine) != header["engine_len"] or hashlib.sha256(engine).hexdigest() != header["engine_sha256"]:
        raise ConfigError(f"{path}: engine snapshot length or sha256 does not match its header; {fix}")
    return Checkpoint(
        seq=int(header["seq"]),
        engine_state=engine,
        inputs=tuple(InputOffset.from_json(i) for i in header["inputs"]),
        totals=dict(header.get("totals") or {}),
        finished=bool(header.get("finished", False)),
    )
