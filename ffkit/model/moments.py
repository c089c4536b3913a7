"""Atomic environment moments: the equivariant density each ML descriptor is built from.

For atom i, channel k and rank l <= l_max: M_k^(l) = sum_j R_k(r_ij) r^_ij (x) ... (x) r^_ij (l times),
stored by its unique Cartesian monomials x^a y^b z^c (a+b+c = l), as in moment tensor potentials.
Contracting two rank-l moments gives sum_jj' R R' (cos theta_jj')^l, so ranks up to l_max resolve
bond angles up to that polynomial degree. R_k is a learned mix of a Bessel basis that depends on
the elements of both atoms (and, with `radial_per_rank`, on l: R_kl). All per-edge work of the ML
terms happens here; the rest is per atom.
"""

import math
from typing import List, Optional, Tuple

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


def rank_bounds(l_max: int) -> List[int]:
    """Where each rank's monomials start and end in `monomials(l_max)` (they are ordered by rank)."""
    _, _, ranks = monomials(l_max)
    return [int((ranks < rank).sum()) for rank in range(l_max + 2)]


class CartesianMoments(nn.Module):
    def __init__(self, n_species: int, cutoff: float, n_basis: int, n_channels: int, l_max: int = 2,
                 avg_neighbors: float = 10.0, radial_per_rank: bool = False):
        super().__init__()
        self.n_species = n_species
        self.n_channels = n_channels
        self.l_max = l_max
        self.cutoff = float(cutoff)
        self.basis = BesselBasis(cutoff, n_basis)
        # one radial mix per (centre, neighbour) element pair, as in ACE; with `radial_per_rank`
        # one per rank too (R_kl, as ACE and MACE have), else every rank shares R_k
        self.n_groups = l_max + 1 if radial_per_rank else 1
        width = n_species * n_species * n_channels * self.n_groups
        self.radial_weights = nn.Parameter(torch.randn(n_basis, width) / n_basis ** 0.5)
        self.inv_neighbors = 1.0 / float(avg_neighbors)
        exps, _, _ = monomials(l_max)
        self.register_buffer("columns", (3 * exps + torch.arange(3)).t().contiguous())
        self.rank_bounds: List[int] = rank_bounds(l_max)

    def forward(self, species: torch.Tensor, edge_index: torch.Tensor, vectors: torch.Tensor,
                lengths: torch.Tensor, n_atoms: int, neighbour_weights: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Moments (N, K, M) over the monomials of `monomials(l_max)`, divided by the mean neighbour count.

        `neighbour_weights` (E, K), if given, multiply each edge's radial channels: messages that
        carry the neighbour's learned state (the second layer of `MessagePassingML`)."""
        k = self.n_channels * self.n_groups
        n_pairs = self.n_species * self.n_species
        pair = species[edge_index[0]] * self.n_species + species[edge_index[1]]
        # each edge's basis goes in its element pair's slot, so one product applies that pair's mix
        # (cheaper than mixing for every pair and picking one: the picked tensor would be n_pairs
        # times wider, and so would its gradient)
        basis = self.basis(lengths)
        n_basis = basis.shape[1]
        slotted = torch.zeros(basis.shape[0], n_pairs, n_basis, dtype=basis.dtype, device=basis.device)
        slotted = slotted.scatter(1, pair.view(-1, 1, 1).expand(-1, 1, n_basis), basis.unsqueeze(1))
        mixes = self.radial_weights.view(n_basis, n_pairs, k).transpose(0, 1).reshape(n_pairs * n_basis, k)
        radial = (slotted.view(-1, n_pairs * n_basis) @ mixes) * self.inv_neighbors
        if neighbour_weights is not None:
            radial = radial * neighbour_weights.repeat(1, self.n_groups)
        unit = vectors / lengths.unsqueeze(-1)
        # powers[e, p, d] = unit[e, d]^p by repeated products (pow() has NaN gradients at 0^0)
        powers = [torch.ones_like(unit)]
        for _ in range(self.l_max):
            powers.append(powers[-1] * unit)
        p = torch.stack(powers, dim=1).flatten(1)  # column 3 * power + axis
        mono = (p.index_select(1, self.columns[0]) * p.index_select(1, self.columns[1])
                * p.index_select(1, self.columns[2]))
        if radial.shape[0] == 0:
            return torch.zeros(n_atoms, self.n_channels, mono.shape[1], dtype=vectors.dtype, device=vectors.device)
        slots, width = neighbour_slots(edge_index[0], n_atoms)
        padded_radial = torch.zeros(n_atoms * width, k, dtype=radial.dtype).index_copy(0, slots, radial)
        padded_mono = torch.zeros(n_atoms * width, mono.shape[1], dtype=mono.dtype).index_copy(0, slots, mono)
        radial_rows = padded_radial.view(n_atoms, width, k).transpose(1, 2)
        mono_rows = padded_mono.view(n_atoms, width, -1)
        if self.n_groups == 1:
            return torch.bmm(radial_rows, mono_rows)
        c = self.n_channels  # rank l's monomials are summed with the l-th block of radial channels
        return torch.cat([torch.bmm(radial_rows[:, rank * c:(rank + 1) * c],
                                    mono_rows[:, :, self.rank_bounds[rank]:self.rank_bounds[rank + 1]])
                          for rank in range(self.n_groups)], dim=2)


def neighbour_slots(centres: torch.Tensor, n_atoms: int) -> Tuple[torch.Tensor, int]:
    """Row-major slot (centre * width + rank among the centre's edges) of each edge, and the width.

    Summing over neighbours as a batched matrix product over these padded rows avoids
    materialising an (edges x channels x monomials) tensor: it is the hot path's largest saving.
    """
    counts = torch.bincount(centres, minlength=n_atoms)
    width = int(counts.max())
    starts = torch.cumsum(counts, 0) - counts
    if bool((centres[1:] >= centres[:-1]).all()):
        rank = torch.arange(centres.shape[0], device=centres.device) - starts[centres]
    else:
        order = torch.argsort(centres, stable=True)
        rank = torch.empty_like(centres)
        rank[order] = torch.arange(centres.shape[0], device=centres.device) - starts[centres[order]]
    return centres * width + rank, width
