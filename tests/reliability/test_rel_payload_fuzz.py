"""The payload fuzzer through the real services (tests/reliability/payload_fuzz.py).

In `make test`: 3,000 messages. `make soak`: 100,000, and the counts go into
BENCHMARKS.md (block "reliability").
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from payload_fuzz import markdown, run_payload_fuzz

from support import Mosquitto

REPO = Path(__file__).resolve().parents[2]


def check(out) -> None:  # type: ignore[no-untyped-def]
    assert out.crashes == []
    assert out.tracebacks == []
    assert out.handler_errors == 0
    assert out.bad_publications == [], out.bad_publications[:5]
    assert out.bad_state_files == []
    assert out.month_same and out.state_same
    # nearly all of it refused and counted (an empty retained config is no fuzz: "removed")
    assert min(out.refused.values()) > 0


def test_payload_fuzz(private_mosquitto: Mosquitto, tmp_path: Path) -> None:
    check(run_payload_fuzz(private_mosquitto, tmp_path, 3000, seed=1))


@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_soak_payload_fuzz_100k(private_mosquitto: Mosquitto, tmp_path: Path) -> None:
    out = run_payload_fuzz(private_mosquitto, tmp_path, 100_000, seed=2,
                           progress=lambda line: print(line, flush=True))
    sys.path.insert(0, str(REPO))
    from bench.run import Report, write_block

    report = Report()
    report.section("Reliability: payload fuzz through every service (make soak)", markdown(out, 100_000))
    write_block(REPO / "BENCHMARKS.md", "reliability", report)
    check(out)
