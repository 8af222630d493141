"""A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (test support).

Headless chromium no longer prints page console messages to its log, so the slow HTML test
asks the browser itself: console errors, uncaught exceptions and failed resource loads
(``Log.entryAdded``), then evaluates a script in the loaded page.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

CHROMIUM_HINT = "headless chromium is needed for this test: apt-get install -y chromium"


def find_chromium() -> str:
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise AssertionError(CHROMIUM_HINT)


class Browser:
    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self._next = 0
        self._buf = b""
        self.events: list[dict[str, Any]] = []
        cmd_r, self._cmd_w = os.pipe()
        self._res_r, res_w = os.pipe()

        def child_fds() -> None:  # chromium reads commands on fd 3 and answers on fd 4
            a, b = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10), fcntl.fcntl(res_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)  # dup2 makes the copies inheritable (os.pipe fds are close-on-exec)
            os.dup2(b, 4)

        self._profile = tempfile.mkdtemp(prefix="capbench-chromium-")
        self.proc = subprocess.Popen(
            [
                find_chromium(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-pipe",
                f"--user-data-dir={self._profile}",
                "--no-first-run",
                "about:blank",
            ],
            preexec_fn=child_fds,
            close_fds=False,
            stdout=subprocess.DEVNULL,
            stderr=None if os.environ.get("CAPBENCH_CDP_DEBUG") else subprocess.DEVNULL,
        )
        os.close(cmd_r)
        os.close(res_w)

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from chromium")
            ready, _, _ = select.select([self._res_r], [], [], left)
            if ready:
                chunk = os.read(self._res_r, 1 << 16)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(
        self, method: str, params: dict | None = None, session: str | None = None
    ) -> dict[str, Any]:
        self._next += 1
        msg: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") == self._next:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)

    def wait_event(self, method: str) -> dict[str, Any]:
        for ev in self.events:
            if ev.get("method") == method:
                return ev
        deadline = time.monotonic() + self.timeout
        while True:
            ev = self._read_message(deadline)
            self.events.append(ev)
            if ev.get("method") == method:
                return ev

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.send("Browser.close")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._cmd_w)
        os.close(self._res_r)
        shutil.rmtree(self._profile, ignore_errors=True)


def load_page(
    path: Path, script: str, settle_s: float = 0.5, screenshot: Path | None = None
) -> tuple[list[str], Any]:
    """Open ``path``; return (console / exception / resource errors, value of ``script``);
    with ``screenshot``, the whole page is also saved there as a PNG."""
    browser = Browser()
    try:
        target = next(
            t for t in browser.send("Target.getTargets")["targetInfos"] if t["type"] == "page"
        )
        session = browser.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Page.navigate", {"url": path.resolve().as_uri()}, session=session)
        browser.wait_event("Page.loadEventFired")
        time.sleep(settle_s)  # late console messages
        value = browser.send(
            "Runtime.evaluate", {"expression": script, "returnByValue": True}, session=session
        )["result"].get("value")
        if screenshot is not None:
            import base64

            shot = browser.send(
                "Page.captureScreenshot",
                {"format": "png", "captureBeyondViewport": True},
                session=session,
            )
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        errors = []
        for ev in browser.events:
            method, params = ev.get("method"), ev.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in {"error", "assert"}:
                errors.append(
                    "console: "
                    + " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
                )
            elif method == "Runtime.exceptionThrown":
                errors.append(
                    "exception: "
                    + params["exceptionDetails"].get("text", "")
                    + " "
                    + str(params["exceptionDetails"].get("exception", {}).get("description", ""))
                )
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                errors.append(
                    f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}"
                )
        return errors, value
    finally:
        browser.close()
