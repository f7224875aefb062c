"""``python -m benchmarks NAME [--json] [--quick]``: run one benchmark, all of them, or the CI gate.

Every benchmark is a module ``benchmarks/<name>.py`` with ``main(argv) -> int`` that
prints one JSON object with ``--json``. Figures are ratios against baselines measured
in the same run, because machines are noisy; absolute rates are reported, never gated.

``all`` runs every benchmark and writes their JSON objects, keyed by name, to ``--out``.
``gate`` runs the gated benchmarks (the fence path, and the NMEA/JSONL decoders) in quick mode
and fails when a ratio falls below its floor in ``benchmarks/results/floor.json`` (see that file
for how the floors were set).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["BENCHMARKS", "main"]

#: Benchmark modules, in the order ``all`` runs them.
BENCHMARKS = ("fence", "ingest", "pipeline", "replay", "faust")
_FLOOR = Path(__file__).resolve().parent / "results" / "floor.json"


def _run_json(name: str, extra: list[str]) -> dict[str, Any]:
    """Run one benchmark in a fresh interpreter (no state or memory carried over) and parse its JSON."""
    proc = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", "--json", *extra],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark {name} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _all(args: argparse.Namespace) -> int:
    results: dict[str, Any] = {}
    extra = ["--quick"] if args.quick else []
    for name in BENCHMARKS:
        if importlib.util.find_spec(f"benchmarks.{name}") is None:
            continue
        print(f"benchmarks: running {name} ...", file=sys.stderr, flush=True)
        results[name] = _run_json(name, extra)
        print(f"benchmarks: {name}: {json.dumps(results[name])}", file=sys.stderr, flush=True)
    text = json.dumps(results, indent=2, sort_keys=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    print(text if args.json else "\n".join(f"{k}: {v}" for k, v in results.items()))
    return 0


def _gate(_: argparse.Namespace) -> int:
    """Run every gated benchmark in quick mode; fail when a ratio is below its floor."""
    floor = json.loads(_FLOOR.read_text())
    failures: list[str] = []
    lines: list[str] = []
    for name, minimums in floor["minimum"].items():
        result = _run_json(name, ["--quick"])
        for key, minimum in minimums.items():
            got = result.get(key)
            lines.append(f"{name}.{key}={got} (floor {minimum})")
            if got is None or got < minimum:
                failures.append(f"{name}.{key} = {got} is below the floor {minimum}")
    if failures:
        print("benchmark gate FAILED: " + "; ".join(failures), file=sys.stderr)
        print(f"the floors live in {_FLOOR}; find the slowdown instead of lowering them", file=sys.stderr)
        return 1
    print("benchmark gate passed: " + ", ".join(lines))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a benchmark module, ``all`` or ``gate``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        print("benchmarks:", ", ".join(BENCHMARKS), "| all | gate")
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name in ("all", "gate"):
        ap = argparse.ArgumentParser(prog=f"python -m benchmarks {name}")
        ap.add_argument("--json", action="store_true")
        ap.add_argument("--quick", action="store_true")
        ap.add_argument("--out", default=None)
        args = ap.parse_args(rest)
        return _all(args) if name == "all" else _gate(args)
    if name not in BENCHMARKS:
        print(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}, all, gate", file=sys.stderr)
        return 2
    module = importlib.import_module(f"benchmarks.{name}")
    code: int = module.main(rest)
    return code


if __name__ == "__main__":
    sys.exit(main())
