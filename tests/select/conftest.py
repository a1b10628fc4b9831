"""The tiny vLLM model of the teacher tests serves as the student here."""

from tests.teachers.conftest import tiny_model

__all__ = ["tiny_model"]
