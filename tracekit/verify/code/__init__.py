r"""Code verification: run model-written programs against their tests in a sandbox.

Example:
    >>> from tracekit.verify.code import CodeItem, CodeVerifier, CodeVerifyConfig
    >>> v = CodeVerifier(CodeVerifyConfig())  # doctest: +SKIP
    >>> v.verify(CodeItem(code="print(input()[::-1])",
    ...                   tests=[{"input": "ab\n", "output": "ba\n"}])).verdict  # doctest: +SKIP
    'pass'
"""

from tracekit._lazy import lazy_exports

# names resolve on first use: importing a config module must not load the stage's dependencies
__getattr__ = lazy_exports(
    __name__,
    {
        "CodeItem": "item",
        "CodeVerdict": "verdict",
        "CodeVerifier": "verifier",
        "CodeVerifyConfig": "config",
        "TestFormatError": "readers",
        "extract_code": "extract",
        "read_tests": "readers",
    },
)

__all__ = [
    "CodeItem",
    "CodeVerdict",
    "CodeVerifier",
    "CodeVerifyConfig",
    "TestFormatError",
    "extract_code",
    "read_tests",
]
