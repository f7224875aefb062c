"""Zone transitions of many subjects at once, from (previous, current) membership, with hysteresis.

For each subject whose containing fences change somewhere in the chunk, every
fence it is a member of or lies in is a small state machine over its records in
processing order: a record inside the fence at least ``hysteresis_m`` from the
boundary makes it *in*, one outside at least ``hysteresis_m`` away makes it
*out*, anything in between keeps the state. That is a forward fill of the
decisive records, done for all (subject, fence) sequences with numpy; enters
and exits are where the filled state changes. Boundary distances are measured
only from the first record that disagrees with the starting state of its
sequence (before it, the state cannot change), and only within the band
(:meth:`geofence.index.FenceIndex.boundary_distance_m`).

A subject goes back to the per-record path (``demote``) when an enter would
start a ``min_inside_s`` candidate or put a dwell deadline before its last
record. The alert lines are written per event, with the evidence of their record.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from geofence._engine_core import NAN, T_DWELL, Core, dwell_key
from geofence._engine_time import isos, remember, rnd
from geofence._engine_zones import ZoneRules
from geofence._fastpath import Chunk
from geofence.alerts import AlertType, Severity, Status
from geofence.lifecycle import new_alert

__all__ = ["ZoneBatch", "ZonePlan"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


@dataclass
class ZonePlan:
    """Transitions of the candidate groups of one chunk (see :meth:`ZoneBatch.plan`)."""

    groups: I64  # candidate groups (chunk group indices)
    demote: B  # per candidate group
    ev_group: I64  # per event: chunk group
    ev_row: I64  # per event: chunk row
    ev_fence: I64
    ev_enter: B  # enter (else exit)
    ev_since: F64  # exits: since when the subject was inside
    fin_group: I64  # final confirmed memberships: chunk group, fence, since
    fin_fence: I64
    fin_since: F64


class ZoneBatch:
    """Vectorised zone transitions (see the module docstring)."""

    def __init__(self, core: Core, zones: ZoneRules) -> None:
        self.c = core
        self.zones = zones
        # dwell limit (s) per fence and ship-type code, filled on first use: NaN unknown, inf no dwell rule
        self._dwell_tab = np.zeros((0, 0))

    def reset(self) -> None:
        """Forget cached per-fence values (new zone set or statics)."""
        self._dwell_tab = np.zeros((0, 0))

    def plan(self, ch: Chunk, groups: I64) -> ZonePlan:
        """Compute the transitions of ``groups`` (chunk group indices, sorted) without changing any state."""
        c = self.c
        tb = c.tables
        nf = max(1, len(tb.ids))
        r = ch.recs
        cand_g = np.zeros(ch.us.size, dtype=bool)
        cand_g[groups] = True
        # (group, fence) pairs: fences the subjects are members of, and fences their records lie in
        raw_sel = cand_g[ch.gid[ch.pi]]
        rp, rf = ch.pi[raw_sel], ch.fi[raw_sel]
        ms, mf, mt = c.members.pairs(ch.us[groups])
        mg = ch.group_of(ms)
        key = np.concatenate([ch.gid[rp] * nf + rf, mg * nf + mf])
        pk, inv = np.unique(key, return_inverse=True)
        pair_g = pk // nf
        pair_f = pk % nf
        init = np.zeros(pk.size, dtype=bool)
        init_since = np.full(pk.size, NAN)
        mi = inv[rp.size :]
        init[mi] = True
        init_since[mi] = mt
        # entries: every record of the pair's subject, in processing order
        cnt = ch.gcount[pair_g]
        ent_pair = np.repeat(np.arange(pk.size), cnt)
        pstart = np.cumsum(cnt) - cnt
        ent_k = np.arange(ent_pair.size) - pstart[ent_pair]
        ent_row = ch.order[ch.gstart[pair_g][ent_pair] + ent_k]
        ent_f = pair_f[ent_pair]
        raw_keys = ch.pi * nf + ch.fi  # sorted (point, then fence)
        q = ent_row * nf + ent_f
        pos = np.minimum(np.searchsorted(raw_keys, q), max(raw_keys.size - 1, 0))
        in_raw = raw_keys[pos] == q if raw_keys.size else np.zeros(q.size, dtype=bool)
        hyst_f = np.asarray(tb.hysteresis_m, dtype=np.float64)
        e_n = ent_pair.size
        pend = pstart + cnt
        # runs of equal containment within a pair; nxt[j]: start of the run after j's (or the pair's end)
        change = np.ones(e_n, dtype=bool)
        change[1:] = (in_raw[1:] != in_raw[:-1]) | (ent_pair[1:] != ent_pair[:-1])
        run_start = np.flatnonzero(change)
        run_end = np.append(run_start[1:], e_n)
        nxt = np.append(run_end[np.cumsum(change) - 1], e_n)
        # walk each pair from one record that disagrees with its state to the next: only those can change
        # it, and only they need a boundary distance (at most a few steps per pair and chunk)
        state = init.copy()
        flip = np.zeros(e_n, dtype=bool)
        ps = pstart[cnt > 0]
        pa = np.flatnonzero(cnt > 0)
        ptr = np.full(pk.size, e_n, dtype=np.int64)
        ptr[pa] = np.where(in_raw[ps] != init[pa], ps, nxt[ps])
        act = np.flatnonzero(ptr < pend)
        while act.size:
            j = ptr[act]
            h = hyst_f[ent_f[j]]
            dec = h <= 0
            need = np.flatnonzero(~dec)
            if need.size:
                jn = j[need]
                d = c.index.boundary_distance_m(r.lon[ent_row[jn]], r.lat[ent_row[jn]], ent_f[jn], h[need])
                dec[need] = d >= h[need]
            flip[j[dec]] = True
            state[act[dec]] = in_raw[j[dec]]
            # decisive: the next record of the other kind; else the next of the same kind as j
            same_next = np.where(nxt[j] > j + 1, j + 1, nxt[np.minimum(nxt[j], e_n)])
            ptr[act] = np.where(dec, nxt[j], same_next)
            act = act[ptr[act] < pend[act]]
        enter = flip & in_raw
        # since: the flip before each exit (an enter of this chunk), else the membership's start
        eff = r.eff[ent_row]
        p = np.arange(e_n)
        last_flip = np.maximum.accumulate(np.where(flip, p, -1))
        prev_flip = np.empty(e_n, dtype=np.int64)
        prev_flip[0] = -1
        prev_flip[1:] = last_flip[:-1]
        has_prev = prev_flip >= pstart[ent_pair]
        since = np.where(has_prev, eff[np.maximum(prev_flip, 0)], init_since[ent_pair])
        ev = np.flatnonzero(flip)
        ev_group = pair_g[ent_pair[ev]]
        # demote: min_inside_s candidates, dwell deadlines before the subject's last record
        demote_g = np.zeros(ch.us.size, dtype=bool)
        ent_ev = ev[enter[ev]]
        if ent_ev.size:
            mins = np.asarray(tb.min_inside_s, dtype=np.float64)[ent_f[ent_ev]]
            demote_g[pair_g[ent_pair[ent_ev[mins > 0]]]] = True
            if c.on["dwell_exceeded"]:
                eg = pair_g[ent_pair[ent_ev]]
                lims = self._dwell_lims(ent_f[ent_ev], c.cols.stype[ch.us[eg]])
                demote_g[eg[eff[ent_ev] + lims <= ch.maxeff[eg]]] = True
        last_ent = np.maximum(pend - 1, 0)
        fin = state
        fin_since = np.where(last_flip[last_ent] >= pstart, eff[np.maximum(last_flip[last_ent], 0)], init_since)
        return ZonePlan(
            groups=groups,
            demote=demote_g[groups],
            ev_group=ev_group,
            ev_row=ent_row[ev],
            ev_fence=ent_f[ev],
            ev_enter=enter[ev],
            ev_since=since[ev] if ev.size else np.zeros(0),
            fin_group=pair_g[fin],
            fin_fence=pair_f[fin],
            fin_since=fin_since[fin],
        )

    def _dwell_lims(self, fences: I64, codes: npt.NDArray[Any]) -> F64:
        """Dwell limit in seconds of each (fence, ship-type code), inf where the fence has no dwell rule."""
        c = self.c
        tab = self._dwell_tab
        nf, nc = len(c.tables.ids), len(c.type_codes)
        if tab.shape != (nf, nc):  # a new ship type (or the first call): grow, keep what is known
            grown = np.full((nf, nc), np.nan)
            kf, kc = min(nf, tab.shape[0]), min(nc, tab.shape[1])
            grown[:kf, :kc] = tab[:kf, :kc]
            self._dwell_tab = tab = grown
        code = codes.astype(np.int64)
        out = tab[fences, code]
        unknown = np.flatnonzero(np.isnan(out))
        if unknown.size:
            for f, k in set(zip(fences[unknown].tolist(), code[unknown].tolist(), strict=True)):
                lim = c.tables.dwell_limit_s(f, c.type_codes[k])
                tab[f, k] = np.inf if lim is None else lim
            out = tab[fences, code]
        return out

    def apply(self, ch: Chunk, plan: ZonePlan, keep: B) -> None:
        """Write the events and memberships of the planned groups that stay on the vectorised path."""
        c = self.c
        tb = c.tables
        gsel = plan.groups[~plan.demote & keep[plan.groups]]
        if gsel.size == 0:
            return
        ok_g = np.zeros(ch.us.size, dtype=bool)
        ok_g[gsel] = True
        # memberships
        fm = ok_g[plan.fin_group]
        c.members.write(ch.us[gsel], ch.us[plan.fin_group[fm]], plan.fin_fence[fm], plan.fin_since[fm])
        em = np.flatnonzero(ok_g[plan.ev_group])
        if em.size == 0:
            return
        r = ch.recs
        rows = plan.ev_row[em]
        eff_a = r.eff[rows]
        ts_a = r.ts[rows]
        enter_a = plan.ev_enter[em]
        fen = plan.ev_fence[em]
        slot_a = r.slot[rows]
        effs = eff_a.tolist()
        eiso = isos(eff_a)
        remember(effs, eiso)  # the lines' ts, for Alert.to_json
        late = np.flatnonzero(ts_a != eff_a)  # the report's own time differs from the line's ts
        report: dict[int, str] = dict(zip(late.tolist(), isos(ts_a[late]), strict=True)) if late.size else {}
        tracks = ch.tracks(rows)
        sids = r.sid[rows].tolist()
        statics = c.statics
        # what follows the figures in details: report_ts, vessel, track (as Core.details orders them)
        plain = not (report or statics)  # details are just the figures and the track
        tails: list[dict[str, Any]] = []
        if not plain:
            for k, tr in enumerate(tracks):
                tail: dict[str, Any] = {}
                if k in report:
                    tail["report_ts"] = report[k]
                if statics:
                    st = statics.get(sids[k])
                    if st:
                        tail["vessel"] = dict(st)
                tail["track"] = tr
                tails.append(tail)
        version = tb.version
        life = c.life
        buf = life.buffer
        event = Status.EVENT
        kind_str = tb.kind_values
        ids = tb.ids
        sha = hashlib.sha256
        lons = r.lon[rows].tolist()
        lats = r.lat[rows].tolist()
        fl = fen.tolist()
        ent = np.flatnonzero(enter_a).tolist()
        ext = np.flatnonzero(~enter_a).tolist()
        if c.on["zone_enter"]:
            t_enter, info = AlertType.ZONE_ENTER, Severity.INFO
            for k in ent:
                sid = sids[k]
                fid = ids[fl[k]]
                aid = sha(f"zone_enter|{sid}|{fid}|{eiso[k]}".encode()).hexdigest()[:16]
                d = (
                    {"zone_kind": kind_str[fl[k]], "track": tracks[k]}
                    if plain
                    else {"zone_kind": kind_str[fl[k]], **tails[k]}
                )
                buf.append(
                    new_alert(aid, t_enter, event, info, sid, "vessel", fid, version, effs[k], lons[k], lats[k], d)
                )
        if c.on["restricted_entry"]:
            restricted = tb.restricted
            t_restr, crit = AlertType.RESTRICTED_ENTRY, Severity.CRITICAL
            for k in ent:
                if not restricted[fl[k]]:
                    continue
                sid = sids[k]
                fid = ids[fl[k]]
                aid = sha(f"restricted_entry|{sid}|{fid}|{eiso[k]}".encode()).hexdigest()[:16]
                d = (
                    {"zone_kind": kind_str[fl[k]], "track": tracks[k]}
                    if plain
                    else {"zone_kind": kind_str[fl[k]], **tails[k]}
                )
                buf.append(
                    new_alert(aid, t_restr, event, crit, sid, "vessel", fid, version, effs[k], lons[k], lats[k], d)
                )
        if ent and c.on["dwell_exceeded"]:
            self._schedule_dwell(np.asarray(ent, dtype=np.int64), slot_a, fen, eff_a)
        if ext:
            since = plan.ev_since[em]
            started = dict(zip(ext, isos(since[ext]), strict=True))
            since_l = since.tolist()
            any_dwell = any(key[0] == "dwell_exceeded" for key in life.open)
            on_exit = c.on["zone_exit"]
            t_exit, info = AlertType.ZONE_EXIT, Severity.INFO
            for k in ext:
                sid = sids[k]
                fid = ids[fl[k]]
                e = effs[k]
                dwell = rnd(e - since_l[k], 3)
                if on_exit:
                    aid = sha(f"zone_exit|{sid}|{fid}|{eiso[k]}".encode()).hexdigest()[:16]
                    if plain:
                        d = {"zone_kind": kind_str[fl[k]], "dwell_s": dwell, "started": started[k], "track": tracks[k]}
                    else:
                        d = {"zone_kind": kind_str[fl[k]], "dwell_s": dwell, "started": started[k], **tails[k]}
                    buf.append(new_alert(aid, t_exit, event, info, sid, "vessel", fid, version, e, lons[k], lats[k], d))
                if any_dwell:
                    oa = life.get(AlertType.DWELL_EXCEEDED, sid, fid)
                    if oa is not None:
                        tail = {"track": tracks[k]} if plain else tails[k]
                        life.close(oa, e, lons[k], lats[k], {"dwell_s": dwell, "started": started[k], **tail})

    def _schedule_dwell(self, ent: I64, slot_a: I64, fen: I64, eff_a: F64) -> None:
        """First dwell deadlines of the enters ``ent`` (see :meth:`ZoneRules.schedule_dwell`), vectorised."""
        c = self.c
        lims = self._dwell_lims(fen[ent], c.cols.stype[slot_a[ent]])
        has = np.isfinite(lims)
        if not has.any():
            return
        sel = ent[has]
        lim_sel = lims[has]
        due = eff_a[sel] + lim_sel
        s = slot_a[sel]
        now = (due <= c.timers.run_w) if c.timers.run_final else (due < c.timers.run_w)
        if now.any():
            ids = c.tables.ids
            for si, f, d, lim in zip(
                s[now].tolist(), fen[sel][now].tolist(), due[now].tolist(), lim_sel[now].tolist(), strict=True
            ):
                c.timers.push(d, T_DWELL, si, dwell_key(ids[f], 1, lim))
        later = ~now
        np.fmin.at(c.cols.dwell_due, s[later], due[later])
        if later.any():
            c.dwell_floor = min(c.dwell_floor, float(due[later].min()))
