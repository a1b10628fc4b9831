"""ManagedVllmServer: a vLLM OpenAI server that lives exactly as long as a `with` block."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from tracekit.teachers.process_reaper import die_with_parent


class ServerStartError(RuntimeError):
    """The managed vLLM server exited or never became healthy."""


def engine_cli_args(engine: dict[str, Any]) -> list[str]:
    """vLLM argument names as they are -> `--name value` (True: `--name`, False: `--no-name`)."""
    args: list[str] = []
    for key, value in engine.items():
        flag = "--" + key.replace("_", "-")
        if value is None:
            continue
        if value is True:
            args.append(flag)
        elif value is False:
            args.append("--no-" + key.replace("_", "-"))
        elif isinstance(value, dict):
            args += [flag, json.dumps(value)]
        elif isinstance(value, (list, tuple)):
            args += [flag, *(str(v) for v in value)]
        else:
            args += [flag, str(value)]
    return args


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    # runs in the child before exec: SIGTERM it when the process that started it dies (kill -9 included)
    die_with_parent(signal.SIGTERM)
    os.setsid()  # own process group: stop() takes vLLM's engine-core children with it


class ManagedVllmServer:
    """Start `python -m vllm.entrypoints.openai.api_server`, wait for /health, stop it on exit.

    The server runs in its own process group and is stopped (SIGTERM, then SIGKILL) when the block
    ends, on errors and on Ctrl-C; if this process is killed, the kernel sends the server SIGTERM, and
    a watchdog stops it if this process is orphaned (its parent, e.g. the build, was killed).

    Example:
        with ManagedVllmServer(model="/models/tiny", engine={"max_model_len": 2048}) as base_url:
            ...  # POST f"{base_url}/chat/completions"
    """

    def __init__(
        self,
        *,
        model: str,
        engine: dict[str, Any] | None = None,
        startup_timeout_s: float = 1800.0,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.model = model
        self.engine = dict(engine or {})
        self.startup_timeout_s = startup_timeout_s
        self.env = env or {}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self._stop_watch = threading.Event()

    @property
    def served_model_name(self) -> str:
        name = self.engine.get("served_model_name")
        if isinstance(name, list):
            return str(name[0])
        return str(name) if name else self.model

    def command(self, port: int) -> list[str]:
        engine = {k: v for k, v in self.engine.items() if k not in ("host", "port", "model")}
        engine.setdefault("served_model_name", self.model)
        return [
            sys.executable,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            self.model,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *engine_cli_args(engine),
        ]

    def start(self) -> str:
        self.port = int(self.engine.get("port") or free_port())
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        else:
            log = open(os.devnull, "wb")  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(
                self.command(self.port),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={"PYTHONUNBUFFERED": "1", **os.environ, **self.env},
                preexec_fn=_die_with_parent,  # noqa: PLW1509
            )
            # the log names its server, whatever vLLM's own logging is set to print
            log.write(f"tracekit: vLLM server pid={self.proc.pid} port={self.port}\n".encode())
            log.flush()
        finally:
            log.close()
        threading.Thread(target=self._watch_parent, args=(os.getppid(),), daemon=True).start()
        base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            code = self.proc.poll()
            if code is not None:
                raise ServerStartError(
                    f"vLLM server exited with code {code} while starting{self._log_hint()}"
                )
            try:
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    return f"{base}/v1"
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise ServerStartError(
                    f"vLLM server not healthy after {self.startup_timeout_s:g}s{self._log_hint()}"
                )
            time.sleep(1.0)

    def _log_hint(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        tail = self.log_path.read_text(errors="replace").splitlines()[-15:]
        return f"; log {self.log_path}:\n" + "\n".join(tail)

    def _watch_parent(self, parent: int) -> None:
        while not self._stop_watch.wait(1.0):
            if os.getppid() != parent:  # orphaned: whoever ran this task is gone
                self.stop()
                os._exit(1)

    def stop(self, grace_s: float = 30.0) -> None:
        self._stop_watch.set()
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace_s)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # engine-core children too
        proc.wait()

    def __enter__(self) -> str:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
