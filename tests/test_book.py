"""The rendered book, as a reader gets it.

The book is built once per run, exactly as ``make book`` builds it (``-W -n --keep-going``: any
warning fails), into a temporary folder. Then: every page of the table of contents is there and
shows no error output; the front page links every chapter and no missing one; in headless
Chromium with the network cut off, Chapter 1's math is typeset by the MathJax copy shipped inside
the build and its figure is on the page; and on every page, at a 1280-pixel window, no display
equation, table, code block or cell output is wider than its column unless it scrolls sideways
with a visible scrollbar, and no script fails.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import json

import matplotlib.image
import pytest
import yaml
from bs4 import BeautifulSoup

REPO = Path(__file__).resolve().parents[1]
CHAPTER_ONE = "book/01_ngrams"
BUILD_TIMEOUT_SECONDS = 900
BROWSER_TIMEOUT_SECONDS = 120
SCREENSHOT_SIZE = (1280, 1600)  # (width, height) in CSS pixels
PAGE_SUFFIXES = (".md", ".ipynb")

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# TeX that MathJax should have consumed: display/inline delimiters, environments, or a $...$ span
# holding TeX-looking characters (a plain "$5" in prose is not flagged).
RAW_TEX = re.compile(r"\\\(|\\\[|\$\$|\\begin\{|\$[^$\n]*[\\^_][^$\n]*\$")


# ------------------------------------------------------------------ table of contents

def toc_files(toc: object) -> list[str]:
    """The pages of a Jupyter Book ``_toc.yml`` (already parsed), root first, in reading order.

    Pages are named as in the file: relative to the repository root, without extension.
    """
    if not isinstance(toc, dict) or not isinstance(toc.get("root"), str):
        raise ValueError("the table of contents must be a mapping with a 'root: <page>' entry; "
                         f"got {type(toc).__name__} {toc!r:.80}")
    pages = [toc["root"]]

    def walk(node: object) -> None:
        if isinstance(node, list):
            for child in node:
                walk(child)
        elif isinstance(node, dict):
            if "glob" in node:
                raise ValueError(f"'glob: {node['glob']}' in the table of contents: list each page "
                                 "with 'file:' so that the order and the set of pages are explicit")
            if "file" in node:
                if not isinstance(node["file"], str) or not node["file"]:
                    raise ValueError(f"a 'file:' entry must be a page path, got {node['file']!r}")
                pages.append(node["file"])
            for key in ("parts", "chapters", "sections"):
                walk(node.get(key, []))

    walk({key: value for key, value in toc.items() if key != "root"})
    return pages


def load_toc() -> list[str]:
    with open(REPO / "_toc.yml", encoding="utf-8") as file:
        return toc_files(yaml.safe_load(file))


def page_source(page: str) -> Path | None:
    """The ``.md`` or ``.ipynb`` file behind a table-of-contents entry, or None if there is none."""
    candidates = [REPO / page] if page.endswith(PAGE_SUFFIXES) else [REPO / f"{page}{s}" for s in PAGE_SUFFIXES]
    return next((path for path in candidates if path.is_file()), None)


def test_toc_lists_every_book_page_and_only_pages_that_exist():
    pages = load_toc()
    duplicates = sorted({page for page in pages if pages.count(page) > 1})
    assert not duplicates, f"_toc.yml lists these pages more than once: {duplicates}"
    missing = [page for page in pages if page_source(page) is None]
    assert not missing, f"_toc.yml lists pages with no .md or .ipynb file behind them: {missing}"
    listed = {str(Path(page).with_suffix("")) if page.endswith(PAGE_SUFFIXES) else page for page in pages}
    on_disk = {str(path.relative_to(REPO).with_suffix(""))
               for suffix in PAGE_SUFFIXES for path in (REPO / "book").glob(f"*{suffix}")}
    unlisted = sorted(on_disk - listed)
    assert not unlisted, (f"these book pages are not in _toc.yml, so the book leaves them out "
                          f"(only_build_toc_files): {unlisted}")


def test_toc_reader_rejects_malformed_tables_of_contents():
    assert toc_files({"root": "a", "parts": [{"chapters": [{"file": "b", "sections": [{"file": "c"}]}]}]}) \
        == ["a", "b", "c"]
    with pytest.raises(ValueError, match="root"):
        toc_files(["book/intro"])
    with pytest.raises(ValueError, match="glob"):
        toc_files({"root": "a", "chapters": [{"glob": "book/*"}]})
    with pytest.raises(ValueError, match="page path"):
        toc_files({"root": "a", "chapters": [{"file": None}]})


# ------------------------------------------------------------------ error outputs in HTML

def error_outputs(html: str) -> list[str]:
    """Cell outputs in a rendered page that show an error: a traceback, or an error on stderr."""
    soup = BeautifulSoup(html, "html.parser")
    problems = []
    for output in soup.select(".cell_output .output, .cell_output.output"):
        classes = output.get("class", [])
        text = output.get_text()
        if "traceback" in classes or "Traceback (most recent call last)" in text:
            problems.append(f"traceback output: {text.strip()[:300]!r}")
        elif "stderr" in classes and "Error" in text:
            problems.append(f"error on stderr: {text.strip()[:300]!r}")
    return problems


def test_error_output_detection_on_rendered_snippets():
    ok = ('<div class="cell_output docutils container"><div class="output stream highlight-myst-ansi">'
          '<pre>P(cat | the) = 0.50</pre></div></div>')
    traceback = ('<div class="cell_output docutils container"><div class="output traceback '
                 'highlight-ipythontb"><pre>ZeroDivisionError: division by zero</pre></div></div>')
    stderr = ('<div class="cell_output docutils container"><div class="output stderr">'
              '<pre>RuntimeError: shapes do not match</pre></div></div>')
    assert error_outputs(ok) == []
    assert len(error_outputs(traceback)) == 1
    assert len(error_outputs(stderr)) == 1


# ------------------------------------------------------------------ the build

@dataclass(frozen=True)
class Build:
    returncode: int
    log: str = field(repr=False)
    html: Path

    def log_tail(self, lines: int = 60) -> str:
        """The warnings and errors of the build, then the last ``lines`` lines of its log."""
        log_lines = self.log.splitlines()
        flagged = [line for line in log_lines if re.search(r"WARNING|ERROR|Error|Exception", line)]
        return "\n".join(["--- warnings and errors ---", *flagged[:40], f"--- last {lines} lines ---",
                          *log_lines[-lines:]])


def jupyter_book_executable() -> Path:
    for candidate in (Path(sys.executable).with_name("jupyter-book"), REPO / ".venv" / "bin" / "jupyter-book"):
        if candidate.is_file():
            return candidate
    pytest.fail("jupyter-book is not installed next to this Python; run `make setup` (it installs requirements.txt)")


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """The book built as `make book` builds it, into a temporary folder (the repository's _build is untouched)."""
    output = tmp_path_factory.mktemp("book-build")
    command = [str(jupyter_book_executable()), "build", "-W", "-n", "--keep-going", str(REPO),
               "--path-output", str(output)]
    try:
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=BUILD_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired as timeout:
        partial = timeout.stdout or ""
        if isinstance(partial, bytes):  # TimeoutExpired keeps bytes even in text mode
            partial = partial.decode(errors="replace")
        return Build(-1, f"the build took more than {BUILD_TIMEOUT_SECONDS} s and was stopped\n{partial}", output)
    log = ANSI_ESCAPE.sub("", result.stdout + result.stderr)
    return Build(result.returncode, log, output / "_build" / "html")


def built(book: Build) -> Path:
    if book.returncode != 0:
        pytest.fail("the book did not build (see test_book_builds_without_warnings for the log)")
    return book.html


def test_book_builds_without_warnings(book: Build):
    assert book.returncode == 0, (f"`jupyter-book build -W -n --keep-going .` failed with exit code "
                                  f"{book.returncode}\n{book.log_tail()}")


def test_every_toc_page_is_rendered_without_error_outputs(book: Build):
    html_dir = built(book)
    for page in load_toc():
        html_file = html_dir / f"{Path(page).with_suffix('') if page.endswith(PAGE_SUFFIXES) else page}.html"
        assert html_file.is_file(), f"{page} is in _toc.yml but the build produced no {html_file.name}"
        problems = error_outputs(html_file.read_text(encoding="utf-8"))
        assert not problems, f"{page} shows error output in the book:\n" + "\n".join(problems)


# ------------------------------------------------------------------ the browser

def chromium_executable() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if found is None:
        pytest.skip("Chromium is not installed: `apt-get install chromium` (the CI script installs it)")
    return found


def run_chromium(url: str, profile: Path, *mode: str, hide_scrollbars: bool = True) -> subprocess.CompletedProcess:
    """Headless Chromium on ``url`` with the network cut off; ``mode`` is --dump-dom or --screenshot=...

    Its stderr holds the page's console messages (``--enable-logging=stderr``).
    """
    command = [
        chromium_executable(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}",
        # Any host name fails to resolve: whatever renders, renders offline.
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--virtual-time-budget=15000", "--force-device-scale-factor=1", "--enable-logging=stderr", "--v=0",
        *(["--hide-scrollbars"] if hide_scrollbars else []),
        f"--window-size={SCREENSHOT_SIZE[0]},{SCREENSHOT_SIZE[1]}",
        *mode, url,
    ]
    # A session of its own, so that on a hang the whole browser (all its processes) can be stopped.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=BROWSER_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"Chromium did not finish within {BROWSER_TIMEOUT_SECONDS} s on {url}")
    result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    if result.returncode != 0:
        pytest.fail(f"Chromium exited with code {result.returncode} on {url}:\n{stderr[-3000:]}")
    return result


@dataclass(frozen=True)
class BrowserView:
    page: Path  # the HTML file that was opened
    html_dir: Path
    dom: str  # the DOM after scripts ran (MathJax included)
    screenshot: Path


@pytest.fixture(scope="module")
def chapter_one_in_browser(book: Build, tmp_path_factory: pytest.TempPathFactory) -> BrowserView:
    chromium_executable()  # skip before failing on the build when there is no browser
    html_dir = built(book)
    page = html_dir / f"{CHAPTER_ONE}.html"
    assert page.is_file(), f"the build has no {CHAPTER_ONE}.html"
    scratch = tmp_path_factory.mktemp("browser")
    dom = run_chromium(page.as_uri(), scratch / "profile-dom", "--dump-dom").stdout
    screenshot = scratch / "01_ngrams.png"
    run_chromium(page.as_uri(), scratch / "profile-screenshot", f"--screenshot={screenshot}")
    print(f"screenshot of {CHAPTER_ONE}: {screenshot}")
    return BrowserView(page, html_dir, dom, screenshot)


def unrendered_math(dom: str) -> list[str]:
    """Math in a page's DOM that MathJax did not typeset: raw TeX, or MathJax's own error marks."""
    soup = BeautifulSoup(dom, "html.parser")
    problems = []
    for element in soup.select(".math"):
        if element.find("mjx-container") is None:
            problems.append(f"math left as TeX: {element.get_text().strip()[:120]!r}")
    for error in soup.select("mjx-merror, [data-mjx-error]"):
        problems.append(f"MathJax reported an error: {error.get('data-mjx-error') or error.get_text()[:120]!r}")
    for tag in soup(["script", "style", "pre", "code", "textarea", "noscript", "mjx-container"]):
        tag.decompose()
    for match in RAW_TEX.finditer(soup.get_text(" ")):
        problems.append(f"raw TeX visible in the text: {match.group(0)[:120]!r}")
    return problems


def test_unrendered_math_detection_on_snippets():
    typeset = '<p><span class="math"><mjx-container jax="CHTML"><mjx-math></mjx-math></mjx-container></span></p>'
    assert unrendered_math(typeset) == []
    assert unrendered_math('<p>costs $5 and $10, see <code>\\(x\\)</code></p>') == []
    assert len(unrendered_math(r'<p><span class="math">\(P(w_i)\)</span></p>')) == 2  # span + visible TeX
    assert len(unrendered_math(r"<p>where $w_{i-1}$ is the previous word</p>")) == 1
    assert len(unrendered_math('<span class="math"><mjx-container><mjx-merror data-mjx-error="Undefined '
                               'control sequence \\foo"></mjx-merror></mjx-container></span>')) == 1


def test_chapter_one_math_is_typeset_by_mathjax(chapter_one_in_browser: BrowserView):
    soup = BeautifulSoup(chapter_one_in_browser.dom, "html.parser")
    assert soup.find("mjx-container") is not None, \
        "no <mjx-container> in Chapter 1 after loading it in Chromium: MathJax did not run"
    problems = unrendered_math(chapter_one_in_browser.dom)
    assert not problems, "Chapter 1 has math that MathJax did not typeset:\n" + "\n".join(problems)


def test_mathjax_is_loaded_from_the_build_itself(chapter_one_in_browser: BrowserView):
    soup = BeautifulSoup(chapter_one_in_browser.dom, "html.parser")
    sources = [script["src"] for script in soup.find_all("script", src=True) if "mathjax" in script["src"].lower()]
    assert sources, "Chapter 1 loads no MathJax script"
    remote = [src for src in sources if re.match(r"(https?:)?//", src)]
    assert not remote, f"MathJax is loaded from the network, so math would not render offline: {remote}"
    for src in sources:
        path = (chapter_one_in_browser.page.parent / src.split("?")[0]).resolve()
        assert path.is_file() and chapter_one_in_browser.html_dir.resolve() in path.parents, \
            f"MathJax script {src} is not a file inside the built book"


def test_chapter_one_shows_its_figure(chapter_one_in_browser: BrowserView):
    soup = BeautifulSoup(chapter_one_in_browser.dom, "html.parser")
    images = [img["src"] for img in soup.select(".cell_output img[src]")]
    assert images, "Chapter 1 has no figure among its cell outputs"
    for src in images:
        assert not re.match(r"(https?:)?//|data:", src), f"figure {src[:80]} is not a file of the build"
        path = (chapter_one_in_browser.page.parent / src).resolve()
        assert path.is_file() and path.stat().st_size > 0, f"figure {src} is missing from the built book"


def test_chapter_one_screenshot_is_a_rendered_page(chapter_one_in_browser: BrowserView):
    assert chapter_one_in_browser.screenshot.is_file(), "Chromium wrote no screenshot"
    pixels = matplotlib.image.imread(chapter_one_in_browser.screenshot)
    width, height = SCREENSHOT_SIZE
    assert pixels.shape[:2] == (height, width), f"screenshot is {pixels.shape[1]}x{pixels.shape[0]}, not {width}x{height}"
    # A blank or single-colour page (nothing rendered) has almost no variation.
    assert pixels[..., :3].std() > 0.05, "the screenshot is (nearly) blank: the page did not render"


# ------------------------------------------------------------------ the front page

DOC_LINK = re.compile(r"\{doc\}`(?:[^`<]*<)?([^`>]+)>?`")
COMING_CHAPTER = re.compile(r"^(\d+)\. ", re.MULTILINE)


def front_page_problems(intro: str, toc_pages: list[str], root: str = "book/intro") -> list[str]:
    """How the front page disagrees with the table of contents.

    Every chapter in the table of contents (a page named ``NN_topic``) must be linked from the
    front page with ``{doc}``; every ``{doc}`` link must name a page of the table of contents;
    and the list of chapters still to come must not hold the number of a chapter that exists.
    """
    folder = Path(root).parent
    linked = {str(folder / target) for target in DOC_LINK.findall(intro)}
    chapters = {page for page in toc_pages if re.fullmatch(r"\d{2}_\w+", Path(page).name)}
    problems = [f"{page} is in _toc.yml but the front page does not link it"
                for page in sorted(chapters - linked)]
    problems += [f"the front page links {page}, which is not in _toc.yml" for page in sorted(linked - set(toc_pages))]
    written = {int(Path(page).name[:2]) for page in chapters}
    coming = intro[intro.find("Still to come"):] if "Still to come" in intro else ""
    problems += [f"the front page lists Chapter {number} as still to come, but it is in _toc.yml"
                 for number in sorted({int(n) for n in COMING_CHAPTER.findall(coming)} & written)]
    return problems


def test_front_page_links_every_chapter_and_lists_none_as_coming_that_exists():
    intro = page_source(load_toc()[0])
    problems = front_page_problems(intro.read_text(encoding="utf-8"), load_toc())
    assert not problems, f"{intro.relative_to(REPO)} is out of date:\n" + "\n".join(problems)


def test_front_page_check_finds_a_missing_a_dead_and_a_stale_chapter():
    toc = ["book/intro", "book/01_a", "book/02_b", "book/bibliography"]
    good = "{doc}`A <01_a>` and {doc}`02_b`, see {doc}`bibliography`.\n\nStill to come:\n\n3. C\n"
    assert front_page_problems(good, toc) == []
    problems = front_page_problems("{doc}`A <01_a>` {doc}`09_z`\n\nStill to come:\n\n2. B\n", toc)
    assert problems == ["book/02_b is in _toc.yml but the front page does not link it",
                        "the front page links book/09_z, which is not in _toc.yml",
                        "the front page lists Chapter 2 as still to come, but it is in _toc.yml"]


# ------------------------------------------------------------------ nothing cut off, on any page

# Run in the page once MathJax has typeset it: every display equation, table, code block and cell
# output whose content is wider than its box, unless the box scrolls sideways with a scrollbar
# that takes room on the page (one a reader can see). The result goes into the DOM as JSON.
LAYOUT_PROBE = """
<script>
window.addEventListener("load", () => {
  const typeset = (window.MathJax && MathJax.startup && MathJax.startup.promise) || Promise.resolve();
  typeset.then(() => setTimeout(() => {
    const article = document.querySelector("article") || document.body;
    const selector = "mjx-container[display='true'], div.math, table, pre, div.cell_output";
    const found = [];
    const scrollsVisibly = (element) => {
      const style = getComputedStyle(element);
      const scrollbar = element.offsetHeight - element.clientHeight
        - parseFloat(style.borderTopWidth) - parseFloat(style.borderBottomWidth);
      return ["auto", "scroll"].includes(style.overflowX) && scrollbar > 0;
    };
    for (const box of article.querySelectorAll(selector)) {
      const parent = box.parentElement;
      const width = box.getBoundingClientRect().width;
      let content = 0, room = 0, overflow = "";
      if (box.scrollWidth > box.clientWidth + 1 && !scrollsVisibly(box)) {
        // its content is wider than the box itself
        content = box.scrollWidth; room = box.clientWidth; overflow = getComputedStyle(box).overflowX;
      } else if (parent && width > parent.clientWidth + 1 && !scrollsVisibly(parent)) {
        // the box is wider than the element that holds it
        content = Math.round(width); room = parent.clientWidth; overflow = "parent " + getComputedStyle(parent).overflowX;
      } else {
        continue;
      }
      found.push({element: box.tagName.toLowerCase() + (box.className ? "." + box.className : ""),
                  content: content, box: room, overflow: overflow,
                  text: box.innerText.replace(/\\s+/g, " ").slice(0, 70)});
    }
    const report = document.createElement("pre");
    report.id = "layout-report";
    report.textContent = JSON.stringify(found);
    document.body.appendChild(report);
  }, 300));
});
</script>
"""
CONSOLE_ERROR = re.compile(r"CONSOLE[:(]\d+\)?\] \"(Uncaught [^\"]*)\"")  # CONSOLE:1] or CONSOLE(1)]


@dataclass(frozen=True)
class Layout:
    too_wide: list[dict]
    script_errors: list[str]


def page_layout(html_file: Path, scratch: Path) -> Layout:
    """Open ``html_file`` (with the probe added, beside it so its links work) in Chromium at
    1280 pixels, scrollbars shown, and return what is too wide and what scripts failed."""
    probe_page = html_file.with_name(f"{html_file.stem}.layout-probe.html")
    probe_page.write_text(html_file.read_text(encoding="utf-8").replace("</body>", LAYOUT_PROBE + "</body>"),
                          encoding="utf-8")
    try:
        result = run_chromium(probe_page.as_uri(), scratch / f"profile-{html_file.stem}", "--dump-dom",
                              hide_scrollbars=False)
    finally:
        probe_page.unlink()
    report = BeautifulSoup(result.stdout, "html.parser").find("pre", id="layout-report")
    assert report is not None, f"the layout probe did not run on {html_file.name}"
    return Layout(json.loads(report.get_text()), CONSOLE_ERROR.findall(result.stderr))


def describe(box: dict) -> str:
    return (f"{box['element'][:40]}: content {box['content']} px in a box of {box['box']} px "
            f"(overflow-x: {box['overflow']}): {box['text']!r}")


def test_layout_probe_reports_cut_off_content_but_not_content_that_scrolls_visibly(tmp_path):
    chromium_executable()
    wide = "x" * 400
    page = tmp_path / "page.html"
    page.write_text(f"""<html><body><article style="width: 600px">
      <pre style="overflow-x: hidden">cut {wide}</pre>
      <pre style="overflow-x: auto">scrolls {wide}</pre>
      <table><tr><td style="white-space: nowrap">table {wide}</td></tr></table>
      <div style="overflow-x: auto"><table><tr><td style="white-space: nowrap">inside {wide}</td></tr></table></div>
      <pre>short</pre>
      <script>undefinedFunction();</script>
    </article></body></html>""", encoding="utf-8")
    layout = page_layout(page, tmp_path)
    assert [box["text"].split()[0] for box in layout.too_wide] == ["cut", "table"], layout.too_wide
    assert any("undefinedFunction" in error for error in layout.script_errors), layout.script_errors


@pytest.fixture(scope="module")
def layouts(book: Build, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Layout]:
    chromium_executable()
    html_dir = built(book)
    scratch = tmp_path_factory.mktemp("layout")
    pages = {}
    for page in load_toc():
        name = str(Path(page).with_suffix("")) if page.endswith(PAGE_SUFFIXES) else page
        pages[name] = page_layout(html_dir / f"{name}.html", scratch)
    return pages


def test_no_page_cuts_off_math_tables_code_or_output(layouts: dict[str, Layout]):
    problems = [f"{page}: {describe(box)}" for page, layout in layouts.items() for box in layout.too_wide]
    assert not problems, ("wider than the column and not visibly scrollable (split the equation, wrap "
                          "the printed lines, or trim the table):\n" + "\n".join(problems))


def test_no_page_has_a_script_error(layouts: dict[str, Layout]):
    problems = [f"{page}: {error}" for page, layout in layouts.items() for error in layout.script_errors]
    assert not problems, "JavaScript errors on the rendered pages:\n" + "\n".join(problems)
