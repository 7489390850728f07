"""Tune on a Dask cluster: the same study, with its trials on Dask workers.

    python examples/dask_cluster.py                        # starts a 2-worker LocalCluster
    python examples/dask_cluster.py tcp://10.0.0.5:8786    # uses your running cluster

A cluster across machines, started by hand (``pip install 'aiotune[dask]'``
and your objective's own dependencies on every machine, same Python and
package versions)::

    dask scheduler                                   # on one machine: listens on :8786
    dask worker tcp://10.0.0.5:8786 --nthreads 1     # on each worker machine (one process
                                                     # per worker; --nworkers 4 for four)

The objective here is a small logistic regression fitted by gradient descent
on synthetic data (numpy only). It reports its validation loss after every
epoch, so the intermediate values of each trial land in ``trials.jsonl``,
which is written here, on the machine that runs the study.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

import aiotune as at
from aiotune.integrations.dask import DaskExecutor

SPACE = at.Space(
    lr=at.Float(1e-3, 1.0, log=True),
    l2=at.Float(1e-6, 1e-1, log=True),
    epochs=at.Int(5, 40),
)


def objective(params: dict[str, Any], trial: at.RunningTrial) -> float:
    """Validation accuracy of a logistic regression (runs on a Dask worker)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 20))
    y = (x @ rng.normal(size=20) + rng.normal(scale=2.0, size=2000) > 0).astype(float)
    x_train, y_train, x_valid, y_valid = x[:1500], y[:1500], x[1500:], y[1500:]
    w = np.zeros(20)
    for epoch in range(params["epochs"]):
        p = 1 / (1 + np.exp(-(x_train @ w)))
        w -= params["lr"] * (x_train.T @ (p - y_train) / len(y_train) + params["l2"] * w)
        q = np.clip(1 / (1 + np.exp(-(x_valid @ w))), 1e-9, 1 - 1e-9)
        loss = -np.mean(y_valid * np.log(q) + (1 - y_valid) * np.log(1 - q))
        trial.report(float(loss), epoch)
    return float(np.mean((x_valid @ w > 0) == y_valid))


def main() -> None:
    """Connect to (or start) a cluster, run the study, print the best trial."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", nargs="?", help="scheduler address; none: a LocalCluster")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--journal", type=Path, default=Path("trials.jsonl"))
    args = parser.parse_args()
    args.journal.unlink(missing_ok=True)  # a fresh study each run; resume= continues one

    options: dict[str, Any] = {}
    if args.address is None:  # a LocalCluster of worker processes on this machine
        options = {"n_workers": args.workers, "threads_per_worker": 1, "dashboard_address": None}
    # Connecting and closing block: do both outside the event loop (at.run starts its own).
    with DaskExecutor(args.address, **options) as executor:
        threads = sum(executor.dask_client.nthreads().values())
        print(f"cluster: {executor.dask_client.scheduler.address}, {threads} worker threads")
        began = time.perf_counter()
        result = at.run(
            objective,
            SPACE,
            strategy=at.Random(seed=0),
            max_trials=args.trials,
            concurrency=threads,  # one trial per worker thread
            executor=executor,
            observers=[at.JsonlWriter(args.journal)],
        )
        elapsed = time.perf_counter() - began
    counts = ", ".join(f"{n} {s}" for s, n in result.status_counts().items() if n)
    print(f"{len(result.trials)} trials in {elapsed:.1f} s ({counts})")
    print(f"best: trial {result.best.number}, accuracy {result.best.score:.4f}")
    for name, value in result.best.params.items():
        print(f"  {name} = {value!r}")
    workers = sorted({t.worker for t in result.trials if t.worker})
    print(f"ran on {len(workers)} worker threads; journal: {args.journal}")


if __name__ == "__main__":
    main()
