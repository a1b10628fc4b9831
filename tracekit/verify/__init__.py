"""Verifiers: decide whether a trace reaches the right answer (math, code, judge)."""
