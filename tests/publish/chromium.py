"""Open a page in headless Chromium over the DevTools protocol: screenshot + console errors."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
    "--window-size=1200,1600",
]


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def open_page(url: str, *, screenshot: Path, settle_s: float = 0.5, timeout_s: float = 60) -> list[str]:
    """Load `url`, save a PNG screenshot, return the errors seen (console.error, uncaught
    exceptions, failed loads)."""
    from websockets.sync.client import connect

    binary = chromium_binary()
    assert binary, "chromium is not installed (scripts/setup.sh installs it)"
    profile = Path(tempfile.mkdtemp(prefix="tk-chromium-"))
    proc = subprocess.Popen(
        [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout_s
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            assert proc.poll() is None and time.monotonic() < deadline, "chromium did not start"
            time.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        pages = json.loads(opener.open(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
        ws_url = next(p["webSocketDebuggerUrl"] for p in pages if p["type"] == "page")
        errors: list[str] = []
        with connect(ws_url, max_size=None, open_timeout=10) as ws:
            next_id = 0

            def send(method: str, params: dict[str, Any] | None = None) -> int:
                nonlocal next_id
                next_id += 1
                ws.send(json.dumps({"id": next_id, "method": method, "params": params or {}}))
                return next_id

            def collect(msg: dict[str, Any]) -> None:
                m, p = msg.get("method"), msg.get("params", {})
                if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                    errors.append(
                        "console: " + " ".join(str(a.get("value", a.get("description"))) for a in p["args"])
                    )
                elif m == "Runtime.exceptionThrown":
                    d = p["exceptionDetails"]
                    errors.append(
                        "exception: " + str(d.get("exception", {}).get("description", d.get("text")))
                    )
                elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
                    errors.append(f"log: {p['entry']['text']} {p['entry'].get('url', '')}")

            def wait_for(pred: Any, until: float) -> dict[str, Any] | None:
                while time.monotonic() < until:
                    try:
                        msg = json.loads(ws.recv(timeout=max(0.01, until - time.monotonic())))
                    except TimeoutError:
                        return None
                    collect(msg)
                    if pred(msg):
                        return msg
                return None

            for method in ("Runtime.enable", "Log.enable", "Page.enable"):
                i = send(method)
                wait_for(lambda m, i=i: m.get("id") == i, time.monotonic() + 10)
            send("Page.navigate", {"url": url})
            assert wait_for(lambda m: m.get("method") == "Page.loadEventFired", time.monotonic() + timeout_s)
            wait_for(lambda m: False, time.monotonic() + settle_s)  # late errors
            i = send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
            shot = wait_for(lambda m: m.get("id") == i, time.monotonic() + 30)
            assert shot and "result" in shot, f"no screenshot: {shot}"
            screenshot.write_bytes(base64.b64decode(shot["result"]["data"]))
        return errors
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
