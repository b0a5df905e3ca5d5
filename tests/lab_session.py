"""A real JupyterLab in headless Chromium, for browser tests of what students see in the lab.

One context manager, :func:`lab_session` (a server alone: :func:`lab_server`)::

    with lab_session(root) as lab:         # root: the folder JupyterLab serves
        panel = lab.open_with("book/01-basics.md", "Notebook")
        assert lab.kernel_name(panel) == "Deep Learning (TensorFlow)"
        assert not lab.is_dirty(panel)
        lab.save(panel)

and, for a module-scoped pytest fixture (one server per test module)::

    @pytest.fixture(scope="module")
    def lab(tmp_path_factory):
        root = tmp_path_factory.mktemp("lab")   # ...copy the files under test into it...
        with lab_session(root) as lab:
            yield lab

It starts ``jupyter lab`` of this environment (``.venv/bin/jupyter``: the JupyterLab, lab and
server extensions, kernels and settings that ``make env`` installs) on a free port of 127.0.0.1
with a random token, in a process group of its own, and waits until ``/api/status`` answers.
The server gets fresh user folders (``JUPYTER_CONFIG_DIR``, ``JUPYTERLAB_SETTINGS_DIR``,
``JUPYTERLAB_WORKSPACES_DIR``, runtime, IPython), so neither the user's ``~/.jupyter`` nor an
earlier session (tabs restored from a workspace) changes what it shows: it reads only the
environment's configuration (``.venv/etc/jupyter``, ``.venv/share/jupyter``), as a student's
server does after ``make env``. The one user setting written turns off JupyterLab's news toast.
Chromium (Debian's, as in test_browser.py) proxies everything but 127.0.0.1 to a closed port, so
nothing reaches the network.

On exit, also after a failure, the browser is closed, the kernels are shut down through the
REST API, and the server's process group gets SIGTERM, then SIGKILL after a few seconds (a
kernel that outlives its server exits by itself: ipykernel watches ``JPY_PARENT_PID``). Every
wait has a timeout.
The server's log is ``lab.log()``; a failed start raises with its tail.

Helpers, methods of :class:`Lab` (a *panel* is the Playwright locator of a document's widget in
the main area, e.g. its ``.jp-NotebookPanel``):

- :meth:`Lab.open_by_double_click`, :meth:`Lab.open_with`: open a file from the file browser
  (double-click, or right-click → Open With → a viewer such as "Notebook"); return the panel;
- :meth:`Lab.is_notebook`; :meth:`Lab.kernel_name`: the kernel named in the toolbar once it is
  idle (:meth:`Lab.wait_kernel_idle`);
- :meth:`Lab.is_dirty` (the tab's modified dot), :meth:`Lab.save` (Ctrl+S, waits for the PUT);
- :meth:`Lab.click_toolbar_button` (by text, title or aria-label), :meth:`Lab.dialog_text`;
- :meth:`Lab.close_all` (discarding changes), :meth:`Lab.shutdown_kernels` (REST API),
  :meth:`Lab.api` (any REST request with the token).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

CHROMIUM = "/usr/bin/chromium"  # Debian's, as in test_browser.py (`make sysdeps`)
CHROMIUM_ARGS = ["--disable-gpu", "--disable-quic"]
JUPYTER = Path(sys.executable).parent / "jupyter"
START_TIMEOUT = 90    # s for the server to answer (about 10 on the loaded 2-core machine)
UI_TIMEOUT = 30_000   # ms for any element of the lab to appear, a kernel start included
STOP_TIMEOUT = 10     # s between SIGTERM and SIGKILL, and for SIGKILL
NO_KERNEL = {"", "No Kernel", "Kernel", "Unknown"}  # the toolbar's name before a kernel is connected


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _no_proxy_opener():
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Lab:
    """A running JupyterLab server and (with :func:`lab_session`) a Chromium page showing it."""

    base_url: str           # http://127.0.0.1:PORT/
    token: str
    root: Path              # the folder the server serves
    log_path: Path
    process: subprocess.Popen = field(repr=False)
    page: object = None     # a playwright Page with JupyterLab loaded

    # --- the server -------------------------------------------------------------------------

    def api(self, path: str, method: str = "GET", body: dict | None = None, timeout: float = 10):
        """A REST request (``path`` like ``api/sessions``); the decoded JSON answer, or None."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path.lstrip("/"), data=data, method=method,
                                         headers={"Authorization": f"token {self.token}",
                                                  "Content-Type": "application/json"})
        with _no_proxy_opener().open(request, timeout=timeout) as response:
            text = response.read()
        return json.loads(text) if text else None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def shutdown_kernels(self) -> None:
        """Shut down every session and its kernel (the tabs stay open, without a kernel)."""
        for session in self.api("api/sessions") or []:
            self.api(f"api/sessions/{session['id']}", method="DELETE")

    # --- the lab in the browser -------------------------------------------------------------

    def goto_lab(self) -> None:
        """(Re)load JupyterLab and wait until the file browser lists a folder."""
        self.page.goto(f"{self.base_url}lab?token={self.token}", timeout=UI_TIMEOUT)
        self.page.locator(".jp-DirListing-content").wait_for(timeout=UI_TIMEOUT)

    def _command(self, command: str, args: dict | None = None):
        # window.jupyterapp: the server runs with --LabApp.expose_app_in_browser=True.
        return self.page.evaluate("([c, a]) => window.jupyterapp.commands.execute(c, a).then(() => null)",
                                  [command, args or {}])

    def file_item(self, path: str):
        """Show ``path``'s folder in the file browser (its own go-to-path command, as a click on
        the breadcrumbs would); return the file's row."""
        folder, _, name = path.rpartition("/")
        self._command("filebrowser:go-to-path", {"path": "/" + folder})
        item = self.page.locator(".jp-DirListing-item").filter(
            has=self.page.locator(".jp-DirListing-itemText").get_by_text(name, exact=True))
        item.wait_for(timeout=UI_TIMEOUT)
        return item

    def _panel_for(self, path: str):
        name = path.rpartition("/")[2]
        tab = self.page.locator("#jp-main-dock-panel .lm-TabBar-tab").filter(
            has=self.page.locator(".lm-TabBar-tabLabel").get_by_text(name, exact=True))
        tab.wait_for(timeout=UI_TIMEOUT)
        panel = self.page.locator(f'#{tab.get_attribute("data-id")}')
        panel.wait_for(timeout=UI_TIMEOUT)
        return panel

    def tab(self, panel):
        """The tab of ``panel`` in the main area."""
        return self.page.locator(f'.lm-TabBar-tab[data-id="{panel.get_attribute("id")}"]')

    def open_by_double_click(self, path: str):
        """Double-click ``path`` in the file browser; return the panel that opens."""
        self.file_item(path).dblclick(timeout=UI_TIMEOUT)
        return self._panel_for(path)

    def open_with(self, path: str, viewer: str = "Notebook"):
        """Right-click ``path`` in the file browser, Open With → ``viewer``; return the panel."""
        self.file_item(path).click(button="right", timeout=UI_TIMEOUT)
        self.page.locator('.lm-Menu .lm-Menu-item:has-text("Open With")').first.hover(timeout=UI_TIMEOUT)
        self.page.locator(".lm-Menu .lm-Menu-item").filter(
            has=self.page.locator(".lm-Menu-itemLabel").get_by_text(viewer, exact=True)
        ).last.click(timeout=UI_TIMEOUT)
        return self._panel_for(path)

    def is_notebook(self, panel) -> bool:
        """Whether ``panel`` is a notebook (not e.g. the text editor)."""
        return "jp-NotebookPanel" in (panel.get_attribute("class") or "").split()

    def wait_kernel_idle(self, panel, timeout: float = UI_TIMEOUT) -> str:
        """Wait until the notebook's toolbar names a kernel and shows it idle; return the name.

        Returns early, with whatever the toolbar names (e.g. "No Kernel"), when a dialog opens
        instead (such as "Select Kernel") or at the timeout: the caller's assertion shows it.
        """
        name = panel.locator(".jp-KernelName")
        idle = panel.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]')
        deadline = time.monotonic() + timeout / 1000
        while True:
            shown = name.first.inner_text(timeout=timeout).strip() if name.count() else ""
            if shown not in NO_KERNEL and idle.count():
                return shown
            if self.page.locator(".jp-Dialog").count() or time.monotonic() > deadline:
                return shown
            self.page.wait_for_timeout(100)

    kernel_name = wait_kernel_idle

    def is_dirty(self, panel) -> bool:
        """Whether the tab of ``panel`` shows the modified (unsaved) dot."""
        return "jp-mod-dirty" in (self.tab(panel).get_attribute("class") or "").split()

    def save(self, panel, timeout: float = UI_TIMEOUT) -> None:
        """Ctrl+S in ``panel`` (its tab clicked first; Escape puts a notebook in command mode);
        wait for the server's answer to the save and for the tab to be clean."""
        self.tab(panel).click(timeout=timeout)
        self.page.keyboard.press("Escape")
        with self.page.expect_response(lambda r: "/api/contents/" in r.url and r.request.method == "PUT",
                                       timeout=timeout):
            self.page.keyboard.press("Control+s")
        deadline = time.monotonic() + timeout / 1000
        while self.is_dirty(panel):
            if time.monotonic() > deadline:
                raise TimeoutError("the tab is still marked modified after Ctrl+S")
            self.page.wait_for_timeout(100)

    def click_toolbar_button(self, panel, label: str) -> None:
        """Click the button of ``panel``'s toolbar whose text, title or aria-label is ``label``."""
        toolbar = panel.locator(".jp-Toolbar").first
        toolbar.locator(f'button:has-text("{label}"), [title="{label}"], [aria-label="{label}"]'
                        ).first.click(timeout=UI_TIMEOUT)

    def dialog_text(self, timeout: float = UI_TIMEOUT) -> str:
        """The text of the dialog that is open or opens within ``timeout`` ms."""
        dialog = self.page.locator(".jp-Dialog").last
        dialog.wait_for(timeout=timeout)
        return dialog.inner_text(timeout=timeout)

    def close_dialog(self) -> None:
        """Dismiss the open dialogs with their OK button (a result, such as Validate's)."""
        while self.page.locator(".jp-Dialog").count():
            self.page.locator(".jp-Dialog").last.locator('button:has-text("Ok"), button:has-text("OK")'
                                                         ).first.click(timeout=UI_TIMEOUT)
            self.page.wait_for_timeout(200)

    def close_all(self) -> None:
        """Close every tab of the main area, discarding unsaved changes."""
        self._command("application:close-all")
        deadline = time.monotonic() + UI_TIMEOUT / 1000
        while self.page.locator(".jp-Dialog").count() and time.monotonic() < deadline:
            self.page.locator(".jp-Dialog").last.locator(
                'button:has-text("Discard"), button:has-text("Don\'t Save"), button:has-text("Close")'
            ).first.click(timeout=UI_TIMEOUT)
            self.page.wait_for_timeout(200)


def _wait_ready(lab: Lab, deadline: float) -> None:
    while True:
        if lab.process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {lab.process.returncode}:\n{lab.log()[-4000:]}")
        try:
            lab.api("api/status", timeout=2)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"jupyter lab did not answer in {START_TIMEOUT} s:\n{lab.log()[-4000:]}")
            time.sleep(0.25)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, SIGKILL if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=STOP_TIMEOUT)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def lab_server(root: str | os.PathLike, extra_args: tuple[str, ...] = (),
               env: dict[str, str] | None = None) -> Iterator[Lab]:
    """Start ``jupyter lab`` serving ``root``; yield a :class:`Lab` (``page`` None).

    ``extra_args`` go on the command line (e.g. ``--config=x.json``), ``env`` into the server's
    environment. The server runs in ``root``, as ``jupyter lab`` started there would.
    """
    root = Path(root).resolve()
    state = Path(tempfile.mkdtemp(prefix="lab-session-"))
    port, token = free_port(), secrets.token_hex(16)
    server_env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "JPY_"))}
    server_env.update({
        "JUPYTER_CONFIG_DIR": str(state / "config"),              # not ~/.jupyter
        "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(state / "user-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),   # no tabs restored from before
        "IPYTHONDIR": str(state / "ipython"),
        "PYTHONUNBUFFERED": "1",
    }, **(env or {}))
    # No "Would you like to get notified about official Jupyter news?" toast over the page.
    news = state / "user-settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false"}')
    log_path = state / "jupyter-lab.log"
    command = [str(JUPYTER), "lab", "--ServerApp.open_browser=False", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               "--LabApp.expose_app_in_browser=True",  # window.jupyterapp, for the helpers' commands
               "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               *(["--allow-root"] if os.geteuid() == 0 else []),  # CI and containers run as root
               *extra_args]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=root, env=server_env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    lab = Lab(base_url=f"http://127.0.0.1:{port}/", token=token, root=root, log_path=log_path,
              process=process)
    try:
        _wait_ready(lab, time.monotonic() + START_TIMEOUT)
        yield lab
    finally:
        try:  # kernels run in sessions of their own: shut them down through the server first
            lab.shutdown_kernels()
        except Exception:  # a dead or hung server: ipykernel exits when its parent dies
            pass
        _stop(process)
        if os.environ.get("LAB_SESSION_KEEP"):  # to read the server's log after a failure
            print(f"lab session state kept in {state}", file=sys.stderr)
        else:
            shutil.rmtree(state, ignore_errors=True)


@contextmanager
def lab_session(root: str | os.PathLike, extra_args: tuple[str, ...] = (),
                env: dict[str, str] | None = None, viewport=(1400, 900)) -> Iterator[Lab]:
    """:func:`lab_server` and headless Chromium with JupyterLab loaded in ``lab.page``."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: `make sysdeps` installs Debian's chromium")
    with lab_server(root, extra_args, env) as lab, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=UI_TIMEOUT,
                                     # Playwright would proxy loopback too, hence the bypass.
                                     proxy={"server": "http://127.0.0.1:9", "bypass": "127.0.0.1"})
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            context.set_default_timeout(UI_TIMEOUT)
            lab.page = context.new_page()
            lab.goto_lab()
            yield lab
        finally:
            browser.close()
