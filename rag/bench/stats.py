"""95% intervals for benchmark numbers, and paired differences between modes.

* proportions (EM, contains, hit@k): Wilson score interval;
* means (F1, recall, MRR): percentile bootstrap with a fixed seed;
* paired difference (e.g. RAG - plain over the same questions): paired
  percentile bootstrap with a fixed seed, plus win/loss/tie counts and an exact
  two-sided sign-test p-value.

Example:
    >>> lo, hi = wilson_interval(8, 10)
    >>> round(lo, 3), round(hi, 3)
    (0.49, 0.943)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

Z95 = 1.959963984540054
DEFAULT_SEED = 0
DEFAULT_RESAMPLES = 2000

__all__ = [
    "wilson_interval",
    "bootstrap_mean_interval",
    "is_binary",
    "summarize",
    "paired_difference",
    "sign_test_p",
    "percentiles",
]


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion ``successes / n`` (``(0, 1)`` when n == 0)."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, center - half), min(1.0, center + half))


def bootstrap_mean_interval(
    values: Sequence[float], *, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (deterministic for a given seed)."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return (float("nan"), float("nan"))
    if np.all(x == x[0]):
        return (float(x[0]), float(x[0]))
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    step = max(1, 2_000_000 // n)  # bound memory: resample in blocks
    for start in range(0, resamples, step):
        stop = min(resamples, start + step)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = x[idx].mean(axis=1)
    alpha = (1 - level) / 2
    return (float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha)))


def is_binary(values: Sequence[float]) -> bool:
    """True when every value is 0 or 1."""
    return all(v in (0, 1) for v in values)


def summarize(values: Sequence[float], **bootstrap: Any) -> dict[str, Any]:
    """``{"n", "mean", "ci95": [lo, hi], "method"}``: Wilson for 0/1 values, bootstrap otherwise."""
    vals = [float(v) for v in values]
    n = len(vals)
    if n == 0:
        return {"n": 0, "mean": None, "ci95": [None, None], "method": None}
    mean = sum(vals) / n
    if is_binary(vals):
        lo, hi = wilson_interval(sum(vals), n)
        method = "wilson"
    else:
        lo, hi = bootstrap_mean_interval(vals, **bootstrap)
        method = "bootstrap"
    return {"n": n, "mean": mean, "ci95": [lo, hi], "method": method}


def sign_test_p(wins: int, losses: int) -> float:
    """Exact two-sided sign test (ties dropped): P(as extreme | p = 1/2)."""
    m = wins + losses
    if m == 0:
        return 1.0
    k = min(wins, losses)
    tail = sum(math.comb(m, i) for i in range(k + 1)) / 2**m
    return min(1.0, 2 * tail)


def paired_difference(
    a: Sequence[float], b: Sequence[float], *, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> dict[str, Any]:
    """Mean of ``a - b`` over paired items with a paired-bootstrap 95% interval and counts.

    Returns ``{"n", "mean_a", "mean_b", "diff", "ci95", "wins", "losses", "ties", "p_sign"}``
    where wins counts items with a > b.
    """
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} vs {len(b)}")
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    n = len(x)
    if n == 0:
        return {"n": 0, "mean_a": None, "mean_b": None, "diff": None, "ci95": [None, None],
                "wins": 0, "losses": 0, "ties": 0, "p_sign": None}
    d = x - y
    lo, hi = bootstrap_mean_interval(d, resamples=resamples, seed=seed)
    wins, losses = int((d > 0).sum()), int((d < 0).sum())
    return {
        "n": n,
        "mean_a": float(x.mean()),
        "mean_b": float(y.mean()),
        "diff": float(d.mean()),
        "ci95": [lo, hi],
        "wins": wins,
        "losses": losses,
        "ties": n - wins - losses,
        "p_sign": sign_test_p(wins, losses),
    }


def percentiles(values: Sequence[float], qs: Sequence[float] = (50, 95, 99)) -> dict[str, float | None]:
    """``{"p50": ..., "p95": ..., "p99": ..., "mean": ...}`` (linear interpolation); None when empty."""
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return {**{f"p{int(q)}": None for q in qs}, "mean": None, "n": 0}
    arr = np.asarray(vals)
    out: dict[str, float | None] = {f"p{int(q)}": float(np.percentile(arr, q)) for q in qs}
    out["mean"] = float(arr.mean())
    out["n"] = len(vals)
    return out
