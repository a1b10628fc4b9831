"""Math verification: answer extraction, normalisation, sympy equivalence with a killable worker."""

from tracekit._lazy import lazy_exports

# names resolve on first use: importing a config module must not load the stage's dependencies
__getattr__ = lazy_exports(
    __name__,
    {
        "MathAuditConfig": "config",
        "MathJudgeConfig": "config",
        "MathVerifier": "verifier",
        "MathVerifyConfig": "config",
    },
)

__all__ = ["MathAuditConfig", "MathJudgeConfig", "MathVerifier", "MathVerifyConfig"]
