"""ML terms built on environment moments: the 3-body (ANI/BP-like) and many-body (ACE-like) rungs.

Both are strictly local: an atom's energy depends only on neighbours within the term's cutoff,
and all per-edge work is one radial mix and three scatters (`CartesianMoments`).
"""

from typing import List

import torch
from torch import nn

from .invariants import four_body, three_body, upper_triangle
from .moments import CartesianMoments
from .readout import ElementNetworks


class ThreeBodyML(nn.Module):
    """Angular power spectrum (body order 3) -> per-element networks."""

    def __init__(self, n_species: int, cutoff: float, n_basis: int, n_channels: int,
                 hidden: List[int], avg_neighbors: float = 10.0):
        super().__init__()
        self.cutoff = float(cutoff)
        self.moments = CartesianMoments(n_species, cutoff, n_basis, n_channels, avg_neighbors)
        self.register_buffer("triu", upper_triangle(n_channels))
        n_features = n_channels + n_channels * (n_channels + 1)
        self.readout = ElementNetworks(n_species, n_features, hidden)

    def features(self, species: torch.Tensor, edge_index: torch.Tensor, vectors: torch.Tensor,
                 lengths: torch.Tensor, n_atoms: int) -> torch.Tensor:
        a0, a1, a2 = self.moments(species, edge_index, vectors, lengths, n_atoms)
        return three_body(a0, a1, a2, self.triu)

    def forward(self, species: torch.Tensor, edge_index: torch.Tensor, vectors: torch.Tensor,
                lengths: torch.Tensor, n_atoms: int) -> torch.Tensor:
        return self.readout(self.features(species, edge_index, vectors, lengths, n_atoms), species[:n_atoms])


class ManyBodyML(nn.Module):
    """Three-body plus four-body invariants of L <= 2 moments (ACE-like, body order 4)."""

    def __init__(self, n_species: int, cutoff: float, n_basis: int, n_channels: int,
                 n_coupled: int, hidden: List[int], avg_neighbors: float = 10.0):
        super().__init__()
        self.cutoff = float(cutoff)
        self.moments = CartesianMoments(n_species, cutoff, n_basis, n_channels, avg_neighbors)
        self.register_buffer("triu", upper_triangle(n_channels))
        self.mix_vector = nn.Linear(n_channels, n_coupled, bias=False)
        self.mix_tensor = nn.Linear(n_channels, n_coupled, bias=False)
        n_features = n_channels + n_channels * (n_channels + 1) + 2 * n_coupled ** 3
        self.readout = ElementNetworks(n_species, n_features, hidden)

    def features(self, species: torch.Tensor, edge_index: torch.Tensor, vectors: torch.Tensor,
                 lengths: torch.Tensor, n_atoms: int) -> torch.Tensor:
        a0, a1, a2 = self.moments(species, edge_index, vectors, lengths, n_atoms)
        v = self.mix_vector(a1.transpose(1, 2)).transpose(1, 2)
        t = self.mix_tensor(a2.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return torch.cat([three_body(a0, a1, a2, self.triu), four_body(v, t)], dim=1)

    def forward(self, species: torch.Tensor, edge_index: torch.Tensor, vectors: torch.Tensor,
                lengths: torch.Tensor, n_atoms: int) -> torch.Tensor:
        return self.readout(self.features(species, edge_index, vectors, lengths, n_atoms), species[:n_atoms])
