"""The site builds from the committed executed notebooks, clean, offline and readable.

* Every executed chapter in ``book/chapters/`` is clean: no progress frames, warnings, error
  outputs or machine paths, and only a few stream outputs (:func:`cryo_companion.runs.clean.
  find_problems`).
* The book builds with ``-W`` (no warning), references nothing on a CDN and serves MathJax itself.
* In headless Chromium, opened from disk: no page is longer than :data:`MAX_PAGE_PX`, every table
  is an HTML table (no raw Markdown pipe rows outside code), maths is typeset, and nothing but
  local files is requested.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from _chromium import CHROMIUM, Browser

from cryo_companion.runs.clean import find_problems
from cryo_companion.runs.pipeline import chapters

ROOT = Path(__file__).resolve().parent.parent
#: A sane bound on a page's height in CSS pixels at a 1280 px wide window.
MAX_PAGE_PX = 30_000
#: Attributes through which a page loads something.
_RESOURCE = re.compile(r"""<(?:script|link|img|iframe|source)\b[^>]*?\b(?:src|href)=["']([^"']+)""")


def test_config_and_toc_have_one_source() -> None:
    for name in ("_config.yml", "_toc.yml"):
        link = ROOT / "book" / name
        assert link.is_symlink() and link.resolve() == (ROOT / name).resolve(), (
            f"book/{name} must be a link to the top-level {name}")


def test_executed_chapters_are_committed_and_not_reexecuted() -> None:
    for ch in chapters(ROOT):
        assert ch.output.exists(), f"{ch.output} missing: run `make paper` (or the pipeline)"
        nb = json.loads(ch.output.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(c.get("outputs") is not None for c in code)
        assert "cryo_companion" in nb["metadata"], f"{ch.output} was not made by the pipeline"


@pytest.mark.parametrize("chapter", [c.name for c in chapters(ROOT)])
def test_executed_chapter_is_clean(chapter: str) -> None:
    nb = nbformat.read(ROOT / "book" / "chapters" / f"{chapter}.ipynb", as_version=4)
    problems = find_problems(nb)
    assert not problems, (f"book/chapters/{chapter}.ipynb: " + "; ".join(problems[:8])
                          + f" (clean it: python -m cryo_companion.runs.clean "
                            f"book/chapters/{chapter}.ipynb)")


def test_executed_chapter_shows_one_parameters_cell() -> None:
    for ch in chapters(ROOT):
        nb = nbformat.read(ch.output, as_version=4)
        shown = [c for c in nb.cells if c.cell_type == "code"
                 and {"parameters", "injected-parameters"} & set(c.metadata.get("tags", []))
                 and "remove-cell" not in c.metadata.get("tags", [])]
        assert len(shown) == 1, f"{ch.name}: {len(shown)} visible parameter cells"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    """The book built once with ``-W --keep-going`` from a copy of ``book/``."""
    src = tmp_path_factory.mktemp("site") / "book"
    shutil.copytree(ROOT / "book", src, symlinks=False, ignore=shutil.ignore_patterns("_build"))
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(jb), "build", str(src), "-W", "--keep-going"],
                          capture_output=True, text=True, cwd=ROOT, timeout=900, check=False)
    return proc, src / "_build" / "html"


def _pages(html: Path) -> list[Path]:
    return [p for p in sorted(html.rglob("*.html"))
            if p.name not in ("genindex.html", "search.html", "index.html")
            and "_static" not in p.parts and "_sources" not in p.parts]


@pytest.mark.slow
def test_book_builds_without_warnings(site) -> None:
    proc, html = site
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    index = (html / "intro.html").read_text()   # index.html redirects to the root page
    assert "This companion" in index and "results-table" in index
    for ch in chapters(ROOT):
        assert (html / "chapters" / f"{ch.name}.html").exists()
    assert (html / "developer.html").exists()


@pytest.mark.slow
def test_pages_load_nothing_from_the_network(site) -> None:
    _, html = site
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file(), "MathJax is not served"
    for page in _pages(html):
        text = page.read_text()
        remote = [u for u in _RESOURCE.findall(text) if re.match(r"(https?:)?//", u)]
        assert not remote, f"{page.name} loads {remote}"
    chapter = (html / "chapters" / "structures.html").read_text()
    assert "_static/mathjax/tex-chtml.js" in chapter


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary: `apt-get install -y chromium`")
def test_pages_in_a_browser(site, tmp_path: Path) -> None:
    _, html = site
    b = Browser(tmp_path / "profile")
    try:
        report = {}
        for page in _pages(html):
            b.events.clear()
            b.open(page.resolve().as_uri())
            b.call("Emulation.setDeviceMetricsOverride", width=1280, height=900,
                   deviceScaleFactor=1, mobile=False)
            deadline = time.monotonic() + 20
            # MathJax typesets asynchronously: wait until it has (or the page has no maths)
            while time.monotonic() < deadline and b.eval(
                    "document.querySelectorAll('.math').length > 0 && "
                    "document.querySelectorAll('mjx-container').length === 0"):
                time.sleep(0.2)
            state = b.eval("""(function(){
              var clone = document.body.cloneNode(true);
              clone.querySelectorAll('pre, code, .highlight, script, style')
                   .forEach(function(e){ e.remove(); });
              return {height: document.documentElement.scrollHeight,
                      tables: document.querySelectorAll('table').length,
                      raw: (clone.textContent.match(/\\|\\s*:?-{3,}:?\\s*\\|/g) || []).length,
                      math: document.querySelectorAll('.math').length,
                      typeset: document.querySelectorAll('mjx-container').length};})()""")
            urls = [e["params"]["request"]["url"] for e in b.events
                    if e.get("method") == "Network.requestWillBeSent"]
            report[page.name] = state
            assert state["height"] <= MAX_PAGE_PX, f"{page.name} is {state['height']} px tall"
            assert state["raw"] == 0, f"{page.name}: {state['raw']} raw Markdown table rows"
            assert state["math"] == 0 or state["typeset"] > 0, f"{page.name}: maths not typeset"
            remote = [u for u in urls if not u.startswith(("file:", "data:", "about:", "blob:"))]
            assert not remote, f"{page.name} requested {remote[:5]}"
        # the structures chapter's ten tables are HTML tables
        assert report["structures.html"]["tables"] >= 10, report["structures.html"]
    finally:
        b.close()


def _stale(ch) -> bool:
    meta = json.loads(ch.output.read_text())["metadata"].get("cryo_companion", {})
    return meta.get("source_sha256") != ch.source_sha256()


@pytest.mark.parametrize("chapter", [c.name for c in chapters(ROOT)])
def test_every_figure_has_a_caption(chapter: str) -> None:
    """Cells that draw a figure carry its caption (``mystnb.figure.caption``)."""
    ch = next(c for c in chapters(ROOT) if c.name == chapter)
    if _stale(ch):
        pytest.skip(f"book/chapters/{chapter}.ipynb was executed from an older source: "
                    "re-execute it (`python -m cryo_companion.runs.pipeline --only "
                    f"{chapter} --force`, on a GPU for the heavy chapters)")
    nb = nbformat.read(ch.output, as_version=4)
    missing = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
               and any("image/png" in o.get("data", {}) for o in c.outputs)
               and not c.metadata.get("mystnb", {}).get("figure", {}).get("caption")]
    assert not missing, f"{chapter}: figure cells without a caption: {missing}"
