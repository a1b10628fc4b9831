"""DuckDB over a build's parquet shards: views `traces` (the ledger) and `dataset`."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from tracekit.ledger.shards import SPLIT_REGEX, list_shards
from tracekit.record import DATASET_SCHEMA


def connect(*, ledger: Path, dataset: Path | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with views `traces` over the ledger shards in `ledger` and `dataset` over the
    dataset files in `dataset` (`{split}-*.parquet`, plus a `split` column). The `dataset` view has every
    dataset column even when no trace was kept.

    Example:
        >>> con = connect(ledger=Path("out/quickstart/ledger"), dataset=Path("out/quickstart/dataset/data"))  # doctest: +SKIP
        >>> con.sql("SELECT verdict, count(*) FROM traces GROUP BY 1").show()  # doctest: +SKIP
    """
    ledger = Path(ledger)
    if not ledger.exists():
        raise FileNotFoundError(f"no ledger at {ledger}: is {ledger.parent} the output folder of a finished build?")
    shards = [str(p) for p in list_shards(ledger)]
    if not shards:
        raise FileNotFoundError(f"{ledger} holds no parquet shards")
    con = duckdb.connect()
    src = f"read_parquet({shards!r}, union_by_name=true)"
    con.execute(f"CREATE VIEW traces AS SELECT * FROM {src}")
    columns = con.sql("SELECT * FROM traces LIMIT 0").columns
    extra = []
    if "completion_chars" not in columns:
        # a ledger written before that column: measure the text (reads every completion)
        extra.append("length(completion) AS completion_chars")
    if "contamination_cleared" not in columns:
        # a ledger written before the decontamination methods: its hits are all n-gram hits
        hit = "STRUCT(benchmark VARCHAR, item VARCHAR, ngram VARCHAR, method VARCHAR, score FLOAT, item_text VARCHAR, judge VARCHAR)"
        extra.append(
            "list_transform(contamination, lambda c: {'benchmark': c.benchmark, 'item': c.item, 'ngram': c.ngram, "
            "'method': 'ngram', 'score': NULL, 'item_text': NULL, 'judge': NULL})::" + hit + "[] AS contamination"
        )
        extra.append(f"[]::{hit}[] AS contamination_cleared")
    if "student_pass_rates" not in columns:
        # a ledger written before several students: none recorded per student
        extra.append("NULL::STRUCT(model VARCHAR, pass_rate DOUBLE)[] AS student_pass_rates")
    if extra:
        replaced = " EXCLUDE (contamination)" if "contamination_cleared" not in columns else ""
        con.execute(f"CREATE OR REPLACE VIEW traces AS SELECT *{replaced}, {', '.join(extra)} FROM {src}")
    data = [str(p) for p in list_shards(Path(dataset))] if dataset is not None else []
    if data:
        con.execute(
            "CREATE VIEW dataset AS SELECT * EXCLUDE (filename), "
            f"regexp_extract(filename, '{SPLIT_REGEX}', 1) AS split "
            f"FROM read_parquet({data!r}, filename=true, union_by_name=true)"
        )
    else:
        empty = DATASET_SCHEMA.empty_table().append_column("split", pa.array([], pa.string()))
        con.register("empty_dataset", empty)
        con.execute("CREATE VIEW dataset AS SELECT * FROM empty_dataset")
    return con
