"""Assignment integrity, with nbgrader's real apps, for every assignment in solutions/.

- `nbgrader generate_assignment` reproduces the committed exercises/ copy;
- the release holds no solution code and no hidden-test text;
- the solution gets full autograded marks through the course's grading command (nbgrader's
  Autograde in the sandbox);
- the unanswered release scores 0 without breaking the grader;
- a deleted test cell is restored and scored (OverwriteCells.add_missing_cells).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from autograder import EXERCISES, SOLUTIONS, assignments
from autograder.notebook import (cells_by_grade_id, graded_functions, hidden_tests,
                                 nbgrader_meta, read, visible_tests)
from autograder.nbgrader_run import read_scores, release, scratch_course

ASSIGNMENTS = assignments()
SOLUTION_RE = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)


def test_there_are_assignments():
    assert "ps1-basics" in ASSIGNMENTS


def _normalized(path: Path) -> dict:
    nb = json.loads(path.read_text(encoding="utf-8"))
    nb.get("metadata", {}).pop("widgets", None)
    return nb


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_is_generated_by_nbgrader(assignment, tmp_path):
    out = release(assignment, release_dir=tmp_path / "release", db=tmp_path / "gradebook.db")
    fresh = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    committed_dir = EXERCISES / assignment
    committed = sorted(p.relative_to(committed_dir).as_posix()
                       for p in committed_dir.rglob("*") if p.is_file())
    assert fresh == committed, "exercises/ has different files than nbgrader generates"
    for name in fresh:
        if name.endswith(".ipynb"):
            assert _normalized(out / name) == _normalized(committed_dir / name), (
                f"exercises/{assignment}/{name} drifted from solutions/: "
                f"run `make release` and commit")


def _lines(text: str) -> set[str]:
    return {ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_leaks_no_solution_or_hidden_test(assignment):
    source = read(SOLUTIONS / assignment / f"{assignment}.ipynb")
    released_text = (EXERCISES / assignment / f"{assignment}.ipynb").read_text(encoding="utf-8")
    released = read(EXERCISES / assignment / f"{assignment}.ipynb")
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in released_text, f"marker {marker!r} left in the release"
    secret, public = set(), set()
    for cell in source.cells:
        blocks = [m.group(1) for m in SOLUTION_RE.finditer(cell.source)]
        blocks.append(hidden_tests(cell.source))
        secret |= _lines("\n".join(blocks))
        public |= _lines(visible_tests(SOLUTION_RE.sub("", cell.source)))
    # Lines the student is meant to see anyway (imports, a shared `return`) are not secrets.
    secret = {ln for ln in secret - public if len(ln) > 12}
    assert secret, "nothing to check: no solution or hidden-test lines found"
    leaked = secret & _lines("\n".join(c.source for c in released.cells))
    assert not leaked, f"solution or hidden-test lines in the release: {sorted(leaked)[:5]}"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """One run of the course's grading command (sandboxed, as instructors run it) per
    assignment: the solution, the blank release, and the solution with every test cell
    deleted. tests/test_grade.py checks that its scores equal plain `nbgrader autograde`'s."""
    from autograder.grading import grade
    from autograder.sandbox import Sandbox

    results = {}
    for assignment in ASSIGNMENTS:
        tmp = tmp_path_factory.mktemp(assignment)
        root = scratch_course(tmp, [assignment])
        release(assignment, root=root)
        solution = SOLUTIONS / assignment / f"{assignment}.ipynb"
        blank = root / "exercises" / assignment / f"{assignment}.ipynb"
        nb = read(solution)
        nb.cells = [c for c in nb.cells if not nbgrader_meta(c).get("grade_id", "").startswith("test_")]
        klass = tmp / "class"
        klass.mkdir()
        shutil.copy(solution, klass / "solution.ipynb")
        shutil.copy(blank, klass / "blank.ipynb")
        nbformat.write(nb, str(klass / "deleted_tests.ipynb"))
        outcome = grade(assignment, klass, tmp / "out", course_root=root, sandbox=Sandbox.for_course())
        assert {r.student: r.status for r in outcome} == dict.fromkeys(
            ["blank", "deleted_tests", "solution"], "ok"), outcome
        results[assignment] = read_scores(root / "gradebook.db", assignment)
    return results


def _autograded_cells(assignment) -> dict:
    cells = cells_by_grade_id(read(SOLUTIONS / assignment / f"{assignment}.ipynb"))
    return {gid: cell for gid, cell in cells.items()
            if nbgrader_meta(cell).get("grade") and cell.cell_type == "code"}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_gets_full_marks(assignment, graded):
    scores = graded[assignment]["solution"]
    auto = _autograded_cells(assignment)
    assert auto, "no autograded cells"
    short = {g: scores[g] for g in auto if scores[g][0] != scores[g][1]}
    assert not short, f"the solution loses points: {short}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_unanswered_release_scores_zero(assignment, graded):
    scores = graded[assignment]["blank"]
    auto = _autograded_cells(assignment)
    assert set(auto) <= set(scores), "the grader skipped cells of the blank submission"
    nonzero = {g: scores[g] for g in auto if scores[g][0] != 0}
    assert not nonzero, f"an unanswered notebook earns points: {nonzero}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_deleted_test_cells_are_restored_and_scored(assignment, graded):
    scores = graded[assignment]["deleted_tests"]
    auto = _autograded_cells(assignment)
    missing = [g for g in auto if g not in scores]
    assert not missing, f"deleted test cells were not restored: {missing}"
    assert all(scores[g][0] == scores[g][1] for g in auto), \
        f"restored tests should pass against correct answers: {scores}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_assignment_structure(assignment):
    """Every graded function has a test cell with points and hidden tests; there is at
    least one manually graded written answer."""
    nb = read(SOLUTIONS / assignment / f"{assignment}.ipynb")
    cells = cells_by_grade_id(nb)
    functions = graded_functions(nb)
    assert functions
    for fn in functions:
        test = cells[f"test_{fn}"]
        assert nbgrader_meta(test).get("points", 0) > 0, f"test_{fn} has no points"
        assert hidden_tests(test.source).strip(), f"test_{fn} has no hidden tests"
    written = [g for g, c in cells.items() if g.startswith("written_")
               and c.cell_type == "markdown" and nbgrader_meta(c).get("grade")
               and nbgrader_meta(c).get("solution")]
    assert written, "no manually graded written answer"


# The graded names and signatures of ../shared/assignments.md (the contract), kept here
# because a clean clone has no ../shared. Classes are listed by name only.
CONTRACT = {
    "ps1-basics": [
        "softmax(z)", "cross_entropy(probs, labels)", "two_layer_net(params, x, y, reg=0.0)",
        "sgd_momentum(w, dw, v, lr=1e-2, momentum=0.9)",
        "rmsprop(w, dw, cache, lr=1e-2, decay=0.99, eps=1e-8)",
        "adam(w, dw, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)",
        "k_fold_indices(n, k)", "standardize(train, test)", "build_mlp(input_dim, num_classes)"],
    "ps2-overfitting": [
        "l2_penalty(weights, lam)", "dropout_forward(x, rate, training, rng)",
        "early_stopping_epoch(val_losses, patience)", "precision_recall(y_true, y_pred)",
        "batchnorm_forward(x, gamma, beta, eps=1e-5)", "numerical_gradient(f, x, h=1e-5)",
        "relative_error(a, b)", "log_uniform(low, high, n, rng)",
        "build_regularized_model(input_dim)"],
    "ps3-cnns": [
        "conv_output_size(n, kernel, stride=1, padding='valid')",
        "conv2d(x, w, b, stride=1, padding='valid')", "max_pool2d(x, pool=2, stride=2)",
        "receptive_field(layers)", "conv_params(kernel, c_in, c_out, bias=True)",
        "separable_conv_params(kernel, c_in, c_out, bias=True)",
        "build_convnet(input_shape, num_classes)"],
    "ps4-transfer-learning": [
        "freeze(model)", "unfreeze_from(model, layer_name)",
        "extract_features(base, x, batch_size=32)",
        "build_transfer_model(base, num_classes, dropout=0.5)",
        "compile_for_fine_tuning(model, lr=1e-5)"],
    "ps5-advanced": [
        "build_qa_model(text_vocab, question_vocab, answer_vocab)",
        "build_multi_output_model(vocab, num_topics)", "residual_block(x, filters, stride=1)",
        "make_callbacks(checkpoint_path, patience=3)", "class UpdateRatio",
        "ensemble_predict(models, x)"],
}


def _signature(node) -> tuple:
    import ast

    if isinstance(node, ast.ClassDef):
        return ("class", node.name)
    args = node.args.args
    defaults = [None] * (len(args) - len(node.args.defaults)) + [
        ast.literal_eval(d) for d in node.args.defaults]
    return (node.name, tuple((a.arg, d) for a, d in zip(args, defaults)))


def _contract_signature(text: str) -> tuple:
    import ast

    if text.startswith("class "):
        return ("class", text.split()[1])
    return _signature(ast.parse(f"def {text}: pass").body[0])


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_graded_functions_match_the_contract(assignment):
    import ast

    assert assignment in CONTRACT, f"{assignment} is not an assignment of the contract"
    nb = read(SOLUTIONS / assignment / f"{assignment}.ipynb")
    cells = cells_by_grade_id(nb)
    expected = {_contract_signature(t)[0] if not t.startswith("class ") else t.split()[1]:
                _contract_signature(t) for t in CONTRACT[assignment]}
    assert sorted(graded_functions(nb)) == sorted(expected), "graded names differ from the contract"
    for name, sig in expected.items():
        defs = [n for n in ast.parse(cells[name].source).body
                if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == name]
        assert defs, f"answer cell {name} does not define {name}"
        assert _signature(defs[0]) == sig, f"{name}: signature differs from the contract"
