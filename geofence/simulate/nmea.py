"""NMEA 0183 AIS output: ``!AIVDM`` sentences from pyais, each behind an NMEA 4.0 tag block.

Tag block: ``\\s:<station>,c:<unix seconds>*hh\\`` where ``hh`` is the XOR of the
characters between the leading backslash and ``*``, like the sentence checksum.
Class A positions are types 1 (underway) and 3 (at anchor / moored), class B type
18; statics are type 5 (two fragments) for class A and type 24 parts A and B for
class B. pyais encodes ~20-50k messages/s, fine for feeds of a few hundred
vessels; JSONL is the fast format.
"""

from __future__ import annotations

from functools import reduce
from typing import TYPE_CHECKING

import numpy as np
from pyais import encode_dict

if TYPE_CHECKING:
    from geofence.simulate.run import Simulation

__all__ = ["nmea_checksum", "nmea_lines", "tag_block"]


def nmea_checksum(body: str) -> int:
    """Return the XOR of the characters of ``body`` (the part between the start char and ``*``)."""
    return reduce(lambda acc, ch: acc ^ ord(ch), body, 0)


def tag_block(station: str, unix_s: int) -> str:
    """Return the NMEA 4.0 tag block ``\\s:<station>,c:<unix_s>*hh\\``."""
    body = f"s:{station},c:{int(unix_s)}"
    return f"\\{body}*{nmea_checksum(body):02X}\\"


def _callsign(mmsi: int) -> str:
    return f"B{mmsi % 1_000_000:06d}"


def nmea_lines(sim: Simulation) -> list[str]:
    """Encode the vessel reports and statics of a simulation as tagged ``!AIVDM`` lines, sorted by time."""
    rep = sim.reports
    vessels = sim.vessels
    events: list[tuple[int, int, int, int]] = [
        (int(t), int(m), 0, k) for k, (t, m) in enumerate(zip(rep.ts.tolist(), rep.mmsi.tolist(), strict=True))
    ]
    events += [(t, vessels[vi].mmsi, 1, k) for k, (t, vi, _) in enumerate(sim.statics)]
    events.sort()
    # the receiver of a static message: the vessel's nearest position report
    per_vessel_ts = {v.index: rep.ts[rep.vessel == v.index] for v in vessels}
    per_vessel_rx = {v.index: rep.receiver[rep.vessel == v.index] for v in vessels}
    out: list[str] = []
    seq = 0
    kw = {"talker_id": "AI", "sentence_type": "VDM"}
    for ts, mmsi, kind, k in events:
        if kind == 0:
            v = vessels[int(rep.vessel[k])]
            data: dict[str, str | int | float | bool | bytes] = {
                "mmsi": mmsi,
                "lon": float(rep.lon[k]),
                "lat": float(rep.lat[k]),
                "speed": min(float(rep.sog[k]), 102.2),
                "course": float(rep.cog[k]),
                "heading": int(rep.heading[k]),
                "second": ts % 60,
            }
            if v.cls == "A":
                data["type"] = 1 if int(rep.status[k]) == 0 else 3
                data["status"] = int(rep.status[k])
            else:
                data["type"] = 18
            sentences = encode_dict(data, radio_channel="A" if ts % 2 else "B", **kw)
            station = str(rep.receiver[k])
        else:
            _, vi, dest = sim.statics[k]
            v = vessels[vi]
            vts = per_vessel_ts[vi]
            j = int(np.clip(np.searchsorted(vts, ts), 0, len(vts) - 1))
            station = str(per_vessel_rx[vi][j])
            bow = round(v.length_m * 0.6)
            side = round(v.beam_m / 2)
            if v.cls == "A":
                seq = (seq + 1) % 10
                sentences = encode_dict(
                    {"type": 5, "mmsi": mmsi, "ais_version": 0, "imo": 0, "callsign": _callsign(mmsi),
                     "shipname": v.name, "ship_type": v.ship_type, "to_bow": bow,
                     "to_stern": int(v.length_m) - bow, "to_port": side, "to_starboard": int(v.beam_m) - side,
                     "epfd": 1, "month": 0, "day": 0, "hour": 24, "minute": 60, "draught": 3.5,
                     "destination": dest, "dte": 0},
                    seq_id=seq, **kw,
                )
            else:
                sentences = encode_dict({"type": 24, "mmsi": mmsi, "partno": 0, "shipname": v.name}, **kw)
                sentences += encode_dict(
                    {"type": 24, "mmsi": mmsi, "partno": 1, "ship_type": v.ship_type, "vendorid": "",
                     "callsign": _callsign(mmsi), "to_bow": bow, "to_stern": int(v.length_m) - bow,
                     "to_port": side, "to_starboard": int(v.beam_m) - side},
                    **kw,
                )
        tb = tag_block(station, ts)
        out.extend(tb + s for s in sentences)
    return out
