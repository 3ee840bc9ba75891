#!/usr/bin/env bash
# The test command CI runs (through `make test`): lint, then every test suite, slow ones included.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/mypy services
.venv/bin/python scripts/check_function_length.py services
.venv/bin/python -m p1common.schemas --check docs/schemas
.venv/bin/pytest -q "$@"
