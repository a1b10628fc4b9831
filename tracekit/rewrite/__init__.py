"""Rewrite: send each trace through a model with a template (e.g. reformat a teacher's thinking into
thought/solution sections, as Sky-T1 did with GPT-4o-mini), keeping the original text in the ledger."""
