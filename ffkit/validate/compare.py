"""Distances between a run's structure and a reference's (another run or the training frames).

RDFs are compared point by point (mean absolute error of g(r) on the common r range);
bonded-geometry histograms as probability distributions (Jensen–Shannon distance, base 2, in
[0, 1]; Wasserstein-1 distance in the histogram's own unit, Å or degrees).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance


def rdf_mae(r: np.ndarray, g: np.ndarray, r_ref: np.ndarray, g_ref: np.ndarray) -> float:
    """Mean |g − g_ref| over the r range both cover (the reference is interpolated onto r)."""
    inside = (r >= r_ref[0]) & (r <= r_ref[-1])
    if not inside.any():
        raise ValueError("the RDFs share no r range")
    return float(np.mean(np.abs(g[inside] - np.interp(r[inside], r_ref, g_ref))))


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon distance (base 2) of two histograms on the same bins."""
    if p.sum() <= 0 or q.sum() <= 0:
        return 1.0
    return float(jensenshannon(p, q, base=2))


def wasserstein(x: np.ndarray, p: np.ndarray, q: np.ndarray) -> float:
    """Wasserstein-1 distance of two histograms with bin centres ``x`` (unit of ``x``)."""
    if p.sum() <= 0 or q.sum() <= 0:
        return float("inf")
    return float(wasserstein_distance(x, x, p, q))


def compare_rdfs(run: dict, reference: dict) -> dict[str, float]:
    """{pair: MAE} for each element pair present in both RDF sets."""
    return {pair: rdf_mae(run[pair]["r"], run[pair]["g"], reference[pair]["r"], reference[pair]["g"])
            for pair in run if pair in reference}


def compare_distributions(run: dict, reference: dict) -> dict[str, dict]:
    """{key: {"js": ..., "wasserstein": ...}} for each histogram key present in both."""
    out = {}
    for key, dist in run.items():
        if key in reference:
            p, q = dist["p"], reference[key]["p"]
            out[key] = {"js": js_distance(p, q), "wasserstein": wasserstein(dist["x"], p, q)}
    return out
