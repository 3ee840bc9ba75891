"""scripts/check_function_length.py, run as `make check` runs it, on files written here.

The expected lines are counted by the test from the text it writes (def line to last
line), not by the checker.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "check_function_length.py"


def function(name: str, body_lines: int, def_comment: str = "", indent: str = "") -> str:
    """A function of exactly 1 + body_lines lines."""
    head = f"{indent}def {name}() -> int:{'  ' + def_comment if def_comment else ''}\n"
    body = "".join(f"{indent}    x{i} = {i}\n" for i in range(body_lines - 1))
    return head + body + f"{indent}    return 0\n"


def check(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, paths)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )


def test_a_61_line_function_is_reported_with_path_line_name_and_length(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    text = '"""module"""\n\n\n' + function("short", 59) + "\n\n" + function("too_long", 60)
    source.write_text(text)
    # the checker's count and line must match the text: too_long starts on its def line
    def_line = text.splitlines().index("def too_long() -> int:") + 1
    assert len(text.splitlines()) - def_line + 1 == 61

    result = check(source)

    assert result.returncode == 1
    assert result.stdout.splitlines() == [f"{source}:{def_line} too_long (61 lines)"]
    assert "1 function(s) over 60 lines" in result.stderr


def test_exactly_60_lines_passes(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text(function("sixty", 59))
    assert len(source.read_text().splitlines()) == 60

    result = check(source)

    assert (result.returncode, result.stdout) == (0, "")


def test_methods_and_nested_functions_are_named_and_checked_on_their_own(tmp_path: Path) -> None:
    text = "class Engine:\n" + function("process", 70, indent="    ")
    text += "\n\ndef outer() -> int:\n" + function("inner", 65, indent="    ") + "    return inner()\n"
    (tmp_path / "pkg").mkdir()
    source = tmp_path / "pkg" / "engine.py"
    source.write_text(text)
    lines = text.splitlines()
    process_line = lines.index("    def process() -> int:") + 1
    outer_line = lines.index("def outer() -> int:") + 1

    result = check(tmp_path)  # a folder: every .py file under it

    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{source}:{process_line} Engine.process (71 lines)",
        f"{source}:{outer_line} outer (68 lines)",
        f"{source}:{outer_line + 1} outer.inner (66 lines)",
    ]


def test_a_reason_on_the_def_line_exempts_a_function_and_a_bare_marker_does_not(
    tmp_path: Path,
) -> None:
    source = tmp_path / "mod.py"
    text = function("with_reason", 80, "# long-function: one table, split would scatter it")
    text += "\n\n" + function("no_reason", 80, "# long-function:")
    source.write_text(text)
    no_reason_line = text.splitlines().index("def no_reason() -> int:  # long-function:") + 1

    result = check(source)

    assert result.returncode == 1
    assert result.stdout.splitlines() == [f"{source}:{no_reason_line} no_reason (81 lines)"]


def test_async_functions_are_checked_and_help_says_what_it_does(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text(function("serve", 61).replace("def serve", "async def serve"))

    result = check(source)

    assert result.stdout.splitlines() == [f"{source}:1 serve (62 lines)"]
    helped = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60
    )
    assert helped.returncode == 0
    assert "long-function: <reason>" in helped.stdout
