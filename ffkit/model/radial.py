"""Radial building blocks shared by all terms: a smooth cutoff envelope and a Bessel basis.

Every term multiplies by the envelope, so each contribution and its first two derivatives go to
zero at the term's cutoff: that is what makes a strictly local model conserve energy in MD.
"""

import math

import torch
from torch import nn

from .term import Term


class PolynomialEnvelope(nn.Module):
    """u(r) = 1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2), x = r/r_c; 0 beyond r_c."""

    def __init__(self, cutoff: float, p: int = 6):
        super().__init__()
        self.cutoff = float(cutoff)
        self.p = float(p)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        p = self.p
        x = torch.clamp(r / self.cutoff, max=1.0)
        u = (
            1.0
            - 0.5 * (p + 1.0) * (p + 2.0) * x.pow(p)
            + p * (p + 2.0) * x.pow(p + 1.0)
            - 0.5 * p * (p + 1.0) * x.pow(p + 2.0)
        )
        return torch.where(r < self.cutoff, u, torch.zeros_like(u))


class BesselBasis(nn.Module):
    """sqrt(2/r_c) sin(n pi r / r_c) / r for n = 1..n_basis, times the envelope: shape (E, n_basis)."""

    def __init__(self, cutoff: float, n_basis: int):
        super().__init__()
        self.cutoff = float(cutoff)
        frequencies = torch.arange(1, n_basis + 1, dtype=torch.get_default_dtype()) * math.pi / cutoff
        self.register_buffer("frequencies", frequencies)
        self.prefactor = math.sqrt(2.0 / cutoff)
        self.envelope = PolynomialEnvelope(cutoff)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        r = r.unsqueeze(-1)
        basis = self.prefactor * torch.sin(self.frequencies * r) / r
        return basis * self.envelope(r)


def pair_index(first: torch.Tensor, second: torch.Tensor, n_species: int) -> torch.Tensor:
    """Index of the ordered element pair (first, second) of each edge, in [0, n_species**2)."""
    return first * n_species + second


def symmetric_pair_table(table: torch.Tensor) -> torch.Tensor:
    """Make a (S, S, ...) per-pair parameter symmetric, so that phi_ab == phi_ba exactly."""
    return 0.5 * (table + table.transpose(0, 1))


def half_to_centres(pair_energy: torch.Tensor, centres: torch.Tensor, n_atoms: int) -> torch.Tensor:
    """Give each atom half of every pair energy it is the centre of (the full list holds i->j and j->i)."""
    out = torch.zeros(n_atoms, dtype=pair_energy.dtype, device=pair_energy.device)
    return out.index_add(0, centres, 0.5 * pair_energy)


class PairTerm(Term):
    """A term whose energy is a sum over pairs of phi_ab(r): what `ffkit compile` can tabulate.

    Subclasses define `pair_energy(first, second, r)` (species indices of both ends, distance) for
    one direction of each pair; the full neighbour list holds both, so each end gets half.
    """

    def forward(self, species: torch.Tensor, edge_index: torch.Tensor, vectors: torch.Tensor,
                lengths: torch.Tensor, n_atoms: int) -> torch.Tensor:
        energy = self.pair_energy(species[edge_index[0]], species[edge_index[1]], lengths)
        return half_to_centres(energy, edge_index[0], n_atoms)

    def pair_energy(self, first: torch.Tensor, second: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError
