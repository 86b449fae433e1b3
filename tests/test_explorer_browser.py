"""The static explorer in a real browser: headless Chromium loads the page from disk, a slider is
moved with a synthetic mouse click (DevTools protocol over --remote-debugging-pipe, stdlib only)
and the shown image must change to the frame of the new slider position, with no network access.

Needs Debian's ``chromium`` package (``apt-get install -y chromium``); skipped, with that reason,
only when no Chromium binary is found.
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cryo_companion.book import explorer as ex

CHROMIUM = os.environ.get("CRYO_COMPANION_CHROMIUM") or next(
    (p for p in (shutil.which("chromium"), "/usr/bin/chromium", shutil.which("chromium-browser"),
                 shutil.which("google-chrome")) if p and Path(p).exists()), None)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium binary: install Debian's package with "
    "`apt-get install -y chromium` (or set CRYO_COMPANION_CHROMIUM)")

TIMEOUT_S = 30.0


class Browser:
    """Headless Chromium driven through the DevTools protocol on fds 3 (in) and 4 (out)."""

    def __init__(self, user_data_dir: Path) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # move the child's ends above 10 so the dup2 onto 3 and 4 cannot clobber one another
        hi_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
        hi_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
        os.close(to_chrome_r)
        os.close(from_chrome_w)

        def child_fds() -> None:
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)

        args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                f"--user-data-dir={user_data_dir}", "--remote-debugging-pipe", "about:blank"]
        # preexec_fn is the stdlib way to place pipe ends on fds 3/4 (what Chromium reads);
        # the test starts no threads, so the fork-safety caveat does not apply
        self.proc = subprocess.Popen(args, pass_fds=(3, 4), preexec_fn=child_fds,  # noqa: PLW1509
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(hi_r)
        os.close(hi_w)
        self._buf = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_chrome], [], [], left)[0]:
                raise TimeoutError("no answer from Chromium within the time limit")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"Chromium closed the DevTools pipe: {err[-2000:]}")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            msg["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def eval(self, expression: str) -> Any:
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"page script failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def wait_for(self, expression: str) -> Any:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            value = self.eval(expression)
            if value:
                return value
            time.sleep(0.05)
        raise TimeoutError(f"page never satisfied {expression!r}")

    def open(self, url: str) -> None:
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]
        self.call("Network.enable")
        self.call("Runtime.enable")
        self.call("Page.enable")
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'")

    def click(self, x: float, y: float) -> None:
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left",
                      clickCount=1)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for fd in (self._to_chrome, self._from_chrome):
            os.close(fd)
        if self.proc.stderr:
            self.proc.stderr.close()


def _render(params):
    """Stand-in simulator: a class-dependent blob plus fixed noise scaled by the SNR."""
    d = 16
    z, y, x = np.mgrid[:d, :d, :d] - d // 2
    noise = np.random.default_rng(0).standard_normal((d, d, d))
    out = []
    for c, snr, wedge in zip(params["class"], params["snr"], params["wedge_deg"]):
        v = np.exp(-(x**2 + (y - c) ** 2 + z**2) / 8.0) + 0.002 * wedge * z
        out.append(v + noise * np.sqrt(v.var() / snr))
    return np.stack(out)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    axes = ex.default_axes(["membrane", "ribosome"], snr=(0.03, 0.3, 3.0, 30.0),
                           wedge_deg=(0.0, 30.0, 50.0), defocus_um=(-6.0,), cs_mm=(2.7,))
    grid = ex.precompute_frames(_render, axes, voxel_size_A=13.68, progress=False)
    path = tmp_path_factory.mktemp("explorer") / "explorer.html"
    path.write_text(ex.static_explorer_page(grid, element_id="explorer"), encoding="utf-8")
    return path, grid


@pytest.fixture
def browser(tmp_path):
    b = Browser(tmp_path / "profile")
    yield b
    b.close()


def _shown(browser: Browser) -> tuple[int, str]:
    state = browser.eval("(function(){var i=document.querySelector('#explorer img.cc-frame');"
                         "return [parseInt(i.getAttribute('data-frame'),10), i.src];})()")
    return int(state[0]), state[1]


def _decoded(src: str) -> bytes:
    prefix = "data:image/png;base64,"
    assert src.startswith(prefix)
    return base64.b64decode(src[len(prefix):])


def test_moving_a_slider_changes_the_image(page, browser):
    path, grid = page
    browser.open(path.resolve().as_uri())
    browser.wait_for("document.querySelector('#explorer img.cc-frame')"
                     ".getAttribute('data-frame') !== '-1'")
    # the image has really been decoded and laid out by the browser
    assert browser.wait_for("document.querySelector('#explorer img.cc-frame').naturalWidth") > 0
    start_index, start_src = _shown(browser)
    # initial state: class 0, middle value of every slider (SNR index 2, wedge index 1)
    assert start_index == grid.index(**{"class": 0, "snr": 2, "wedge_deg": 1})
    assert _decoded(start_src) == grid.frames[start_index]

    # a real mouse click at the left end of the SNR slider's track moves it to its minimum
    rect = browser.eval("(function(){var r=document.querySelector("
                        "\"#explorer input[data-axis='snr']\").getBoundingClientRect();"
                        "return [r.left, r.top, r.width, r.height];})()")
    left, top, width, height = rect
    assert width > 50 and height > 0
    browser.click(left + 2, top + height / 2)
    assert browser.eval("document.querySelector(\"#explorer input[data-axis='snr']\").value") \
        == "0"
    index, src = _shown(browser)
    assert src != start_src, "the shown image did not change after moving the SNR slider"
    assert index == grid.index(**{"class": 0, "snr": 0, "wedge_deg": 1})
    assert _decoded(src) == grid.frames[index]
    readout = browser.eval("document.querySelector(\"#explorer output[data-axis='snr']\")"
                           ".textContent")
    assert readout == "0.03"

    # keyboard: the arrow key moves the focused wedge slider one step up
    browser.eval("document.querySelector(\"#explorer input[data-axis='wedge_deg']\").focus()")
    for kind in ("keyDown", "keyUp"):
        browser.call("Input.dispatchKeyEvent", type=kind, key="ArrowRight", code="ArrowRight",
                     windowsVirtualKeyCode=39)
    index2, src2 = _shown(browser)
    assert index2 == grid.index(**{"class": 0, "snr": 0, "wedge_deg": 2})
    assert src2 != src and _decoded(src2) == grid.frames[index2]

    # the class drop-down
    browser.eval("(function(){var s=document.querySelector(\"#explorer select[data-axis="
                 "'class']\"); s.value='1'; s.dispatchEvent(new Event('change'));})()")
    index3, _ = _shown(browser)
    assert index3 == grid.index(**{"class": 1, "snr": 0, "wedge_deg": 2})

    # nothing but the page itself was requested: no CDN, no network
    urls = [e["params"]["request"]["url"] for e in browser.events
            if e.get("method") == "Network.requestWillBeSent"]
    assert urls, "the DevTools network log recorded no request at all"
    assert all(u.startswith(("file:", "data:", "about:")) for u in urls), urls
