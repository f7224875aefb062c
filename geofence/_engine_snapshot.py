"""Snapshot and restore of an engine (format 2).

Layout: 8 bytes little-endian length of a JSON head, the head, then an in-memory
``.npz`` with every allocated subject column (``col_<name>``), the id matrix
(``ids``) and the reorder buffer (``pend_<column>``). The head holds what is not
per subject: timers, feeds, statics, open alerts, the release buffer, the
membership overflow and the detectors' state. Fence references are stored by
index together with the snapshot's fence ids, so a restore under another zone
set maps them by id (vanished fences are dropped, as :meth:`Engine.set_zones`
does). Format 1 (the engine before the columnar rewrite) is not readable:
restart such a checkpoint from its input.
"""

from __future__ import annotations

import io
import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from geofence._state import SubjectColumns
from geofence._timeline import Reorder
from geofence.errors import ConfigError
from geofence.lifecycle import OpenAlert, alert_from_json, alert_to_json
from geofence.rules.gaps import Feed
from geofence.rules.motion import StopWindow

if TYPE_CHECKING:
    from geofence.engine import Engine

__all__ = ["SNAPSHOT_FORMAT", "restore_state", "snapshot_state"]

SNAPSHOT_FORMAT = 2


def snapshot_state(eng: Engine) -> bytes:
    """All state of ``eng`` as bytes (see the module docstring)."""
    c = eng._c
    arrays: dict[str, Any] = {f"col_{k}": v for k, v in c.cols.to_arrays().items()}
    arrays["ids"] = c.ids.ids
    rmeta, rarrays = c.reorder.to_state()
    arrays.update(rarrays)
    meta = {
        "format": SNAPSHOT_FORMAT,
        "zone_version": c.tables.version,
        "fence_ids": c.tables.ids,
        "n": c.cols.n,
        "reorder": rmeta,
        "timers": c.timers.heap,
        "multi": [[s, [[f, st] for f, st in m.items()]] for s, m in c.members.multi.items()],
        "suspects": [[s, [*v[:5], [c.tables.ids[f] for f in v[5]]]] for s, v in c.suspects.items()],
        "retro": c.retro,
        "feeds": [fd.to_json() for fd in eng._gaps.feeds],
        "statics": c.statics,
        "type_codes": c.type_codes,
        "open": [oa.to_json() for oa in c.life.open.values()],
        "buffer": [alert_to_json(a) for a in c.life.buffer],
        "horizon": c.life.horizon_s,
        "counts": [c.positions, c.late, c.stale],
        "detectors": eng._det.snapshot(),
        "containers": eng._cont.snapshot(),
        "stop_win": [[s, w.to_json()] for s, w in c.stop_win.items()],
        "dwell_wait": [[s, [[c.tables.ids[f], m] for f, m in w.items()]] for s, w in c.dwell_wait.items()],
    }
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    head = json.dumps(meta).encode("utf-8")
    return len(head).to_bytes(8, "little") + head + buf.getvalue()


def restore_state(eng: Engine, data: bytes) -> None:
    """Load a :func:`snapshot_state` into a freshly built ``eng`` (same rules, possibly another zone set)."""
    n_head = int.from_bytes(data[:8], "little")
    meta = json.loads(data[8 : 8 + n_head].decode("utf-8"))
    if meta.get("format") != SNAPSHOT_FORMAT:
        raise ConfigError(
            f"snapshot format {meta.get('format')!r} is not supported (expected {SNAPSHOT_FORMAT}); "
            "restart this checkpoint from its input"
        )
    with np.load(io.BytesIO(data[8 + n_head :]), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    c = eng._c
    n = int(meta["n"])
    c.ids.load(arrays["ids"])
    c.cols = SubjectColumns.from_arrays(n, {k[4:]: v for k, v in arrays.items() if k.startswith("col_")})
    c.members.cols = c.cols
    c.members.multi = {int(s): {int(f): st for f, st in m} for s, m in meta["multi"]}
    c.reorder = Reorder.from_state(meta["reorder"], {k: v for k, v in arrays.items() if k.startswith("pend_")})
    c.timers.restore([(float(t[0]), int(t[1]), int(t[2]), str(t[3])) for t in meta["timers"]])
    c.type_codes = [None]
    c.type_index = {None: 0}
    c.maxkn_tab = c.maxkn_tab[:1]
    c.gthr_tab = c.gthr_tab[:1]
    for t in meta["type_codes"][1:]:
        c.type_code(t)
    # fence references by id, in case the zone set changed
    old_ids: list[str] = meta["fence_ids"]
    new_index = {fid: i for i, fid in enumerate(c.tables.ids)}
    eng._zones.remap(old_ids, new_index)
    for s in c.members.multi:
        eng._zones.refresh_pin(s)
    c.suspects = {int(s): [*v[:5], [new_index[f] for f in v[5] if f in new_index]] for s, v in meta["suspects"]}
    c.retro = dict(meta["retro"])
    c.stop_win = {int(s): StopWindow.from_json(w) for s, w in meta.get("stop_win", [])}
    c.dwell_wait = {}
    for s, w in meta.get("dwell_wait", []):
        w2 = {new_index[fid]: int(m) for fid, m in w if fid in new_index}
        if w2:
            c.dwell_wait[int(s)] = w2
    gaps = eng._gaps
    gaps.feeds = [Feed.from_json(fj) for fj in meta["feeds"]]
    gaps.index = {fd.name: i for i, fd in enumerate(gaps.feeds)}
    c.statics = meta["statics"]
    zv = c.tables.version
    for oj in meta["open"]:
        oa = OpenAlert.from_json(oj)
        if meta["zone_version"] != zv:
            oa.zone_version = zv
        c.life.open[(oa.type, oa.subject_id, oa.key_zone)] = oa
    c.life.buffer = [alert_from_json(a) for a in meta["buffer"]]
    c.life.horizon_s = meta["horizon"]
    c.positions, c.late, c.stale = meta["counts"]
    with np.errstate(invalid="ignore"):
        c.gap_floor = (
            float(np.nanmin(c.cols.gap_deadline[:n])) if n and not np.isnan(c.cols.gap_deadline[:n]).all() else math.inf
        )
        c.dwell_floor = (
            float(np.nanmin(c.cols.dwell_due[:n])) if n and not np.isnan(c.cols.dwell_due[:n]).all() else math.inf
        )
    eng._det.restore(meta["detectors"], c.ids.get)
    if "containers" in meta:
        eng._cont.restore(meta["containers"])
