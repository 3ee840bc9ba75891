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
import re
import sys
import time
import traceback
from pathlib import Path

ORDER = ["parser", "reader", "sim", "peak", "control", "ev", "load", "fuzz"]
OUT = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


class Report:
    """The sections one benchmark module reports, in order."""

    def __init__(self) -> None:
        self.sections: list[tuple[str, str]] = []

    def section(self, title: str, markdown: str) -> None:
        print(f"\n## {title}\n{markdown}", flush=True)
        self.sections.append((title, markdown))


def available() -> list[str]:
    here = Path(__file__).resolve().parent
    names = [p.stem for p in here.glob("*.py") if p.stem not in ("__init__", "run")]
    return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


# BENCHMARKS.md holds one block per benchmark module, between these markers, so that
# `python -m bench.run NAME` replaces its own block and keeps the others as they were
BEGIN = re.compile(r"^<!-- bench:(?P<name>[a-z_]+) (?P<stamp>[^>]*) -->$", re.M)


def end_marker(name: str) -> str:
    return f"<!-- /bench:{name} -->"


def read_blocks(text: str) -> dict[str, tuple[str, str]]:
    """name -> (when and where it ran, its markdown) of every block in a BENCHMARKS.md."""
    blocks = {}
    for m in BEGIN.finditer(text):
        name = m.group("name")
        stop = text.find(end_marker(name), m.end())
        if stop >= 0:
            blocks[name] = (m.group("stamp"), text[m.end():stop].strip())
    return blocks


def render(blocks: dict[str, tuple[str, str]]) -> str:
    names = sorted(blocks, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    head = [
        "# Benchmarks",
        "",
        "Written by `make bench` (every benchmark) or `python -m bench.run NAME` (that one's block "
        "only). Ratios are measured against a reference in the same run. Which block comes from "
        "which run:",
        "",
        "| benchmark | run |",
        "|---|---|",
        *[f"| {n} | {blocks[n][0]} |" for n in names],
        "",
    ]
    body = [f"<!-- bench:{n} {blocks[n][0]} -->\n{blocks[n][1]}\n{end_marker(n)}\n" for n in names]
    return "\n".join(head + body)


def block_of(report: Report) -> str:
    return "\n".join(f"## {title}\n\n{markdown.strip()}\n" for title, markdown in report.sections)


def stamp() -> str:
    return (f"{dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, {platform.machine()}, "
            f"Python {platform.python_version()}")


def write_block(out: Path, name: str, report: Report) -> None:
    """Replace (or add) benchmark ``name``'s block in ``out``; the others stay (a file from
    before the blocks is kept whole, as one block, until a full run writes it anew)."""
    text = out.read_text() if out.exists() else ""
    blocks = read_blocks(text)
    if text.strip() and not blocks:
        blocks["earlier"] = ("an earlier run, before the file was kept per benchmark",
                             text.replace("# Benchmarks", "", 1).strip())
    blocks[name] = (stamp(), block_of(report))
    out.write_text(render(blocks))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="make bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help=f"benchmarks to run (default all: {', '.join(available())})")
    ap.add_argument("--out", default=str(OUT), help="markdown file to write")
    args = ap.parse_args(argv)
    names = args.names or available()
    out = Path(args.out)
    if not args.names:
        out.write_text("")  # a full run writes the file anew, block after block
    failed = []
    for i, name in enumerate(names, 1):
        print(f"[{i}/{len(names)}] bench.{name} ...", flush=True)
        t0 = time.monotonic()
        report = Report()
        try:
            importlib.import_module(f"bench.{name}").run(report)
        except Exception:
            traceback.print_exc()
            failed.append(name)
            report.section(f"{name}: FAILED", "```\n" + traceback.format_exc()[-2000:] + "\n```")
        write_block(out, name, report)  # after each benchmark: a long run that stops keeps what it measured
        print(f"[{i}/{len(names)}] bench.{name} done in {time.monotonic() - t0:.0f} s", flush=True)
    print(f"\nwrote {out}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
