"""What a build ends with: the report and plots, the card, and the push when the recipe asks for it."""

from __future__ import annotations

from pathlib import Path

import yaml

from tracekit.publish.card import write_card
from tracekit.publish.config import PublishConfig
from tracekit.publish.report import write_report


def finish_build(out: Path, *, publish: PublishConfig | None = None) -> None:
    """Write `report.html` + `dataset/plots/*.png`, then `dataset/README.md`; push if `publish` is set.

    Example:
        >>> finish_build(Path("out/quickstart"))  # doctest: +SKIP
    """
    out = Path(out)
    if not any((out / "ledger").glob("*.parquet")):
        return  # no trace was sampled: nothing to describe or publish
    write_report(out)
    resolved = out / "recipe.resolved.yaml"
    recipe = yaml.safe_load(resolved.read_text()) if resolved.exists() else {"name": out.name}
    write_card(out, recipe)
    if publish is not None:
        from tracekit.publish.hub import push_dataset

        push_dataset(out, publish.repo_id, private=publish.private, revision=publish.revision)
