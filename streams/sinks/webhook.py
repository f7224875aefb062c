"""Alert lines POSTed to an HTTP(S) endpoint, with retries, backoff and a disk spool.

Wire format
-----------
Each POST carries one batch of alert lines, in output order:

* ``ndjson`` (default): ``Content-Type: application/x-ndjson``, one alert JSON
  object per line, each line ending in ``\\n``;
* ``json``: ``Content-Type: application/json``, a JSON array of alert objects.

Every request has ``X-Geofence-Batch: <sha256 of the body, 16 hex>`` so an
endpoint may drop a whole repeated batch; per line, the (``alert_id``, ``status``,
``ts``) triple is the dedupe key. Any 2xx status acknowledges the batch.

Delivery
--------
:meth:`WebhookSink.flush` first tries one POST. If that fails, or older batches
are still waiting, the batch is written to the spool directory (temp file,
fsync, rename) and a background task delivers spooled batches in order with
exponential backoff (``base * 2**attempt`` capped at ``cap``; jitter off by default,
seeded when on). A spooled batch is deleted only after a 2xx answer, so a crash
or a down endpoint loses nothing; a spool left by a previous run is delivered on
start. 4xx answers other than 408/429 mean the endpoint rejects the content:
such a batch moves to ``spool/rejected/`` (kept, never retried) and a warning is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import random
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from geofence.alerts import Alert

__all__ = ["WebhookSink"]

_log = logging.getLogger(__name__)
_SUFFIX = ".ndjson"


class WebhookSink:
    """POST alert batches to ``url``; spool to ``spool_dir`` while it is unreachable.

    Parameters
    ----------
    url
        The ``http://`` or ``https://`` endpoint.
    spool_dir
        Directory for undelivered batches; created when absent. Reuse the same
        directory across restarts so a previous run's spool is delivered.
    body_format
        ``"ndjson"`` or ``"json"`` (array).
    timeout_s
        Per-request timeout.
    backoff_base_s, backoff_cap_s
        Retry delay ``min(cap, base * 2**attempt)``.
    jitter, seed
        Fraction of random extra delay (0 = none) and its RNG seed.
    max_post_lines
        Spooled batches are merged into POSTs of at most this many lines.
    drain_timeout_s
        On :meth:`close`, how long to keep retrying the spool before leaving it for the next run.
    """

    def __init__(
        self,
        url: str,
        *,
        spool_dir: str | Path,
        body_format: str = "ndjson",
        timeout_s: float = 10.0,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 30.0,
        jitter: float = 0.0,
        seed: int = 0,
        max_post_lines: int = 5000,
        drain_timeout_s: float = 30.0,
    ) -> None:
        if body_format not in ("ndjson", "json"):
            raise ValueError(f"webhook body format {body_format!r} is not 'ndjson' or 'json'")
        self.url = url
        self.name = f"webhook:{url}"
        self.spool_dir = Path(spool_dir)
        self.body_format = body_format
        self.timeout_s = timeout_s
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.max_post_lines = max_post_lines
        self.drain_timeout_s = drain_timeout_s
        self._jitter = jitter
        self._rng = random.Random(seed)
        self._buf: list[bytes] = []
        self._session: aiohttp.ClientSession | None = None
        self._drainer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._seq = 0
        #: Figures for tests and the stats line.
        self.posts_ok = 0
        self.posts_failed = 0
        self.spooled_batches = 0

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        """Open the HTTP session, scan the spool and start the background deliverer."""
        if self._session is not None:
            return
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        existing = self._spooled()
        parked = list((self.spool_dir / "rejected").glob(f"*{_SUFFIX}"))
        self._seq = max((int(p.stem) for p in [*existing, *parked]), default=0)
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        self._drainer = asyncio.create_task(self._drain_forever(), name=f"webhook-drain {self.url}")
        if existing:
            _log.info("webhook %s: %d spooled batch(es) from a previous run to deliver", self.url, len(existing))
            self._wake.set()

    async def write(self, alerts: Sequence[Alert]) -> None:
        """Buffer the batch; :meth:`flush` sends or spools it."""
        self._buf.extend(a.to_json() for a in alerts)

    async def flush(self) -> None:
        """Deliver the buffered lines now, or spool them durably for the background deliverer."""
        if not self._buf:
            return
        lines, self._buf = self._buf, []
        result = "retry" if self._spooled() else await self._post(lines)
        if result == "ok":
            return
        self._spool(lines, rejected=result == "rejected")
        self._wake.set()

    async def close(self) -> None:
        """Flush, keep delivering the spool for up to ``drain_timeout_s``, then stop; idempotent."""
        if self._session is None:
            return
        await self.flush()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.drain_timeout_s
        while self._spooled() and loop.time() < deadline and self._drainer is not None and not self._drainer.done():
            self._wake.set()
            await asyncio.sleep(0.05)
        left = self._spooled()
        if left:
            _log.warning(
                "webhook %s: %d batch(es) still spooled in %s; they are delivered on the next start",
                self.url,
                len(left),
                self.spool_dir,
            )
        if self._drainer is not None:
            self._drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drainer
            self._drainer = None
        await self._session.close()
        self._session = None

    # -- spool ---------------------------------------------------------------------
    def _spooled(self) -> list[Path]:
        return sorted(self.spool_dir.glob(f"*{_SUFFIX}"), key=lambda p: int(p.stem))

    def _spool(self, lines: list[bytes], *, rejected: bool = False) -> None:
        self._seq += 1
        directory = self.spool_dir / "rejected" if rejected else self.spool_dir
        directory.mkdir(exist_ok=True)
        final = directory / f"{self._seq:012d}{_SUFFIX}"
        tmp = final.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(b"".join(line + b"\n" for line in lines))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        _fsync_dir(directory)
        self.spooled_batches += 1

    def _delay_s(self, attempt: int) -> float:
        delay: float = min(self.backoff_cap_s, self.backoff_base_s * (2.0**attempt))
        if self._jitter:
            delay *= 1.0 + self._jitter * self._rng.random()
        return delay

    async def _drain_forever(self) -> None:
        attempt = 0
        while True:
            files = self._spooled()
            if not files:
                self._wake.clear()
                await self._wake.wait()
                continue
            group: list[Path] = []
            lines: list[bytes] = []
            for path in files:
                body = path.read_bytes().splitlines()
                if group and len(lines) + len(body) > self.max_post_lines:
                    break
                group.append(path)
                lines.extend(body)
            result = await self._post(lines)
            if result == "retry":
                delay = self._delay_s(attempt)
                attempt += 1
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)
                continue
            attempt = 0
            for path in group:
                if result == "rejected":
                    rejected = self.spool_dir / "rejected"
                    rejected.mkdir(exist_ok=True)
                    os.replace(path, rejected / path.name)
                else:
                    path.unlink(missing_ok=True)
            _fsync_dir(self.spool_dir)

    # -- HTTP ----------------------------------------------------------------------
    def _body(self, lines: list[bytes]) -> tuple[bytes, str]:
        if self.body_format == "json":
            return b"[" + b",".join(lines) + b"]", "application/json"
        return b"".join(line + b"\n" for line in lines), "application/x-ndjson"

    async def _post(self, lines: list[bytes]) -> str:
        """POST once: ``ok`` (2xx), ``rejected`` (4xx except 408/429) or ``retry``."""
        if self._session is None:
            raise RuntimeError(f"sink {self.name} used before start(); call await sink.start() first")
        body, ctype = self._body(lines)
        headers = {"Content-Type": ctype, "X-Geofence-Batch": hashlib.sha256(body).hexdigest()[:16]}
        try:
            async with self._session.post(self.url, data=body, headers=headers) as resp:
                await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self.posts_failed += 1
            _log.debug("webhook %s: POST failed: %s", self.url, exc)
            return "retry"
        if 200 <= status < 300:
            self.posts_ok += 1
            return "ok"
        self.posts_failed += 1
        if 400 <= status < 500 and status not in (408, 429):
            _log.warning(
                "webhook %s answered %d; batch of %d line(s) kept in spool/rejected", self.url, status, len(lines)
            )
            return "rejected"
        return "retry"


def _fsync_dir(path: Path) -> None:
    """Persist a rename/unlink in ``path`` (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
