#!/usr/bin/env python3
"""No production function longer than 60 lines (``make check``, ``scripts/test.sh``).

A function is counted from its ``def`` line to its last line, docstring and comments
included; nested functions and methods are each checked on their own. A function may be
longer only with a reason on its def line::

    def create_app(...):  # long-function: split into routers per resource: in progress

Prints each offender as ``path:line name (N lines)`` and exits 1 if there is one.
Standard library only: it runs before (and without) the project's venv.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_LINES = 60
# the marker needs a reason after the colon: "# long-function:" alone does not count
MARKER = re.compile(r"#\s*long-function:\s*\S")


@dataclass(frozen=True)
class LongFunction:
    path: Path
    line: int
    name: str
    lines: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line} {self.name} ({self.lines} lines)"


def _functions(
    tree: ast.AST, prefix: str = ""
) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function in ``tree`` with its dotted name (``Class.method``, ``outer.inner``)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            name = prefix + node.name
            yield name, node
            yield from _functions(node, name + ".")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, prefix + node.name + ".")
        else:
            yield from _functions(node, prefix)


def long_functions(source: str, path: Path, max_lines: int = MAX_LINES) -> list[LongFunction]:
    """The functions of ``source`` over ``max_lines`` lines without a long-function reason."""
    lines = source.splitlines()
    found = []
    for name, node in _functions(ast.parse(source, filename=str(path))):
        length = (node.end_lineno or node.lineno) - node.lineno + 1
        if length > max_lines and not MARKER.search(lines[node.lineno - 1]):
            found.append(LongFunction(path, node.lineno, name, length))
    return found


def python_files(roots: list[Path]) -> list[Path]:
    files: list[Path] = []
    for root in roots:
        files.extend([root] if root.is_file() else sorted(root.rglob("*.py")))
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=f"List functions longer than {MAX_LINES} lines (def line to last line) "
        "that have no '# long-function: <reason>' on their def line. Exit 1 if there is one."
    )
    parser.add_argument(
        "paths", nargs="*", type=Path, default=[Path("services")],
        help="files or folders to check (default: services)",
    )
    parser.add_argument(
        "--max-lines", type=int, default=MAX_LINES, help=f"longest allowed (default {MAX_LINES})"
    )
    args = parser.parse_args(argv)
    offenders = []
    for path in python_files(args.paths):
        offenders.extend(long_functions(path.read_text(encoding="utf-8"), path, args.max_lines))
    for offender in offenders:
        print(offender)
    if offenders:
        print(
            f"{len(offenders)} function(s) over {args.max_lines} lines: split them, or put "
            "'# long-function: <reason>' on the def line",
            file=sys.stderr,
        )
    return 1 if offenders else 0


if __name__ == "__main__":
    sys.exit(main())
