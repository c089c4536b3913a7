"""Two-layer many-body term: the environments of an atom's neighbours enter its energy.

Layer 1 is `ManyBodyML`'s descriptor: moments M1 of each atom's neighbourhood and their 3- and
4-body invariants B1. A small network turns B1 into a learned state h_j (C channels) per atom.
Layer 2 forms moments again, each neighbour weighted by its state (M2_c = sum_j R_c(r_ij) h_jc
r^_ij^l, an equivariant message as in MACE and NequIP, here in Cartesian form), and contracts them
with M1 and with themselves into invariants B2. One network reads [B1, B2].

The energy of atom i depends on atoms up to two cutoffs away, so an engine must give every
neighbour of a local atom its own full neighbourhood (ghost atoms with neighbour lists, a
communication cutoff of 2 r_c): centres i >= n_atoms in `edge_index` are those ghosts, numbered
before the ghosts that are only their neighbours.
"""

from typing import List, Sequence

import torch
from torch import nn

from .descriptor_terms import ManyBodyML
from .invariants import upper_triangle
from .moments import CartesianMoments
from .readout import ElementNetworks
from .term import register_term


@register_term("message_passing")
class MessagePassingML(ManyBodyML):
    def __init__(self, n_species: int, cutoff: float, n_basis: int, n_channels: int, n_coupled: int,
                 hidden: List[int], l_max: int = 4, state_channels: int = 16, state_hidden: Sequence[int] = (64,),
                 message_l_max: int = 2, avg_neighbors: float = 10.0, shared_readout: bool = True,
                 radial_per_rank: bool = True):
        super().__init__(n_species, cutoff, n_basis, n_channels, n_coupled, hidden, l_max, avg_neighbors,
                         shared_readout, radial_per_rank)
        self.layers = 2
        self.n_species = n_species
        n_first = self.n_features
        # the state network reads standardised B1 and the element (one-hot)
        self.register_buffer("first_mean", torch.zeros(n_first))
        self.register_buffer("first_std", torch.ones(n_first))
        hidden_layers: List[nn.Module] = []
        width = n_first + n_species
        for h in state_hidden:
            hidden_layers += [nn.Linear(width, h), nn.SiLU()]
            width = h
        hidden_layers.append(nn.Linear(width, state_channels))
        self.state = nn.Sequential(*hidden_layers)
        self.messages = CartesianMoments(n_species, cutoff, n_basis, state_channels, message_l_max, avg_neighbors,
                                         radial_per_rank)
        self.message_bounds: List[int] = self.messages.rank_bounds
        self.register_buffer("state_triu", upper_triangle(state_channels))
        n_second = state_channels + (message_l_max + 1) * (state_channels * (state_channels + 1) // 2
                                                           + n_channels * state_channels)
        self.readout = ElementNetworks(n_species, n_first + n_second, hidden, shared_readout)

    def states(self, b1: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        one_hot = torch.nn.functional.one_hot(species, self.n_species).to(b1.dtype)
        return self.state(torch.cat([(b1 - self.first_mean) / self.first_std, one_hot], dim=1))

    def features(self, species: torch.Tensor, edge_index: torch.Tensor, vectors: torch.Tensor,
                 lengths: torch.Tensor, n_atoms: int) -> torch.Tensor:
        # layer 1 for the centres only: local atoms, then the ghosts that are centres (numbered before
        # the ghosts that are only neighbours, as ghost_layout(layers=2) numbers them)
        n_centres = max(n_atoms, int(edge_index[0].max()) + 1) if edge_index.shape[1] > 0 else n_atoms
        m1, b1 = self.moments_and_invariants(species, edge_index, vectors, lengths, n_centres)
        h = self.states(b1, species[:n_centres])
        local = edge_index[0] < n_atoms
        if not bool(local.all()):
            edge_index, vectors, lengths = edge_index[:, local], vectors[local], lengths[local]
        m2 = self.messages(species, edge_index, vectors, lengths, n_atoms, h.index_select(0, edge_index[1]))
        m1 = m1[:n_atoms]
        feats = [b1[:n_atoms], m2[:, :, 0]]
        w = self.weights.to(m2.dtype)
        for rank in range(len(self.message_bounds) - 1):
            lo, hi = self.message_bounds[rank], self.message_bounds[rank + 1]
            block2 = m2[:, :, lo:hi] * w[lo:hi]
            self_gram = torch.einsum("nkm,nlm->nkl", block2, m2[:, :, lo:hi]).reshape(n_atoms, -1)
            feats.append(self_gram.index_select(1, self.state_triu))
            feats.append(torch.einsum("nkm,nlm->nkl", m1[:, :, lo:hi], block2).reshape(n_atoms, -1))
        return torch.cat(feats, dim=1)

    def set_statistics(self, species: torch.Tensor, edge_index: torch.Tensor, vectors: torch.Tensor,
                       lengths: torch.Tensor, n_atoms: int, energy_scale: float) -> None:
        """Standardise B1 for the state network first: the readout's features [B1, B2] depend on it."""
        _, b1 = self.moments_and_invariants(species, edge_index, vectors, lengths, species.shape[0])
        self.first_mean.copy_(b1.mean(0))
        self.first_std.copy_(b1.std(0).clamp_min(1e-6))
        super().set_statistics(species, edge_index, vectors, lengths, n_atoms, energy_scale)
