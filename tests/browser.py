"""A tiny headless-Chromium driver over the DevTools protocol (websocket-client), for report tests.

Why not Playwright: it wants to download its own browser build; Debian's
``chromium`` plus one small pip (websocket-client) is all this needs: open a
file, read the rendered text, list the requests made, print to PDF, take a PNG.

Also a script: ``python tests/browser.py REPORT.html OUT.png [#anchor]`` saves a
screenshot (used for docs/report-screenshot.png).
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Optional

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--hide-scrollbars",
         "--remote-debugging-port=0", "--window-size=1100,1400"]


class Browser:
    def __init__(self, timeout: float = 30) -> None:
        import websocket  # websocket-client, pinned in requirements-test.txt

        if not CHROMIUM:
            raise RuntimeError("chromium not installed")
        self.profile = tempfile.mkdtemp(prefix="ea-chromium-")
        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + timeout
        while not (os.path.exists(port_file) and open(port_file).read().count("\n") >= 1):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.05)
        port = open(port_file).read().split("\n")[0].strip()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout) as r:
            targets = json.load(r)
        page = next(t for t in targets if t.get("type") == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=timeout, suppress_origin=True)
        self._id = 0
        self.events: list[dict[str, Any]] = []
        self.call("Page.enable")
        self.call("Network.enable")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result") or {}
            self.events.append(msg)

    def wait_event(self, method: str, timeout: float = 30) -> dict[str, Any]:
        for ev in self.events:
            if ev.get("method") == method:
                self.events.remove(ev)
                return ev
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("method") == method:
                return msg
            self.events.append(msg)
        raise TimeoutError(method)

    def open(self, path: str, width: int = 1100, height: int = 1400) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        self.call("Page.navigate", url=Path(path).resolve().as_uri())
        self.wait_event("Page.loadEventFired")

    def eval(self, expression: str) -> Any:
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return (r.get("result") or {}).get("value")

    def requests(self) -> list[str]:
        return [ev["params"]["request"]["url"] for ev in self.events if ev.get("method") == "Network.requestWillBeSent"]

    def screenshot(self, out: str, selector: Optional[str] = None) -> None:
        params: dict[str, Any] = {"format": "png"}
        if selector:
            box = self.eval(f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
                            ".getBoundingClientRect(); return [r.x, r.y + window.scrollY, r.width, r.height]; })()")
            params.update(clip={"x": box[0], "y": box[1], "width": box[2], "height": min(box[3], 1600), "scale": 1},
                          captureBeyondViewport=True)
        data = self.call("Page.captureScreenshot", **params)["data"]
        with open(out, "wb") as f:
            f.write(base64.b64decode(data))

    def pdf(self) -> bytes:
        r = self.call("Page.printToPDF", preferCSSPageSize=True, printBackground=True)
        return base64.b64decode(r["data"])

    def close(self) -> None:
        try:
            if getattr(self, "ws", None):
                self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *a: Any) -> None:
        self.close()


if __name__ == "__main__":
    with Browser() as b:
        b.open(sys.argv[1])
        b.screenshot(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
    print(sys.argv[2])
