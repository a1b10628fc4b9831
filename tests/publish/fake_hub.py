"""A local HTTP server answering the Hub API requests huggingface_hub sends for create_repo,
create_branch, list_repo_tree, validate-yaml, preupload, the LFS batch API + basic PUT upload, and
commit. Point a process at it with HF_ENDPOINT (and HF_HUB_DISABLE_XET=1: Xet needs a CAS server).
Records every request; can be told to answer some requests with a 500."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlparse

REPO = r"(?P<repo>[^/]+/[^/]+)"


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    private: bool
    branches: dict[str, dict[str, bytes]] = field(default_factory=lambda: {"main": {}})
    lfs_paths: set[str] = field(default_factory=set)


@dataclass
class HubState:
    token: str
    repos: dict[str, Repo] = field(default_factory=dict)
    lfs: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    commits: list[dict[str, Any]] = field(default_factory=list)  # each: repo, revision, paths
    lfs_puts: list[str] = field(default_factory=list)
    fail: dict[str, set[int]] = field(default_factory=dict)  # route name -> call numbers (1-based) to fail
    calls: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def should_fail(self, route: str) -> bool:
        with self.lock:
            self.calls[route] = self.calls.get(route, 0) + 1
            return self.calls[route] in self.fail.get(route, set())


def is_lfs(path: str, size: int) -> bool:
    return path.endswith((".parquet", ".png")) or size > 10 * 1024 * 1024


class Handler(BaseHTTPRequestHandler):
    server: FakeHub  # type: ignore[assignment]

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    # -- helpers ---------------------------------------------------------------------------
    def _send(self, code: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") != f"Bearer {self.server.state.token}":
            self._send(401, {"error": "Invalid credentials in Authorization header"})
            return False
        return True

    def _repo(self, repo_id: str) -> Repo | None:
        repo = self.server.state.repos.get(repo_id)
        if repo is None:
            self._send(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
        return repo

    # -- routes ------------------------------------------------------------------------------
    def do_GET(self) -> None:
        st = self.server.state
        url = urlparse(self.path)
        path = unquote(url.path)
        st.requests.append(("GET", path))
        m = re.fullmatch(rf"/api/datasets/{REPO}/tree/(?P<rev>[^/]+)(?P<sub>/.*)?", path)
        if m:
            if not self._authorized() or (repo := self._repo(m["repo"])) is None:
                return
            files = repo.branches.get(m["rev"])
            if files is None:
                self._send(404, {"error": "Revision not found"}, {"X-Error-Code": "RevisionNotFound"})
                return
            entries: list[dict[str, Any]] = []
            dirs = sorted({"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)})
            entries += [{"type": "directory", "path": d, "oid": "0" * 40} for d in dirs]
            for p, data in sorted(files.items()):
                e: dict[str, Any] = {"type": "file", "path": p, "size": len(data), "oid": git_sha1(data)}
                if p in repo.lfs_paths:
                    e["lfs"] = {
                        "oid": hashlib.sha256(data).hexdigest(),
                        "size": len(data),
                        "pointerSize": 134,
                    }
                entries.append(e)
            self._send(200, entries)
            return
        st.unexpected.append(f"GET {self.path}")
        self._send(404, {"error": "not implemented in the fake hub"})

    def do_PUT(self) -> None:
        st = self.server.state
        path = urlparse(self.path).path
        st.requests.append(("PUT", path))
        m = re.fullmatch(r"/lfs-upload/(?P<oid>[0-9a-f]{64})", path)
        if m:
            data = self._body()
            if st.should_fail("lfs_put"):
                self._send(500, {"error": "injected failure"})
                return
            if hashlib.sha256(data).hexdigest() != m["oid"]:
                self._send(400, {"error": "sha256 mismatch"})
                return
            st.lfs[m["oid"]] = data
            st.lfs_puts.append(m["oid"])
            self._send(200, {})
            return
        st.unexpected.append(f"PUT {self.path}")
        self._send(404, {"error": "not implemented in the fake hub"})

    def do_POST(self) -> None:
        st = self.server.state
        url = urlparse(self.path)
        path = unquote(url.path)
        st.requests.append(("POST", path))
        body = self._body()
        base = f"http://{self.headers['Host']}"
        if path == "/api/validate-yaml":
            self._send(200, {"errors": [], "warnings": []})
            return
        if not self._authorized():
            return
        if path == "/api/repos/create":
            payload = json.loads(body)
            repo_id = f"{payload['organization']}/{payload['name']}"
            if payload.get("type") != "dataset":
                self._send(400, {"error": "fake hub only hosts datasets"})
                return
            if repo_id in st.repos:
                self._send(
                    409,
                    {"error": "You already created this dataset repo", "url": f"{base}/datasets/{repo_id}"},
                )
                return
            st.repos[repo_id] = Repo(
                private=payload.get("visibility") == "private" or bool(payload.get("private"))
            )
            self._send(200, {"url": f"{base}/datasets/{repo_id}", "name": repo_id})
            return
        m = re.fullmatch(rf"/api/datasets/{REPO}/branch/(?P<branch>.+)", path)
        if m:
            if (repo := self._repo(m["repo"])) is None:
                return
            if m["branch"] in repo.branches:
                self._send(409, {"error": "Reference already exists"})
                return
            repo.branches[m["branch"]] = dict(repo.branches["main"])
            self._send(200, {})
            return
        m = re.fullmatch(rf"/api/datasets/{REPO}/preupload/(?P<rev>.+)", path)
        if m:
            if (repo := self._repo(m["repo"])) is None:
                return
            files = repo.branches.get(m["rev"], {})
            out = []
            for f in json.loads(body)["files"]:
                lfs = is_lfs(f["path"], f["size"])
                old = files.get(f["path"])
                oid = None
                if old is not None:
                    oid = hashlib.sha256(old).hexdigest() if f["path"] in repo.lfs_paths else git_sha1(old)
                out.append(
                    {
                        "path": f["path"],
                        "uploadMode": "lfs" if lfs else "regular",
                        "shouldIgnore": False,
                        "oid": oid,
                    }
                )
            self._send(200, {"files": out, "commitOid": "0" * 40})
            return
        m = re.fullmatch(rf"/datasets/{REPO}\.git/info/lfs/objects/batch", path)
        if m:
            if self._repo(m["repo"]) is None:
                return
            objs = []
            for o in json.loads(body)["objects"]:
                entry: dict[str, Any] = {"oid": o["oid"], "size": o["size"]}
                if o["oid"] not in st.lfs:
                    entry["actions"] = {"upload": {"href": f"{base}/lfs-upload/{o['oid']}"}}
                objs.append(entry)
            self._send(200, {"transfer": "basic", "objects": objs})
            return
        m = re.fullmatch(rf"/api/datasets/{REPO}/commit/(?P<rev>.+)", path)
        if m:
            if (repo := self._repo(m["repo"])) is None:
                return
            if st.should_fail("commit"):
                self._send(500, {"error": "injected failure"})
                return
            lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
            staged: dict[str, bytes] = {}
            lfs_paths = set()
            for item in lines[1:]:
                v = item["value"]
                if item["key"] == "file":
                    staged[v["path"]] = base64.b64decode(v["content"])
                elif item["key"] == "lfsFile":
                    if v["oid"] not in st.lfs:
                        self._send(422, {"error": f"LFS object {v['oid']} was never uploaded"})
                        return
                    staged[v["path"]] = st.lfs[v["oid"]]
                    lfs_paths.add(v["path"])
                else:
                    self._send(400, {"error": f"unsupported operation {item['key']}"})
                    return
            branch = repo.branches.setdefault(m["rev"], {})
            branch.update(staged)
            repo.lfs_paths |= lfs_paths
            oid = hashlib.sha1(
                json.dumps(sorted(staged)).encode() + str(len(st.commits)).encode()
            ).hexdigest()
            st.commits.append(
                {
                    "repo": m["repo"],
                    "revision": m["rev"],
                    "paths": sorted(staged),
                    "summary": lines[0]["value"]["summary"],
                }
            )
            self._send(
                200,
                {"success": True, "commitOid": oid, "commitUrl": f"{base}/datasets/{m['repo']}/commit/{oid}"},
            )
            return
        st.unexpected.append(f"POST {self.path}")
        self._send(404, {"error": "not implemented in the fake hub"})


class FakeHub(ThreadingHTTPServer):
    """`with FakeHub(token=...) as hub:` serves on 127.0.0.1 (hub.url) in a background thread."""

    daemon_threads = True

    def __init__(self, *, token: str) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = HubState(token=token)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join()
