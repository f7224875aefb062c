"""Alert sinks and the URL factory used by ``geofence run --alerts``.

URL forms accepted by :func:`open_sink`:

==============================  ==================================================
``-`` or ``stdout``             JSON lines on standard output (the default)
``console``                     readable aligned lines on standard output (humans)
``PATH`` or ``file://PATH``     JSONL file, appended, flushed + fsynced per batch
``sqlite:///path.db``           SQLite alert store (``sqlite:////abs/path.db`` for
                                an absolute path, as in SQLAlchemy)
``kafka://host:port/topic``     Kafka topic via aiokafka, key = subject id
``http(s)://...``               webhook, POSTed batches with retry and disk spool
==============================  ==================================================
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from geofence.errors import ConfigError
from streams.sinks.base import Sink
from streams.sinks.console import ConsoleSink
from streams.sinks.jsonl import DeadLetterJsonlSink, JsonlSink
from streams.sinks.kafka import KafkaSink
from streams.sinks.sqlite import SqliteSink
from streams.sinks.stdout import StdoutSink

if TYPE_CHECKING:
    from streams.sinks.webhook import WebhookSink

__all__ = [
    "ConsoleSink",
    "DeadLetterJsonlSink",
    "JsonlSink",
    "KafkaSink",
    "Sink",
    "SqliteSink",
    "StdoutSink",
    "WebhookSink",
    "default_spool_dir",
    "open_sink",
]


def __getattr__(name: str) -> Any:
    """``WebhookSink`` is imported on first use: aiohttp costs every ``geofence`` command ~0.4 s to import."""
    if name == "WebhookSink":
        from streams.sinks.webhook import WebhookSink

        return WebhookSink
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_spool_dir(url: str, state_dir: str | Path | None = None) -> Path:
    """Where a webhook's spool lives: ``STATE/spool/<hash>`` or ``$TMPDIR/geofence-spool/<hash>``.

    The directory is derived from the URL so a restart with the same options finds
    the batches a previous run could not deliver.
    """
    key = hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]
    base = Path(state_dir) / "spool" if state_dir is not None else Path(tempfile.gettempdir()) / "geofence-spool"
    return base / key


def open_sink(
    url: str,
    *,
    state_dir: str | Path | None = None,
    spool_dir: str | Path | None = None,
    webhook_format: str = "ndjson",
    webhook_drain_timeout_s: float = 30.0,
) -> Sink:
    """Build the sink named by ``url`` (not started: the runner awaits ``start()``).

    Parameters
    ----------
    url
        One of the forms in the module docstring.
    state_dir
        The runner's ``--state`` directory; the webhook spool defaults to a folder in it.
    spool_dir
        Explicit webhook spool directory (overrides the default).
    webhook_format
        ``ndjson`` (default) or ``json`` (array) request bodies.
    webhook_drain_timeout_s
        How long shutdown keeps retrying undelivered webhook batches.
    """
    text = url.strip()
    if text in ("", "-", "stdout"):
        return StdoutSink()
    if text == "console":
        return ConsoleSink()
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        from streams.sinks.webhook import WebhookSink

        spool = Path(spool_dir) if spool_dir is not None else default_spool_dir(text, state_dir)
        return WebhookSink(text, spool_dir=spool, body_format=webhook_format, drain_timeout_s=webhook_drain_timeout_s)
    if scheme == "sqlite":
        # sqlite:///rel.db -> rel.db ; sqlite:////abs.db -> /abs.db
        path = text[len("sqlite:///") :] if text.lower().startswith("sqlite:///") else ""
        if not path:
            raise ConfigError(f"alert sink {url!r}: write sqlite:///relative.db or sqlite:////absolute/path.db")
        return SqliteSink(path)
    if scheme == "kafka":
        topic = parts.path.lstrip("/")
        if not parts.netloc or not topic:
            raise ConfigError(f"alert sink {url!r}: write kafka://host:port/topic")
        return KafkaSink(parts.netloc, topic)
    if scheme == "file":
        return JsonlSink(parts.path)
    if scheme and len(scheme) > 1:  # a Windows drive letter is not a scheme
        raise ConfigError(
            f"alert sink {url!r}: unknown scheme {scheme!r}; use a file path, stdout, sqlite:///, kafka://, http(s)://"
        )
    return JsonlSink(text)
