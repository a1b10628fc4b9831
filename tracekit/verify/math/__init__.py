"""Math verification: answer extraction, normalisation, sympy equivalence with a killable worker."""

from tracekit.verify.math.config import MathJudgeConfig, MathVerifyConfig
from tracekit.verify.math.verifier import MathVerifier

__all__ = ["MathJudgeConfig", "MathVerifier", "MathVerifyConfig"]
