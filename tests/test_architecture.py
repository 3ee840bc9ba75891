"""The layout rules of docs/architecture.md that a test can hold: no service package
imports another service package; p1common imports none of them."""

from __future__ import annotations

import ast
from pathlib import Path

SERVICES = Path(__file__).resolve().parent.parent / "services"
PACKAGES = {"p1_reader": "p1-reader", "meter_sim": "meter-sim", "peak_forecaster": "peak-forecaster",
            "load_controller": "load-controller", "bridge_multicast": "bridge-multicast", "p1web": "web",
            "ev_gateway": "ev-gateway",
            "recorder": "recorder", "p1common": "common"}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names & PACKAGES.keys()


def test_no_service_imports_another_service() -> None:
    crossings = []
    for package, folder in PACKAGES.items():
        for path in sorted((SERVICES / folder / package).rglob("*.py")):
            for other in imported_packages(path) - {package, "p1common"}:
                crossings.append(f"{path.relative_to(SERVICES)} imports {other}")
    assert crossings == []


def test_the_rule_sees_an_import(tmp_path: Path) -> None:
    probe = tmp_path / "x.py"
    probe.write_text("import os\nfrom p1_reader.service import run\ndef f():\n    import recorder.app\n")
    assert imported_packages(probe) == {"p1_reader", "recorder"}
