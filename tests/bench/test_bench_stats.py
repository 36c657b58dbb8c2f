"""Intervals and paired differences against known values."""

import pytest

from rag.bench.stats import (
    bootstrap_mean_interval, paired_difference, percentiles, sign_test_p, summarize, wilson_interval,
)


def test_wilson_known_values():
    # textbook values (Newcombe 1998; Wilson 1927 form without continuity correction)
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_bootstrap_deterministic_and_sane():
    vals = [0.0, 0.25, 0.5, 0.75, 1.0] * 20
    a = bootstrap_mean_interval(vals)
    assert a == bootstrap_mean_interval(vals)  # fixed seed
    lo, hi = a
    assert lo < 0.5 < hi
    # close to the normal approximation: 0.5 +- 1.96 * sd/sqrt(n) (sd = 0.3536)
    assert lo == pytest.approx(0.5 - 1.96 * 0.35355 / 10, abs=0.02)
    assert hi == pytest.approx(0.5 + 1.96 * 0.35355 / 10, abs=0.02)
    assert bootstrap_mean_interval([0.3, 0.3]) == (0.3, 0.3)


def test_summarize_picks_method():
    s = summarize([1, 0, 1, 1])
    assert s["method"] == "wilson" and s["n"] == 4 and s["mean"] == 0.75
    s = summarize([0.5, 0.25, 1.0])
    assert s["method"] == "bootstrap" and s["mean"] == pytest.approx(0.5833, abs=1e-4)
    assert summarize([])["mean"] is None


def test_paired_difference_counts_and_interval():
    a = [1, 1, 1, 1, 1, 1, 0, 0, 1, 1] * 5
    b = [0, 1, 0, 0, 1, 1, 0, 1, 1, 0] * 5
    d = paired_difference(a, b)
    assert d["n"] == 50
    assert d["diff"] == pytest.approx(0.3)
    assert (d["wins"], d["losses"], d["ties"]) == (20, 5, 25)
    lo, hi = d["ci95"]
    assert lo < 0.3 < hi and lo > 0  # clearly positive
    assert d["p_sign"] == pytest.approx(sign_test_p(20, 5))
    with pytest.raises(ValueError):
        paired_difference([1], [1, 0])


def test_sign_test_known_values():
    assert sign_test_p(8, 2) == pytest.approx(0.109375)  # 2 * (1 + 10 + 45) / 1024
    assert sign_test_p(0, 0) == 1.0
    assert sign_test_p(5, 5) == 1.0


def test_percentiles():
    p = percentiles([1, 2, 3, 4, 5, None])
    assert p["p50"] == 3 and p["n"] == 5 and p["mean"] == 3
    assert p["p95"] == pytest.approx(4.8)
    assert percentiles([])["p50"] is None
