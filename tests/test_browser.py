"""The built site in a real browser: Debian's Chromium driven by Playwright, over local HTTP.

Static checks of the HTML (test_book.py) cannot see what a reader sees: scripts that throw,
math that MathJax did not typeset, images that do not decode, Chinese text drawn as empty
boxes ("tofu"). These tests load every page of the site the way a reader's browser does.

Which pages: every page of the table of contents (_toc.yml), and a test that the built site
holds no other content page. Not audited as pages: `search.html` (its content is made by
JavaScript; the search test drives it), `genindex.html` (Sphinx's generated index, none of
our content), the root `index.html` (a redirect, tested as such), and the folders Sphinx
copies verbatim (`_static` theme assets and templates, `_sources`, `_images`, vendored
`mathjax`).

Every page is visited as a first-time visitor: local storage is cleared before each load,
so a page's result does not depend on the pages visited before it.

The site is served by `http.server` on 127.0.0.1 (file:// URLs break Sphinx search). The
browser's proxy is a closed local port, so nothing can reach the network; any request to
another host is recorded and fails the page.

Development only: DLCOURSE_SITE=/path/to/html audits an existing site instead of building
the book with the `built_book` fixture.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import struct
import threading
import unicodedata
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest
import yaml
from playwright.sync_api import sync_playwright

from conftest import REPO

CHROMIUM = "/usr/bin/chromium"
SITE_ENV = "DLCOURSE_SITE"
SELFCHECK = "/_selfcheck/"
# Playwright already passes --headless, --no-sandbox, --no-first-run, --disable-sync,
# --disable-background-networking, --disable-component-update and a fresh --user-data-dir.
CHROMIUM_ARGS = ["--disable-gpu", "--disable-quic"]
# Folders Sphinx fills with copies of theme, source and library files, not pages of ours.
NOT_PAGES = {"_static", "_sources", "_images", "mathjax"}
UTILITY_PAGES = {"search.html", "genindex.html", "index.html"}  # at the site root only


# --- Pages of the book, from the table of contents -----------------------------------------

def _toc_files(node) -> list[str]:
    files = []
    if isinstance(node, dict):
        if "file" in node:
            files.append(node["file"])
        for key in ("parts", "chapters", "sections"):
            for child in node.get(key, []):
                files += _toc_files(child)
    return files


def _source(doc: str) -> Path | None:
    for ext in (".md", ".ipynb"):
        if (REPO / f"{doc}{ext}").exists():
            return REPO / f"{doc}{ext}"
    return None


def _is_notebook(doc: str) -> bool:
    """An .ipynb, or a MyST Markdown notebook (jupytext front matter with a kernel)."""
    src = _source(doc)
    if src is None:
        return False
    if src.suffix == ".ipynb":
        return True
    head = src.read_text(encoding="utf-8").split("\n---", 1)[0]
    return head.startswith("---") and "kernelspec:" in head


TOC = yaml.safe_load((REPO / "_toc.yml").read_text(encoding="utf-8"))
DOCS = [TOC["root"]] + _toc_files(TOC)
PAGES = [f"{doc}.html" for doc in DOCS]
NOTEBOOK_PAGES = [f"{doc}.html" for doc in DOCS if _is_notebook(doc)]
SYLLABUS = yaml.safe_load((REPO / "book" / "syllabus.yml").read_text(encoding="utf-8"))
TOPICS = {t["id"]: t for ch in SYLLABUS["chapters"] for t in ch["topics"]}


# --- Server and browser ----------------------------------------------------------------------

class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the site at / and the self-check pages under /_selfcheck/."""

    mounts: dict[str, Path] = {}

    def translate_path(self, path: str) -> str:
        clean = path.split("?", 1)[0].split("#", 1)[0]
        for prefix in sorted(self.mounts, key=len, reverse=True):
            if clean.startswith(prefix):
                # Let the base class resolve "..", %-escapes and index files inside the mount.
                self.directory = str(self.mounts[prefix])
                return super().translate_path("/" + path[len(prefix):])
        return super().translate_path(path)

    def log_message(self, *args):  # keep pytest's output for failures
        pass


@pytest.fixture(scope="module")
def server():
    mounts: dict[str, Path] = {}
    handler = type("Handler", (_Handler,), {"mounts": mounts})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=os.devnull))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", mounts
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def site(request, server) -> tuple[Path, str]:
    """(directory, base URL) of the built site, mounted at the server's root."""
    override = os.environ.get(SITE_ENV)
    html = Path(override) if override else request.getfixturevalue("built_book") / "html"
    assert (html / "index.html").exists(), f"no built site at {html}"
    base, mounts = server
    mounts["/"] = html
    return html, base + "/"


@dataclass
class Browser:
    page: object
    base: str
    foreign: list[str] = field(default_factory=list)   # requests to any other host
    console: list[str] = field(default_factory=list)   # console errors and page errors
    bad_responses: list[str] = field(default_factory=list)

    def reset(self):
        self.foreign.clear()
        self.console.clear()
        self.bad_responses.clear()


@pytest.fixture(scope="module")
def browser(server):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make sysdeps` installs Debian's chromium")
    base, _ = server
    local = urlparse(base).netloc
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS,
            # A closed port: whatever slips past the checks below cannot reach the network.
            # Playwright asks Chromium to proxy loopback too, hence the explicit bypass.
            proxy={"server": "http://127.0.0.1:9", "bypass": "127.0.0.1"})
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        context.add_init_script("try { localStorage.clear(); sessionStorage.clear(); } catch (e) {}")
        page = context.new_page()
        page.set_default_timeout(30_000)
        b = Browser(page, base)

        def on_request(req):
            url = urlparse(req.url)
            if url.scheme in ("http", "https", "ws", "wss") and url.netloc != local:
                b.foreign.append(req.url)

        def on_console(msg):
            if msg.type != "error":
                return
            # Browsers ask every host for /favicon.ico on their own. The book, published
            # under a project path, does not own the host's root.
            if urlparse(msg.location.get("url", "")).path == "/favicon.ico":
                return
            b.console.append(f"console.error: {msg.text} ({msg.location.get('url')})")

        def on_response(resp):
            if resp.status >= 400 and urlparse(resp.url).path != "/favicon.ico":
                b.bad_responses.append(f"{resp.status} {resp.url}")

        context.on("request", on_request)
        page.on("console", on_console)
        page.on("pageerror", lambda exc: b.console.append(f"uncaught: {exc.message}"))
        page.on("response", on_response)
        yield b
        context.close()
        chromium.close()


# --- What a page looks like to a reader --------------------------------------------------------

# Runs in the page once it has loaded. Waits for MathJax's typesetting, scrolls every image
# into view (so lazy images load) and waits for it, then collects the findings.
AUDIT_JS = r"""
async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  const settle = (img) => img.complete ? Promise.resolve() : new Promise((ok) => {
    img.addEventListener('load', ok, {once: true});
    img.addEventListener('error', ok, {once: true});
    setTimeout(ok, 10000);
  });
  for (const img of Array.from(document.images)) {
    img.scrollIntoView({block: 'center'});
    await settle(img);
  }
  window.scrollTo(0, 0);
  const brokenImages = Array.from(document.images)
    .filter((img) => !(img.complete && img.naturalWidth > 0))
    .map((img) => img.getAttribute('src'));

  // Visible prose, without code (where "$$" or "\(" may be legitimate) and typeset math.
  const skip = 'pre, code, script, style, textarea, mjx-container, .highlight';
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const prose = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest(skip) || !el.checkVisibility()) continue;
    prose.push(n.data);
  }
  const mathElements = Array.from(document.querySelectorAll('.math'));
  const outputs = Array.from(document.querySelectorAll('.cell_output, .output'));
  return {
    brokenImages,
    prose: prose.join(''),
    mathElements: mathElements.length,
    untypeset: mathElements.filter((m) => !m.querySelector('mjx-container'))
                            .map((m) => m.textContent.slice(0, 80)),
    mjx: document.querySelectorAll('mjx-container').length,
    mathErrors: Array.from(document.querySelectorAll('mjx-merror'))
                     .map((m) => m.textContent.slice(0, 80)),
    outputText: outputs.map((o) => o.innerText).join('\n'),
    errorOutputs: document.querySelectorAll(
      '.output.traceback, .output.stderr, .output.error').length,
    links: Array.from(document.querySelectorAll('a[href]')).map((a) => a.href),
  };
}
"""

RAW_TEX = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|\\frac|\\mathbf")
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|Cell In\s*\[\d+\], line \d+"
                       r"|^\s*File \"[^\"]+\", line \d+", re.M)


@dataclass
class Audit:
    url: str
    console: list[str]
    foreign: list[str]
    bad_responses: list[str]
    broken_images: list[str]
    raw_tex: list[str]
    has_math_markup: bool
    mjx: int
    untypeset: list[str]
    math_errors: list[str]
    tracebacks: list[str]
    error_outputs: int
    links: list[str]

    def problems(self) -> dict[str, list]:
        """Every check on one page; an empty list means it passed."""
        return {
            "javascript errors": self.console,
            "requests to other hosts": self.foreign,
            "failed local requests": self.bad_responses,
            "images not loaded": self.broken_images,
            "raw TeX in the visible text": self.raw_tex,
            "math not typeset by MathJax": self.untypeset
            + (["the page has math markup but no mjx-container"]
               if self.has_math_markup and not self.mjx else []),
            "MathJax errors": self.math_errors,
            "tracebacks in outputs": self.tracebacks
            + ([f"{self.error_outputs} error/stderr output areas"] if self.error_outputs else []),
        }


def audit_url(b: Browser, url: str, html_source: str | None = None) -> Audit:
    b.reset()
    b.page.goto(url, wait_until="load")
    found = b.page.evaluate(AUDIT_JS)
    # Errors raised by scripts still running after `load` (MathJax, theme) land here too.
    b.page.wait_for_timeout(100)
    if html_source is None:
        html_source = b.page.content()
    return Audit(
        url=url,
        console=list(b.console), foreign=list(b.foreign), bad_responses=list(b.bad_responses),
        broken_images=found["brokenImages"],
        raw_tex=sorted({m.group(0) for m in RAW_TEX.finditer(found["prose"])}),
        has_math_markup=bool(re.search(r'class="math[ "]', html_source)),
        mjx=found["mjx"], untypeset=found["untypeset"], math_errors=found["mathErrors"],
        tracebacks=[m.group(0) for m in TRACEBACK.finditer(found["outputText"])],
        error_outputs=found["errorOutputs"], links=found["links"],
    )


@pytest.fixture(scope="module")
def audit(site, browser):
    """audit(page) visits a page of the site once and remembers what it found."""
    html_dir, base = site
    cache: dict[str, Audit] = {}

    def get(page: str) -> Audit:
        if page not in cache:
            path = html_dir / page
            assert path.exists(), f"{page} was not built"
            cache[page] = audit_url(browser, urljoin(base, page),
                                    path.read_text(encoding="utf-8"))
        return cache[page]

    return get


# --- The checks, one test per page and kind ---------------------------------------------------

def _check(audit: Audit, kind: str):
    found = audit.problems()[kind]
    assert not found, f"{audit.url}: {kind}:\n  " + "\n  ".join(map(str, found[:20]))


@pytest.mark.parametrize("page", PAGES)
def test_no_javascript_errors(audit, page):
    _check(audit(page), "javascript errors")


@pytest.mark.parametrize("page", PAGES)
def test_offline_no_other_hosts_and_no_missing_files(audit, page):
    _check(audit(page), "requests to other hosts")
    _check(audit(page), "failed local requests")


@pytest.mark.parametrize("page", PAGES)
def test_math_is_typeset(audit, page):
    a = audit(page)
    for kind in ("raw TeX in the visible text", "math not typeset by MathJax", "MathJax errors"):
        _check(a, kind)


@pytest.mark.parametrize("page", PAGES)
def test_images_load(audit, page):
    _check(audit(page), "images not loaded")


@pytest.mark.parametrize("page", PAGES)
def test_no_tracebacks_in_outputs(audit, page):
    _check(audit(page), "tracebacks in outputs")


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_notebook_pages_have_download_and_launch_buttons(audit, browser, page):
    a = audit(page)
    stem = page.removesuffix(".html")
    local = urlparse(browser.base).netloc
    download = [u for u in a.links if urlparse(u).netloc == local
                and urlparse(u).path.endswith(f"/_sources/{stem}.ipynb")]
    assert download, f"{page}: no .ipynb download link"
    resp = browser.page.request.get(download[0])
    assert resp.ok, f"{page}: the .ipynb download link answers {resp.status}"
    # Launch buttons (sphinx-book-theme's launch_buttons in _config.yml), each opening
    # this page's notebook: Colab by path, Binder by repository, JupyterHub by nbgitpuller.
    wanted = {"Colab": "colab.research.google.com", "Binder": "mybinder.org",
              "JupyterHub": "git-pull?repo="}
    missing = [name for name, needle in wanted.items()
               if not any(needle in u and stem.rsplit("/", 1)[-1] in u for u in a.links)]
    assert not missing, f"{page}: no launch button for {missing} that opens this notebook"


def test_toc_covers_every_built_page(site):
    """Every content page in the built site is one of the audited pages (no stale pages)."""
    html_dir, _ = site
    built = set()
    for path in html_dir.rglob("*.html"):
        rel = path.relative_to(html_dir)
        if rel.parts[0] in NOT_PAGES or (len(rel.parts) == 1 and rel.name in UTILITY_PAGES):
            continue
        built.add(rel.as_posix())
    extra = sorted(built - set(PAGES))
    assert not extra, (f"pages in {html_dir} that are not in _toc.yml (stale output of an older "
                       f"build? `make clean`): {extra}")


def test_root_redirects_to_the_book(site, browser):
    _, base = site
    browser.page.goto(base)
    browser.page.wait_for_url("**/book/index.html", timeout=10_000)


def test_search_finds_the_dropout_section(site, browser):
    _, base = site
    browser.reset()
    page = browser.page
    page.goto(urljoin(base, "search.html?q=dropout"))
    summary = page.locator("#search-results .search-summary")
    summary.wait_for(timeout=20_000)
    page.wait_for_function(
        "() => /found/i.test(document.querySelector('#search-results .search-summary').textContent)")
    hits = page.eval_on_selector_all("#search-results ul.search li a",
                                     "els => els.map(a => a.getAttribute('href'))")
    assert any(h.split("#")[0] == "book/02-overfitting.html" for h in hits), \
        f"search for 'dropout' does not list the overfitting chapter: {hits}"
    assert not browser.console, browser.console


# --- Chinese text: present, and drawn with a real CJK font -------------------------------------

# For each character of `text`, found in the page's visible text: its laid-out width in em
# (a Han character in a CJK font is a full-width 1 em; a missing glyph is a narrower box),
# and a fingerprint of the glyph drawn in the same font on a canvas, next to the fingerprint
# of the font's missing-glyph box (a private-use code point no font has).
GLYPHS_JS = r"""
(text) => {
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const at = n.data.indexOf(text);
    if (at < 0 || !n.parentElement.checkVisibility()) continue;
    const style = getComputedStyle(n.parentElement);
    const size = parseFloat(style.fontSize);
    const canvas = document.createElement('canvas');
    canvas.width = canvas.height = 64;
    const ctx = canvas.getContext('2d', {willReadFrequently: true});
    ctx.font = `${style.fontWeight} 40px ${style.fontFamily}`;
    const print = (ch) => {
      ctx.clearRect(0, 0, 64, 64);
      ctx.fillText(ch, 4, 48);
      const d = ctx.getImageData(0, 0, 64, 64).data;
      let h = 0;
      for (let k = 3; k < d.length; k += 4) h = (Math.imul(h, 31) + d[k]) >>> 0;
      return h;
    };
    const chars = [];
    for (let i = 0; i < text.length; i++) {
      const r = document.createRange();
      r.setStart(n, at + i);
      r.setEnd(n, at + i + 1);
      chars.push({ch: text[i], em: r.getBoundingClientRect().width / size, print: print(text[i])});
    }
    return {chars, missing: print('\ue000'), font: style.fontFamily};
  }
  return null;
}
"""


def _han_runs(text: str) -> list[str]:
    return re.findall(r"[\u3400-\u9fff]+", text)


def han_rendering_problems(page, text: str, only_han: bool = True) -> list[str]:
    """Why `text` (visible in the page) is not drawn with real CJK glyphs; [] if it is.

    Only the Han characters of `text` are judged, unless `only_han` is false (the self-check
    uses private-use characters, the one sure way to get missing glyphs on this machine).
    """
    found = page.evaluate(GLYPHS_JS, text)
    if found is None:
        return [f"{text!r} is not in the page's visible text"]
    problems = []
    prints = {}
    for c in found["chars"]:
        if only_han and not unicodedata.name(c["ch"], "").startswith("CJK UNIFIED IDEOGRAPH"):
            continue
        if c["print"] == found["missing"]:
            problems.append(f"{c['ch']} is drawn as the missing-glyph box")
        if not 0.9 <= c["em"] <= 1.1:
            problems.append(f"{c['ch']} is {c['em']:.2f} em wide, not a full-width glyph")
        prints.setdefault(c["print"], set()).add(c["ch"])
    same = [chars for chars in prints.values() if len(chars) > 1]
    if same:
        problems.append(f"different characters drawn identically: {same}")
    return problems


def test_glossary_shows_every_chinese_term(site, browser):
    html_dir, base = site
    assert (html_dir / "book" / "glossary.html").exists(), "no glossary page book/glossary.html"
    browser.reset()
    page = browser.page
    page.goto(urljoin(base, "book/glossary.html"), wait_until="load")
    visible = re.sub(r"\s+", " ", page.evaluate("document.body.innerText"))
    missing = [t["zh"] for t in TOPICS.values() if re.sub(r"\s+", " ", t["zh"]) not in visible]
    assert not missing, f"glossary lacks the Chinese terms {missing[:10]} ({len(missing)} in all)"
    for topic in ("dropout", "neuron", "backprop"):
        for run in _han_runs(TOPICS[topic]["zh"]):
            problems = han_rendering_problems(page, run)
            assert not problems, f"glossary, {topic} ({run}): {problems}"
    assert not browser.console, browser.console


# --- The detectors themselves: a broken page must be flagged, a clean one must not ----------

BROKEN_PAGE = r"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>broken</title></head><body>
<p>Raw display math: $$x^2$$ and raw inline \(y\).</p>
<span class="math notranslate nohighlight">\(z\)</span>
<img src="no-such-figure.png" alt="missing">
<img src="https://example.com/remote.png" alt="remote">
<div class="cell_output"><div class="output stream"><pre>Traceback (most recent call last):
  File "x.py", line 1, in &lt;module&gt;
ValueError: boom</pre></div></div>
<p id="tofu">&#xe000;&#xe001;&#xe002;</p>
<script>console.error("logged error"); notDefined();</script>
</body></html>
"""

CLEAN_PAGE = r"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>clean</title>
<script defer src="mathjax/tex-chtml.js"></script></head>
<body>
<p>Inline <span class="math notranslate nohighlight">\(x^2 + y^2\)</span>.</p>
<pre>print("$$ in code is fine")</pre>
<img src="dot.png" alt="dot">
<div class="cell_output"><div class="output stream"><pre>ValueError: printed on purpose</pre></div></div>
<p id="zh">随机失活与逆向失活</p>
</body></html>
"""



def _png_1x1() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\x80")) + chunk(b"IEND", b""))


def test_detectors_flag_a_broken_page_and_pass_a_clean_one(server, browser, tmp_path_factory):
    base, mounts = server
    root = tmp_path_factory.mktemp("selfcheck")
    (root / "broken.html").write_text(BROKEN_PAGE, encoding="utf-8")
    (root / "clean.html").write_text(CLEAN_PAGE, encoding="utf-8")
    (root / "dot.png").write_bytes(_png_1x1())
    mounts[SELFCHECK] = root
    # The vendored MathJax from the sources, so this check needs no built book.
    mounts[SELFCHECK + "mathjax/"] = REPO / "book" / "_vendor" / "mathjax"

    broken = audit_url(browser, f"{base}{SELFCHECK}broken.html")
    problems = broken.problems()
    assert any("notDefined" in e for e in problems["javascript errors"]), problems
    assert any("logged error" in e for e in problems["javascript errors"]), problems
    assert problems["requests to other hosts"] == ["https://example.com/remote.png"], problems
    assert any("no-such-figure.png" in r for r in problems["failed local requests"]), problems
    assert set(problems["images not loaded"]) == {"no-such-figure.png",
                                                 "https://example.com/remote.png"}, problems
    assert {"$$", "\\("} <= set(problems["raw TeX in the visible text"]), problems
    assert problems["math not typeset by MathJax"], problems
    assert any("Traceback" in t for t in problems["tracebacks in outputs"]), problems
    tofu = han_rendering_problems(browser.page, "\ue000\ue001\ue002", only_han=False)
    assert any("missing-glyph box" in p for p in tofu) and any("em wide" in p for p in tofu) \
        and any("identically" in p for p in tofu), f"missing glyphs were not detected: {tofu}"
    assert han_rendering_problems(browser.page, "随机失活") == \
        ["'随机失活' is not in the page's visible text"]

    clean = audit_url(browser, f"{base}{SELFCHECK}clean.html")
    assert clean.mjx == 1, "MathJax did not typeset the clean page"
    assert not any(clean.problems().values()), clean.problems()
    assert han_rendering_problems(browser.page, "随机失活与逆向失活") == []
