#!/usr/bin/env python3
"""courrier benchmarks, run by hand: ``python bench/run.py [SCENARIO…] [--quick]``.

Each scenario lives in ``bench/scn_<name>.py`` and exposes ``run(args) -> list[str]`` (the lines to print, with
messages/second and ratios against a reference measured in the same run — never absolute figures from different
runs). See shared BENCH-NOTES for the traps. Results worth keeping go in ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def scenarios() -> list[str]:
    return sorted(p.stem[4:] for p in HERE.glob("scn_*.py"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenario", nargs="*", help=f"scenarios to run (default: all of {', '.join(scenarios())})")
    ap.add_argument("--quick", action="store_true", help="fewer messages and repetitions (smoke run)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds per contender (medians reported)")
    args = ap.parse_args()
    chosen = args.scenario or scenarios()
    for name in chosen:
        if name not in scenarios():
            ap.error(f"unknown scenario {name!r}; known: {', '.join(scenarios())}")
    for name in chosen:
        mod = importlib.import_module(f"scn_{name}")
        print(f"== {name}: {(mod.__doc__ or '').strip().splitlines()[0]}", flush=True)
        for line in mod.run(args):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
