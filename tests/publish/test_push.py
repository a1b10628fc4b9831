"""`tracekit push` against a local server that answers the Hub API requests huggingface_hub sends."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, run_cli
from tests.publish.fake_hub import FakeHub
from tracekit.engine.finish import build_files
from tracekit.engine.layout import BuildLayout

pytestmark = pytest.mark.slow
TOKEN = "hf_testtoken_abcdef"


def hub_env(hub: FakeHub, tmp: Path) -> dict[str, str]:
    return {
        "HF_ENDPOINT": hub.url,
        "HF_TOKEN": TOKEN,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HOME": str(tmp / "hf-home"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "NO_PROXY": "127.0.0.1",
        "no_proxy": "127.0.0.1",
    }


def local_files(out: Path) -> dict[str, bytes]:
    return {f.path_in_repo: f.data() for f in build_files(BuildLayout(out))}


def push_in_chunks(out: Path, env: dict[str, str], **kw: object) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys; from pathlib import Path; from tracekit.publish.hub import push_dataset\n"
        "from tracekit.engine.finish import build_files; from tracekit.engine.layout import BuildLayout\n"
        f"files = build_files(BuildLayout(Path({str(out)!r})))\n"
        f"sent = push_dataset(files, 'me/toy', max_files_per_commit=3, **{kw!r})\n"
        "print('\\n'.join(sent))"
    )
    import os

    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_dry_run_lists_files_and_sends_nothing(built: Path, tmp_path: Path) -> None:
    with FakeHub(token=TOKEN) as hub:
        proc = run_cli("push", str(built), "me/toy", "--dry-run", env=hub_env(hub, tmp_path))
        assert proc.returncode == 0, proc.stderr
        assert hub.state.requests == []
    for path in ("README.md", "recipe.resolved.yaml", "plots/funnel.png", "report.html"):
        assert f"  {path}\n" in proc.stdout
    assert sum(1 for line in proc.stdout.splitlines() if "  data/" in line) == len(
        list(BuildLayout(built).dataset_data.glob("*.parquet"))
    )


def test_push_uploads_every_file_and_a_second_push_sends_nothing(built: Path, tmp_path: Path) -> None:
    with FakeHub(token=TOKEN) as hub:
        env = hub_env(hub, tmp_path)
        proc = run_cli("push", str(built), "me/toy", "--private", env=env)
        assert proc.returncode == 0, proc.stderr
        st = hub.state
        assert st.unexpected == []
        repo = st.repos["me/toy"]
        assert repo.private
        assert repo.branches["main"] == local_files(built)  # byte for byte
        assert {p for p in repo.lfs_paths} == {
            p for p in repo.branches["main"] if p.endswith((".parquet", ".png"))
        }
        card = repo.branches["main"]["README.md"].decode()
        assert (
            yaml.safe_load(card.split("---\n", 2)[1])["configs"][0]["data_files"][0]["path"]
            == "data/train-*.parquet"
        )
        commits = len(st.commits)
        proc = run_cli("push", str(built), "me/toy", env=env)
        assert proc.returncode == 0, proc.stderr
        assert "pushed 0 file(s)" in proc.stdout
        assert len(st.commits) == commits


def test_push_without_a_token_is_refused(built: Path, tmp_path: Path) -> None:
    with FakeHub(token=TOKEN) as hub:
        env = {**hub_env(hub, tmp_path), "HF_TOKEN": "hf_wrong"}
        proc = run_cli("push", str(built), "me/toy", env=env)
        assert proc.returncode == 1
        assert "hf_wrong" not in proc.stderr + proc.stdout
        assert "me/toy" not in hub.state.repos


def test_failed_push_resumes_without_resending(built: Path, tmp_path: Path) -> None:
    with FakeHub(token=TOKEN) as hub:
        st = hub.state
        env = hub_env(hub, tmp_path)
        st.fail["commit"] = {2}  # the second commit answers 500: the server broke mid-way
        first = push_in_chunks(built, env)
        assert first.returncode != 0 and "500" in first.stderr
        committed = set(st.commits[0]["paths"])
        assert len(st.commits) == 1 and len(committed) == 3
        puts_before = list(st.lfs_puts)
        second = push_in_chunks(built, env)
        assert second.returncode == 0, second.stderr
        resent = set(second.stdout.split())
        assert not resent & committed  # files of the commit that went through are skipped
        assert resent == set(local_files(built)) - committed
        # LFS objects that reached the server before the failed commit are not uploaded again
        assert not set(st.lfs_puts[len(puts_before) :]) & set(puts_before)
        assert st.repos["me/toy"].branches["main"] == local_files(built)
        assert st.unexpected == []


def test_push_to_a_revision_creates_the_branch(built: Path, tmp_path: Path) -> None:
    with FakeHub(token=TOKEN) as hub:
        proc = run_cli("push", str(built), "me/toy", "--revision", "v1", env=hub_env(hub, tmp_path))
        assert proc.returncode == 0, proc.stderr
        repo = hub.state.repos["me/toy"]
        assert repo.branches["main"] == {}
        assert repo.branches["v1"] == local_files(built)
        assert {c["revision"] for c in hub.state.commits} == {"v1"}
        sha = hashlib.sha256(local_files(built)["README.md"]).hexdigest()
        assert sha not in hub.state.lfs  # the card is a regular file, not LFS


def test_publish_in_the_recipe_pushes_at_the_end_of_the_build(tmp_path: Path) -> None:
    from tests.conftest import write_recipe
    from tests.publish.conftest import SOURCES, write_toy_sources

    write_toy_sources(tmp_path, math_rows=5, general_rows=3)
    recipe = write_recipe(
        tmp_path, sources=SOURCES, name="pub", publish={"repo_id": "me/pub", "private": True}
    )
    with FakeHub(token=TOKEN) as hub:
        proc = run_cli("build", str(recipe), cwd=tmp_path, env=hub_env(hub, tmp_path))
        assert proc.returncode == 0, proc.stderr[-3000:]
        repo = hub.state.repos["me/pub"]
        assert repo.private
        assert repo.branches["main"] == local_files(tmp_path / "out")
        assert "README.md" in repo.branches["main"] and "recipe.resolved.yaml" in repo.branches["main"]
        assert TOKEN not in repo.branches["main"]["recipe.resolved.yaml"].decode()
