"""Load a recipe from YAML and report every problem with its key path and line number."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tracekit.recipe.models import Recipe

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a recipe."""

    path: KeyPath
    message: str
    line: int | None

    def format(self, file: str) -> str:
        where = f"{file}:{self.line}" if self.line else file
        return f"{where}: {format_path(self.path) or '(top level)'}: {self.message}"


class RecipeError(Exception):
    """A recipe could not be loaded; `problems` lists each issue with its line."""

    def __init__(self, file: str, problems: list[Problem]) -> None:
        self.file = file
        self.problems = problems
        super().__init__("\n".join(p.format(file) for p in problems))


def format_path(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that remembers the line of every key and list item."""


def _compose_lines(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else str(k)
            lines[(*path, key)] = k.start_mark.line + 1
            _compose_lines(v, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            _compose_lines(item, (*path, i), lines)


def line_of(lines: dict[KeyPath, int], path: KeyPath) -> int | None:
    """Line of the deepest prefix of `path` that exists in the file."""
    for n in range(len(path), -1, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return None


def read_yaml(path: Path) -> tuple[Any, dict[KeyPath, int]]:
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=_LineLoader)
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise RecipeError(str(path), [Problem((), f"invalid YAML: {e}", line)]) from None
    lines: dict[KeyPath, int] = {}
    if node is not None:
        _compose_lines(node, (), lines)
    return data, lines


def _clean_loc(loc: tuple[Any, ...], data: Any) -> KeyPath:
    """Drop pydantic's union-tag and validator entries from an error location."""
    out: list[str | int] = []
    cur = data
    for i, part in enumerate(loc):
        nxt = loc[i + 1] if i + 1 < len(loc) else None
        if isinstance(cur, dict) and part in cur or isinstance(cur, list) and isinstance(part, int) and part < len(cur):
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, dict) and (nxt is not None or cur.get("kind") == part) and part == cur.get("kind", part):
            continue  # the tag of a discriminated union (e.g. the teacher kind), not a key
        elif isinstance(cur, list) and isinstance(part, str):
            continue  # a list has no named keys: the tag of a union's list variant (e.g. several students)
        elif isinstance(part, str) and not part.startswith(("function-", "tagged")):
            out.append(part)  # a missing or unknown key: keep it so the message names it
            cur = None
    return tuple(out)


def _problems_from_validation(e: ValidationError, data: Any, lines: dict[KeyPath, int]) -> list[Problem]:
    problems = []
    for err in e.errors():
        path = _clean_loc(tuple(err["loc"]), data)
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        problems.append(Problem(path, msg, line_of(lines, path)))
    return problems


@dataclass
class LoadedRecipe:
    """A validated recipe plus where it came from (for relative paths and line numbers)."""

    recipe: Recipe
    file: Path
    lines: dict[KeyPath, int]
    raw: dict[str, Any]

    @property
    def base_dir(self) -> Path:
        return self.file.parent

    def resolve_path(self, p: str) -> Path:
        q = Path(os.path.expandvars(os.path.expanduser(p)))
        return q if q.is_absolute() else (self.base_dir / q)

    def line(self, path: KeyPath) -> int | None:
        return line_of(self.lines, path)


def load_recipe(file: str | Path) -> LoadedRecipe:
    """Parse and validate a recipe file. Raises RecipeError listing every problem."""
    path = Path(file)
    if not path.is_file():
        raise RecipeError(str(path), [Problem((), "recipe file not found", None)])
    data, lines = read_yaml(path)
    if not isinstance(data, dict):
        raise RecipeError(str(path), [Problem((), "a recipe is a YAML mapping (key: value)", 1)])
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as e:
        raise RecipeError(str(path), _problems_from_validation(e, data, lines)) from None
    return LoadedRecipe(recipe=recipe, file=path.resolve(), lines=lines, raw=data)
