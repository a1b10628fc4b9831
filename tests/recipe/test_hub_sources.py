"""`tracekit validate` against a local Hub (HF_ENDPOINT): a Hub source's split, columns and `match`
columns are checked from the dataset card's metadata; a dataset the Hub does not have is named."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import run_cli

CARDS = {  # repo -> the card metadata the Hub serves
    "org/numina": {"features": [{"name": n, "dtype": "string"} for n in ("source", "problem", "solution")],
                   "splits": [{"name": "train"}]},
    "org/multi": [{"config_name": "default", "features": [{"name": "q", "dtype": "string"}], "splits": [{"name": "test"}]},
                  {"config_name": "hard", "features": [{"name": "question", "dtype": "string"}], "splits": [{"name": "train"}]}],
}


@pytest.fixture
def hub() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            repo = self.path.split("/api/datasets/", 1)[-1].split("/revision/")[0].split("?")[0]
            if repo not in CARDS:
                self.send_response(404)
                self.send_header("X-Error-Code", "RepoNotFound")
                self.end_headers()
                return
            data = json.dumps({"id": repo, "sha": "0" * 40, "cardData": {"dataset_info": CARDS[repo]}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    srv.server_close()


def validate(tmp: Path, hub: str, sources: str) -> tuple[int, str]:
    recipe = tmp / "r.yaml"
    recipe.write_text("name: t\noutput: out\nsources:\n" + sources)
    r = run_cli("validate", str(recipe), env={"HF_ENDPOINT": hub, "HF_HUB_OFFLINE": "0"})
    assert "Traceback" not in r.stderr
    return r.returncode, r.stderr


def test_columns_split_and_match_are_checked(tmp_path: Path, hub: str) -> None:
    rc, err = validate(
        tmp_path,
        hub,
        "  - name: a\n    hub: org/numina\n    split: test\n    match: {subset: [math]}\n"
        "    columns: {prompt: problem, answer: answer}\n"
        "  - name: b\n    hub: org/multi\n    config: hard\n    columns: {prompt: q}\n"
        "  - name: c\n    hub: org/missing\n",
    )
    assert rc == 2
    assert "r.yaml:6: sources[0].split: split 'test' does not exist in org/numina (it has: train)" in err
    assert "r.yaml:7: sources[0].match.subset: column 'subset' does not exist in org/numina" in err
    assert "r.yaml:8: sources[0].columns.answer: column 'answer' does not exist in org/numina (it has: source, problem, solution)" in err
    assert "r.yaml:12: sources[1].columns.prompt: column 'q' does not exist in org/multi (it has: question)" in err
    assert "r.yaml:14: sources[2].hub: source 'c': Hub dataset 'org/missing' was not found or is not readable" in err


def test_a_recipe_whose_hub_sources_match_passes_the_check(tmp_path: Path, hub: str) -> None:
    rc, err = validate(
        tmp_path, hub, "  - name: a\n    hub: org/numina\n    match: {source: [math]}\n    columns: {prompt: problem, answer: solution}\n"
    )
    assert "source problem" not in err  # nothing wrong with the source; the row preview then needs `datasets`
    assert "could not be reached" not in err and "does not exist" not in err
