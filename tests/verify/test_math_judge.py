"""The optional LLM judge: real HTTP requests to a local OpenAI-compatible server started by the test."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tracekit.verify.math import MathJudgeConfig, MathVerifier, MathVerifyConfig


class _Handler(BaseHTTPRequestHandler):
    seen: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        content = "EQUIVALENT" if "answer: seven" in body["messages"][0]["content"] else "DIFFERENT"
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    srv = HTTPServer(("127.0.0.1", 0), _Handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_port}/v1"
    srv.shutdown()
    srv.server_close()


def test_judge_decides_what_rules_cannot(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUDGE_KEY", "sk-test")
    cfg = MathVerifyConfig(
        judge=MathJudgeConfig(enabled=True, base_url=server, model="m", api_key_env="JUDGE_KEY")
    )
    v = MathVerifier(cfg)
    try:
        res = v.verify(answer_text="The answer: seven", gold="7")
        assert (res.verdict, res.method) == ("correct", "judge")
        res = v.verify(answer_text="The answer: eight", gold="7")
        assert (res.verdict, res.method) == ("incorrect", "judge")
        # decided by rules: no request
        before = len(_Handler.seen)
        assert v.verify(answer_text="\\boxed{7}", gold="7").method == "math_rule"
        assert len(_Handler.seen) == before
    finally:
        v.close()
    req = _Handler.seen[-1]
    assert req["path"] == "/v1/chat/completions" and req["body"]["model"] == "m"
    assert req["auth"] == "Bearer sk-test"


def test_judge_is_off_by_default_and_accepts_a_callable() -> None:
    v = MathVerifier(MathVerifyConfig())
    try:
        assert v.verify(answer_text="The answer: seven", gold="7").method == "math_rule"
    finally:
        v.close()
    v = MathVerifier(MathVerifyConfig(), judge=lambda *, gold, answer: answer == "seven")
    try:
        assert v.verify(answer_text="The answer: seven", gold="7").method == "judge"
    finally:
        v.close()
