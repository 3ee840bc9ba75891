"""BENCHMARKS.md is written per benchmark: `bench.run NAME` replaces only NAME's block."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository: bench/

from bench.run import Report, read_blocks, write_block


def report(*sections: tuple[str, str]) -> Report:
    r = Report()
    for title, md in sections:
        r.section(title, md)
    return r


def test_a_benchmark_replaces_only_its_own_block(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    write_block(out, "parser", report(("parser: speed", "18x")))
    write_block(out, "load", report(("Load: sites", "1000 sites"), ("Load: bends", "2 cores")))
    first = read_blocks(out.read_text())
    write_block(out, "parser", report(("parser: speed", "19x")))
    text = out.read_text()
    blocks = read_blocks(text)
    assert list(blocks) == ["parser", "load"]  # the benchmarks' own order (bench.run.ORDER)
    assert blocks["parser"][1] == "## parser: speed\n\n19x"
    assert blocks["load"] == first["load"]  # untouched, its run stamp included
    assert text.count("| parser | ") == 1 and text.count("| load | ") == 1
    assert text.startswith("# Benchmarks\n")


def test_a_file_from_before_the_blocks_is_kept(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    out.write_text("# Benchmarks\n\n## parser: speed\n\n17x\n")
    write_block(out, "reliability", report(("Reliability: fuzz", "0 crashes")))
    blocks = read_blocks(out.read_text())
    assert blocks["earlier"][1] == "## parser: speed\n\n17x"
    assert blocks["reliability"][1] == "## Reliability: fuzz\n\n0 crashes"
