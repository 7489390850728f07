"""Quickstart: tune a random forest on scikit-learn's breast-cancer data.

Run it with ``bash scripts/example.sh`` (or ``python examples/quickstart.py``
inside the venv). It writes every trial to ``trials.jsonl`` as it finishes
shows its progress on one live line (or as log lines when the output is not
a terminal), and prints the best trial at the end. Nothing is downloaded: the data set
ships with scikit-learn.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import cross_val_score

import aiotune as at

SPACE = at.Space(
    n_estimators=at.Int(10, 200, log=True),
    max_depth=at.Int(2, 16),
    min_samples_leaf=at.Int(1, 10),
    max_features=at.Categorical(["sqrt", "log2", None]),
    bootstrap=at.Bool(),
)


def objective(params: dict[str, Any]) -> float:
    """Mean 3-fold cross-validated accuracy (runs in a worker process)."""
    x, y = load_breast_cancer(return_X_y=True)
    model = RandomForestClassifier(random_state=0, n_jobs=1, **params)
    return float(cross_val_score(model, x, y, cv=3).mean())


async def main(journal: Path, trials: int) -> at.TuningResult:
    """Run the study and return its result."""
    return await at.tune(
        objective,
        SPACE,
        strategy=at.Bayesian(seed=0),
        max_trials=trials,
        direction="maximize",
        observers=[at.JsonlWriter(journal), at.Patience(25), at.Progress()],
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journal", type=Path, default=Path("trials.jsonl"))
    parser.add_argument("--trials", type=int, default=40)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # Progress logs off a terminal
    args.journal.unlink(missing_ok=True)  # a fresh study each run; resume= continues one
    began = time.perf_counter()
    result = asyncio.run(main(args.journal, args.trials))
    elapsed = time.perf_counter() - began
    counts = ", ".join(f"{n} {s}" for s, n in result.status_counts().items() if n)
    print(f"{len(result.trials)} trials in {elapsed:.1f} s ({counts}); stop: {result.stop_reason}")
    print(f"best: trial {result.best.number}, accuracy {result.best.score:.4f}")
    for name, value in result.best.params.items():
        print(f"  {name} = {value!r}")
    reloaded = at.load(args.journal)
    print(f"journal: {args.journal} holds {len(reloaded.trials)} trials")
