"""FaultProxy: an HTTP proxy in front of a real server that drops, fails, rate-limits and stalls requests."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

# action of request number k (0-based): "pass", "drop", "500", "429", "stall", "drop_after" (upstream
# answered, the answer is lost on the way back)
Plan = Callable[[int], str]


class FaultProxy:
    """`with FaultProxy(upstream, plan) as proxy:` -> `proxy.base_url`; counts what it forwarded."""

    def __init__(
        self, upstream: str, plan: Plan | None = None, *, stall_s: float = 5.0, delay_s: float = 0.0
    ) -> None:
        self.upstream = upstream.rstrip("/").removesuffix("/v1")  # request paths carry /v1
        self.plan = plan or (lambda k: "pass")
        self.stall_s = stall_s
        self.delay_s = delay_s
        self.actions: Counter[str] = Counter()
        self.answered_seeds: list[int] = []  # seeds whose answer was delivered to the client
        self.forwarded_seeds: list[int] = []  # seeds the upstream server sampled
        self._n = 0
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=120)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def do_GET(self) -> None:
                r = proxy._http.get(proxy.upstream + self.path)
                self._reply(r.status_code, r.content)

            def _reply(self, code: int, body: bytes, extra: dict[str, str] | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _drop(self) -> None:
                self.close_connection = True
                self.connection.shutdown(2)

            def do_POST(self) -> None:
                with proxy._lock:
                    proxy.inflight += 1
                try:
                    self._post()
                finally:
                    with proxy._lock:
                        proxy.inflight -= 1

            def _post(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with proxy._lock:
                    k, proxy._n = proxy._n, proxy._n + 1
                action = proxy.plan(k)
                with proxy._lock:
                    proxy.actions[action] += 1
                if action == "drop":
                    return self._drop()
                if action == "500":
                    return self._reply(500, b'{"error": "injected"}')
                if action == "429":
                    return self._reply(429, b'{"error": "slow down"}', {"Retry-After": "0"})
                if action == "stall":
                    time.sleep(proxy.stall_s)
                    return self._drop()
                seed = json.loads(body).get("seed")
                r = proxy._http.post(
                    proxy.upstream + self.path, content=body, headers={"Content-Type": "application/json"}
                )
                with proxy._lock:
                    proxy.forwarded_seeds.append(seed)
                if action == "drop_after":
                    return self._drop()
                if proxy.delay_s:
                    time.sleep(proxy.delay_s)
                self._reply(r.status_code, r.content)
                with proxy._lock:
                    proxy.answered_seeds.append(seed)

        self.inflight = 0  # requests being handled right now
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._http.close()
