"""Code verification: run model-written programs against their tests in a sandbox.

Example:
    >>> from tracekit.verify.code import CodeItem, CodeVerifier, CodeVerifyConfig
    >>> v = CodeVerifier(CodeVerifyConfig())  # doctest: +SKIP
    >>> v.verify(CodeItem(code="print(input()[::-1])",
    ...                   tests=[{"input": "ab\\n", "output": "ba\\n"}])).verdict  # doctest: +SKIP
    'pass'
"""

from tracekit.verify.code.config import CodeVerifyConfig
from tracekit.verify.code.extract import extract_code
from tracekit.verify.code.item import CodeItem
from tracekit.verify.code.readers import TestFormatError, read_tests
from tracekit.verify.code.verdict import CodeVerdict
from tracekit.verify.code.verifier import CodeVerifier

__all__ = [
    "CodeItem",
    "CodeVerdict",
    "CodeVerifier",
    "CodeVerifyConfig",
    "TestFormatError",
    "extract_code",
    "read_tests",
]
