"""Durable runner checkpoints: engine state, source offsets and running totals in one file.

File ``STATE/checkpoint.bin``::

    GEOFENCE-CHECKPOINT 1\\n
    {JSON header}\\n
    <engine snapshot bytes>

The header holds ``seq`` (increasing), ``finished`` (input fully consumed and
``engine.finish()`` done), ``inputs`` (per input: ``name``, ``lines`` = number of
lines fully processed, ``bytes`` = byte offset just after them for plain files or
``null``, ``eof``, ``decoder_state`` base64 or ``null``), ``totals`` (counts,
dead-letter reasons, alert lines) and ``engine_len``/``engine_sha256`` of the
trailing snapshot. It is written atomically: temp file in the same directory,
fsync, rename over the old one, fsync of the directory. A torn or corrupt file
is refused with an error instead of being half-used.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import orjson

from geofence.errors import ConfigError

__all__ = ["CHECKPOINT_NAME", "Checkpoint", "InputOffset", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_NAME = "checkpoint.bin"
_MAGIC = b"GEOFENCE-CHECKPOINT 1\n"


@dataclass(frozen=True, slots=True)
class InputOffset:
    """How far one input has been processed (and made durable downstream)."""

    name: str
    lines: int
    bytes: Optional[int] = None  # noqa: UP045 - the field name 'bytes' shadows the builtin for mypy
    eof: bool = False
    decoder_state: builtins.bytes | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (decoder state base64)."""
        return {
            "name": self.name,
            "lines": self.lines,
            "bytes": self.bytes,
            "eof": self.eof,
            "decoder_state": None if self.decoder_state is None else base64.b64encode(self.decoder_state).decode(),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> InputOffset:
        """Inverse of :meth:`to_json`."""
        raw = obj.get("decoder_state")
        return cls(
            name=str(obj["name"]),
            lines=int(obj["lines"]),
            bytes=None if obj.get("bytes") is None else int(obj["bytes"]),
            eof=bool(obj.get("eof", False)),
            decoder_state=None if raw is None else base64.b64decode(raw),
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
