"""Generate schemas/recipe.schema.json and schemas/distill.schema.json (from the pydantic models) and
schemas/trace.schema.json.

Usage: python -m tracekit.recipe.schemas [DIR]   (default: the repo's schemas/ folder)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tracekit.distill.config import DistillConfig
from tracekit.recipe.models import Recipe
from tracekit.record import trace_json_schema


def recipe_schema() -> dict[str, Any]:
    schema = Recipe.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "tracekit recipe"
    return schema


def distill_schema() -> dict[str, Any]:
    """The `tracekit distill` config file (editors validate pipelines/distill-*.yaml with it)."""
    schema = DistillConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "tracekit distill config"
    return schema


def render() -> dict[str, str]:
    return {
        "recipe.schema.json": json.dumps(recipe_schema(), indent=2, sort_keys=True) + "\n",
        "distill.schema.json": json.dumps(distill_schema(), indent=2, sort_keys=True, default=str) + "\n",
        "trace.schema.json": json.dumps(trace_json_schema(), indent=2, sort_keys=True) + "\n",
    }


def main(argv: list[str]) -> None:
    out = Path(argv[0]) if argv else Path(__file__).resolve().parents[2] / "schemas"
    out.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (out / name).write_text(text)
        print(f"wrote {out / name}")


if __name__ == "__main__":
    main(sys.argv[1:])
