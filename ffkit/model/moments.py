"""Atomic environment moments: the equivariant density each ML descriptor is built from.

For atom i and channel k: A0 = sum_j R_k(r_ij), A1 = sum_j R_k r^_ij, A2 = sum_j R_k (r^ r^ - I/3),
i.e. Cartesian tensors of rank L = 0, 1, 2 (the ACE atomic basis in Cartesian form). R_k is a
learned mix of a Bessel basis that depends on the neighbour's element. All the per-edge work
of the ML terms happens here; everything after is per atom.
"""

from typing import Tuple

import torch
from torch import nn

from .radial import BesselBasis


class CartesianMoments(nn.Module):
    def __init__(self, n_species: int, cutoff: float, n_basis: int, n_channels: int,
                 avg_neighbors: float = 10.0):
        super().__init__()
        self.n_species = n_species
        self.n_channels = n_channels
        self.cutoff = float(cutoff)
        self.basis = BesselBasis(cutoff, n_basis)
        w = torch.randn(n_basis, n_species * n_channels) / n_basis ** 0.5
        self.radial_weights = nn.Parameter(w)
        self.inv_neighbors = 1.0 / float(avg_neighbors)

    def forward(self, species: torch.Tensor, edge_index: torch.Tensor, vectors: torch.Tensor,
                lengths: torch.Tensor, n_atoms: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns A0 (N, K), A1 (N, K, 3), A2 (N, K, 3, 3), each divided by the mean neighbour count."""
        k = self.n_channels
        radial = (self.basis(lengths) @ self.radial_weights).view(-1, self.n_species, k)
        radial = radial.gather(1, species[edge_index[1]].view(-1, 1, 1).expand(-1, 1, k)).squeeze(1)
        radial = radial * self.inv_neighbors
        unit = vectors / lengths.unsqueeze(-1)
        eye = torch.eye(3, dtype=vectors.dtype, device=vectors.device)
        quad = unit.unsqueeze(-1) * unit.unsqueeze(-2) - eye / 3.0
        centres = edge_index[0]
        a0 = torch.zeros(n_atoms, k, dtype=vectors.dtype, device=vectors.device).index_add(0, centres, radial)
        a1 = torch.zeros(n_atoms, k, 3, dtype=vectors.dtype, device=vectors.device).index_add(
            0, centres, radial.unsqueeze(-1) * unit.unsqueeze(1))
        a2 = torch.zeros(n_atoms, k, 3, 3, dtype=vectors.dtype, device=vectors.device).index_add(
            0, centres, radial.view(-1, k, 1, 1) * quad.unsqueeze(1))
        return a0, a1, a2
