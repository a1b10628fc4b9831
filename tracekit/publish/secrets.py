"""Keeping secrets out of what a build publishes (card, report, pushed recipe)."""

from __future__ import annotations

import os
import re
from typing import Any

_SECRET_NAME = re.compile(r"(TOKEN|KEY|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
# keys whose *value* is a secret (`api_key_env` names a variable, so it is fine to show)
_SECRET_KEY = re.compile(r"^(api_key|token|hf_token|secret|password|authorization)$", re.IGNORECASE)
REDACTED = "<redacted>"


def secret_values() -> list[str]:
    """Values of environment variables whose names look like secrets (longest first)."""
    vals = {v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= 6}
    return sorted(vals, key=len, reverse=True)


def redact_text(text: str) -> str:
    """`text` with every secret-looking environment value replaced by `<redacted>`.

    Example:
        >>> os.environ["MY_API_KEY"] = "sk-123456"
        >>> redact_text("key is sk-123456")
        'key is <redacted>'
    """
    for v in secret_values():
        text = text.replace(v, REDACTED)
    return text


def redact_config(obj: Any) -> Any:
    """A copy of a JSON-like config with secret-valued keys and secret env values redacted."""
    if isinstance(obj, dict):
        return {
            k: (REDACTED if _SECRET_KEY.match(str(k)) and v else redact_config(v)) for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [redact_config(v) for v in obj]
    if isinstance(obj, str):
        return redact_text(obj)
    return obj
