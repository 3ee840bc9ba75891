"""Parser fuzzing at scale: 1,000,000 mutated real telegrams through framer + parser.

The mutations and the oracle are the reliability suite's (tests/reliability/fuzz_support.py):
bit flips, truncation, insertion, deletion, line duplication / removal / swap, CRC digit
changes, junk in front; 1 to 3 per telegram. Reported: telegrams per second, what was
refused by reason, what was accepted, and any problem: an exception other than
TelegramError, or a telegram p1-reader and the oracle (a CRC16 of its own and
dsmr_parser) judge differently.

``python -m bench.fuzz [--count 1000000] [--seed 11]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "reliability"))


def run(report: Any, count: int = 1_000_000, seed: int = 11) -> None:
    from fuzz_support import run_mutations

    t0 = time.perf_counter()
    stats = run_mutations(count, seed=seed, progress=True)
    dt = time.perf_counter() - t0
    refused = ", ".join(f"{k} {v}" for k, v in sorted(stats.refused.items()))
    md = (
        f"{stats.cases:,} mutated telegrams ({stats.telegrams:,} framed) in {dt:.1f} s "
        f"({stats.cases / dt:,.0f}/s). Refused: {refused}. Accepted: {stats.accepted:,}. "
        f"Problems (an exception other than TelegramError, or a telegram p1-reader and the "
        f"oracle, a CRC16 of its own and dsmr_parser, judge differently): "
        f"**{len(stats.problems)}**.\n\n"
        "Reproduce: `python -m bench.fuzz --count 1000000`; the short version runs in "
        "`make test` (tests/reliability/test_rel_fuzz.py, 20k + hypothesis), the process-level "
        "run (metrics counted, nothing corrupt published) in `make soak`."
    )
    for p in stats.problems[:5]:
        md += f"\n- `{p}`"
    report.section("Parser fuzzing: mutated real telegrams", md)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args(argv)

    class _Print:
        def section(self, title: str, markdown: str) -> None:
            print(f"\n## {title}\n{markdown}", flush=True)

    run(_Print(), args.count, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
