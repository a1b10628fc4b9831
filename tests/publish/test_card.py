"""The dataset card of a real toy build: Hub front matter, tables from the ledger, no secrets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from tests.publish.conftest import SECRETS
from tracekit.engine.finish import finish_build, open_build
from tracekit.engine.layout import BuildLayout
from tracekit.publish.card import size_category, write_card

pytestmark = pytest.mark.slow


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n", 2)[1])


def test_card_front_matter_is_what_the_hub_reads(built: Path) -> None:
    card = BuildLayout(built).card.read_text()
    fm = front_matter(card)
    assert fm["license"] == "other"
    assert fm["task_categories"] == ["text-generation"]
    assert fm["size_categories"] == ["n<1K"]
    files = fm["configs"][0]["data_files"]
    assert files == [
        {"split": "train", "path": "data/train-*.parquet"},
        {"split": "test", "path": "data/test-*.parquet"},
    ]
    for entry in files:  # every pattern matches shards that exist
        assert list(BuildLayout(built).dataset.glob(entry["path"]))


def test_card_sections_come_from_the_build(built: Path) -> None:
    card = BuildLayout(built).card.read_text()
    for heading in (
        "## Load it",
        "## Teacher and sampling",
        "## Composition",
        "## Lengths",
        "## Verification",
        "## Funnel",
        "## Example rows",
        "## Recipe",
        "## Plots",
    ):
        assert heading in card
    assert "load_dataset(" in card
    assert "Toy build for the card tests." in card
    assert (
        "| general | 100 | 20 | 20 | 80 |" in card
    )  # the shortfall row: requested, available, selected, short
    assert "| mix_over_quota |" in card  # drop reasons
    assert "| math | test |" in card or "| math | train |" in card
    for plot in ("funnel", "lengths", "verdicts", "mix"):
        assert f"](plots/{plot}.png)" in card
        assert (BuildLayout(built).plots / f"{plot}.png").stat().st_size > 1000


def test_the_card_loads_with_datasets(built: Path) -> None:
    from datasets import load_dataset

    ds = load_dataset(str(BuildLayout(built).dataset))
    assert set(ds) == {"train", "test"}
    assert ds["train"].num_rows + ds["test"].num_rows == 60  # 40 math + 20 general (short)
    train_prompts, test_prompts = set(ds["train"]["prompt_id"]), set(ds["test"]["prompt_id"])
    assert len(test_prompts) == 3 and not train_prompts & test_prompts


def test_no_secret_reaches_the_card(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    layout = BuildLayout(built)
    recipe = yaml.safe_load(layout.resolved_recipe.read_text())
    recipe["teacher"] = {
        "kind": "openai",
        "model": "m",
        "api_key_env": "OPENAI_API_KEY",
        "api_key": SECRETS["OPENAI_API_KEY"],
        "base_url": f"http://x/?token={SECRETS['HF_TOKEN']}",
    }
    card = write_card(open_build(layout), path=layout.card, recipe=recipe).read_text()
    assert "api_key_env: OPENAI_API_KEY" in card  # the variable's name is fine to show
    for value in SECRETS.values():
        assert value not in card
    assert value in os.environ.values()  # the guard is against values that really are in the environment
    for f in (layout.report, layout.resolved_recipe):
        assert not any(v in f.read_text() for v in SECRETS.values())


def test_size_categories() -> None:
    assert [size_category(n) for n in (5, 999, 1000, 800_000, 2_000_000)] == [
        "n<1K",
        "n<1K",
        "1K<n<10K",
        "100K<n<1M",
        "1M<n<10M",
    ]


def test_card_and_report_of_a_build_that_kept_nothing(built: Path, tmp_path: Path) -> None:
    import shutil

    out = BuildLayout(tmp_path / "out")
    shutil.copytree(built, out.out)
    shutil.rmtree(out.dataset_data)
    out.dataset_data.mkdir()
    finish_build(out)
    card = out.card.read_text()
    assert "0 rows" in card and "_(empty dataset)_" in card
    assert out.report.exists()
