"""The GP's linear algebra: one BLAS thread, and cheaper paths that give the same numbers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("threadpoolctl")


def test_every_blas_runs_on_one_thread_in_a_fresh_process() -> None:
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
