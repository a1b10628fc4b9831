#!/usr/bin/env bash
# The test command: lint, type-check, then every test (slow ones included).
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check tracekit tests bench scripts
.venv/bin/mypy tracekit
exec .venv/bin/pytest "$@"
