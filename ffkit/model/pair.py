"""Two-body ML term: a learned radial function per element pair (UF3-like, linear in a basis).

As cheap as a classical pair style, and as flexible as the basis allows; it is the ML part of
the `mm` tier and the short-range backbone of the others.
"""

from typing import Any, Dict, List

import torch
from torch import nn

from .radial import BesselBasis, PairTerm, pair_index, symmetric_pair_table
from .term import register_term


@register_term("pair")
class PairML(PairTerm):
    def __init__(self, n_species: int, cutoff: float, n_basis: int = 12):
        super().__init__()
        self.n_species = n_species
        self.cutoff = float(cutoff)
        self.basis = BesselBasis(cutoff, n_basis)
        self.weights = nn.Parameter(torch.zeros(n_species, n_species, n_basis))

    @classmethod
    def from_spec(cls, spec: Dict[str, Any], species: List[int], avg_neighbors: float) -> "PairML":
        return cls(len(species), **spec)

    def pair_energy(self, first: torch.Tensor, second: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        table = symmetric_pair_table(self.weights).reshape(self.n_species * self.n_species, -1)
        w = table[pair_index(first, second, self.n_species)]
        return (w * self.basis(r)).sum(-1)
