"""`tracekit push`: upload a build's dataset (shards, card, plots, resolved recipe) to the Hub."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tracekit.publish.secrets import redact_config, redact_text

MAX_FILES_PER_COMMIT = 50
MAX_BYTES_PER_COMMIT = 2 * 1024**3


@dataclass(frozen=True)
class UploadFile:
    """One file to push: where it is here (or its bytes) and where it goes in the repo."""

    path_in_repo: str
    local: Path | None = None
    content: bytes | None = None

    @property
    def size(self) -> int:
        return (
            len(self.content)
            if self.content is not None
            else (self.local.stat().st_size if self.local else 0)
        )

    def data(self) -> bytes:
        if self.content is not None:
            return self.content
        assert self.local is not None
        return self.local.read_bytes()

    def sha256(self) -> str:
        h = hashlib.sha256()
        if self.content is not None:
            h.update(self.content)
        else:
            assert self.local is not None
            with self.local.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        return h.hexdigest()

    def git_sha1(self) -> str:
        data = self.data()
        return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()

    def operation_source(self) -> str | bytes:
        return self.content if self.content is not None else str(self.local)


def files_to_push(out: Path) -> list[UploadFile]:
    """Data shards first, then plots, report and recipe, and the card last (so the card describes data
    that is already there)."""
    out = Path(out)
    ds = out / "dataset"
    if not (ds / "data").is_dir() or not any((ds / "data").glob("*.parquet")):
        raise FileNotFoundError(f"{ds / 'data'} holds no parquet shards: is {out} a finished build?")
    files = [UploadFile(f"data/{p.name}", p) for p in sorted((ds / "data").glob("*.parquet"))]
    files += [UploadFile(f"plots/{p.name}", p) for p in sorted((ds / "plots").glob("*.png"))]
    if (out / "report.html").exists():
        files.append(
            UploadFile("report.html", content=redact_text((out / "report.html").read_text()).encode())
        )
    recipe = out / "recipe.resolved.yaml"
    if recipe.exists():  # re-dumped through the redactor: no secret leaves the machine
        data = redact_config(yaml.safe_load(recipe.read_text()))
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        files.append(UploadFile("recipe.resolved.yaml", content=text.encode()))
    if (ds / "README.md").exists():
        files.append(UploadFile("README.md", content=redact_text((ds / "README.md").read_text()).encode()))
    return files


def _remote_files(api: Any, repo_id: str, revision: str | None) -> dict[str, Any]:
    from huggingface_hub import RepoFile
    from huggingface_hub.errors import EntryNotFoundError, RevisionNotFoundError

    try:
        entries = api.list_repo_tree(repo_id, repo_type="dataset", revision=revision, recursive=True)
        return {e.path: e for e in entries if isinstance(e, RepoFile)}
    except (EntryNotFoundError, RevisionNotFoundError):
        return {}


def _already_there(f: UploadFile, remote: Any) -> bool:
    if remote is None or remote.size != f.size:
        return False
    if remote.lfs is not None:
        return bool(remote.lfs.sha256 == f.sha256())
    return bool(remote.blob_id == f.git_sha1())


def _chunks(files: list[UploadFile], max_files: int, max_bytes: int) -> Iterator[list[UploadFile]]:
    chunk: list[UploadFile] = []
    size = 0
    for f in files:
        if chunk and (len(chunk) >= max_files or size + f.size > max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append(f)
        size += f.size
    if chunk:
        yield chunk


def push_dataset(
    out: Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    dry_run: bool = False,
    token: str | None = None,
    max_files_per_commit: int = MAX_FILES_PER_COMMIT,
    max_bytes_per_commit: int = MAX_BYTES_PER_COMMIT,
) -> list[str]:
    """Push the build in `out` to the Hub dataset `repo_id`; returns the repo paths uploaded.

    Resumable: files are sent in several commits (at most `max_files_per_commit` files or
    `max_bytes_per_commit` bytes each), and files already on the Hub with the same content are
    skipped, so running it again after a failure uploads only what is missing. Large files go by
    LFS/Xet, whose objects the Hub keeps even when the commit that referenced them failed.
    The token: `token`, else `HF_TOKEN`, else the saved `hf auth login`. With `dry_run`, nothing is
    sent: the list is what would be uploaded.

    Example:
        >>> push_dataset(Path("out/r1-800k"), "my-org/r1-800k", dry_run=True)  # doctest: +SKIP
        ['data/train-00000_0000.parquet', ..., 'README.md']
    """
    files = files_to_push(out)
    if dry_run:
        return [f.path_in_repo for f in files]
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    if revision:
        api.create_branch(repo_id, repo_type="dataset", branch=revision, exist_ok=True)
    remote = _remote_files(api, repo_id, revision)
    todo = [f for f in files if not _already_there(f, remote.get(f.path_in_repo))]
    chunks = list(_chunks(todo, max_files_per_commit, max_bytes_per_commit))
    for i, chunk in enumerate(chunks, 1):
        ops = [
            CommitOperationAdd(path_in_repo=f.path_in_repo, path_or_fileobj=f.operation_source())
            for f in chunk
        ]
        api.create_commit(
            repo_id,
            ops,
            repo_type="dataset",
            revision=revision,
            commit_message=f"tracekit push ({i}/{len(chunks)}): {len(chunk)} file(s)",
        )
    return [f.path_in_repo for f in todo]


def describe(files: list[UploadFile]) -> str:
    """Lines `size  path` for a dry run."""
    buf = io.StringIO()
    for f in files:
        buf.write(f"{f.size:>14,}  {f.path_in_repo}\n")
    buf.write(f"{sum(f.size for f in files):>14,}  total ({len(files)} files)\n")
    return buf.getvalue()
