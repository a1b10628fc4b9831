"""A local OpenAI-compatible chat server whose answers the test scripts (teachers, judges, rewriters).

    with ChatServer(lambda body: "YES") as url:   # url = http://127.0.0.1:PORT/v1
        ...
    server.requests   # every request body received, in arrival order

`reply(body)` returns the answer's content, or a dict with `content` and optionally
`reasoning_content`, `finish_reason`, `status` (an HTTP error status to answer with instead), or
`raw` (bytes sent as the response body with status 200: a malformed answer).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

Reply = Callable[[dict[str, Any]], "str | dict[str, Any]"]


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # clients send many requests at once; the default backlog (5) resets them
    daemon_threads = True


class ChatServer:
    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with owner._lock:
                    owner.requests.append(body)
                    owner.headers.append(dict(self.headers))
                out = owner.reply(body)
                ans = {"content": out} if isinstance(out, str) else dict(out)
                status = int(ans.pop("status", 200))
                if "raw" in ans:
                    data = bytes(ans["raw"])
                elif status != 200:
                    data = json.dumps({"error": {"message": "scripted failure"}}).encode()
                else:
                    content = ans.get("content", "")
                    msg = {"role": "assistant", "content": content}
                    if ans.get("reasoning_content") is not None:
                        msg["reasoning_content"] = ans["reasoning_content"]
                    tokens = len(content.split()) + len((ans.get("reasoning_content") or "").split())
                    prompt_tokens = sum(len(m["content"].split()) for m in body.get("messages", []))
                    data = json.dumps(
                        {
                            "choices": [{"message": msg, "finish_reason": ans.get("finish_reason", "stop")}],
                            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": tokens},
                        }
                    ).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/v1"

    def __enter__(self) -> str:
        self._thread.start()
        return self.url

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()


def user_text(body: dict[str, Any]) -> str:
    """The last user message of a request body."""
    return [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
