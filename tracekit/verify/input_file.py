"""The JSONL files of `tracekit verify math|code`: one JSON object per line, problems named by file and line.

Example:
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "rows.jsonl"
    >>> _ = p.write_text('{"gold": "1"}\\n\\n{"gold": "2"\\n')
    >>> try:
    ...     read_rows(p)
    ... except InputFileError as e:
    ...     print(str(e).replace(str(p), "FILE"))
    FILE:3: not JSON (Expecting ',' delimiter, column 13)
    >>> _ = p.write_text('{"gold": "1"}\\n\\n{"gold": "2"}\\n')
    >>> read_rows(p)
    [(1, {'gold': '1'}), (3, {'gold': '2'})]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class InputFileError(ValueError):
    """A verify input file that cannot be read; the message starts with `FILE:LINE:` (or `FILE:`)."""


def read_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) of every non-blank line; raises InputFileError on the first bad line."""
    path = Path(path)
    rows: list[tuple[int, dict[str, Any]]] = []
    try:
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line.rstrip("\r\n"))
                except json.JSONDecodeError as e:
                    raise InputFileError(f"{path}:{n}: not JSON ({e.msg}, column {e.colno})") from None
                if not isinstance(row, dict):
                    raise InputFileError(
                        f"{path}:{n}: each line must be a JSON object, got {type(row).__name__}"
                    )
                rows.append((n, row))
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such file") from None
    except UnicodeDecodeError as e:
        raise InputFileError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except IsADirectoryError:
        raise InputFileError(f"{path}: is a directory, not a JSONL file") from None
    return rows
