"""DuckDB over a build's parquet shards: views `traces` (the ledger) and `dataset`."""

from __future__ import annotations

from pathlib import Path

import duckdb


def _glob(folder: Path, pattern: str) -> list[str]:
    return sorted(str(p) for p in folder.glob(pattern))


def connect(out: str | Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with views `traces` and `dataset` over the build in `out`.

    Example:
        >>> con = connect("out/quickstart")  # doctest: +SKIP
        >>> con.sql("SELECT verdict, count(*) FROM traces GROUP BY 1").show()  # doctest: +SKIP
    """
    out = Path(out)
    if not (out / "ledger").exists():
        raise FileNotFoundError(f"{out} has no ledger/ folder: is it the output folder of a finished build?")
    con = duckdb.connect()
    ledger = _glob(out / "ledger", "*.parquet")
    if not ledger:
        raise FileNotFoundError(f"{out / 'ledger'} holds no parquet shards")
    src = f"read_parquet({ledger!r}, union_by_name=true)"
    con.execute(f"CREATE VIEW traces AS SELECT * FROM {src}")
    if "completion_chars" not in con.sql("SELECT * FROM traces LIMIT 0").columns:
        # a ledger written before that column: measure the text (reads every completion)
        con.execute(
            f"CREATE OR REPLACE VIEW traces AS SELECT *, length(completion) AS completion_chars FROM {src}"
        )
    data = _glob(out / "dataset" / "data", "*.parquet")
    if data:
        con.execute(
            "CREATE VIEW dataset AS SELECT * EXCLUDE (filename), "
            "regexp_extract(filename, '([a-z]+)-[^/]*\\.parquet$', 1) AS split "
            f"FROM read_parquet({data!r}, filename=true, union_by_name=true)"
        )
    else:
        con.execute(
            "CREATE VIEW dataset AS SELECT NULL::VARCHAR AS trace_id, NULL::VARCHAR AS source, "
            "NULL::VARCHAR AS domain, NULL::VARCHAR AS split WHERE false"
        )
    return con
