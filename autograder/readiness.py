"""Readiness check: run every chapter and every solution notebook in one data profile.

    .venv/bin/python -m autograder.readiness --profile full --out readiness.md

writes ``readiness.md`` and ``readiness.json``: the device the kernels see, and for every
notebook its status, time, final accuracies (from the Keras ``History`` objects it leaves
behind) and, for solutions, each autograded test cell's result. With ``--profile full`` on
a networked GPU kernel it is the instructor's check before a term; CI runs it with
``--profile small`` on a CPU, on a subset (``--only``), as a smoke test of this script.

Notebooks are executed the way the book build and nbgrader do it: with nbclient, in the
``python3`` kernel of this environment, one fresh kernel per notebook, chapters (MyST
Markdown read by jupytext) from ``book/``, solutions from their assignment folder. The
profile reaches the kernels through ``DLCOURSE_PROFILE``.

Exit status: 0 when every notebook ran cleanly, 1 when any failed (the run goes on after a
failure, so one report lists them all), 2 for a usage error, 130 after Ctrl-C (the report
then lists the notebooks that did not run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import fnmatch
import json
import os
import platform
import re
import signal
import socket
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from autograder import REPO_ROOT, SOLUTIONS, assignments
from autograder.notebook import nbgrader_meta

BOOK = REPO_ROOT / "book"
KERNEL = "python3"
PROFILES = ("small", "full")
PROFILE_ENV = "DLCOURSE_PROFILE"  # read by dlcourse.data
MARK = "<<readiness>>"

# Run in the kernel after the notebook: the final values of every Keras History in the
# user namespace, also inside dicts, lists and tuples one level down. Plain `.history`
# dicts (a "loss" key and lists of numbers) count too: chapters often keep only those.
# It reads the namespace and prints one line; it changes nothing the notebook made.
# The device report comes along, so no extra kernel has to import TensorFlow for it.
PROBE = r'''
def _readiness_probe():
    import json, sys
    keras = sys.modules.get("keras")
    history_type = getattr(getattr(keras, "callbacks", None), "History", None)

    def as_history(obj):
        if history_type is not None and isinstance(obj, history_type):
            return getattr(obj, "history", None) or None
        if (isinstance(obj, dict) and "loss" in obj
                and all(isinstance(k, str) and isinstance(v, list) for k, v in obj.items())):
            return obj
        return None

    def summary(name, h):
        final = {}
        for key, values in h.items():
            if values and (key in ("loss", "val_loss") or "acc" in key):
                try:
                    final[key] = float(values[-1])
                except (TypeError, ValueError):
                    pass
        return {"name": name, "epochs": max(len(v) for v in h.values()), "final": final}

    shell = get_ipython()
    found, seen = [], set()

    def add(name, h):
        if id(h) not in seen:  # one history kept under two names is listed once
            seen.add(id(h))
            found.append(summary(name, h))

    for name, value in list(shell.user_ns.items()):
        if name.startswith("_") or name in shell.user_ns_hidden:
            continue
        h = as_history(value)
        if h is not None:
            add(name, h)
            continue
        if isinstance(value, dict):
            items = list(value.items())[:500]
        elif isinstance(value, (list, tuple)):
            items = list(enumerate(value))[:500]
        else:
            continue
        for key, item in items:
            h = as_history(item)
            if h is not None:
                add(f"{name}[{key!r}]", h)
    # The device as this kernel sees it, when the notebook already imported what that needs.
    device = None
    if "dlcourse" in sys.modules and "tensorflow" in sys.modules:
        import dataclasses
        device = dataclasses.asdict(sys.modules["dlcourse"].device_info())
    print("<<readiness>>" + json.dumps({"histories": found, "device": device}))

_readiness_probe()
del _readiness_probe
'''

DEVICE_PROBE = r'''
import dataclasses, json
import dlcourse
print("<<readiness>>" + json.dumps(dataclasses.asdict(dlcourse.device_info())))
'''

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclasses.dataclass
class Target:
    name: str
    kind: str  # "chapter", "solution" or "notebook"
    path: Path
    cwd: Path


@dataclasses.dataclass
class Result:
    name: str
    kind: str
    path: str
    status: str = "not run"  # ok, failed, timeout
    seconds: float = 0.0
    error: dict | None = None
    histories: list = dataclasses.field(default_factory=list)
    tests: list = dataclasses.field(default_factory=list)
    final_accuracy: dict | None = None
    device: dict | None = None
    log: str = ""


# --- What to run -------------------------------------------------------------------------------

def _rel(path: Path) -> str:
    try:
        return path.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


def builtin_targets() -> list[Target]:
    chapters = [Target(p.stem, "chapter", p, BOOK) for p in sorted(BOOK.glob("[0-9][0-9]-*.md"))]
    solutions = [Target(a, "solution", SOLUTIONS / a / f"{a}.ipynb", SOLUTIONS / a)
                 for a in assignments()]
    return chapters + solutions


def path_target(path: Path) -> Target:
    kind = "notebook"
    if path.suffix == ".ipynb" and any(nbgrader_meta(c) for c in read_notebook(path).cells):
        kind = "solution"
    elif path.suffix == ".md":
        kind = "chapter"
    return Target(path.stem, kind, path.resolve(), path.resolve().parent)


def select(targets: list[Target], patterns: list[str]) -> tuple[list[Target], list[str]]:
    """Targets matching any pattern (a glob or a prefix of the name), and unused patterns."""
    def hit(t: Target, pat: str) -> bool:
        return (fnmatch.fnmatch(t.name, pat) or fnmatch.fnmatch(_rel(t.path), pat)
                or t.name.startswith(pat))
    chosen = [t for t in targets if any(hit(t, p) for p in patterns)]
    unused = [p for p in patterns if not any(hit(t, p) for t in targets)]
    return chosen, unused


def read_notebook(path: Path) -> nbformat.NotebookNode:
    if path.suffix == ".md":
        return jupytext.read(path)
    return nbformat.read(path, as_version=4)


# --- Running a notebook ------------------------------------------------------------------------

def _probe_output(cell) -> object:
    # The kernel may split one long print into several stream messages.
    stdout = "".join(out.get("text", "") for out in cell.get("outputs", [])
                     if out.get("output_type") == "stream" and out.get("name") == "stdout")
    for line in stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    return None


def _error_of(exc: BaseException, cell_index: int | None) -> dict:
    if isinstance(exc, CellExecutionError):
        tb = [line for line in ANSI.sub("", exc.traceback or "").splitlines() if line.strip()]
        return {"ename": exc.ename, "evalue": ANSI.sub("", exc.evalue or "")[:500],
                "cell": cell_index, "traceback_tail": tb[-8:]}
    return {"ename": type(exc).__name__, "evalue": str(exc).strip()[:500], "cell": cell_index,
            "traceback_tail": []}


def _test_id(cell) -> str | None:
    meta = nbgrader_meta(cell)
    gid = meta.get("grade_id", "")
    return gid if cell.cell_type == "code" and meta.get("grade") and gid.startswith("test_") else None


async def _run(target: Target, env: dict, timeout: int, log: Path) -> Result:
    res = Result(target.name, target.kind, _rel(target.path), log=str(log))
    nb = read_notebook(target.path)
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=timeout, allow_errors=False,
                            resources={"metadata": {"path": str(target.cwd)}})
    start = time.monotonic()
    client.reset_execution_trackers()
    with open(log, "wb") as fh:
        async with client.async_setup_kernel(env=env, cwd=str(target.cwd), stdout=fh, stderr=fh):
            # nbclient's SIGINT handler only shuts the kernel down and the run would go on;
            # Ctrl-C cancels this notebook instead (the kernel is still shut down on the way out).
            with contextlib.suppress(NotImplementedError, RuntimeError):
                asyncio.get_running_loop().add_signal_handler(
                    signal.SIGINT, asyncio.current_task().cancel)
            await _execute_cells(client, nb, target, res)
            res.seconds = time.monotonic() - start
            # A timed-out cell may still be running, a dead kernel answers nothing.
            if res.status != "timeout" and _ename(res) != "DeadKernelError":
                nb.cells.append(nbformat.v4.new_code_cell(PROBE))
                try:
                    await client.async_execute_cell(nb.cells[-1], len(nb.cells) - 1)
                    found = _probe_output(nb.cells[-1]) or {}
                    res.histories, res.device = found.get("histories", []), found.get("device")
                except Exception as exc:  # the report still stands without accuracies
                    print(f"    (no accuracies: {type(exc).__name__}: {exc})", flush=True)
    res.final_accuracy = best_final_accuracy(res.histories)
    return res


async def _execute_cells(client: NotebookClient, nb, target: Target, res: Result) -> None:
    tests = {i: _test_id(c) for i, c in enumerate(nb.cells) if _test_id(c)}
    res.tests = [{"grade_id": gid, "status": "not run"} for gid in tests.values()]
    by_id = {t["grade_id"]: t for t in res.tests}
    res.status = "ok"
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        try:
            await client.async_execute_cell(cell, index,
                                            execution_count=client.code_cells_executed + 1)
            if index in tests:
                by_id[tests[index]]["status"] = "passed"
        except CellExecutionError as exc:
            res.status = "failed"
            res.error = res.error or _error_of(exc, index)
            if index in tests:
                by_id[tests[index]].update(status="failed", error=exc.ename)
            # A solution goes on, so that every test cell gets a verdict; a chapter stops,
            # as the book build does.
            if target.kind != "solution":
                return
        except (TimeoutError, RuntimeError) as exc:  # CellTimeoutError, DeadKernelError
            res.status = "timeout" if isinstance(exc, TimeoutError) else "failed"
            res.error = _error_of(exc, index)
            return


def _ename(res: Result) -> str | None:
    return None if res.error is None else res.error.get("ename")


def _accuracy_metric(final: dict) -> str | None:
    """A history's headline metric: validation accuracy, else training accuracy."""
    for candidates in (["val_accuracy"], [k for k in final if k.startswith("val_") and "acc" in k],
                       ["accuracy"], [k for k in final if "acc" in k]):
        for key in candidates:
            if key in final and final[key] == final[key]:  # not NaN
                return key
    return None


def best_final_accuracy(histories: list[dict]) -> dict | None:
    """The highest final accuracy among the notebook's histories (validation if it has one)."""
    best = None
    for h in histories:
        metric = _accuracy_metric(h["final"])
        if metric is None:
            continue
        rank = (metric.startswith("val_"), h["final"][metric])
        if best is None or rank > (best["metric"].startswith("val_"), best["value"]):
            best = {"history": h["name"], "metric": metric, "value": h["final"][metric]}
    return best


def device_report(env: dict, timeout: int, log: Path) -> dict:
    """dlcourse.device_info() as a kernel of this environment sees it."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(DEVICE_PROBE)])
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=timeout,
                            resources={"metadata": {"path": str(BOOK)}})
    try:
        with open(log, "wb") as fh:
            client.execute(env=env, cwd=str(BOOK), stdout=fh, stderr=fh)
        return _probe_output(nb.cells[0]) or {"error": "no device report"}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


# --- Report ------------------------------------------------------------------------------------

def _fmt_time(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m}m{s:02d}s" if m else f"{seconds:.1f}s"


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def markdown(report: dict) -> str:
    dev = report["device"]
    lines = [f"# Readiness report ({report['profile']} profile)", "",
             f"- started: {report['started']} on `{report['host']}`, "
             f"total {_fmt_time(report['seconds'])}",
             f"- python {report['python']}, kernel `{KERNEL}`",
             f"- result: **{report['passed']} of {len(report['notebooks'])} notebooks ran "
             f"cleanly**" + (f", failed: {', '.join(report['failed'])}" if report["failed"] else ""),
             "", "## Device", ""]
    if "error" in dev:
        lines.append(f"Device report failed: `{dev['error']}`")
    else:
        lines += ["| | |", "|---|---|"] + [
            f"| {k.replace('_', ' ')} | {', '.join(v) if isinstance(v, list) else v} |"
            for k, v in dev.items() if v not in ([], "")]
    lines += ["", "## Notebooks", "",
              "| notebook | kind | status | time | final accuracy | tests passed |",
              "|---|---|---|---|---|---|"]
    for r in report["notebooks"]:
        acc = r["final_accuracy"]
        acc_s = f"{acc['value']:.4f} ({acc['metric']}, `{acc['history']}`)" if acc else "–"
        tests = r["tests"]
        tests_s = f"{sum(t['status'] == 'passed' for t in tests)}/{len(tests)}" if tests else "–"
        status = r["status"] + (f" ({r['error']['ename']})" if r["error"] else "")
        lines.append(f"| `{r['path']}` | {r['kind']} | {status} | {_fmt_time(r['seconds'])} "
                     f"| {acc_s} | {tests_s} |")
    for r in report["notebooks"]:
        lines += ["", f"### {r['name']}", ""]
        if r["error"]:
            e = r["error"]
            first = (e["evalue"].splitlines() or [""])[0]
            lines += [f"**{r['status']}** in cell index {e['cell']}: `{e['ename']}: {first}`", ""]
            if e["traceback_tail"]:
                lines += ["```"] + e["traceback_tail"] + ["```", ""]
        if r["histories"]:
            keys = sorted({k for h in r["histories"] for k in h["final"]},
                          key=lambda k: (k.startswith("val_"), "acc" not in k, k))
            lines += ["| History | epochs | " + " | ".join(keys) + " |",
                      "|---|---|" + "---|" * len(keys)]
            for h in r["histories"]:
                lines.append(f"| `{h['name']}` | {h['epochs']} | "
                             + " | ".join(_fmt(h["final"].get(k, "")) for k in keys) + " |")
        else:
            lines.append("No Keras History left in the notebook's namespace.")
        if r["tests"]:
            lines += ["", "Test cells: " + ", ".join(
                f"`{t['grade_id']}` {t['status']}" + (f" ({t['error']})" if t.get("error") else "")
                for t in r["tests"])]
    return "\n".join(lines) + "\n"


# --- Command line ------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.readiness",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="extra notebooks (.md MyST or .ipynb) to run; alone, only these run")
    parser.add_argument("--profile", choices=PROFILES, default="small",
                        help="data profile for the kernels (DLCOURSE_PROFILE; default: small)")
    parser.add_argument("--out", type=Path, default=Path("readiness-report.md"),
                        help="Markdown report; the JSON goes next to it (default: %(default)s)")
    parser.add_argument("--only", nargs="+", metavar="PATTERN", default=None,
                        help="run only chapters/solutions whose name or path matches "
                             "(glob or name prefix, e.g. 04 ps1-basics 'book/0[12]*')")
    parser.add_argument("--timeout", type=int, default=600,
                        help="seconds per cell, as in the book build (default: %(default)s)")
    parser.add_argument("--list", action="store_true", help="list what would run and stop")
    args = parser.parse_args(argv)

    targets = builtin_targets()
    if args.only is not None:
        targets, unused = select(targets, args.only)
        if unused:
            parser.error(f"--only {unused} matches no chapter or solution")
    elif args.notebooks:
        targets = []
    for path in args.notebooks:
        if not path.exists():
            parser.error(f"no notebook {path}")
        targets.append(path_target(path))
    if not targets:
        parser.error("nothing to run")
    if args.list:
        for t in targets:
            print(f"{t.kind:9} {_rel(t.path)}")
        return 0

    env = dict(os.environ, **{PROFILE_ENV: args.profile})
    # What kernels write outside the notebook (TensorFlow's C++ log: CUDA and cuDNN loading,
    # XLA) goes to one log file per notebook: worth reading when a GPU is not used.
    logs = args.out.with_name(args.out.stem + "-logs")
    logs.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now().astimezone()
    t0 = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{_fmt_time(time.monotonic() - t0):>7}] {msg}", flush=True)

    log(f"profile {args.profile}: {len(targets)} notebooks, kernel logs in {logs}/")
    results, device, interrupted = [], None, False
    for i, target in enumerate(targets, 1):
        tag = f"{i}/{len(targets)} {target.kind} {target.name}"
        log(f"{tag}: started")
        try:
            res = asyncio.run(_run(target, env, args.timeout, logs / f"{target.name}.log"))
        except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C: report what has run
            results += [Result(t.name, t.kind, _rel(t.path)) for t in targets[i - 1:]]
            interrupted = True
            log(f"{tag}: interrupted")
            break
        except Exception as exc:  # the kernel did not start, the file does not parse, ...
            res = Result(target.name, target.kind, _rel(target.path), status="failed",
                         error=_error_of(exc, None))
        results.append(res)
        acc = res.final_accuracy
        log(f"{tag}: {res.status}" + (f" ({res.error['ename']})" if res.error else "")
            + f" in {_fmt_time(res.seconds)}"
            + (f", {acc['metric']} {acc['value']:.3f}" if acc else ""))
        if device is None and res.device:
            # The device as the notebooks' kernels see it, as soon as one reported it.
            device = res.device
            log(f"device: {device['kind']} {device['name']}")

    if device is None and not interrupted:  # no notebook loaded TensorFlow: a kernel of its own
        log("device report ...")
        # Importing TensorFlow can take a while on a cold disk: not bound by --timeout.
        device = device_report(env, 600, logs / "device.log")
        log("device: " + (device.get("error") or f"{device['kind']} {device['name']}"))

    failed = [r.name for r in results if r.status != "ok"]
    report = {
        "profile": args.profile, "started": started.isoformat(timespec="seconds"),
        "host": socket.gethostname(), "python": platform.python_version(),
        "seconds": time.monotonic() - t0, "device": device or {"error": "interrupted"},
        "passed": len(results) - len(failed), "failed": failed,
        "notebooks": [dataclasses.asdict(r) for r in results],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(report), encoding="utf-8")
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    log(f"report: {args.out} and {args.out.with_suffix('.json')}"
        + (f"; FAILED: {', '.join(failed)}" if failed else "; all notebooks ran cleanly"))
    return 130 if interrupted else 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
