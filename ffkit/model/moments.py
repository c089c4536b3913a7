"""Atomic environment moments: the equivariant density each ML descriptor is built from.

For atom i, channel k and rank l <= l_max: M_k^(l) = sum_j R_k(r_ij) r^_ij (x) ... (x) r^_ij (l times),
stored by its unique Cartesian monomials x^a y^b z^c (a+b+c = l), as in moment tensor potentials.
Contracting two rank-l moments gives sum_jj' R R' (cos theta_jj')^l, so ranks up to l_max resolve
bond angles up to that polynomial degree. R_k is a learned mix of a Bessel basis that depends on
the neighbour's element. All per-edge work of the ML terms happens here; the rest is per atom.
"""

import math
from typing import List, Tuple

import torch
from torch import nn

from .radial import BesselBasis


def monomials(l_max: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exponents (M, 3), multinomial weights l!/(a!b!c!) (M,), and rank (M,) of all monomials up to l_max."""
    exps: List[List[int]] = []
    for l in range(l_max + 1):
        for a in range(l, -1, -1):
            for b in range(l - a, -1, -1):
                exps.append([a, b, l - a - b])
    e = torch.tensor(exps, dtype=torch.int64)
    weights = torch.tensor([math.factorial(int(a + b + c)) / (math.factorial(a) * math.factorial(b) * math.factorial(c))
                            for a, b, c in exps])
    return e, weights, e.sum(1)


class CartesianMoments(nn.Module):
    def __init__(self, n_species: int, cutoff: float, n_basis: int, n_channels: int, l_max: int = 2,
                 avg_neighbors: float = 10.0):
        super().__init__()
        self.n_species = n_species
        self.n_channels = n_channels
        self.l_max = l_max
        self.cutoff = float(cutoff)
        self.basis = BesselBasis(cutoff, n_basis)
        self.radial_weights = nn.Parameter(torch.randn(n_basis, n_species * n_channels) / n_basis ** 0.5)
        self.inv_neighbors = 1.0 / float(avg_neighbors)
        exps, _, _ = monomials(l_max)
        self.register_buffer("exponents", exps)

    def forward(self, species: torch.Tensor, edge_index: torch.Tensor, vectors: torch.Tensor,
                lengths: torch.Tensor, n_atoms: int) -> torch.Tensor:
        """Moments (N, K, M) over the monomials of `monomials(l_max)`, divided by the mean neighbour count."""
        k = self.n_channels
        radial = (self.basis(lengths) @ self.radial_weights).view(-1, self.n_species, k)
        radial = radial.gather(1, species[edge_index[1]].view(-1, 1, 1).expand(-1, 1, k)).squeeze(1)
        radial = radial * self.inv_neighbors
        unit = vectors / lengths.unsqueeze(-1)
        # powers[e, p, d] = unit[e, d]^p by repeated products (pow() has NaN gradients at 0^0)
        powers = [torch.ones_like(unit)]
        for _ in range(self.l_max):
            powers.append(powers[-1] * unit)
        p = torch.stack(powers, dim=1)
        mono = (p[:, self.exponents[:, 0], 0] * p[:, self.exponents[:, 1], 1] * p[:, self.exponents[:, 2], 2])
        moments = torch.zeros(n_atoms, k, mono.shape[1], dtype=vectors.dtype, device=vectors.device)
        return moments.index_add(0, edge_index[0], radial.unsqueeze(-1) * mono.unsqueeze(1))
