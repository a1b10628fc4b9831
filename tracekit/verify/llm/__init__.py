"""LLM answer check: a judge model compares a trace's final answer with the reference, for free-form
answers the rule verifiers cannot compare (science, riddles, short text answers)."""

from tracekit._lazy import lazy_exports

__getattr__ = lazy_exports(
    __name__, {"LLMVerifyConfig": "config", "judge_messages": "judge", "read_reply": "judge"}
)

__all__ = ["LLMVerifyConfig", "judge_messages", "read_reply"]
