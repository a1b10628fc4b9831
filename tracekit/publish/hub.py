"""`tracekit push`: upload a build's dataset (shards, card, plots, resolved recipe) to the Hub."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator, Sequence
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


def _visible_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def _redacted(local: Path, path_in_repo: str) -> UploadFile:
    """A text file as it may leave the machine: YAML re-dumped through the redactor, other text redacted."""
    if local.suffix in (".yaml", ".yml"):
        text = yaml.safe_dump(redact_config(yaml.safe_load(local.read_text())), sort_keys=False, allow_unicode=True)
    else:
        text = redact_text(local.read_text())
    return UploadFile(path_in_repo, content=text.encode())


def files_to_push(*, dataset: Path, card: Path, extra: Sequence[Path] = ()) -> list[UploadFile]:
    """What `push_dataset` uploads: the dataset folder's files under their paths inside it (parquet
    shards first), the `extra` files (report, resolved recipe) at the repository's top, redacted, and
    the card last, redacted (so the card describes data that is already there).

    Example:
        >>> files = files_to_push(dataset=Path("out/x/dataset"), card=Path("out/x/dataset/README.md"),
        ...                       extra=[Path("out/x/report.html")])  # doctest: +SKIP
        >>> [f.path_in_repo for f in files]  # doctest: +SKIP
        ['data/train-00000_0000.parquet', 'plots/funnel.png', ..., 'report.html', 'README.md']
    """
    inside = [p for p in _visible_files(dataset) if p != card]
    shards = [p for p in inside if p.suffix == ".parquet"]
    if not shards:
        raise FileNotFoundError(f"{dataset} holds no parquet shards: is it the dataset of a finished build?")
    files = [UploadFile(p.relative_to(dataset).as_posix(), p) for p in shards]
    files += [UploadFile(p.relative_to(dataset).as_posix(), p) for p in inside if p.suffix != ".parquet"]
    files += [_redacted(p, p.name) for p in extra if p.exists()]
    if card.exists():
        files.append(_redacted(card, card.relative_to(dataset).as_posix()))
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
    files: list[UploadFile],
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    dry_run: bool = False,
    token: str | None = None,
    max_files_per_commit: int = MAX_FILES_PER_COMMIT,
    max_bytes_per_commit: int = MAX_BYTES_PER_COMMIT,
) -> list[str]:
    """Push `files` (see `files_to_push`) to the Hub dataset `repo_id`; returns the repo paths uploaded.

    Resumable: files are sent in several commits (at most `max_files_per_commit` files or
    `max_bytes_per_commit` bytes each), and files already on the Hub with the same content are
    skipped, so running it again after a failure uploads only what is missing. Large files go by
    LFS/Xet, whose objects the Hub keeps even when the commit that referenced them failed.
    The token: `token`, else `HF_TOKEN`, else the saved `hf auth login`. With `dry_run`, nothing is
    sent: the list is what would be uploaded.

    Example:
        >>> push_dataset(files, "my-org/r1-800k", dry_run=True)  # doctest: +SKIP
        ['data/train-00000_0000.parquet', ..., 'README.md']
    """
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
