"""Rotation invariants of the Cartesian moments, by body order.

Three-body (B2): A0_k, A1_k . A1_l, A2_k : A2_l  (the angular power spectrum, Legendre P1/P2 of
bond angles). Four-body (B3): A1_k . A2_l . A1_m and tr(A2_k A2_l A2_m) on a reduced channel set.
Only the upper triangle of symmetric products is kept, so no feature is a duplicate.
"""

import torch


def upper_triangle(n: int) -> torch.Tensor:
    """Flat indices of the k <= l entries of an n x n matrix."""
    rows, cols = torch.triu_indices(n, n)
    return rows * n + cols


def three_body(a0: torch.Tensor, a1: torch.Tensor, a2: torch.Tensor, triu: torch.Tensor) -> torch.Tensor:
    n = a0.shape[0]
    p1 = torch.einsum("nka,nla->nkl", a1, a1).reshape(n, -1).index_select(1, triu)
    p2 = torch.einsum("nkab,nlab->nkl", a2, a2).reshape(n, -1).index_select(1, triu)
    return torch.cat([a0, p1, p2], dim=1)


def four_body(v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    n = v.shape[0]
    vtv = torch.einsum("nka,nlab,nmb->nklm", v, t, v).reshape(n, -1)
    ttt = torch.einsum("nkab,nlbc,nmca->nklm", t, t, t).reshape(n, -1)
    return torch.cat([vtv, ttt], dim=1)
