"""Statistics of a build: DuckDB views over the ledger and dataset, the queries behind `tracekit stats` and the card."""
