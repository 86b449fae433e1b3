"""The static explorer in a real browser: headless Chromium loads the page from disk, a slider is
moved with a synthetic mouse click (DevTools protocol over --remote-debugging-pipe, stdlib only)
and the shown image must change to the frame of the new slider position, with no network access.

Needs Debian's ``chromium`` package (``apt-get install -y chromium``); skipped, with that reason,
only when no Chromium binary is found.
"""
from __future__ import annotations

import base64

import numpy as np
import pytest
from _chromium import CHROMIUM, Browser

from cryo_companion.book import explorer as ex

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium binary: install Debian's package with "
    "`apt-get install -y chromium` (or set CRYO_COMPANION_CHROMIUM)")


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
