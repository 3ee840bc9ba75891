"""The docs name only what exists: every environment variable, every flag of our commands and
every MQTT topic in docs/*.md is in the code, and every docs/ path a --help names is there.

- Variables: UPPER_CASE names with an underscore. A setting of ours (P1_*, MQTT_*, LOADCTL_*,
  PEAK_*, BRIDGE_*, RECORDER_*, INFLUX_*, METER_SIM_*, ...) must be read or set somewhere in
  the code (a quoted name, ``NAME=``, ``NAME:``, ``$NAME`` / ``${NAME``) under services/,
  deploy/, devices/, scripts/, .ci/, the Makefile or the Dockerfile; any other such name
  (a constant, a socket option) must at least occur there. docs and other .md files do not
  count.
- Flags: a ``--flag`` on a line that names one of our console scripts must be in the --help
  of one of those commands (or of one of its subcommands); on a table row of a service's
  own page that names no command, in that service's --help.
- Topics: every `p1/...`, `homeassistant/...` and `$share/<group>/p1/...` in backquotes is
  a topic (or a filter matching one) of p1common.topics' contract.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from p1common.topics import HA_STATUS_TOPIC, Topics, ha_config_topic
from support import REPO

DOCS = sorted((REPO / "docs").glob("*.md"))
BIN = Path(sys.executable).parent
COMMANDS = ("p1-reader", "meter-sim", "peak-forecaster", "load-controller", "bridge-multicast",
            "p1-web", "p1-recorder", "p1-broker", "p1-schemas", "ev-gateway")
PAGE_COMMAND = {"p1-reader.md": "p1-reader", "meter-sim.md": "meter-sim",
                "peak-forecaster.md": "peak-forecaster", "load-controller.md": "load-controller",
                "bridge-multicast.md": "bridge-multicast", "web.md": "p1-web",
                "recorder.md": "p1-recorder", "ev-chargers.md": "ev-gateway"}
CODE_ROOTS = [REPO / d for d in ("services", "deploy", "devices", "scripts", ".ci")] + [
    REPO / "Makefile", REPO / "Dockerfile"]
OUR_PREFIXES = ("P1_", "MQTT_", "LOADCTL_", "PEAK_", "BRIDGE_", "RECORDER_", "INFLUX_",
                "METER_SIM_", "GRAFANA_", "SIM_", "BROKER_")
OUR_NAMES = ("LOG_LEVEL", "METRICS_PORT", "SERIAL")

# Named in docs/ on purpose although the code has no such thing, each with why (none at
# present: P1_SOAK, GRAFANA_ADMIN_PASSWORD, INFLUX_ADMIN_TOKEN are in the Makefile and
# deploy/; an entry here must still be needed, see test_the_allow_lists_are_still_needed).
ALLOWED_VARIABLES: dict[str, str] = {}
ALLOWED_TOPICS: dict[str, str] = {
    "p1/Home/reading": "web.md's example of a topic the contract refuses (upper case site)",
}

VARIABLE = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
COMMAND = re.compile(r"(?<![\w./-])(" + "|".join(map(re.escape, COMMANDS))
                     + r"|python3? -m [\w.]+|mkusers\.py)(?![\w-])")
BACKQUOTED = re.compile(r"`([^`\s]+)`")


@functools.cache
def code_text() -> str:
    parts = []
    for root in CODE_ROOTS:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for f in files:
            if f.suffix in (".md", ".pyc", ".mpy", ".png", ".gz") or "__pycache__" in f.parts:
                continue
            try:
                parts.append(f.read_text(errors="replace"))
            except OSError:
                continue
    return "\n".join(parts)


def doc_lines() -> list[tuple[Path, int, str]]:
    return [(p, n, line) for p in DOCS for n, line in enumerate(p.read_text().splitlines(), 1)]


# -- environment variables ------------------------------------------------------------------

def _is_ours(name: str) -> bool:
    return name.startswith(OUR_PREFIXES) or name in OUR_NAMES


def _used_as_setting(name: str, code: str) -> bool:
    n = re.escape(name)
    return re.search(rf"[\"']{n}[\"']|\b{n}\s*[?:]?=|\b{n}:|\${{?{n}\b|- {n}\b", code) is not None


def test_every_variable_in_the_docs_is_in_the_code() -> None:
    code = code_text()
    missing = []
    for path, n, line in doc_lines():
        for name in set(VARIABLE.findall(line)):
            if name in ALLOWED_VARIABLES:
                continue
            if not _variable_found(name, code):
                missing.append(f"{path.name}:{n}: {name}")
    assert not missing, "\n".join(missing)


def _variable_found(name: str, code: str) -> bool:
    return (_used_as_setting(name, code) if _is_ours(name)
            else re.search(rf"\b{name}\b", code) is not None)


def test_the_allow_lists_are_still_needed() -> None:
    code, text = code_text(), "\n".join(p.read_text() for p in DOCS)
    for name in ALLOWED_VARIABLES:
        assert name in text and not _variable_found(name, code), name
    for topic in ALLOWED_TOPICS:
        assert f"`{topic}`" in text and not _topic_fits(topic, code), topic


# -- flags of our commands ---------------------------------------------------------------------

@functools.cache
def help_text(*argv: str) -> str:
    """``<command> [sub] --help`` ('' when that is no command of ours: then its flags are
    not checked). Commands: a console script, ``python -m <module>``, ``mkusers.py``."""
    env = {**os.environ, "COLUMNS": "200"}
    head: list[str]
    if argv[0].startswith("python"):
        head = [sys.executable, "-m", argv[0].split()[-1]]
    elif argv[0] == "mkusers.py":
        head = [sys.executable, str(REPO / "deploy" / "mosquitto" / "mkusers.py")]
    else:
        head = [str(BIN / argv[0])]
    out = subprocess.run([*head, *argv[1:], "--help"], capture_output=True, text=True,
                         timeout=60, env=env, cwd=REPO)
    return out.stdout if out.returncode == 0 else ""


def subcommands(command: str) -> list[str]:
    """The names listed under 'positional arguments' that have a --help of their own."""
    text = help_text(command)
    section = text.split("positional arguments:", 1)[1].split("\n\n", 1)[0] if (
        "positional arguments:" in text) else ""
    names = re.findall(r"^ {4}([a-z][a-z-]*)\s", section, re.M)
    return [s for s in names if help_text(command, s)]


@functools.cache
def flags_of(command: str) -> frozenset[str]:
    texts = [help_text(command)] + [help_text(command, s) for s in subcommands(command)]
    return frozenset(f for t in texts for f in FLAG.findall(t))


def test_every_command_has_a_help() -> None:
    for command in COMMANDS:
        assert "usage:" in help_text(command), command
    assert "--no-ha-discovery" in flags_of("peak-forecaster")  # a subcommand's flag
    assert "parse" in subcommands("p1-reader")


def attributed_flags(page: str, line: str) -> list[tuple[str, str]]:
    """(command, flag) for each flag of the line: a flag belongs to the nearest command
    named before it on the line; one with no command before it to the page's own service
    (on the service's page), else to nobody (``docker run --rm``, a deploy script's)."""
    names = [(m.start(), m.group(1)) for m in COMMAND.finditer(line)]
    out = []
    for m in FLAG.finditer(line):
        before = [c for at, c in names if at < m.start()]
        command = before[-1] if before else PAGE_COMMAND.get(page)
        if command:
            out.append((command, m.group(0)))
    return out


def test_every_flag_in_the_docs_is_a_flag_of_its_command() -> None:
    wrong = [f"{path.name}:{n}: {command} {flag}"
             for path, n, line in doc_lines()
             for command, flag in attributed_flags(path.name, line)
             if help_text(command) and flag not in flags_of(command)]
    assert not wrong, "\n".join(wrong)


def test_the_flag_check_can_fail() -> None:
    assert attributed_flags("deployment.md", "docker run --rm img p1-recorder --help") == [
        ("p1-recorder", "--help")]
    assert attributed_flags("meter-sim.md", "raise `--watchdog-s` for the load-controller") == [
        ("meter-sim", "--watchdog-s")]
    assert "--watchdog-s" in flags_of("meter-sim")
    assert "--all-sites" in flags_of("load-controller")
    assert "--all-sites" not in flags_of("meter-sim")
    assert attributed_flags("peak-forecaster.md", "`python -m bench.peak --days 30`") == [
        ("python -m bench.peak", "--days")]
    assert "--days" in flags_of("python -m bench.peak")
    assert "--rotate" in flags_of("mkusers.py")


def test_every_docs_path_a_help_names_exists() -> None:
    texts = {(c,): help_text(c) for c in COMMANDS}
    texts |= {(c, s): help_text(c, s) for c in COMMANDS for s in subcommands(c)}
    named = {(" ".join(k), m.rstrip("."))
             for k, t in texts.items() for m in re.findall(r"docs/[\w./-]*\w", t)}
    assert named, "no --help names a docs/ page"  # the check looks at real texts
    assert [(who, p) for who, p in sorted(named) if not (REPO / p).exists()] == []


# -- topics ----------------------------------------------------------------------------------

T = Topics("p1")
V = "x1"  # where a template has a variable segment (site, id, scope, node, object)
TEMPLATES = [t.split("/") for t in (
    T.reading(V), T.live(V), T.raw(V), T.peak(V), T.peak_quarter(V), T.peak_month(V),
    T.output_set(V, V), T.output_state(V, V), T.control(V), T.config(V, V), T.config(V, V, V),
    T.status(V), HA_STATUS_TOPIC, ha_config_topic(V, V, V))]
PLACEHOLDER = re.compile(r"^(<[^>]*>|%[cu]|[A-Z]|\+)$")


def _expand(pattern: str) -> list[str]:
    """``homeassistant/{sensor,binary_sensor}/...`` -> one pattern per alternative."""
    parts = re.split(r"\{([^}]*)\}", pattern)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def _segments(pattern: str) -> tuple[list[str], list[str]]:
    """A doc pattern's segments (a placeholder -> V, ``...`` -> ``#``) and the literal
    words in it that the code must have too."""
    segs, words = [], []
    for s in pattern.split("/"):
        if s in ("#", "..."):
            segs.append("#")
        elif PLACEHOLDER.match(s):
            segs.append(V)
        elif "<" in s:  # p1_reader_<site>: a literal part, then a placeholder
            segs.append(V)
            words.append(s.split("<", 1)[0])
        else:
            segs.append(s)
            words.append(s)
    return segs, words


def _fits(segs: list[str], template: list[str]) -> bool:
    if segs and segs[-1] == "#":
        head = segs[:-1]
        return len(template) > len(head) and _fits(head, template[: len(head)])
    return len(segs) == len(template) and all(
        t in (V, s) for s, t in zip(segs, template, strict=True))


def doc_topics() -> list[tuple[str, int, str]]:
    out = []
    for path, n, line in doc_lines():
        for token in BACKQUOTED.findall(line):
            token = re.sub(r"^\$share/<group>/", "", token)
            if token.startswith(("p1/", "homeassistant/")):
                out.append((path.name, n, token))
    return out


def _topic_fits(token: str, code: str) -> bool:
    """Every expansion is a topic (or filter) of the contract, and its words (a config
    scope, an HA component, a node id's prefix) are the code's too."""
    for pattern in _expand(token):
        segs, words = _segments(pattern)
        if not any(_fits(segs, t) for t in TEMPLATES) or not all(
                f'"{w}' in code or f"'{w}" in code or f"/{w}" in code for w in words):
            return False
        if segs[0] == T.prefix and "#" not in segs and T.parse("/".join(segs)) is None:
            return False  # a literal where the contract wants a site name, say
    return True


def test_every_topic_in_the_docs_is_in_the_contract() -> None:
    code = code_text()
    wrong = [f"{page}:{n}: {token}" for page, n, token in doc_topics()
             if token not in ALLOWED_TOPICS and not _topic_fits(token, code)]
    assert not wrong, "\n".join(wrong)


def test_the_topic_check_can_fail() -> None:
    def fits(pattern: str) -> bool:
        return any(_fits(_segments(pattern)[0], t) for t in TEMPLATES)

    assert fits("p1/<site>/output/<id>/set") and fits("p1/S/output/O/state")
    assert fits("p1/config/<site>/outputs") and fits("p1/+/...") and fits("homeassistant/#")
    assert fits("homeassistant/sensor/p1_<site>/<key>/config")
    assert not fits("p1/<site>/output/<id>/sett") and not fits("p1/<site>/peak/day")
    assert not fits("p1/<site>/output/set") and not fits("p2/#")
    assert _topic_fits("p1/home/reading", code_text())
    assert not _topic_fits("p1/Home/reading", code_text())  # not a site name
    assert not _topic_fits("p1/config/<site>/nonsense", code_text())  # no such scope
    assert _expand("homeassistant/{sensor,binary_sensor}/x") == [
        "homeassistant/sensor/x", "homeassistant/binary_sensor/x"]
    assert len(doc_topics()) > 30


@pytest.mark.parametrize("name", ["P1_NOT_A_SETTING", "LOADCTL_NOPE"])
def test_the_variable_check_can_fail(name: str) -> None:
    assert not _used_as_setting(name, code_text())
