"""Bring a class's submissions into nbgrader's ``submitted/<student>/<assignment>/`` layout.

Accepted inputs (``python -m autograder grade ASSIGNMENT SUBMISSIONS``):

- a folder of ``<student_id>.ipynb`` files;
- a folder of ``<student_id>/`` sub-folders, each holding the notebook under any name;
- a ``.zip`` of either layout (what learning-management systems export);
- nothing: what ``nbgrader collect`` already placed in the course's ``submitted/`` folder.

Every student found gets an :class:`Intake`: ``ok`` with the notebook to grade, or a short
reason why there is nothing to grade (``invalid notebook``, ``missing notebook``, ...).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat

# Student ids become folder names and gradebook keys.
STUDENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,99}$")
MAX_NOTEBOOK_BYTES = 50 * 2**20   # a notebook larger than this is refused, not parsed
MAX_ZIP_BYTES = 2 * 2**30         # uncompressed size of an uploaded class archive


class SubmissionsError(RuntimeError):
    """The SUBMISSIONS argument itself cannot be used (the command stops)."""


@dataclass
class Intake:
    student: str
    status: str                  # "ok" or the reason there is nothing to grade
    notebook: Path | None = None  # where it now is, in submitted/ (status ok)
    detail: str = ""             # for the instructor: what exactly was wrong
    sha256: str = ""             # of the submitted file, to tell a resubmission


def _ignored(path: Path) -> bool:
    return any(part.startswith((".", "__MACOSX")) or part == ".ipynb_checkpoints" for part in path.parts)


def _check_notebook(path: Path) -> tuple[str, str]:
    """("ok", "") or (status, detail) for a file that should be a notebook."""
    size = path.stat().st_size
    if size == 0:
        return "invalid notebook", "the file is empty"
    if size > MAX_NOTEBOOK_BYTES:
        return "invalid notebook", f"the file is {size / 2**20:.0f} MB, over the {MAX_NOTEBOOK_BYTES // 2**20} MB limit"
    try:
        nb = nbformat.read(str(path), as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # JSON errors, wrong schema, not UTF-8, ...
        return "invalid notebook", f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    return "ok", ""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _unpack(archive: Path, into: Path) -> Path:
    try:
        with zipfile.ZipFile(archive) as zf:
            if sum(i.file_size for i in zf.infolist()) > MAX_ZIP_BYTES:
                raise SubmissionsError(f"{archive} unpacks to more than {MAX_ZIP_BYTES // 2**30} GB")
            zf.extractall(into)  # zipfile drops absolute paths and '..' from member names
    except zipfile.BadZipFile as exc:
        raise SubmissionsError(f"{archive} is not a readable zip file: {exc}") from exc
    # LMS exports often wrap the class in one top folder: descend into it when it looks like
    # a class (sub-folders, or several notebooks), not like a single student's folder.
    entries = [p for p in into.iterdir() if not _ignored(p.relative_to(into))]
    if len(entries) == 1 and entries[0].is_dir():
        inner = [p for p in entries[0].iterdir() if not _ignored(p.relative_to(entries[0]))]
        if any(p.is_dir() for p in inner) or sum(p.suffix == ".ipynb" for p in inner) > 1:
            return entries[0]
    return into


def _candidates(folder: Path) -> dict[str, list[Path]]:
    """student id -> the files that may be that student's notebook."""
    found: dict[str, list[Path]] = {}
    for entry in sorted(folder.iterdir()):
        rel = entry.relative_to(folder)
        if _ignored(rel):
            continue
        if entry.is_dir():
            found[entry.name] = sorted(p for p in entry.rglob("*.ipynb")
                                       if p.is_file() and not _ignored(p.relative_to(entry)))
        elif entry.suffix == ".ipynb":
            found.setdefault(entry.stem, []).append(entry)
    return found


def import_submissions(assignment: str, source: Path | None, submitted_dir: Path,
                       choose: Callable[[list[str]], list[str]] | None = None) -> list[Intake]:
    """Copy each student's notebook to ``submitted_dir/<student>/<assignment>/<assignment>.ipynb``.

    ``source`` None means: take what is already in ``submitted_dir`` (``nbgrader collect``).
    ``choose(all student ids)`` returns the ids to take; the others are left out entirely,
    before anything is copied (the students of other shards). Returns one :class:`Intake`
    per student taken, sorted by student id.
    """
    with tempfile.TemporaryDirectory(prefix="dlc-import-") as tmp:
        if source is None:
            folder = submitted_dir
            found = {s: sorted(p for p in (submitted_dir / s / assignment).glob("*.ipynb"))
                     for s in sorted(p.name for p in submitted_dir.iterdir() if p.is_dir())} \
                if submitted_dir.is_dir() else {}
        else:
            source = Path(source)
            if not source.exists():
                raise SubmissionsError(f"{source} does not exist")
            if source.is_file():
                if source.suffix.lower() != ".zip":
                    raise SubmissionsError(f"{source} is neither a folder nor a .zip file")
                folder = _unpack(source, Path(tmp))
            else:
                folder = source
            found = _candidates(folder)

        if choose is not None:
            chosen = set(choose(sorted(found)))
            found = {student: files for student, files in found.items() if student in chosen}
        intakes = []
        for student, files in sorted(found.items()):
            if not STUDENT_ID_RE.fullmatch(student):  # fullmatch: "$" would also take "ann\n"
                intakes.append(Intake(student, "invalid student id",
                                      detail="ids use letters, digits and _.@+- only"))
                continue
            dest_dir = submitted_dir / student / assignment
            if len(files) > 1:
                named = [p for p in files if p.name == f"{assignment}.ipynb"]
                if len(named) != 1:
                    names = ", ".join(str(p.relative_to(folder)) for p in files)
                    intakes.append(Intake(student, "several notebooks", detail=names))
                    continue
                files = named
            if not files:
                intakes.append(Intake(student, "missing notebook",
                                      detail="no .ipynb file in the student's folder"))
                continue
            path = files[0]
            status, detail = _check_notebook(path)
            digest = _sha256(path)
            if status != "ok":
                intakes.append(Intake(student, status, detail=detail, sha256=digest))
                continue
            dest = dest_dir / f"{assignment}.ipynb"
            if path.resolve() != dest.resolve():
                dest_dir.mkdir(parents=True, exist_ok=True)
                # Only the notebook: other files a student hands in are not graded.
                for old in dest_dir.glob("*.ipynb"):
                    old.unlink()
                shutil.copyfile(path, dest)
            intakes.append(Intake(student, "ok", notebook=dest, sha256=digest,
                                  detail="" if path.name == dest.name else f"renamed from {path.name}"))
        return intakes
