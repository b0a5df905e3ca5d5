"""Publishing: the GitHub workflows (CI, and the site on the gh-pages branch) and the launch
links of the published site.

- The workflows are valid (check-jsonschema's vendored GitHub-workflow schema, offline) and
  tidy (yamllint with the repository's .yamllint.yaml); both checks are shown to reject a
  broken copy of each workflow.
- They run the README's commands (CI: `.ci/run`, which is `make test`; Pages: `make book`),
  publish `_build/html` to the branch the Colab buttons expect (`course_pages_branch`), cache
  uv's downloads and jupyter-cache, and leave the Debian packages to the Makefile.
- Every launch URL in every page of the built site (Colab, Binder, JupyterHub/nbgitpuller)
  follows that service's documented URL pattern and names a file that exists: in the
  repository for the source branch, in the published tree for gh-pages.

The workflow checks are fast. The launch-URL checks read the site of the ``built_book``
fixture (the build that tests/test_site.py uses, once per session) and are marked slow; point
them at another build with ``DLCOURSE_SITE_BUILD=/path/to/_build`` (as in tests/test_site.py).
tests/test_site.py checks the exact buttons of the chapter and exercise pages; this module
checks the pattern and the target of every launch link anywhere in the site.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from conftest import OFFLINE_ENV, REPO

WORKFLOWS = REPO / ".github" / "workflows"
BIN = Path(sys.executable).parent
CONFIG = yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))
REPO_URL = CONFIG["repository"]["url"].rstrip("/")
BRANCH = CONFIG["repository"]["branch"]
PAGES_BRANCH = CONFIG["sphinx"]["config"]["course_pages_branch"]
LAUNCH = CONFIG["launch_buttons"]
ORG, NAME = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?", REPO_URL).groups()
# Where myst-nb keeps jupyter-cache when _config.yml sets no execute.cache: next to the html
# output folder (myst_nb/sphinx_ext.py: Path(app.outdir).parent / ".jupyter_cache").
JUPYTER_CACHE = "_build/.jupyter_cache"
UV_CACHE = "~/.cache/uv"

# The slow marker, as conftest.py gives every test that needs the built book (these reach the
# fixture through html_dir, at run time, so conftest's fixturenames rule cannot see it).
needs_book = pytest.mark.slow


def workflow_files() -> list[Path]:
    return sorted(p for p in WORKFLOWS.iterdir() if p.suffix in (".yml", ".yaml"))


def load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    # PyYAML reads the key `on` as the boolean true (YAML 1.1); GitHub reads it as "on".
    if True in data:
        data["on"] = data.pop(True)
    return data


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def run_scripts(workflow: dict) -> list[str]:
    return [step["run"] for step in steps(workflow) if "run" in step]


def uses(workflow: dict, action: str) -> list[dict]:
    return [s for s in steps(workflow) if s.get("uses", "").split("@")[0] == action]


# --- the workflows are valid GitHub workflows and pass yamllint ---------------------------

SCHEMAS = ["vendor.github-workflows", "custom.github-workflows-require-timeout"]


def check_jsonschema(schema: str, paths: list[Path]) -> dict[str, str]:
    """Run ``check-jsonschema --builtin-schema SCHEMA`` once over ``paths``: the failures,
    file name -> messages (a file that passes is absent)."""
    # The builtin schemas ship inside the package; OFFLINE_ENV sends any HTTP request to a
    # closed port, so a check that tried to download something would fail.
    proc = subprocess.run([str(BIN / "check-jsonschema"), "-o", "json", "--builtin-schema", schema,
                           *map(str, paths)],
                          env=dict(os.environ, **OFFLINE_ENV), capture_output=True, text=True,
                          timeout=300)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        return {str(p): f"check-jsonschema did not run ({proc.returncode}): {proc.stdout}{proc.stderr}"
                for p in paths}
    failures: dict[str, str] = {}
    for error in report.get("errors", []) + report.get("parse_errors", []):
        best = error.get("best_match", {})
        failures[error["filename"]] = failures.get(error["filename"], "") + \
            f"{best.get('path', error.get('path', ''))}: {best.get('message', error['message'])[:300]}\n"
    assert (proc.returncode == 0) == (not failures), proc.stdout + proc.stderr
    return failures


def yamllint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "yamllint"), "--strict", "-c", str(REPO / ".yamllint.yaml"),
                           "-f", "parsable", str(path)],
                          # .yamllint.yaml's ignore-from-file (.gitignore) is relative to the
                          # current folder: run from the repository, whatever pytest's cwd is
                          # (CI failed with FileNotFoundError: '.gitignore').
                          cwd=REPO, capture_output=True, text=True, timeout=120)


# Each mutant is the real ci.yml with one edit, and the schema that must reject it.
SCHEMA_MUTANTS = {
    "no runs-on": ("    runs-on: ubuntu-24.04\n", "", "vendor.github-workflows"),
    "misspelt steps": ("    steps:\n", "    step:\n", "vendor.github-workflows"),
    "misspelt uses": ("      - uses: actions/checkout@", "      - use: actions/checkout@",
                      "vendor.github-workflows"),
    "timeout as text": ("timeout-minutes: 90", "timeout-minutes: ninety", "vendor.github-workflows"),
    "no timeout": ("    timeout-minutes: 90\n", "", "custom.github-workflows-require-timeout"),
}


def mutate(tmp: Path, mutants: dict, name: str) -> Path | None:
    """ci.yml with the mutant's edit, in its own folder; None if the edit no longer applies."""
    old, new = mutants[name][:2]
    text = (WORKFLOWS / "ci.yml").read_text(encoding="utf-8")
    if old not in text:
        return None
    path = tmp / re.sub(r"\W+", "-", name) / "ci.yml"
    path.parent.mkdir()
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def schema_check(tmp_path_factory):
    """Each schema run once over every workflow and every mutant (check-jsonschema takes
    seconds to start): schema -> failures, and mutant -> its file."""
    tmp = tmp_path_factory.mktemp("workflow-mutants")
    mutants = {name: mutate(tmp, SCHEMA_MUTANTS, name) for name in SCHEMA_MUTANTS}
    files = workflow_files() + [f for f in mutants.values() if f]
    return {schema: check_jsonschema(schema, files) for schema in SCHEMAS}, mutants


def test_the_workflows_exist():
    names = {p.name for p in workflow_files()}
    assert {"ci.yml", "pages.yml"} <= names, names


# Every file of the folder, so that a workflow added later is checked too.
@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
@pytest.mark.parametrize("schema", SCHEMAS)
def test_workflow_matches_the_schema(schema_check, path, schema):
    failures, _ = schema_check
    assert str(path) not in failures[schema], f"{path.name} fails {schema}:\n{failures[schema][str(path)]}"


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_workflow_passes_yamllint(path):
    proc = yamllint(path)
    assert proc.returncode == 0, f"yamllint {path.name}:\n{proc.stdout}{proc.stderr}"


@pytest.mark.parametrize("mutant", SCHEMA_MUTANTS)
def test_the_schema_check_rejects_a_broken_workflow(schema_check, mutant):
    failures, files = schema_check
    schema = SCHEMA_MUTANTS[mutant][2]
    assert files[mutant], f"the mutant {mutant!r} no longer applies to ci.yml: update it"
    assert str(files[mutant]) in failures[schema], f"{schema} accepted ci.yml with {mutant}"


YAMLLINT_MUTANTS = {
    "long line": ("name: CI\n", "name: CI " + "x" * 120 + "\n", "line-length"),
    "trailing space": ("name: CI\n", "name: CI  \n", "trailing-spaces"),
    "duplicate key": ("name: CI\n", "name: CI\nname: CI again\n", "key-duplicates"),
    "yes for true": ("persist-credentials: false", "persist-credentials: no", "truthy"),
}


@pytest.mark.parametrize("mutant", YAMLLINT_MUTANTS)
def test_yamllint_rejects_a_broken_workflow(tmp_path, mutant):
    rule = YAMLLINT_MUTANTS[mutant][2]
    broken = mutate(tmp_path, YAMLLINT_MUTANTS, mutant)
    assert broken, f"the mutant {mutant!r} no longer applies to ci.yml: update it"
    proc = yamllint(broken)
    assert proc.returncode != 0 and f"({rule})" in proc.stdout, \
        f"yamllint accepted ci.yml with {mutant} (expected rule {rule}):\n{proc.stdout}{proc.stderr}"


# --- the workflows run the README's commands ---------------------------------------------

def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Two commands\n(.*?)^## ", text, re.S | re.M)
    assert section, "README.md has no 'Two commands' section"
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section.group(1), re.S)]


def test_the_readme_commands_are_the_ones_the_workflows_run():
    assert readme_commands() == ["make book", "make test"]
    assert "CI runs `.ci/run`, which runs exactly `make test`." in (REPO / "README.md").read_text(encoding="utf-8")
    assert re.search(r"^exec make test$", (REPO / ".ci" / "run").read_text(encoding="utf-8"), re.M)


def runs_command(scripts: list[str], command: str) -> bool:
    """Whether a run script invokes ``command`` as a command (not `make book-sysdeps`)."""
    pattern = rf"(?:^|[\s;&|(]){re.escape(command)}(?=$|[\s;&|)])"
    return any(re.search(pattern, script, re.M) for script in scripts)


def test_ci_runs_the_test_command_on_pushes_and_pull_requests():
    ci = load(WORKFLOWS / "ci.yml")
    assert {"push", "pull_request"} <= set(ci["on"]), ci["on"]
    for trigger in ("push", "pull_request"):  # no branch filter: every push, every pull request
        assert not (ci["on"][trigger] or {}).get("branches"), f"ci.yml: {trigger} is filtered"
    scripts = run_scripts(ci)
    assert runs_command(scripts, "./.ci/run") or runs_command(scripts, ".ci/run") \
        or runs_command(scripts, "make test"), f"ci.yml does not run .ci/run: {scripts}"
    (job,) = ci["jobs"].values()
    assert job["runs-on"].startswith("ubuntu-"), job["runs-on"]
    assert job["timeout-minutes"] == 90


def test_pages_builds_the_book_and_publishes_it_to_the_colab_branch():
    pages = load(WORKFLOWS / "pages.yml")
    assert pages["on"]["push"]["branches"] == [BRANCH], pages["on"]
    assert "workflow_dispatch" in pages["on"]
    assert pages["permissions"] == {"contents": "write"}
    all_steps = steps(pages)
    build = [i for i, s in enumerate(all_steps) if runs_command([s.get("run", "")], "make book")]
    assert build, "pages.yml does not run `make book`"
    (deploy,) = uses(pages, "peaceiris/actions-gh-pages")
    with_ = deploy["with"]
    assert with_["publish_branch"] == PAGES_BRANCH == "gh-pages", with_
    assert os.path.normpath(with_["publish_dir"]) == "_build/html", with_
    assert with_["github_token"] == "${{ secrets.GITHUB_TOKEN }}"
    assert all_steps.index(deploy) > build[0], "the site is published before it is built"
    # GitHub Pages runs Jekyll unless the branch has a .nojekyll, and Jekyll drops _sources/
    # and _static/. The action adds one by default; the workflow makes it explicit.
    assert not with_.get("enable_jekyll") and not with_.get("disable_nojekyll"), with_
    before = all_steps[build[0]:all_steps.index(deploy)]
    assert runs_command([s.get("run", "") for s in before], "touch _build/html/.nojekyll")
    # The Colab targets are checked before publishing.
    assert any("_build/html/_sources/" in s.get("run", "") for s in before)


def test_python_is_3_11():
    for path in workflow_files():
        (setup,) = uses(load(path), "actions/setup-python")
        assert str(setup["with"]["python-version"]) == "3.11", path.name


def test_the_workflows_leave_debian_packages_to_the_makefile():
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    packages = set()
    for var in ("BOOK_PACKAGES", "TEST_PACKAGES"):
        packages |= set(re.search(rf"^{var} := (.*)$", makefile, re.M).group(1).split())
    assert packages
    for path in workflow_files():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\bapt(-get)?\s+install\b|\bdpkg\s+-i\b", text), \
            f"{path.name} installs Debian packages itself: use make sysdeps / make env"
        named = sorted(p for p in packages if re.search(rf"(?<![\w-]){re.escape(p)}(?![\w-])", text))
        assert not named, f"{path.name} names Debian packages {named}: the Makefile lists them"


@pytest.mark.parametrize("name", ["ci.yml", "pages.yml"])
def test_caches_uv_and_jupyter_cache_keyed_on_the_lock(name):
    assert not CONFIG.get("execute", {}).get("cache"), "_config.yml moved the jupyter cache"
    caches = {step["with"]["path"]: step["with"] for step in uses(load(WORKFLOWS / name), "actions/cache")}
    assert set(caches) >= {UV_CACHE, JUPYTER_CACHE}, f"{name}: cached paths {sorted(caches)}"
    uv_key = caches[UV_CACHE]["key"]
    assert "hashFiles('requirements.lock')" in uv_key.replace('"', "'"), f"{name}: uv key {uv_key}"
    jc_key = caches[JUPYTER_CACHE]["key"].replace('"', "'")
    hashed = re.search(r"hashFiles\(([^)]*)\)", jc_key)
    assert hashed, f"{name}: the jupyter-cache key hashes nothing: {jc_key}"
    globs = set(re.findall(r"'([^']+)'", hashed.group(1)))
    assert globs >= {"book/**", "dlcourse/**", "requirements.lock"}, f"{name}: {jc_key}"
    for with_ in caches.values():  # a stale cache is better than none: it is updated, not trusted
        assert with_.get("restore-keys"), f"{name}: {with_['path']} has no restore-keys"


def test_actions_are_pinned_to_commits():
    for path in workflow_files():
        for line in path.read_text(encoding="utf-8").splitlines():
            match = re.search(r"\buses:\s*(\S+)", line)
            if match:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", match.group(1)), \
                    f"{path.name}: {match.group(1)} is not pinned to a commit"
                assert re.search(r"#\s*v\d+(\.\d+)*\s*$", line), f"{path.name}: say which version: {line}"


def test_ci_runs_the_tests_as_root_and_apt_through_sudo():
    """The sandbox needs root (README, Instructors); `make sysdeps` uses sudo when not root."""
    scripts = run_scripts(load(WORKFLOWS / "ci.yml"))
    assert runs_command(scripts, "make sysdeps")
    (test,) = [s for s in scripts if ".ci/run" in s]
    assert re.match(r"sudo\b", test) and 'PATH=$PATH' in test, test


# --- every launch URL of the site follows its service's pattern and names a real file ------

# Colab (googlecolab/colabtools, notebooks/colab-github-demo.ipynb):
#   https://colab.research.google.com/github/<org>/<repo>/blob/<branch>/<path/to/notebook.ipynb>
COLAB_RE = re.compile(r"https://colab\.research\.google\.com/github/(?P<org>[^/?#]+)/(?P<repo>[^/?#]+)"
                      r"/blob/(?P<branch>[^/?#]+)/(?P<path>[^?#]+\.ipynb)")
# Binder (binderhub docs: /v2/<provider_prefix>/<spec>, GitHub spec <user>/<repo>/<ref>;
# launch parameter urlpath, here JupyterLab's lab/tree/<path>):
#   https://mybinder.org/v2/gh/<org>/<repo>/<ref>?urlpath=lab/tree/<path>
BINDER_RE = re.compile(r"https://mybinder\.org/v2/gh/(?P<org>[^/?#]+)/(?P<repo>[^/?#]+)/(?P<ref>[^/?#]+)"
                       r"(?:\?(?P<query>[^#]*))?")
# nbgitpuller (docs/topic/url-options.rst, the link generator docs/_static/link_gen/link.js):
#   <hub>/hub/user-redirect/git-pull?repo=<git URL>&branch=<branch>&urlpath=lab/tree/<dir>/<path>
#   where <dir> is targetPath, by default the last part of the repo URL (nbgitpuller/handlers.py).
NBGITPULLER_PARAMS = {"repo", "branch", "urlpath", "depth", "targetPath", "targetpath", "backup"}


@lru_cache(maxsize=1)
def tracked_files() -> frozenset[str]:
    """The repository's files on its branch: git's index, else (not a checkout) the work tree."""
    proc = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, text=True)
    if proc.returncode == 0 and proc.stdout:
        return frozenset(proc.stdout.split("\0")) - {""}
    return frozenset(str(p.relative_to(REPO)) for p in REPO.rglob("*") if p.is_file())


def in_repository(path: str) -> bool:
    return path in tracked_files() and (REPO / path).is_file()


def lab_tree_path(urlpath: str) -> str | None:
    """<path> of a JupyterLab URL path lab/tree/<path> (with or without a leading /)."""
    match = re.fullmatch(r"/?lab/tree/([^?#]+)(?:\?autodecode)?", urlpath)
    return match.group(1) if match else None


def check_launch_url(url: str, html_dir: Path) -> list[str]:
    """What is wrong with a launch URL (an empty list: nothing), against the documented
    pattern of its service and the repository (branch `main`) or the published tree
    (`gh-pages`, which is _build/html)."""
    parts = urlsplit(url)
    if parts.netloc == "colab.research.google.com":
        match = COLAB_RE.fullmatch(url)
        if not match:
            return [f"not a Colab GitHub URL (/github/<org>/<repo>/blob/<branch>/<file>.ipynb): {url}"]
        problems = []
        if (match["org"], match["repo"]) != (ORG, NAME):
            problems.append(f"Colab opens {match['org']}/{match['repo']}, not {ORG}/{NAME}: {url}")
        path = match["path"]
        if match["branch"] == BRANCH:
            if not in_repository(path):
                problems.append(f"Colab opens {path}, not a file of the repository ({BRANCH}): {url}")
        elif match["branch"] == PAGES_BRANCH:
            if not (html_dir / path).is_file():
                problems.append(f"Colab opens {path}, not in the published site ({PAGES_BRANCH}): {url}")
        else:
            problems.append(f"Colab opens branch {match['branch']!r}, neither {BRANCH} nor {PAGES_BRANCH}: {url}")
        return problems

    if parts.netloc == "mybinder.org":
        match = BINDER_RE.fullmatch(url)
        if not match:
            return [f"not a Binder GitHub URL (/v2/gh/<org>/<repo>/<ref>?urlpath=...): {url}"]
        problems = []
        if (match["org"], match["repo"]) != (ORG, NAME):
            problems.append(f"Binder builds {match['org']}/{match['repo']}, not {ORG}/{NAME}: {url}")
        if match["ref"] != BRANCH:  # gh-pages has no binder/ environment
            problems.append(f"Binder builds ref {match['ref']!r}, not {BRANCH}: {url}")
        query = parse_qs(match["query"] or "", keep_blank_values=True)
        if set(query) != {"urlpath"} or len(query["urlpath"]) != 1:
            return problems + [f"Binder URL should have one urlpath parameter: {url}"]
        path = lab_tree_path(query["urlpath"][0])
        if path is None:
            problems.append(f"Binder urlpath is not lab/tree/<path> (notebook_interface jupyterlab): {url}")
        elif not in_repository(path):
            problems.append(f"Binder opens {path}, not a file of the repository: {url}")
        return problems

    hub = urlsplit(LAUNCH["jupyterhub_url"])
    if parts.path.endswith("/git-pull") or "/git-pull?" in url:
        problems = []
        if (parts.scheme, parts.netloc) != (hub.scheme, hub.netloc) \
                or parts.path != hub.path.rstrip("/") + "/hub/user-redirect/git-pull":
            problems.append(f"not {LAUNCH['jupyterhub_url'].rstrip('/')}/hub/user-redirect/git-pull: {url}")
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = set(query) - NBGITPULLER_PARAMS
        if unknown:
            problems.append(f"nbgitpuller has no parameter {sorted(unknown)}: {url}")
        if any(len(v) != 1 for v in query.values()):
            problems.append(f"a repeated nbgitpuller parameter: {url}")
        if query.get("repo") != [REPO_URL]:
            problems.append(f"nbgitpuller repo should be {REPO_URL}: {url}")
        if query.get("branch") != [BRANCH]:  # nbgitpuller defaults to master
            problems.append(f"nbgitpuller branch should be {BRANCH}: {url}")
        target = (query.get("targetPath") or query.get("targetpath")
                  or [query.get("repo", [""])[0].rstrip("/").split("/")[-1]])[0]
        path = lab_tree_path(query.get("urlpath", [""])[0])
        if path is None or not path.startswith(f"{target}/"):
            problems.append(f"nbgitpuller urlpath should be lab/tree/{target}/<path>: {url}")
        elif not in_repository(path[len(target) + 1:]):
            problems.append(f"nbgitpuller opens {path[len(target) + 1:]}, not a file of the repository: {url}")
        return problems

    return [f"not a launch URL: {url}"]


def is_launch_url(url: str) -> bool:
    """A link into Colab or Binder (not their home page or badge images), or to nbgitpuller."""
    parts = urlsplit(url)
    if parts.netloc.endswith(("colab.research.google.com", "mybinder.org")):
        return parts.path not in ("", "/") and not parts.path.startswith(("/assets/", "/static/")) \
            and not parts.path.endswith((".svg", ".png"))
    return "git-pull" in parts.path


class Links(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.hrefs += [value for name, value in attrs if name == "href" and value]


# Launch-looking URLs anywhere in a page's text (a script, an onclick), to catch those that
# are not an href.
RAW_LAUNCH = re.compile(r"https?://(?:[\w.-]*colab\.research\.google\.com|[\w.-]*mybinder\.org)/[^\s\"'<>]*"
                        r"|https?://[^\s\"'<>]*/git-pull\?[^\s\"'<>]*")


def launch_urls(page: Path) -> tuple[list[str], list[str]]:
    """(launch URLs among the page's hrefs, launch URLs in its text that are no href)."""
    text = page.read_text(encoding="utf-8")
    parser = Links()
    parser.feed(text)
    hrefs = [h for h in parser.hrefs if is_launch_url(h)]
    raw = (html.unescape(m) for m in RAW_LAUNCH.findall(text))
    stray = [u for u in raw if is_launch_url(u) and u not in hrefs]
    return hrefs, stray


def source_pages() -> list[str]:
    """The pages with launch buttons: the chapters and the exercise notebooks."""
    chapters = [f"book/{p.stem}" for p in sorted((REPO / "book").glob("[0-9][0-9]-*.md"))]
    notebooks = [str(p.relative_to(REPO).with_suffix("")) for p in sorted((REPO / "exercises").glob("*/*.ipynb"))]
    return chapters + notebooks


@needs_book
def test_every_launch_url_of_the_site_follows_its_pattern_and_opens_a_file(html_dir):
    pages = sorted(html_dir.rglob("*.html"))
    assert pages, f"no pages in {html_dir}"
    problems, found = [], {}
    for page in pages:
        hrefs, stray = launch_urls(page)
        name = str(page.relative_to(html_dir))
        found[name] = hrefs
        problems += [f"{name}: a launch URL outside an href: {u}" for u in stray]
        problems += [f"{name}: {p}" for url in sorted(set(hrefs)) for p in check_launch_url(url, html_dir)]
    assert not problems, f"{len(problems)} bad launch URLs:\n" + "\n".join(problems)
    # Not vacuous: each page with launch buttons has one of each service.
    for source in source_pages():
        urls = found.get(f"{source}.html", [])
        services = {urlsplit(u).netloc for u in urls}
        wanted = {"colab.research.google.com", "mybinder.org", urlsplit(LAUNCH["jupyterhub_url"]).netloc}
        assert wanted <= services, \
            f"{source}.html: launch URLs {urls}"


@needs_book
def test_the_published_tree_has_what_the_chapters_colab_buttons_open(html_dir):
    """Each chapter's Colab button opens _sources/book/<chapter>.ipynb on gh-pages: a notebook
    with its outputs (Colab cannot open the .md)."""
    import nbformat
    for chapter in sorted((REPO / "book").glob("[0-9][0-9]-*.md")):
        path = html_dir / "_sources" / "book" / f"{chapter.stem}.ipynb"
        assert path.is_file(), f"missing {path}"
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and any(c.outputs for c in code), f"{path}: no executed code cells"


# The checker itself, on synthetic URLs (no build needed: html_dir is a folder made here).

@pytest.fixture
def fake_site(tmp_path) -> Path:
    (tmp_path / "_sources" / "book").mkdir(parents=True)
    (tmp_path / "_sources" / "book" / "01-basics.ipynb").write_text("{}", encoding="utf-8")
    return tmp_path


COLAB = f"https://colab.research.google.com/github/{ORG}/{NAME}/blob"
BINDER = f"https://mybinder.org/v2/gh/{ORG}/{NAME}"
HUB = LAUNCH["jupyterhub_url"].rstrip("/")
COLAB_GITHUB = f"https://colab.research.google.com/github/{ORG}"
PS1 = "exercises/ps1-basics/ps1-basics.ipynb"
GOOD_URLS = [
    f"{COLAB}/{BRANCH}/exercises/ps1-basics/ps1-basics.ipynb",
    f"{COLAB}/{PAGES_BRANCH}/_sources/book/01-basics.ipynb",
    f"{BINDER}/{BRANCH}?urlpath=lab/tree/book/01-basics.md",
    f"{HUB}/hub/user-redirect/git-pull?repo={REPO_URL}&urlpath=lab/tree/{NAME}/book/01-basics.md&branch={BRANCH}",
    f"{HUB}/hub/user-redirect/git-pull?repo=https%3A%2F%2Fgithub.com%2F{ORG}%2F{NAME}"
    f"&urlpath=lab%2Ftree%2F{NAME}%2Fexercises%2Fps1-basics%2Fps1-basics.ipynb&branch={BRANCH}",
]
BAD_URLS = {
    "Colab, wrong branch": f"{COLAB}/master/exercises/ps1-basics/ps1-basics.ipynb",
    "Colab, file not in the repository": f"{COLAB}/{BRANCH}/exercises/ps1-basics/ps9.ipynb",
    "Colab, gh-pages file not published": f"{COLAB}/{PAGES_BRANCH}/_sources/book/02-overfitting.ipynb",
    "Colab, no blob": f"{COLAB_GITHUB}/{NAME}/{BRANCH}/{PS1}",
    "Colab, tree for blob": f"{COLAB_GITHUB}/{NAME}/tree/{BRANCH}/{PS1}",
    "Colab, a .md": f"{COLAB}/{BRANCH}/book/01-basics.md",
    "Colab, other repository": f"{COLAB_GITHUB}/other/blob/{BRANCH}/{PS1}",
    "Colab, the .md source on gh-pages": f"{COLAB}/{PAGES_BRANCH}/book/01-basics.md",
    "Binder, wrong branch": f"{BINDER}/{PAGES_BRANCH}?urlpath=lab/tree/book/01-basics.md",
    "Binder, missing file": f"{BINDER}/{BRANCH}?urlpath=lab/tree/book/99-nothing.md",
    "Binder, not lab/tree": f"{BINDER}/{BRANCH}?urlpath=book/01-basics.md",
    "Binder, v1 URL": f"https://mybinder.org/repo/{ORG}/{NAME}",
    "Binder, no ref": f"https://mybinder.org/v2/gh/{ORG}/{NAME}?urlpath=lab/tree/book/01-basics.md",
    "Binder, unknown parameter": f"{BINDER}/{BRANCH}?urlpath=lab/tree/book/01-basics.md&x=1",
    "hub, no branch (nbgitpuller's default is master)":
        f"{HUB}/hub/user-redirect/git-pull?repo={REPO_URL}&urlpath=lab/tree/{NAME}/book/01-basics.md",
    "hub, path without the clone's folder":
        f"{HUB}/hub/user-redirect/git-pull?repo={REPO_URL}&urlpath=lab/tree/book/01-basics.md&branch={BRANCH}",
    "hub, missing file":
        f"{HUB}/hub/user-redirect/git-pull?repo={REPO_URL}&urlpath=lab/tree/{NAME}/book/x.md&branch={BRANCH}",
    "hub, other hub":
        f"https://other.example.org/hub/user-redirect/git-pull?repo={REPO_URL}"
        f"&urlpath=lab/tree/{NAME}/book/01-basics.md&branch={BRANCH}",
    "hub, no user-redirect":
        f"{HUB}/git-pull?repo={REPO_URL}&urlpath=lab/tree/{NAME}/book/01-basics.md&branch={BRANCH}",
    "hub, misspelt parameter":
        f"{HUB}/hub/user-redirect/git-pull?repo={REPO_URL}&url_path=lab/tree/{NAME}/book/01-basics.md"
        f"&branch={BRANCH}",
}


@pytest.mark.parametrize("url", GOOD_URLS)
def test_the_checker_accepts_good_urls(fake_site, url):
    assert is_launch_url(url)
    assert check_launch_url(url, fake_site) == []


@pytest.mark.parametrize("case", BAD_URLS)
def test_the_checker_rejects_bad_urls(fake_site, case):
    url = BAD_URLS[case]
    assert is_launch_url(url), f"{case}: {url} would not be checked"
    assert check_launch_url(url, fake_site), f"{case}: accepted {url}"


def test_launch_urls_are_found_in_hrefs_and_anywhere_else(tmp_path):
    good = GOOD_URLS[2]
    page = tmp_path / "p.html"
    page.write_text(f'<a class="btn" href="{html.escape(GOOD_URLS[3])}">hub</a>'
                    f'<a href="https://colab.research.google.com/">Colab home</a>'
                    f'<button onclick="window.open(\'{good}\')">Binder</button>', encoding="utf-8")
    hrefs, stray = launch_urls(page)
    assert hrefs == [GOOD_URLS[3]]  # unescaped (&amp; -> &); Colab's home page is no launch URL
    assert stray == [good]
