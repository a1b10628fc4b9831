"""A local OpenAI-compatible chat server whose answers a test scripts: real HTTP, real request bodies.

`script(body)` returns the assistant's content (str), an HTTP status to fail with (int), or raw bytes
to send as the response body (a malformed answer). Every request is recorded with what was answered.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = str | int | bytes
Script = Callable[[dict[str, Any]], Answer]


class ScriptedChatServer:
    """`with ScriptedChatServer(script) as srv:` -> `srv.base_url` (…/v1); `srv.log`: (body, answer)."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.log: list[tuple[dict[str, Any], Answer]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def _send(self, code: int, data: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                self._send(200, json.dumps({"data": [{"id": "scripted"}]}).encode())

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                answer = server.script(body)
                with server.lock:
                    server.log.append((body, answer))
                if isinstance(answer, int):
                    self._send(answer, b'{"error": "scripted failure"}')
                elif isinstance(answer, bytes):
                    self._send(200, answer)
                else:
                    tokens = len(answer.split())
                    self._send(
                        200,
                        json.dumps(
                            {
                                "choices": [
                                    {"message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}
                                ],
                                "usage": {"prompt_tokens": 10, "completion_tokens": tokens},
                            }
                        ).encode(),
                    )

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}/v1"

    def __enter__(self) -> ScriptedChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def user_messages(self) -> list[str]:
        with self.lock:
            return [b["messages"][-1]["content"] for b, _ in self.log]
