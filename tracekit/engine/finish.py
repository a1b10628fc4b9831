"""What a build ends with, and what `tracekit stats` and `tracekit push` read: the build's files handed to
the stats and publish stages by path.

    >>> from tracekit.engine.layout import BuildLayout
    >>> [f.name for f in push_extras(BuildLayout(Path("out/q")))]
    ['report.html', 'recipe.resolved.yaml']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import yaml

from tracekit.engine.layout import BuildLayout
from tracekit.ledger.shards import list_shards
from tracekit.mix.stage import read_shortfall
from tracekit.publish.card import write_card
from tracekit.publish.config import PublishConfig
from tracekit.publish.hub import UploadFile, files_to_push, push_dataset
from tracekit.publish.report import write_report
from tracekit.stats.db import connect
from tracekit.verify.math.audit import audit_tables


def open_build(layout: BuildLayout) -> duckdb.DuckDBPyConnection:
    """DuckDB with the views `traces` and `dataset` over the build's ledger and dataset shards."""
    return connect(ledger=layout.ledger, dataset=layout.dataset_data)


def resolved_recipe_of(layout: BuildLayout) -> dict[str, Any]:
    f = layout.resolved_recipe
    recipe: dict[str, Any] = yaml.safe_load(f.read_text()) if f.exists() else {}
    return {"name": layout.out.name, **recipe} if not recipe.get("name") else recipe


def push_extras(layout: BuildLayout) -> list[Path]:
    """Files pushed beside the dataset folder's own: the report and the resolved recipe."""
    return [layout.report, layout.resolved_recipe]


def build_files(layout: BuildLayout) -> list[UploadFile]:
    """What `tracekit push` uploads for the build in `layout`."""
    return files_to_push(dataset=layout.dataset, card=layout.card, extra=push_extras(layout))


def finish_build(layout: BuildLayout, *, publish: PublishConfig | None = None) -> None:
    """Write `report.html` + the plots, then the dataset card; push if `publish` is set.

    Example:
        >>> finish_build(BuildLayout(Path("out/quickstart")))  # doctest: +SKIP
    """
    if not list_shards(layout.ledger):
        return  # no trace was sampled: nothing to describe or publish
    con = open_build(layout)
    shortfall = read_shortfall(layout.shortfall)
    audit = audit_tables(layout.out)  # the math verifier's audit, when the recipe asked for one
    write_report(
        con, path=layout.report, plots=layout.plots, title=layout.out.name, shortfall=shortfall, extra=audit
    )
    write_card(
        con,
        path=layout.card,
        recipe=resolved_recipe_of(layout),
        plots=layout.plots,
        shortfall=shortfall,
        audit=audit,
    )
    if publish is not None:
        push_dataset(build_files(layout), publish.repo_id, private=publish.private, revision=publish.revision)
