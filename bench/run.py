"""``make bench``: run every benchmark module and write BENCHMARKS.md.

Each module ``bench/<name>.py`` has ``run(report)``; it measures ratios against a
reference in the same run (so results do not depend on how fast this machine
is) and calls ``report.section(title, markdown)``. ``python -m bench.run NAME...``
runs only those.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import platform
import sys
import time
import traceback
from pathlib import Path

ORDER = ["parser", "reader", "sim", "peak", "control", "load", "fuzz"]
OUT = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


class Report:
    def __init__(self) -> None:
        self.sections: list[tuple[str, str]] = []

    def section(self, title: str, markdown: str) -> None:
        print(f"\n## {title}\n{markdown}", flush=True)
        self.sections.append((title, markdown))


def available() -> list[str]:
    here = Path(__file__).resolve().parent
    names = [p.stem for p in here.glob("*.py") if p.stem not in ("__init__", "run")]
    return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="make bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help=f"benchmarks to run (default all: {', '.join(available())})")
    ap.add_argument("--out", default=str(OUT), help="markdown file to write")
    args = ap.parse_args(argv)
    names = args.names or available()
    report = Report()
    failed = []
    for i, name in enumerate(names, 1):
        print(f"[{i}/{len(names)}] bench.{name} ...", flush=True)
        t0 = time.monotonic()
        try:
            importlib.import_module(f"bench.{name}").run(report)
        except Exception:
            traceback.print_exc()
            failed.append(name)
            report.section(f"{name}: FAILED", "```\n" + traceback.format_exc()[-2000:] + "\n```")
        print(f"[{i}/{len(names)}] bench.{name} done in {time.monotonic() - t0:.0f} s", flush=True)
    head = [
        "# Benchmarks",
        "",
        f"Written by `make bench` on {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, "
        f"{platform.machine()}, Python {platform.python_version()}, "
        f"{len(names)} benchmark(s). Ratios are measured against a reference in the same run.",
        "Reproduce: `make bench` (all) or `.venv/bin/python -m bench.run NAME`.",
        "",
    ]
    body = [f"## {t}\n\n{m.strip()}\n" for t, m in report.sections]
    Path(args.out).write_text("\n".join(head + body))
    print(f"\nwrote {args.out}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
