"""Choosing LSH bands from a Jaccard threshold (``lsh_params``, CLI ``--lsh-threshold``).

With b bands of r hashes, two documents of Jaccard similarity s share a bucket with probability
P(s) = 1 - (1 - s^r)^b (the S-curve). For a threshold t, the false-positive area is the
integral of P over [0, t] and the false-negative area the integral of 1 - P over [t, 1]; the
chosen (b, r) minimises ``fp_weight * FP + (1 - fp_weight) * FN`` over every b * r <= the hash
budget, as datasketch's ``MinHashLSH`` and text-dedup choose it. The integrals are computed
with 96-point Gauss-Legendre quadrature (the integrands are polynomials of degree b*r at most;
the choice agrees with datasketch's, which integrates with SciPy's ``quad``).
"""

from __future__ import annotations

import numpy as np

from sparkdedup.errors import ConfigError

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(96)


def _integral(lo: float, hi: float, b: np.ndarray, r: np.ndarray, miss: bool) -> np.ndarray:
    """Integral over [lo, hi] of P (or 1 - P when `miss`) for every (b, r) pair."""
    s = (hi - lo) / 2 * _NODES + (hi + lo) / 2  # (k,)
    p = 1.0 - (1.0 - s[None, :] ** r[:, None]) ** b[:, None]
    values = 1.0 - p if miss else p
    return (hi - lo) / 2 * (values @ _WEIGHTS)


def lsh_params(threshold: float, num_hashes: int = 260, fp_weight: float = 0.5) -> tuple[int, int]:
    """``(num_bands, minhashes_per_band)`` for a Jaccard `threshold`, within `num_hashes`.

    Parameters
    ----------
    threshold : Jaccard similarity from which documents should be duplicates, in (0, 1).
    num_hashes : the MinHash budget: num_bands * minhashes_per_band <= this (NeMo Curator's
        default signature has 260).
    fp_weight : weight of false positives against false negatives (their weights sum to 1);
        0.5 weighs them equally, as datasketch's default.

    Returns
    -------
    (num_bands, minhashes_per_band)
        For example ``lsh_params(0.8, 260)``; NeMo Curator's default 20 x 13 corresponds to a
        threshold of about (1/20)^(1/13) = 0.79 on the S-curve.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise ConfigError(f"threshold must be a number in (0, 1), got {threshold!r}")
    if not 0.0 < float(threshold) < 1.0:
        raise ConfigError(f"threshold must be in (0, 1), got {threshold!r}")
    if isinstance(num_hashes, bool) or not isinstance(num_hashes, (int, np.integer)):
        raise ConfigError(f"num_hashes must be an integer, got {num_hashes!r}")
    if num_hashes < 1:
        raise ConfigError(f"num_hashes must be >= 1, got {num_hashes!r}")
    if isinstance(fp_weight, bool) or not isinstance(fp_weight, (int, float)):
        raise ConfigError(f"fp_weight must be a number in [0, 1], got {fp_weight!r}")
    if not 0.0 <= float(fp_weight) <= 1.0:
        raise ConfigError(f"fp_weight must be in [0, 1], got {fp_weight!r}")
    t = float(threshold)
    pairs = [(b, r) for b in range(1, num_hashes + 1) for r in range(1, num_hashes // b + 1)]
    b = np.array([p[0] for p in pairs], dtype=np.float64)
    r = np.array([p[1] for p in pairs], dtype=np.float64)
    fp = _integral(0.0, t, b, r, miss=False)
    fn = _integral(t, 1.0, b, r, miss=True)
    error = fp * float(fp_weight) + fn * (1.0 - float(fp_weight))
    # The first minimum in datasketch's loop order (b, then r, ascending).
    best = int(np.argmin(error))
    return pairs[best]


#: The verified mode's candidate generation finds a pair at the threshold with this probability.
VERIFY_RECALL = 0.995


def verify_bands(threshold: float, num_hashes: int = 260) -> tuple[int, int]:
    """``(num_bands, minhashes_per_band)`` for the verified mode: the fewest bands, each of as
    many hashes as fit in `num_hashes`, whose S-curve reaches `VERIFY_RECALL` at `threshold`
    (every band when none does). For 0.8 and 260 hashes: 29 bands of 8 (232 hashes used);
    P(0.8) = 0.995 and P(0.5) = 0.11, where Curator's 20 x 13 has P(0.8) = 0.68."""
    lsh_params(threshold, num_hashes)  # validates both
    t = float(threshold)
    for bands in range(1, num_hashes + 1):
        rows = num_hashes // bands
        if 1.0 - (1.0 - t**rows) ** bands >= VERIFY_RECALL:
            return bands, rows
    return num_hashes, 1
