"""Accessibility of the built site: axe-core's WCAG 2 A and AA rules on every page.

axe-core (Deque's engine, the one browser devtools and Lighthouse use) is injected into each
page of the built site, loaded in Debian's Chromium by Playwright as test_browser.py does
(same local server, same closed proxy), and must report no violation of a rule tagged
``wcag2a`` or ``wcag2aa``. The chapters' outputs are checked for contrast in dark mode too
(the reader's colour-mode switch), and the ANSI colours of text outputs, which no page shows
today, on a synthetic page. Synthetic pages also prove the harness: one with known violations
(an unnamed <summary>, the issue's #00d7ff text, an image without alt) must be flagged, a
clean one must not. The fixes themselves are in book/_ext/course_a11y.py.

axe-core comes from the npm registry, at the one version pinned here (AXE_VERSION, with the
registry's sha512 ``dist.integrity`` of its tarball, checked on every use). It is fetched once
into .cache/axe-core/ (ignored by git) by ``npm pack``, or by a plain download from the
registry where npm is missing; ``python tests/test_accessibility.py --fetch-axe`` does it
ahead of the tests (``make test`` runs it). If the registry cannot be reached and the
tarball is not cached, the tests skip with the reason; on CI (CI=true) they fail.

Development only: DLCOURSE_SITE=/path/to/html audits an existing site instead of building
the book (as in test_browser.py).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path
from urllib.parse import urljoin

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "book" / "_ext"))
import course_a11y  # noqa: E402  (the backgrounds and palette the fixes are computed for)

AXE_VERSION = "4.14.1"
AXE_INTEGRITY = ("sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe"
                 "37OgudVGtQ==")
AXE_CACHE = REPO / ".cache" / "axe-core"
AXE_TARBALL = AXE_CACHE / f"axe-core-{AXE_VERSION}.tgz"
DEFAULT_REGISTRY = "https://registry.npmjs.org/"
TAGS = ["wcag2a", "wcag2aa"]


# --- axe-core from the npm registry ------------------------------------------------------------

class RegistryUnreachable(RuntimeError):
    pass


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def _registry() -> str:
    # npm reads npm_config_registry itself (and .npmrc); the download where npm is missing
    # honours the variable too.
    reg = os.environ.get("npm_config_registry") or os.environ.get("NPM_CONFIG_REGISTRY")
    return (reg or DEFAULT_REGISTRY).rstrip("/") + "/"


_NETWORK_ERRORS = ("ENOTFOUND", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EAI_AGAIN",
                   "ENETUNREACH", "EHOSTUNREACH", "network", "proxy")


def _npm_pack(dest: Path) -> Path:
    proc = subprocess.run(
        [shutil.which("npm"), "pack", f"axe-core@{AXE_VERSION}", "--pack-destination", str(dest),
         "--json"],
        capture_output=True, text=True, timeout=300, cwd=dest)
    if proc.returncode != 0:
        err = proc.stderr[-2000:]
        if any(code in err for code in _NETWORK_ERRORS):
            raise RegistryUnreachable(f"npm pack axe-core@{AXE_VERSION}: {err.strip()}")
        raise RuntimeError(f"npm pack axe-core@{AXE_VERSION} failed ({proc.returncode}): {err}")
    [info] = json.loads(proc.stdout)
    return dest / info["filename"]


def _download(dest: Path) -> Path:
    url = f"{_registry()}axe-core/-/axe-core-{AXE_VERSION}.tgz"
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            data = resp.read()
    except OSError as exc:  # URLError, timeouts, refused connections
        raise RegistryUnreachable(f"{url}: {exc}") from exc
    path = dest / f"axe-core-{AXE_VERSION}.tgz"
    path.write_bytes(data)
    return path


def fetch_axe() -> Path:
    """The verified axe-core tarball in .cache/axe-core/, fetched first if it is not there."""
    if AXE_TARBALL.exists() and _integrity(AXE_TARBALL.read_bytes()) == AXE_INTEGRITY:
        return AXE_TARBALL
    AXE_CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=AXE_CACHE) as tmp:
        got = _npm_pack(Path(tmp)) if shutil.which("npm") else _download(Path(tmp))
        found = _integrity(got.read_bytes())
        if found != AXE_INTEGRITY:
            raise RuntimeError(f"axe-core {AXE_VERSION} from {_registry()} has integrity {found}, "
                               f"not the pinned {AXE_INTEGRITY}")
        os.replace(got, AXE_TARBALL)
    return AXE_TARBALL


def axe_source() -> str:
    """axe.min.js from the verified tarball."""
    data = fetch_axe().read_bytes()
    if _integrity(data) != AXE_INTEGRITY:  # the cache changed under us
        raise RuntimeError(f"{AXE_TARBALL} does not match the pinned integrity")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return tar.extractfile("package/axe.min.js").read().decode("utf-8")


@pytest.fixture(scope="module")
def axe() -> str:
    try:
        return axe_source()
    except RegistryUnreachable as exc:
        message = f"axe-core {AXE_VERSION} is not in {AXE_CACHE} and the npm registry is unreachable: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


# --- Running axe in a page ---------------------------------------------------------------------

# The browser, its local server and the site are test_browser.py's fixtures.
from test_browser import NOT_PAGES, PAGES, SELFCHECK, browser, server, site  # noqa: E402,F401

# After the page's own scripts: MathJax typeset (it changes the text axe measures) and fonts.
SETTLE_JS = r"""
async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  await document.fonts.ready;
}
"""

RUN_AXE_JS = r"""
async (tags) => {
  const results = await axe.run(document, {runOnly: {type: 'tag', values: tags},
                                           resultTypes: ['violations']});
  return results.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => ({target: n.target.join(' '), summary: n.failureSummary})),
  }));
}
"""


def load_with_axe(b, axe_js: str, url: str, *, settle: bool = True) -> None:
    b.reset()
    b.page.goto(url, wait_until="load")
    if settle:
        b.page.evaluate(SETTLE_JS)
    b.page.add_script_tag(content=axe_js)


def axe_violations(b, axe_js: str, url: str, *, settle: bool = True) -> list[dict]:
    load_with_axe(b, axe_js, url, settle=settle)
    return b.page.evaluate(RUN_AXE_JS, TAGS)


def report(url: str, violations: list[dict], nodes: int = 3) -> str:
    lines = [f"{url}: {len(violations)} WCAG 2 A/AA violations (axe-core {AXE_VERSION})"]
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}, {len(v['nodes'])} elements): {v['help']}")
        for n in v["nodes"][:nodes]:
            summary = (n["summary"] or "").replace("\n", " ")[:300]
            lines.append(f"    {n['target']}: {summary}")
    return "\n".join(lines)


def site_pages(html_dir: Path) -> list[str]:
    """Every HTML page of the site, but for the folders of copied files (test_browser.NOT_PAGES)."""
    return sorted(p.relative_to(html_dir).as_posix() for p in html_dir.rglob("*.html")
                  if p.relative_to(html_dir).parts[0] not in NOT_PAGES)


# The pages not in the table of contents, each as a reader gets it: the search page with a
# query's results, the index, and the root page that redirects to the book.
EXTRA_PAGES = ["search.html?q=dropout", "genindex.html", "index.html"]


@pytest.mark.parametrize("page", PAGES + EXTRA_PAGES)
def test_page_has_no_wcag2_a_or_aa_violations(site, browser, axe, page):
    html_dir, base = site
    url = urljoin(base, page)
    assert (html_dir / page.split("?")[0]).exists(), f"{page} was not built"
    if page == "index.html":
        # The root page only redirects (a meta refresh): audit it, not the page it leads to.
        # A navigation answered by 204 No Content leaves the browser on the current page.
        browser.page.route("**/book/index.html", lambda route: route.fulfill(status=204))
        try:
            violations = axe_violations(browser, axe, url, settle=False)
        finally:
            browser.page.unroute("**/book/index.html")
    else:
        violations = axe_violations(browser, axe, url)
        if page.startswith("search.html"):
            browser.page.wait_for_function(
                "() => /found/i.test(document.querySelector('#search-results .search-summary')"
                "?.textContent || '')", timeout=20_000)
            violations = browser.page.evaluate(RUN_AXE_JS, TAGS)
    assert not violations, report(url, violations)


def test_every_page_of_the_site_is_audited(site):
    html_dir, _ = site
    audited = {p.split("?")[0] for p in PAGES + EXTRA_PAGES}
    missing = sorted(set(site_pages(html_dir)) - audited)
    assert not missing, f"pages of the built site the accessibility test does not visit: {missing}"


# --- The check itself: a page with violations is flagged, a clean one is not ------------------

BAD_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>violations</title></head><body><main>
<h1>Violations on purpose</h1>
<details><summary><span class="toggle"></span></summary><p>Hidden sections</p></details>
<div style="background: #f3f4f5"><pre><span style="color: #00d7ff">Total params: 109,386</span></pre></div>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
</main></body></html>
"""

CLEAN_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>clean</title></head><body><main>
<h1>No violations</h1>
<details><summary aria-label="Show or hide the sections of Chapter 1"><span></span></summary>
<p>Hidden sections</p></details>
<div style="background: #f3f4f5"><pre><span style="color: #006b80">Total params: 109,386</span></pre></div>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt="a dot">
</main></body></html>
"""


def test_axe_flags_a_page_with_violations_and_passes_a_clean_one(server, browser, axe,
                                                                 tmp_path_factory):
    base, mounts = server
    root = tmp_path_factory.mktemp("a11y")
    (root / "bad.html").write_text(BAD_PAGE, encoding="utf-8")
    (root / "clean.html").write_text(CLEAN_PAGE, encoding="utf-8")
    mounts[SELFCHECK + "a11y/"] = root

    bad = axe_violations(browser, axe, f"{base}{SELFCHECK}a11y/bad.html")
    assert {v["id"] for v in bad} >= {"summary-name", "color-contrast", "image-alt"}, \
        report("bad.html", bad)
    contrast = next(v for v in bad if v["id"] == "color-contrast")
    assert "1.5" in contrast["nodes"][0]["summary"], contrast  # the 1.56:1
    assert "summary-name" in report("bad.html", bad)

    clean = axe_violations(browser, axe, f"{base}{SELFCHECK}a11y/clean.html")
    assert clean == [], report("clean.html", clean)


# --- Coloured outputs in both colour modes -----------------------------------------------------

CHAPTERS = [p for p in PAGES if p.startswith("book/0")]

CONTRAST_IN_OUTPUTS_JS = r"""
async (mode) => {
  document.documentElement.dataset.theme = mode;
  document.documentElement.dataset.mode = mode;
  const outputs = document.querySelectorAll('.cell_output');
  if (!outputs.length) return [];
  const results = await axe.run({include: Array.from(outputs)},
      {runOnly: {type: 'rule', values: ['color-contrast']}, resultTypes: ['violations']});
  return results.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => ({target: n.target.join(' '), summary: n.failureSummary})),
  }));
}
"""


@pytest.mark.parametrize("page", CHAPTERS)
def test_outputs_are_readable_in_dark_mode(site, browser, axe, page):
    """The reader's colour-mode switch: outputs (Keras summaries) stay readable in dark mode."""
    _, base = site
    url = urljoin(base, page)
    load_with_axe(browser, axe, url)
    violations = browser.page.evaluate(CONTRAST_IN_OUTPUTS_JS, "dark")
    assert not violations, report(f"{url} (dark mode, outputs)", violations)


def _ansi_page(mode: str, background: str, stylesheets: list[str]) -> str:
    names = list(course_a11y.NAMED) + [f"C{i}" for i in range(256)]
    spans = []
    for name in names:  # as myst-nb's lexer writes them: plain, bold, and over a background
        spans.append(f'<span class="-Color -Color-{name}">{name}</span>')
        spans.append(f'<span class="-Color -Color-Bold -Color-Bold-{name}">{name}</span>')
    links = "".join(f'<link rel="stylesheet" href="{s}">' for s in stylesheets)
    return (f'<!DOCTYPE html><html lang="en" data-theme="{mode}"><head><meta charset="utf-8">'
            f'<title>ANSI {mode}</title>{links}</head><body style="background: {background}">'
            f'<main><h1 style="color: {"#000" if mode == "light" else "#fff"}">ANSI colours</h1>'
            f'<div class="highlight" style="background: {background}"><pre>'
            + " ".join(spans) + "</pre></div></main></body></html>")


def test_ansi_colours_of_text_outputs_are_readable(site, server, browser, axe, tmp_path_factory):
    """myst-nb's ANSI classes (no page has one today): with course-a11y.css each of the 272
    colours is readable on each mode's code backgrounds; with myst-nb's stylesheet alone not."""
    html_dir, base = site
    [mystnb] = [f"/_static/{p.name}" for p in (html_dir / "_static").glob("mystnb.*.css")]
    ours = f"/_static/{course_a11y.CSS_FILE}"
    assert (html_dir / ours.lstrip("/")).exists(), f"the build did not write {ours}"
    server_base, mounts = server
    root = tmp_path_factory.mktemp("ansi")
    mounts[SELFCHECK + "ansi/"] = root
    for mode, backgrounds in course_a11y.CODE_BACKGROUNDS.items():
        for i, background in enumerate(backgrounds):
            for name, sheets in (("before", [mystnb]), ("after", [mystnb, ours])):
                page = f"{mode}-{i}-{name}.html"
                (root / page).write_text(_ansi_page(mode, background, sheets), encoding="utf-8")
                found = axe_violations(browser, axe, f"{server_base}{SELFCHECK}ansi/{page}")
                if name == "before":
                    assert [v["id"] for v in found] == ["color-contrast"], report(page, found)
                else:
                    assert found == [], report(page, found)


def test_axe_tarball_is_the_pinned_one():
    """The cached tarball matches the pinned integrity; a tampered copy is refused."""
    data = fetch_axe().read_bytes()
    assert _integrity(data) == AXE_INTEGRITY
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        meta = json.load(tar.extractfile("package/package.json"))
    assert meta["name"] == "axe-core" and meta["version"] == AXE_VERSION
    assert _integrity(data + b"\0") != AXE_INTEGRITY


@pytest.fixture
def fake_registry(server, tmp_path, monkeypatch):
    """A local registry serving the cached tarball (or a tampered one), and an empty cache."""
    base, mounts = server
    data = fetch_axe().read_bytes()
    folder = tmp_path / "registry" / "axe-core" / "-"
    folder.mkdir(parents=True)
    me = sys.modules[__name__]
    monkeypatch.setattr(me, "AXE_CACHE", tmp_path / "cache")
    monkeypatch.setattr(me, "AXE_TARBALL", tmp_path / "cache" / AXE_TARBALL.name)
    mounts[SELFCHECK + "registry/"] = tmp_path / "registry"

    def serve(tarball: bytes):
        (folder / AXE_TARBALL.name).write_bytes(tarball)
        monkeypatch.setenv("npm_config_registry", f"{base}{SELFCHECK}registry/")
    return data, serve


def test_axe_is_downloaded_and_verified_where_npm_is_missing(fake_registry, monkeypatch):
    data, serve = fake_registry
    monkeypatch.setattr(shutil, "which", lambda name: None)
    serve(data[:-1] + bytes([data[-1] ^ 1]))  # one bit flipped
    with pytest.raises(RuntimeError, match="not the pinned"):
        fetch_axe()
    serve(data)
    me = sys.modules[__name__]
    assert fetch_axe() == me.AXE_TARBALL and me.AXE_TARBALL.read_bytes() == data


def test_unreachable_registry_is_reported_as_such(fake_registry, monkeypatch):
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")  # a closed port
    monkeypatch.setenv("npm_config_fetch_retries", "0")  # npm retries for a minute otherwise
    with pytest.raises(RegistryUnreachable):
        fetch_axe()  # by npm
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RegistryUnreachable):
        fetch_axe()  # by a plain download


if __name__ == "__main__":
    if sys.argv[1:] != ["--fetch-axe"]:
        sys.exit("usage: python tests/test_accessibility.py --fetch-axe")
    try:
        print(f"axe-core {AXE_VERSION}: {fetch_axe().relative_to(REPO)}")
    except RegistryUnreachable as exc:
        sys.exit(f"cannot fetch axe-core: {exc}")
