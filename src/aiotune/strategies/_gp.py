"""Gaussian-process regression for :class:`~aiotune.strategies.bayesian.Bayesian`.

A zero-mean GP on standardised targets with an ARD Matérn-5/2 kernel over
mixed inputs (Rasmussen & Williams, *Gaussian Processes for Machine
Learning*, 2006, eq. 4.17), plus an overlap term when the space has
categorical parameters::

    k(x, x') = s2 * (1 + sqrt(5) r + 5/3 r^2) * exp(-sqrt(5) r) + a * overlap(x, x')
    r^2      = sum_numeric ((x_i - x'_i) / l_i)^2 + sum_categorical [x_j != x'_j] / l_j^2
    overlap  = mean_categorical [x_j == x'_j]

Numeric columns are unit-cube coordinates; a categorical column holds the
index of the choice, and its term is the overlap (Hamming) distance, which is
the squared distance of the one-hot encodings scaled by ``1 / (2 l_j^2)`` —
one length-scale per categorical parameter instead of one per choice.

The Matérn part multiplies across columns, so on its own it sees each
combination of categories as a nearly separate function (a fitted
categorical length-scale of 0.5 leaves a correlation of 0.14 across one
differing choice). The overlap term adds what the choices do whatever the
numeric inputs: a level per choice, shared by every trial that made it, as
the additive part of the mixed kernels of CoCaBO (Ru et al., ICML 2020) and
TPE's per-parameter densities do. Its weight ``a`` is fitted with the rest,
so the data decide how much of the variance it carries.

Hyper-parameters ``theta = (log l_1..l_P, log s2, log noise[, log a])`` are the
maximum a posteriori estimate of the log marginal likelihood (R&W eq. 5.8,
gradient eq. 5.9) under weak priors, found by L-BFGS-B from a warm start.
The noise variance's prior is a penalty ``30 noise`` (the rate of Optuna
GPSampler's Gamma(1.1, 30) prior, flat in ``log noise`` below a few
hundredths): at 6-25 trials the likelihood alone often put half the
variance of a noiseless objective down to noise, its upper bound, and the
search then explored where it should have refined.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeAlias

import numpy as np

from aiotune.strategies._scipy import linalg, optimize

try:
    from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - threadpoolctl is optional
    ThreadpoolController = None

Array: TypeAlias = np.ndarray[Any, np.dtype[np.float64]]

_SQRT5 = math.sqrt(5.0)
_JITTER = 1e-9
# Bounds of theta: length-scales on the unit cube, signal and noise variance in
# units of the (standardised) target variance.
_LOG_L = (math.log(0.01), math.log(20.0))
_LOG_S2 = (math.log(0.05), math.log(20.0))
_LOG_NOISE = (math.log(1e-6), math.log(0.5))
# Gamma(3, 6) prior on each length-scale (mean 0.5 of the unit cube), as BoTorch's
# SingleTaskGP used; a log-normal prior centred on 1 for the signal variance.
_L_SHAPE, _L_RATE = 3.0, 6.0
_S2_SD = 1.5
# A penalty of 30 nats per unit of noise variance: the rate of Optuna GPSampler's
# Gamma(1.1, 30) prior without its shape term (0.1 log noise, which pulls the noise of a
# noiseless objective up to ~3e-3). Flat in log(noise) below a few hundredths, it costs
# 15 nats at the upper bound, where the likelihood alone sent the noise of noiseless
# objectives at 6-25 trials (half the variance: the search over-explored).
_NOISE_RATE = 30.0
# The overlap term's weight, in units of the target variance: a log-normal prior centred
# on 0.1 (a small share of the variance unless the data ask for more).
_LOG_A = (math.log(1e-4), math.log(20.0))
_A_MEAN, _A_SD = math.log(0.1), 1.5


_blas_lock = threading.Lock()
_blas_users = 0
_blas_limiter: Any = None
_blas_controller: Any = None


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the block with BLAS/LAPACK on one thread (when threadpoolctl is installed).

    The GP's matrices are small (at most a few hundred rows), where threaded
    OpenBLAS gains nothing and, on a machine whose cores are busy with trials,
    loses 10-300x to threads spinning for a core; its LAPACK calls also hold
    the GIL, so they would stall the event loop. The limit is process-wide,
    so it is reference-counted: concurrent studies restore it only when the
    last one leaves.
    """
    global _blas_users, _blas_limiter, _blas_controller
    if ThreadpoolController is None:  # pragma: no cover
        yield
        return
    with _blas_lock:
        if _blas_users == 0:
            if _blas_controller is None:
                # scipy ships its own OpenBLAS, loaded with scipy.linalg: load it first, or
                # the controller would know (and limit) only numpy's.
                linalg.cho_solve  # noqa: B018
                _blas_controller = ThreadpoolController()
            _blas_limiter = _blas_controller.limit(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None


def _matern(r2: Array, overwrite: bool = False) -> Array:
    """Matérn-5/2 correlation at squared distance ``r2`` (whose buffer ``overwrite`` reuses).

    Each temporary the size of ``r2`` costs page faults when ``r2`` is large (768
    candidates by 256 points: 1.5 MB, about a millisecond each), hence the in-place steps.
    """
    r = np.sqrt(r2)
    r *= _SQRT5
    k = r + 1.0
    k += np.multiply(r2, 5.0 / 3.0, out=r2) if overwrite else (5.0 / 3.0) * r2
    np.negative(r, out=r)
    k *= np.exp(r, out=r)
    return k


def _matern_grad(r2: Array) -> tuple[Array, Array]:
    """Matérn-5/2 correlation at squared distance ``r2`` and ``g = -d k / d r2``."""
    r = np.sqrt(r2)
    e = np.exp(-_SQRT5 * r)
    k = (1.0 + _SQRT5 * r + (5.0 / 3.0) * r2) * e
    g = (5.0 / 6.0) * (1.0 + _SQRT5 * r) * e
    return k, g


class Kernel:
    """The distance part of the kernel for a fixed column layout (numeric vs categorical).

    ``arc`` marks the numeric columns of conditional parameters, which hold
    a unit coordinate when active and a negative value when inactive. Such a
    column contributes the chord between ``(sin x, cos x)`` and
    ``(sin x', cos x')`` when both rows are active — ``2 (1 - cos(x - x'))``,
    close to ``(x - x')^2`` on the unit interval — and the radius when one
    of them is inactive: every active value is then equally far (``1 / l``)
    from "inactive", whatever its own value, and two inactive rows do not
    differ there. The embedding is Euclidean, so the kernel stays positive
    definite (Swersky et al., *Raiders of the Lost Architecture*, 2013; the
    arc kernel of Hutter and Osborne, 2013).
    """

    def __init__(
        self,
        categorical: np.ndarray[Any, np.dtype[np.bool_]],
        n_choices: list[int],
        arc: np.ndarray[Any, np.dtype[np.bool_]] | None = None,
    ):
        self.categorical = categorical
        self.numeric = ~categorical
        self.n_choices = n_choices  # per column; 0 for numeric columns
        self.arc = np.zeros_like(categorical) if arc is None else arc
        widths = [2 if a else (k or 1) for k, a in zip(n_choices, self.arc, strict=True)]
        self._offsets = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(int).tolist()
        self._width = int(sum(widths))
        # The plain numeric columns (neither categorical nor arc), embedded in one step.
        self._plain = np.flatnonzero(self.numeric & ~self.arc)
        self._plain_at = np.array(self._offsets, dtype=np.intp)[self._plain]
        self._any_categorical = bool(self.categorical.any())
        self._any_arc = bool(self.arc.any())
        # The overlap term's one-hot layout: each categorical column's block.
        self._cat = np.flatnonzero(self.categorical)
        sizes = [n_choices[j] for j in self._cat]
        self._cat_at = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        self._cat_width = int(sum(sizes))

    @property
    def has_overlap(self) -> bool:
        """Whether the kernel has the overlap term (the space has categorical columns)."""
        return self._any_categorical

    @property
    def n_theta(self) -> int:
        """The number of hyper-parameters: a length-scale per column, the signal and
        noise variances, and the overlap term's weight if there is one."""
        return len(self.categorical) + 2 + int(self.has_overlap)

    def overlap(self, a: Array, b: Array) -> Array:
        """The overlap term between every row of ``a`` and every row of ``b``: the share of
        the categorical columns on which they agree."""
        out: Array = self.overlap_embed(a) @ self.overlap_embed(b).T
        return out

    def overlap_embed(self, x: Array) -> Array:
        """Rows of ``x`` whose inner products are the overlap term: one-hot categorical
        columns over ``sqrt(number of categorical columns)``."""
        out = np.zeros((len(x), self._cat_width))
        if self._cat_width:
            columns = self._cat_at + x[:, self._cat].astype(np.intp)
            out[np.arange(len(x))[:, None], columns] = 1.0 / math.sqrt(len(self._cat))
        return out

    def embed(self, x: Array, lengthscales: Array) -> Array:
        """Rows of ``x`` in a space where the kernel's ``r^2`` is the squared Euclidean distance.

        Numeric columns are divided by their length-scale; a categorical column
        becomes its one-hot vector divided by ``sqrt(2) * l``; an arc column
        its point on the circle of radius ``1 / l``, or the centre.
        """
        out = np.zeros((len(x), self._width))
        out[:, self._plain_at] = x[:, self._plain] / lengthscales[self._plain]
        for j, k in enumerate(self.n_choices):
            at = self._offsets[j]
            if self.arc[j]:
                on = (x[:, j] >= 0.0) / lengthscales[j]
                out[:, at] = np.sin(x[:, j]) * on
                out[:, at + 1] = np.cos(x[:, j]) * on
            elif k == 0:
                continue  # a plain numeric column: done above
            else:
                out[np.arange(len(x)), at + x[:, j].astype(np.intp)] = 1.0 / (
                    math.sqrt(2.0) * lengthscales[j]
                )
        return out

    def sq_dist(self, a: Array, b: Array, lengthscales: Array) -> Array:
        """``r^2`` between every row of ``a`` and every row of ``b``."""
        eb = self.embed(b, lengthscales)
        return self.sq_dist_to(a, lengthscales, eb, (eb * eb).sum(1))

    def sq_dist_to(self, a: Array, lengthscales: Array, eb: Array, eb2: Array) -> Array:
        """``r^2`` between every row of ``a`` and rows already embedded as ``eb``
        (:meth:`embed`), whose squared norms are ``eb2``."""
        ea = self.embed(a, lengthscales)
        r2: Array = (ea * ea).sum(1)[:, None] + eb2[None, :]
        r2 -= 2.0 * ea @ eb.T
        np.maximum(r2, 0.0, out=r2)  # the expansion can round a tiny r^2 below 0
        return r2

    def per_dim(self, x: Array) -> Array:
        """Unscaled squared distances per column, shape ``(P, n, n)``, for the gradient."""
        diff = x[None, :, :] - x[:, None, :]  # (n, n, P)
        s = np.where(self.categorical, (diff != 0.0).astype(np.float64), diff * diff)
        if self.arc.any():
            on = x[:, self.arc] >= 0.0  # (n, A)
            both = on[None, :, :] & on[:, None, :]
            one = on[None, :, :] ^ on[:, None, :]
            chord = 2.0 * (1.0 - np.cos(diff[:, :, self.arc]))
            s[:, :, self.arc] = np.where(both, chord, one.astype(np.float64))
        return np.moveaxis(s, 2, 0)

    def half_grad(self, xs: Array, x: Array) -> Array:
        """``(1/2) d r^2 / d xs`` before the length-scales, ``(m, n, P)``: ``xs - x`` on
        numeric columns, ``sin(xs - x)`` on arc columns where both rows are active, and 0
        on categorical columns and inactive arc columns."""
        diff = xs[:, None, :] - x[None, :, :]
        if self._any_categorical:
            diff[:, :, self.categorical] = 0.0
        if self._any_arc:
            both = (xs[:, None, self.arc] >= 0.0) & (x[None, :, self.arc] >= 0.0)
            diff[:, :, self.arc] = np.where(both, np.sin(diff[:, :, self.arc]), 0.0)
        return diff


MAX_POINTS = 256  # a GP conditions on at most this many trials
MAX_FIT = 128  # ... and fits its hyper-parameters on at most this many


def subset(ys: Array, size: int, rng: np.random.Generator) -> np.ndarray[tuple[int], Any]:
    """Indices of ``size`` rows of ``ys`` (one target, or one column per objective, all
    minimised): the rows best in some column (by rank), half of ``size``, and a
    random sample of the others."""
    ranks = np.argsort(np.argsort(ys, axis=0, kind="stable"), axis=0, kind="stable")
    order = np.argsort(ranks.reshape(len(ys), -1).min(axis=1), kind="stable")
    head = order[: size // 2]
    rest = rng.choice(order[size // 2 :], size=size - len(head), replace=False)
    return np.sort(np.concatenate([head, rest]))


def default_theta(kernel: Kernel) -> Array:
    """The starting hyper-parameters: length-scales 0.5, unit signal, small noise (and
    the overlap term's prior mean)."""
    n_cols = len(kernel.categorical)
    overlap = [_A_MEAN] if kernel.has_overlap else []
    return np.array([math.log(0.5)] * n_cols + [0.0, math.log(1e-3), *overlap])


def bounds(kernel: Kernel) -> list[tuple[float, float]]:
    """L-BFGS-B box constraints on ``theta``."""
    n_cols = len(kernel.categorical)
    return [_LOG_L] * n_cols + [_LOG_S2, _LOG_NOISE] + [_LOG_A] * kernel.has_overlap


def _cholesky(k: Array) -> Array:
    jitter = _JITTER
    while True:
        try:
            return np.asarray(linalg.cholesky(k, lower=True, check_finite=False))
        except linalg.LinAlgError:
            if jitter > 1e-2:
                raise
            k = k + jitter * np.eye(len(k))
            jitter *= 10.0


def neg_log_posterior(
    theta: Array, s: Array, y: Array, overlap: Array | None = None
) -> tuple[float, Array]:
    """Negative log marginal likelihood plus negative log prior, and its gradient.

    ``s`` holds the per-column unscaled squared distances (:meth:`Kernel.per_dim`),
    ``overlap`` the overlap term between the rows when ``theta`` has its weight.
    """
    n_cols = len(s)
    lengthscales = np.exp(theta[:n_cols])
    s2, noise = math.exp(theta[n_cols]), math.exp(theta[n_cols + 1])
    d = s / (lengthscales**2)[:, None, None]  # (P, n, n): (dx_i / l_i)^2
    corr, g = _matern_grad(d.sum(0))
    n = len(y)
    k = s2 * corr + (noise + _JITTER) * np.eye(n)
    if overlap is not None:
        a = math.exp(theta[n_cols + 2])
        k += a * overlap
    try:
        chol = _cholesky(k)
    except linalg.LinAlgError:
        return 1e10, np.zeros_like(theta)
    alpha = linalg.cho_solve((chol, True), y, check_finite=False)
    nll = (
        0.5 * float(y @ alpha)
        + float(np.log(np.diag(chol)).sum())
        + 0.5 * n * math.log(2 * math.pi)
    )
    # R&W eq. 5.9: d nll / d theta = 1/2 tr((K^-1 - alpha alpha^T) dK/dtheta).
    w = linalg.cho_solve((chol, True), np.eye(n), check_finite=False) - np.outer(alpha, alpha)
    grad = np.empty_like(theta)
    # dK/dlog l_i = s2 * 2 g * d_i  (since d r^2 / d log l_i = -2 d_i and dk/dr^2 = -g)
    grad[:n_cols] = s2 * np.einsum("jk,ijk->i", w * g, d)
    grad[n_cols] = 0.5 * float((w * (s2 * corr)).sum())
    grad[n_cols + 1] = 0.5 * noise * float(np.trace(w))
    if overlap is not None:
        grad[n_cols + 2] = 0.5 * a * float((w * overlap).sum())
    # Priors, in theta = log(.) coordinates (Jacobian included).
    log_l = theta[:n_cols]
    nll += float((-_L_SHAPE * log_l + _L_RATE * lengthscales).sum())
    grad[:n_cols] += -_L_SHAPE + _L_RATE * lengthscales
    nll += 0.5 * (theta[n_cols] / _S2_SD) ** 2
    grad[n_cols] += theta[n_cols] / _S2_SD**2
    nll += _NOISE_RATE * noise
    grad[n_cols + 1] += _NOISE_RATE * noise
    if overlap is not None:
        nll += 0.5 * ((theta[n_cols + 2] - _A_MEAN) / _A_SD) ** 2
        grad[n_cols + 2] += (theta[n_cols + 2] - _A_MEAN) / _A_SD**2
    return nll, grad


def fit_theta(kernel: Kernel, x: Array, y: Array, starts: list[Array], maxiter: int) -> Array:
    """The MAP hyper-parameters for ``(x, y)``, the best of L-BFGS-B runs from ``starts``."""
    return fit_map(kernel, x, y, starts, maxiter)[0]


def fit_map(
    kernel: Kernel, x: Array, y: Array, starts: list[Array], maxiter: int
) -> tuple[Array, float]:
    """:func:`fit_theta`'s hyper-parameters and their negative log posterior."""
    s = kernel.per_dim(x)
    overlap = kernel.overlap(x, x) if kernel.has_overlap else None
    box = bounds(kernel)
    best, best_value = starts[0], math.inf
    for start in starts:
        lo, hi = np.array(box).T
        result = optimize.minimize(
            neg_log_posterior,
            np.clip(start, lo, hi),
            args=(s, y, overlap),
            jac=True,
            method="L-BFGS-B",
            bounds=box,
            options={"maxiter": maxiter},
        )
        if np.isfinite(result.fun) and result.fun < best_value:
            best, best_value = np.asarray(result.x, dtype=np.float64), float(result.fun)
    return best, best_value


class Posterior:
    """The GP conditioned on ``(x, y)`` with fixed hyper-parameters ``theta``."""

    def __init__(
        self, kernel: Kernel, theta: Array, x: Array, y: Array, exact: Array | None = None
    ) -> None:
        n_cols = x.shape[1]
        self.kernel, self.theta, self.x, self.y = kernel, theta, x, y
        self.lengthscales = np.exp(theta[:n_cols])
        self.s2 = math.exp(theta[n_cols])
        self.noise = math.exp(theta[n_cols + 1])
        # The overlap term's weight, and the data's rows in its embedding.
        self.a = math.exp(theta[n_cols + 2]) if kernel.has_overlap else 0.0
        self._eo = kernel.overlap_embed(x) if kernel.has_overlap else None
        # Rows marked ``exact`` are observed without noise.
        self.exact = np.zeros(len(x), dtype=bool) if exact is None else exact
        # The data's rows embedded once, for every prediction (see Kernel.sq_dist_to).
        self._ex = kernel.embed(x, self.lengthscales)
        self._ex2 = (self._ex * self._ex).sum(1)
        k = _matern(kernel.sq_dist(x, x, self.lengthscales), overwrite=True)
        k *= self.s2
        self._add_overlap(k, x)
        noise = np.where(self.exact, 0.0, self.noise) + _JITTER
        k[np.diag_indices_from(k)] += noise
        self.chol = _cholesky(k)
        self.alpha = linalg.cho_solve((self.chol, True), y, check_finite=False)
        # LAPACK's potrs itself, as cho_solve calls it, without its checks and wrappers:
        # the acquisition's optimiser solves with the factor some 40 times per suggestion.
        self._potrs = linalg.get_lapack_funcs("potrs", (self.chol,))

    def condition(self, x_new: Array, y_new: Array, exact: bool = False) -> Posterior:
        """The same GP with ``(x_new, y_new)`` added to the data (hyper-parameters kept).

        With ``exact``, the new rows are taken as noiseless: the variance there
        collapses to zero whatever the fitted noise (a believer for a point in
        flight, whose value the model should not expect to learn again).
        """
        return Posterior(
            self.kernel,
            self.theta,
            np.vstack([self.x, x_new]),
            np.concatenate([self.y, y_new]),
            np.concatenate([self.exact, np.full(len(x_new), exact)]),
        )

    def _cross(self, xs: Array) -> Array:
        """The prior covariances between the rows of ``xs`` and the data, ``(m, n)``."""
        r2 = self.kernel.sq_dist_to(xs, self.lengthscales, self._ex, self._ex2)
        ks = _matern(r2, overwrite=True)
        ks *= self.s2
        self._add_overlap(ks, xs)
        return ks

    def _add_overlap(self, ks: Array, xs: Array) -> None:
        """Add the overlap term between the rows of ``xs`` and the data to ``ks``."""
        if self._eo is not None:
            ks += self.a * (self.kernel.overlap_embed(xs) @ self._eo.T)

    def mean(self, xs: Array) -> Array:
        """Posterior mean at the rows of ``xs``, without :meth:`predict`'s variance (whose
        triangular solve is most of its cost)."""
        out: Array = self._cross(xs) @ self.alpha
        return out

    def predict(self, xs: Array) -> tuple[Array, Array]:
        """Posterior mean and variance of the latent function at the rows of ``xs``."""
        ks = self._cross(xs)
        mean = ks @ self.alpha
        # In place: ks is not needed after the mean (see _matern on temporaries).
        v = linalg.solve_triangular(
            self.chol, ks.T, lower=True, overwrite_b=True, check_finite=False
        )
        v *= v
        var = np.maximum(self.s2 + self.a - v.sum(0), 1e-12)
        return mean, var

    def predict_grad(self, xs: Array) -> tuple[Array, Array, Array, Array]:
        """Mean, variance and their gradients ``(m, P)`` w.r.t. the numeric columns of ``xs``.

        The gradient is zero along categorical columns (they are not moved by
        the optimiser).
        """
        r2 = self.kernel.sq_dist_to(xs, self.lengthscales, self._ex, self._ex2)
        corr, g = _matern_grad(r2)
        ks = self.s2 * corr  # (m, n)
        self._add_overlap(ks, xs)  # constant along the numeric columns: no gradient
        # d k(x, x_j) / d x_i = -2 s2 g (x_i - x_ji) / l_i^2 on numeric columns.
        diff = self.kernel.half_grad(xs, self.x) / self.lengthscales**2  # (m, n, P)
        dks = -2.0 * self.s2 * g[:, :, None] * diff
        mean = ks @ self.alpha
        dmean = np.einsum("mnp,n->mp", dks, self.alpha)
        w, info = self._potrs(self.chol, ks.T, lower=True)  # K^-1 k(x), (n, m)
        if info != 0:  # pragma: no cover - only on invalid arguments
            raise ValueError(f"potrs: illegal value in argument {-info}")
        var = np.maximum(self.s2 + self.a - (ks * w.T).sum(1), 1e-12)
        dvar = -2.0 * np.einsum("mnp,nm->mp", dks, w)
        return mean, var, dmean, dvar
