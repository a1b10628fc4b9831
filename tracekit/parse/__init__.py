"""Parsing completions: the think tags, `split_reasoning`, and the parse pipeline step."""
