"""Claims: the comparative sentences of the book, checked against the run that built it.

A sentence such as "dropout lowers the best validation loss" is a *claim*. The chapter that
says it computes the evidence and records the verdict with :func:`claim`::

    dlcourse.claim("dropout-lowers-best-val-loss", holds=bool(d < b), evidence={...})

The call never raises, so a claim that fails does not stop the build. It prints one short
line for the reader and writes a display output of MIME type :data:`CLAIM_MIME` with the
payload ``{"id", "holds", "evidence"}``. The book's tests read those outputs from the
executed notebooks (:func:`claims_in_notebook`) and fail, listing every claim that does not
hold, and every claim the chapter promised (``book/claims.yml``) but never recorded.

Differences that are comparable to run-to-run noise are repeated: :func:`repeat` runs an
experiment once per seed, and :func:`beats` records a claim that holds only when the mean
difference exceeds twice the larger standard deviation of the two sides.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

CLAIM_MIME = "application/vnd.dlcourse.claim+json"
DEFAULT_SEEDS = (0, 1, 2)


def _plain(value: Any) -> Any:
    """Evidence as JSON: NumPy scalars and arrays become Python numbers and lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return _plain(value.tolist())
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else str(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def _short(evidence: dict) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        if isinstance(v, list) and len(v) > 6:
            return f"[{len(v)} values]"
        return str(v)

    return ", ".join(f"{k}={fmt(v)}" for k, v in evidence.items())


class Verdict:
    """What :func:`claim` returns: true when the claim holds. It shows nothing as a cell's
    last value, so a page does not end a claim's line with a stray ``True``."""

    __slots__ = ("claim_id", "holds")

    def __init__(self, claim_id: str, holds: bool):
        self.claim_id, self.holds = claim_id, holds

    def __bool__(self) -> bool:
        return self.holds

    def __repr__(self) -> str:
        return f"Verdict({self.claim_id!r}, holds={self.holds})"

    def _ipython_display_(self):
        pass


def claim(claim_id: str, holds: bool, evidence: dict | None = None) -> Verdict:
    """Record that the sentence ``claim_id`` does (or does not) hold in this run.

    ``evidence`` is a dict of the numbers behind the verdict (JSON-serialisable after
    NumPy values are converted). Prints one line, emits the claim output and returns a
    :class:`Verdict`, true when the claim holds. Never raises on a false claim: the book's tests decide what fails.
    """
    if not isinstance(claim_id, str) or not claim_id:
        raise ValueError("claim_id must be a non-empty string, such as 'cnn-beats-dense'")
    holds = bool(holds)
    payload = {"id": claim_id, "holds": holds, "evidence": _plain(dict(evidence or {}))}
    json.dumps(payload)  # fail here, not in the notebook writer, on odd evidence
    line = f"[claim {claim_id}: {'holds' if holds else 'DOES NOT HOLD'}] {_short(payload['evidence'])}"
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # plain Python: the line is all there is
        print(line)
        return Verdict(claim_id, holds)
    if get_ipython() is None:
        print(line)
    else:
        # One output with both: the text for readers, the JSON for the book's tests.
        display({"text/plain": line, CLAIM_MIME: payload}, raw=True)
    return Verdict(claim_id, holds)


@dataclass(frozen=True)
class Spread:
    """Mean and (population) standard deviation of one quantity over repeated runs."""

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values)

    @property
    def std(self) -> float:
        m = self.mean
        return math.sqrt(sum((v - m) ** 2 for v in self.values) / len(self.values))

    def __format__(self, spec: str) -> str:
        spec = spec or ".3f"
        return f"{self.mean:{spec}} ± {self.std:{spec}}"

    def __str__(self) -> str:
        return format(self)


def spread(values: Iterable[float]) -> Spread:
    vals = tuple(float(v) for v in values)
    if not vals:
        raise ValueError("spread() needs at least one value")
    return Spread(vals)


def repeat(experiment: Callable[[int], Any], seeds: Sequence[int] = DEFAULT_SEEDS,
           deterministic_ops: bool = True) -> list:
    """Run ``experiment(seed)`` once per seed, after seeding everything with that seed.

    Returns the results in seed order. Use at least three seeds for any claim whose
    difference is close to run-to-run noise.
    """
    from dlcourse.seeding import seed_everything

    results = []
    for seed in seeds:
        seed_everything(seed, deterministic_ops=deterministic_ops)
        results.append(experiment(seed))
    return results


def beats(claim_id: str, better: Iterable[float], worse: Iterable[float], *,
          lower_is_better: bool = False, names: tuple[str, str] = ("better", "worse"),
          min_margin: float = 0.0) -> Verdict:
    """Record ``claim_id``: the ``better`` runs beat the ``worse`` runs beyond seed noise.

    Holds when the difference of the means, in the good direction, exceeds both twice the
    larger standard deviation of the two sides and ``min_margin``. With one value per side
    (a deterministic comparison) the spread is 0 and only ``min_margin`` guards.
    """
    a, b = spread(better), spread(worse)
    diff = (b.mean - a.mean) if lower_is_better else (a.mean - b.mean)
    noise = 2 * max(a.std, b.std)
    needed = max(noise, min_margin)
    holds = diff > needed
    evidence = {f"{names[0]}_mean": a.mean, f"{names[0]}_std": a.std,
                f"{names[1]}_mean": b.mean, f"{names[1]}_std": b.std,
                "difference": diff, "needed": needed, "runs": [len(a.values), len(b.values)],
                "direction": "lower is better" if lower_is_better else "higher is better"}
    return claim(claim_id, holds, evidence)


# --------------------------------------------------------------------- reading them back

def claims_in_notebook(nb: dict) -> list[dict]:
    """Every claim payload in an executed notebook (a dict in nbformat's JSON layout)."""
    found = []
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            payload = out.get("data", {}).get(CLAIM_MIME)
            if payload is not None:
                if isinstance(payload, str):  # some writers keep JSON mimetypes as text
                    payload = json.loads(payload)
                found.append(payload)
    return found


def check_claims(nb: dict, required: Iterable[str] = ()) -> list[str]:
    """Problems with a notebook's claims: each one false, repeated or required but missing."""
    problems, seen = [], {}
    for c in claims_in_notebook(nb):
        cid = c.get("id")
        if cid in seen:
            problems.append(f"{cid}: recorded twice")
        seen[cid] = c
        if c.get("holds") is not True:
            problems.append(f"{cid}: does not hold ({_short(c.get('evidence') or {})})")
    problems += [f"{cid}: never recorded" for cid in required if cid not in seen]
    return problems
