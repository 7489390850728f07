"""The GP's linear algebra: one BLAS thread, and cheaper paths that give the same numbers."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import linalg  # type: ignore[import-untyped]

from aiotune.strategies import _acquisition as acq
from aiotune.strategies import _gp as gp


def test_every_blas_runs_on_one_thread_in_a_fresh_process() -> None:
    pytest.importorskip("threadpoolctl")
    # scipy.linalg brings its own OpenBLAS: when the first model ask of a process came
    # before anything had imported scipy (a study resumed past its initial design, or
    # benchmarks/quality.py --timing), only numpy's was limited, and scipy's Cholesky
    # solves ran threaded (10x slower per suggestion on a busy machine).
    code = textwrap.dedent(
        """
        import sys
        from threadpoolctl import threadpool_info
        from aiotune.strategies import _gp
        assert "scipy.linalg" not in sys.modules
        with _gp.single_threaded_blas():
            _gp.linalg.cho_solve  # the GP's first use of scipy.linalg, inside the block
            inside = [(i["filepath"], i["num_threads"]) for i in threadpool_info()
                      if i["user_api"] == "blas"]
        print(inside)
        assert any("scipy" in path and "numpy" not in path for path, _ in inside), inside
        assert all(threads == 1 for _, threads in inside), inside
        """
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2"}  # threaded by default, even on 1 core
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _mixed_kernel() -> tuple[gp.Kernel, np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Two plain numeric columns, a categorical one and a conditional (arc) one."""
    kernel = gp.Kernel(
        np.array([False, True, False, False]),
        [0, 3, 0, 0],
        arc=np.array([False, False, False, True]),
    )
    rng = np.random.default_rng(3)
    x = np.column_stack([rng.random(40), rng.integers(3, size=40), rng.random(40), rng.random(40)])
    x[rng.random(40) < 0.3, 3] = -1.0  # inactive
    return kernel, x, rng.normal(size=40)


def test_embedding_matches_the_kernel_column_by_column() -> None:
    kernel, x, _ = _mixed_kernel()
    ls = np.array([0.3, 0.7, 1.1, 0.4])
    e = kernel.embed(x, ls)
    # The plain numeric columns, scaled in one step, are those of the per-column rule.
    assert np.array_equal(e[:, 0], x[:, 0] / ls[0])
    assert np.array_equal(e[:, 4], x[:, 2] / ls[2])
    onehot = np.zeros((len(x), 3))
    onehot[np.arange(len(x)), x[:, 1].astype(int)] = 1.0 / (math.sqrt(2.0) * ls[1])
    assert np.array_equal(e[:, 1:4], onehot)
    r2 = kernel.sq_dist(x, x, ls)
    s = kernel.per_dim(x)
    np.testing.assert_allclose(r2, (s / (ls**2)[:, None, None]).sum(0), atol=1e-12)


def test_predictions_from_the_cached_embedding_are_bit_for_bit_the_reference() -> None:
    # Posterior embeds its data once and solves with LAPACK's potrs directly; the numbers
    # must be exactly those of embedding both sides and calling scipy's cho_solve.
    kernel, x, y = _mixed_kernel()
    theta = np.array([-1.0, -0.3, 0.1, -0.8, 0.2, math.log(1e-3), math.log(0.3)])
    posterior = gp.Posterior(kernel, theta, x, y)
    xs = np.column_stack(
        [np.linspace(0, 1, 7), np.arange(7) % 3, np.linspace(1, 0, 7), 0.5 - np.arange(7) / 7]
    )
    r2 = kernel.sq_dist(xs, x, posterior.lengthscales)
    overlap = posterior.a * kernel.overlap(xs, x)
    ks = posterior.s2 * gp._matern(r2) + overlap
    mean, var = posterior.predict(xs)
    assert np.array_equal(mean, ks @ posterior.alpha)
    v = linalg.solve_triangular(posterior.chol, ks.T, lower=True, check_finite=False)
    assert np.array_equal(var, np.maximum(posterior.s2 + posterior.a - (v * v).sum(0), 1e-12))
    mean_g, var_g, _, dvar = posterior.predict_grad(xs)
    corr, g = gp._matern_grad(r2)
    ks = posterior.s2 * corr + overlap
    w = linalg.cho_solve((posterior.chol, True), ks.T, check_finite=False)
    assert np.array_equal(mean_g, ks @ posterior.alpha)
    assert np.array_equal(var_g, np.maximum(posterior.s2 + posterior.a - (ks * w.T).sum(1), 1e-12))
    diff = kernel.half_grad(xs, x) / posterior.lengthscales**2
    dks = -2.0 * posterior.s2 * g[:, :, None] * diff
    assert np.array_equal(dvar, -2.0 * np.einsum("mnp,nm->mp", dks, w))


def test_log_h_one_branch_path_equals_the_masked_one() -> None:
    z = np.linspace(-0.999, 40.0, 1001)  # every z above -1: the single-branch path
    masked = acq.log_h(np.append(z, -5.0))[:-1]  # one z below -1: the masked path
    assert np.array_equal(acq.log_h(z), masked)


@pytest.mark.slow
def test_quality_timing_mode_runs_and_counts_the_work() -> None:
    script = Path(__file__).parent.parent / "benchmarks" / "quality.py"
    done = subprocess.run(
        [sys.executable, str(script), "--timing", "--sizes", "12", "--asks", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| hartmann6 |")]
    assert len(rows) == 1
    cholesky, objective, acquisition = (int(c) for c in rows[0].split("|")[-2].split(" / "))
    assert cholesky > objective > 0  # each objective call factorises once, each ask once more
    assert acquisition > 0
