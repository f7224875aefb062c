"""Receiver outages: a shore station falls silent, and the vessels only it heard go quiet with it.

Every simulated report carries the nearest shore station (NMEA tag block ``s:``,
JSONL ``receiver``). An outage drops every report of one station during a window
of 60–90 min. The engine must then raise ``feed_outage`` for the station and hold
back the ``ais_gap`` alerts of the vessels it was the only one to hear (rules
issue: "one dead shore station must not raise a hundred ``ais_gap``s").

The station and window are chosen, not drawn blindly, so that the test is sharp
and unambiguous:

* no vessel whose anomaly window (label) lies within an hour of the outage
  reports through the station from one hour before to one hour after it, so no
  labelled alert is hidden or shifted;
* the score is the number of vessels silenced for longer than the default
  ``ais_gap`` threshold (30 min) — each would be a false gap without the
  hold-back; at least :data:`MIN_SILENCED` are required;
* every such silence is unambiguous: the vessel's last report before it came
  through this station and no other station heard it in the 30 min before (a
  vessel last heard by a live station, or handed over from one moments before,
  is not one the station "was the only one to hear", and the engine may rightly
  raise its gap); windows with such a vessel are not used.

Among the admissible (station, start) pairs on a 10-min grid the highest score
wins (ties: earliest start, then station name), so the choice is deterministic
for a seed; the window length comes from the seeded generator. Candidates are
scored in decreasing order of an upper bound (distinct vessels heard in the
window), stopping once the bound cannot beat the best score.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = ["GAP_THRESHOLD_S", "MIN_SILENCED", "Outage", "choose_outages"]

#: The engine's default ``ais_gap`` threshold: a vessel silent longer than this would raise a gap.
GAP_THRESHOLD_S = 1800.0
#: An outage needs at least this many vessels silenced beyond the gap threshold.
MIN_SILENCED = 3
_GRID_S = 600.0
_GUARD_S = 3600.0


@dataclass
class Outage:
    """One station's silent window and what it did to the vessels it heard."""

    station: str
    start_s: float  # first second of the silence (reports at or after it are dropped)
    end_s: float  # first second after the silence
    last_before_s: float  # the station's last report before the window
    first_after_s: float  # its first report after
    silence_s: dict[str, float] = field(default_factory=dict)  # mmsi -> longest silence caused (every affected vessel)

    def silenced(self, threshold_s: float = GAP_THRESHOLD_S) -> list[str]:
        """MMSIs silenced for longer than ``threshold_s`` (each would raise an ``ais_gap`` without the hold-back)."""
        return sorted(m for m, s in self.silence_s.items() if s > threshold_s)


def choose_outages(
    ts: npt.NDArray[np.int64],
    mmsi: npt.NDArray[np.int64],
    receiver: npt.NDArray[np.object_],
    anomalous: dict[int, list[tuple[float, float]]],
    count: int,
    t0_s: float,
    t_end_s: float,
    rng: np.random.Generator,
) -> tuple[npt.NDArray[np.bool_], list[Outage]]:
    """Pick up to ``count`` station outages; return the keep mask over the reports and the outages.

    ``ts``/``mmsi``/``receiver`` are the report columns sorted by time;
    ``anomalous`` maps an MMSI to its anomaly windows (seconds; ``(-inf, inf)``
    for a vessel to keep out altogether). Stations are used once each. Fewer
    outages come back when no admissible window exists (small fleets, short runs).
    """
    keep = np.ones(len(ts), dtype=bool)
    out: list[Outage] = []
    if count <= 0 or len(ts) == 0:
        return keep, out
    tsf = ts.astype(np.float64)
    names, code = np.unique(receiver.astype(str), return_inverse=True)
    stations = names.tolist()
    order_rx = np.argsort(code, kind="stable")  # rows per station, in time order
    cuts = np.searchsorted(code[order_rx], np.arange(len(names) + 1))
    by_station = {str(s): order_rx[cuts[k] : cuts[k + 1]] for k, s in enumerate(stations)}
    receiver = names[code].astype(object)  # str elements, so comparisons below are plain string equality
    by_vessel: dict[int, npt.NDArray[np.intp]] = {}
    order = np.argsort(mmsi, kind="stable")
    for chunk in np.split(order, np.flatnonzero(np.diff(mmsi[order])) + 1):
        if len(chunk):
            by_vessel[int(mmsi[chunk[0]])] = chunk  # row indices in time order (stable sort of time-sorted rows)
    used: set[str] = set()
    for _ in range(count):
        dur = float(np.round(rng.uniform(60.0, 90.0) * 60.0))
        grid = np.arange(t0_s + _GUARD_S, t_end_s - dur - _GUARD_S + 1.0, _GRID_S)
        bounds: list[tuple[int, float, str]] = []
        for s in stations:
            if s in used:
                continue
            st = tsf[by_station[s]]
            a = np.searchsorted(st, grid)
            b = np.searchsorted(st, grid + dur)
            ids = mmsi[by_station[s]]
            for t_o, i, j in zip(grid.tolist(), a.tolist(), b.tolist(), strict=True):
                if j - i >= MIN_SILENCED:
                    bounds.append((-len(set(ids[i:j].tolist())), t_o, s))
        bounds.sort()
        best: tuple[int, float, str] | None = None
        for neg_ub, t_o, s in bounds:
            if best is not None and -neg_ub <= best[0]:
                break
            rows = by_station[s]
            score = _score(rows, tsf[rows], s, t_o, dur, tsf, mmsi, receiver, anomalous, by_vessel)
            if score is not None and score >= MIN_SILENCED and (best is None or score > best[0]):
                best = (score, t_o, s)
        if best is None:
            break
        _, t_o, s = best
        used.add(s)
        rows = by_station[s]
        st = tsf[rows]
        inside = rows[(st >= t_o) & (st < t_o + dur)]
        silence: dict[str, float] = {}
        for m in sorted(set(mmsi[inside].tolist())):
            gaps = [
                min(h, t_end_s) - max(lo, t0_s) for lo, h, _ in _silences(by_vessel[int(m)], tsf, receiver, s, t_o, dur)
            ]
            silence[str(m)] = max(gaps)
        keep[inside] = False
        out.append(
            Outage(
                station=s,
                start_s=t_o,
                end_s=t_o + dur,
                last_before_s=float(st[st < t_o][-1]),
                first_after_s=float(st[st >= t_o + dur][0]),
                silence_s=silence,
            )
        )
    return keep, out


def _silences(
    vr: npt.NDArray[np.intp],
    tsf: npt.NDArray[np.float64],
    receiver: npt.NDArray[np.object_],
    station: str,
    t_o: float,
    dur: float,
) -> list[tuple[float, float, bool]]:
    """Silences an outage causes one vessel: ``(last kept report, next kept report, unambiguous)``.

    *Unambiguous* means the station was the only one to hear the vessel before
    that silence: the last report before it came through the station, and no
    other station heard the vessel in the gap threshold before it.
    """
    vt = tsf[vr]
    vrx = receiver[vr]
    drop = (vrx == station) & (vt >= t_o) & (vt < t_o + dur)
    kt = vt[~drop]
    krx = vrx[~drop]
    k = np.searchsorted(kt, vt[drop])  # kept reports kt[k-1] < dropped < kt[k] (no equal times per vessel)
    out: list[tuple[float, float, bool]] = []
    for j in sorted(set(k.tolist())):
        lo = float(kt[j - 1]) if j > 0 else -np.inf
        hi = float(kt[j]) if j < len(kt) else np.inf
        clean = j > 0 and krx[j - 1] == station
        if clean:
            recent = (kt >= lo - GAP_THRESHOLD_S) & (kt < lo) & (krx != station)
            clean = not bool(recent.any())
        out.append((lo, hi, clean))
    return out


def _score(
    rows: npt.NDArray[np.intp],
    st: npt.NDArray[np.float64],
    station: str,
    t_o: float,
    dur: float,
    tsf: npt.NDArray[np.float64],
    mmsi: npt.NDArray[np.int64],
    receiver: npt.NDArray[np.object_],
    anomalous: dict[int, list[tuple[float, float]]],
    by_vessel: dict[int, npt.NDArray[np.intp]],
) -> int | None:
    """Vessels silenced beyond the gap threshold by this window, or None when the window is not admissible."""
    lo, hi = np.searchsorted(st, [t_o - _GUARD_S, t_o + dur + _GUARD_S])
    g0, g1 = t_o - _GUARD_S, t_o + dur + _GUARD_S
    for m in set(mmsi[rows[lo:hi]].tolist()) & anomalous.keys():
        if any(s0 - _GUARD_S < g1 and e0 + _GUARD_S > g0 for s0, e0 in anomalous[m]):
            return None
    a, b = np.searchsorted(st, [t_o, t_o + dur])
    if a == 0 or b >= len(st) or b == a:
        return None  # the label needs a report before and after the window
    score = 0
    for m in sorted(set(mmsi[rows[a:b]].tolist())):
        long = [
            x for x in _silences(by_vessel[int(m)], tsf, receiver, station, t_o, dur) if x[1] - x[0] > GAP_THRESHOLD_S
        ]
        if any(not clean for _, _, clean in long):
            return None  # a gap the engine may rightly raise: not a case of "only this station heard it"
        score += bool(long)
    return score
