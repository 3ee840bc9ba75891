"""A clone on its own is the whole project: no file reads or names a path outside it.

Test data lives in tests/data with its provenance (tests/data/telegrams/SOURCES.md);
this guards against a test, bench, doc or service reaching for a sibling folder or a
path of the machine it was written on.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TELEGRAMS = REPO / "tests" / "data" / "telegrams"

# a sibling "shared" folder (dot-dot, or REPO.parent), or an absolute path of a workspace
OUTSIDE = re.compile(
    r"\.\./shared|parents?\s*(\[\d+\])?\s*/\s*\"shared\"|REPO\.parent\s*/|(?<![\w.])/(work|home/[a-z]+|Users/[A-Za-z]+)/"
)


def tracked_text_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    files = []
    for name in out.decode().split("\0"):
        if not name or name.startswith("tests/data/") or name == "tests/test_self_contained.py":
            continue
        path = REPO / name
        if path.suffix in {".py", ".md", ".sh", ".yaml", ".yml", ".toml", ".json", ".html", ".js", ".txt", ".cfg",
                           ".conf", ""} and path.is_file():
            files.append(path)
    return files


def test_no_file_reaches_outside_the_repository() -> None:
    offenders = []
    for path in tracked_text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for lineno, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(REPO)}:{lineno}: {line.strip()}")
    assert offenders == []


def test_every_fixture_has_its_source_listed() -> None:
    sources = (TELEGRAMS / "SOURCES.md").read_text(encoding="utf-8")
    fixtures = sorted(p.name for p in TELEGRAMS.iterdir() if p.name != "SOURCES.md")
    assert len(fixtures) == 57
    unlisted = [name for name in fixtures if f"| {name} |" not in sources]
    assert unlisted == []
