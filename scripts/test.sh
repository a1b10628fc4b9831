#!/usr/bin/env bash
# The test command: lint, type-check, the docstring examples, then every test (slow ones included).
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check tracekit tests bench scripts
.venv/bin/mypy tracekit
.venv/bin/pytest --doctest-modules tracekit -q
exec .venv/bin/pytest --durations=30 "$@"  # the slowest tests, to keep CI under its 45 min
