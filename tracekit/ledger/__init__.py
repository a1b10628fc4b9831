"""The ledger: writing, reading and listing its parquet shards, decision tables, the final dataset writer."""
