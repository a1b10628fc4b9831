"""Recipe model of publishing (`publish:` in a recipe): push the built dataset to the Hub."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PublishConfig(BaseModel):
    """`publish:` — push `dataset/`, the report plots and the resolved recipe at the end of a build.

    The token comes from the environment (`HF_TOKEN`) or the saved `hf auth login`, never the recipe.

    Example:
        >>> PublishConfig(repo_id="my-org/r1-800k", private=True).private
        True
    """

    model_config = ConfigDict(extra="forbid")

    repo_id: str = Field(
        ..., pattern=r"^[A-Za-z0-9_.\-]+/[A-Za-z0-9_.\-]+$", description="Hub dataset id (owner/name)"
    )
    private: bool = Field(False, description="create the repository private (ignored if it exists)")
    revision: str | None = Field(None, description="branch to push to (created if missing); default: main")
