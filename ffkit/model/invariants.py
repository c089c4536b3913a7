"""Rotation invariants of the Cartesian moments, by body order.

Three-body: for each rank l, the channel Gram matrix sum_m w_m M_k,m M_k',m = sum_jj' R_k R_k' cos^l
(upper triangle only, so no feature is a duplicate), plus the rank-0 moments themselves.
Four-body: v_k . T_l . v_m and tr(T_k T_l T_m) from the rank-1 vectors v and rank-2 matrices T
of a reduced channel set.
"""

from typing import List

import torch

from .moments import monomials, rank_bounds


def upper_triangle(n: int) -> torch.Tensor:
    """Flat indices of the k <= l entries of an n x n matrix."""
    rows, cols = torch.triu_indices(n, n)
    return rows * n + cols


class RankSlices:
    """Where each rank's monomials sit in the moment tensor, and their contraction weights."""

    def __init__(self, l_max: int):
        exps, weights, _ = monomials(l_max)
        self.bounds: List[int] = rank_bounds(l_max)
        self.weights = weights
        # index of x^a y^b z^c for the rank-2 block, as a 3x3 matrix (xx xy xz / yx yy yz / ...)
        lookup = {tuple(e.tolist()): i for i, e in enumerate(exps)}
        unit = torch.eye(3, dtype=torch.int64)
        self.matrix_index = torch.tensor([[lookup[tuple((unit[a] + unit[b]).tolist())] for b in range(3)]
                                          for a in range(3)]) if l_max >= 2 else torch.zeros(3, 3, dtype=torch.int64)


def three_body(moments: torch.Tensor, weights: torch.Tensor, bounds: List[int], triu: torch.Tensor) -> torch.Tensor:
    n = moments.shape[0]
    feats = [moments[:, :, 0]]
    for l in range(len(bounds) - 1):
        block = moments[:, :, bounds[l]:bounds[l + 1]]
        gram = torch.einsum("nkm,nlm->nkl", block * weights[bounds[l]:bounds[l + 1]], block)
        feats.append(gram.reshape(n, -1).index_select(1, triu))
    return torch.cat(feats, dim=1)


def four_body(v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    n = v.shape[0]
    vtv = torch.einsum("nka,nlab,nmb->nklm", v, t, v).reshape(n, -1)
    ttt = torch.einsum("nkab,nlbc,nmca->nklm", t, t, t).reshape(n, -1)
    return torch.cat([vtv, ttt], dim=1)
