"""ML terms built on environment moments: the 3-body (ANI/MTP-like) and many-body (ACE-like) rungs.

Both are strictly local: an atom's energy depends only on neighbours within the term's cutoff,
and all per-edge work is one radial mix, the monomials of r^ and one scatter (`CartesianMoments`).
"""

from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

from .invariants import RankSlices, four_body, three_body, upper_triangle
from .moments import CartesianMoments
from .readout import ElementNetworks
from .term import Term, register_term


class DescriptorTerm(Term):
    """An ML term: atomic networks (`self.readout`, an ElementNetworks) read per-atom invariant
    features (`features`), standardised with statistics of the training data."""

    @classmethod
    def from_spec(cls, spec: Dict[str, Any], species: List[int], avg_neighbors: float) -> "DescriptorTerm":
        return cls(len(species), avg_neighbors=avg_neighbors, **spec)

    def features(self, species: torch.Tensor, edge_index: torch.Tensor, vectors: torch.Tensor,
                 lengths: torch.Tensor, n_atoms: int) -> torch.Tensor:
        """Invariant features (n_atoms, F) of atoms 0..n_atoms-1 (arguments as in forward)."""
        raise NotImplementedError

    def forward(self, species: torch.Tensor, edge_index: torch.Tensor, vectors: torch.Tensor,
                lengths: torch.Tensor, n_atoms: int) -> torch.Tensor:
        return self.readout(self.features(species, edge_index, vectors, lengths, n_atoms), species[:n_atoms])

    def learned_readout(self) -> Optional[ElementNetworks]:
        return self.readout

    def set_statistics(self, species: torch.Tensor, edge_index: torch.Tensor, vectors: torch.Tensor,
                       lengths: torch.Tensor, n_atoms: int, energy_scale: float) -> None:
        self.readout.set_statistics(self.features(species, edge_index, vectors, lengths, n_atoms), energy_scale)


@register_term("three_body")
class ThreeBodyML(DescriptorTerm):
    """Angular power spectrum up to cos^l_max (body order 3) -> per-element networks."""

    def __init__(self, n_species: int, cutoff: float, n_basis: int, n_channels: int, hidden: List[int],
                 l_max: int = 2, avg_neighbors: float = 10.0, shared_readout: bool = False,
                 radial_per_rank: bool = False, heads: int = 1):
        super().__init__()
        self.cutoff = float(cutoff)
        self.moments = CartesianMoments(n_species, cutoff, n_basis, n_channels, l_max, avg_neighbors, radial_per_rank)
        slices = RankSlices(l_max)
        self.bounds: List[int] = slices.bounds
        self.register_buffer("weights", slices.weights)
        self.register_buffer("triu", upper_triangle(n_channels))
        n_features = n_channels + (l_max + 1) * n_channels * (n_channels + 1) // 2
        self.readout = ElementNetworks(n_species, n_features, hidden, shared_readout, heads)

    def features(self, species: torch.Tensor, edge_index: torch.Tensor, vectors: torch.Tensor,
                 lengths: torch.Tensor, n_atoms: int) -> torch.Tensor:
        m = self.moments(species, edge_index, vectors, lengths, n_atoms)
        return three_body(m, self.weights.to(m.dtype), self.bounds, self.triu)


@register_term("many_body")
class ManyBodyML(DescriptorTerm):
    """Three-body power spectrum plus four-body invariants of rank-1/rank-2 moments (ACE-like)."""

    def __init__(self, n_species: int, cutoff: float, n_basis: int, n_channels: int, n_coupled: int,
                 hidden: List[int], l_max: int = 2, avg_neighbors: float = 10.0, shared_readout: bool = False,
                 radial_per_rank: bool = False, heads: int = 1):
        super().__init__()
        self.cutoff = float(cutoff)
        self.moments = CartesianMoments(n_species, cutoff, n_basis, n_channels, max(l_max, 2), avg_neighbors,
                                        radial_per_rank)
        slices = RankSlices(max(l_max, 2))
        self.bounds: List[int] = slices.bounds
        self.register_buffer("weights", slices.weights)
        self.register_buffer("matrix_index", slices.matrix_index.flatten())
        self.register_buffer("triu", upper_triangle(n_channels))
        self.mix_vector = nn.Linear(n_channels, n_coupled, bias=False)
        self.mix_tensor = nn.Linear(n_channels, n_coupled, bias=False)
        self.n_features = n_channels + (max(l_max, 2) + 1) * n_channels * (n_channels + 1) // 2 + 2 * n_coupled ** 3
        self.readout = ElementNetworks(n_species, self.n_features, hidden, shared_readout, heads)

    def moments_and_invariants(self, species: torch.Tensor, edge_index: torch.Tensor, vectors: torch.Tensor,
                               lengths: torch.Tensor, n_atoms: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """The moments (N, K, M) and their 3- and 4-body invariants (N, F) of atoms 0..n_atoms-1."""
        m = self.moments(species, edge_index, vectors, lengths, n_atoms)
        v = self.mix_vector(m[:, :, 1:4].transpose(1, 2)).transpose(1, 2)
        t = m.index_select(2, self.matrix_index).view(m.shape[0], m.shape[1], 3, 3)
        t = self.mix_tensor(t.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return m, torch.cat([three_body(m, self.weights.to(m.dtype), self.bounds, self.triu), four_body(v, t)], dim=1)

    def features(self, species: torch.Tensor, edge_index: torch.Tensor, vectors: torch.Tensor,
                 lengths: torch.Tensor, n_atoms: int) -> torch.Tensor:
        return self.moments_and_invariants(species, edge_index, vectors, lengths, n_atoms)[1]
