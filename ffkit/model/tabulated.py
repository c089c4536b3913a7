"""Pairwise terms folded into one spline table per element pair: what MM codes do with pair styles.

After training, every pairwise term (repulsion, dispersion, Coulomb with fixed charges, the
learned pair potential) is a fixed function phi_ab(r). `ffkit compile` replaces their sum by a
cubic Hermite spline on a uniform grid, with values and derivatives taken exactly (autograd) at
the knots, so per edge the engine does one table lookup and a cubic instead of Bessel functions,
exponentials and powers. The interpolation error is measured at compile time and recorded in the
artifact's metadata. Below the first knot a repulsive pair continues as a/r + b (matched value and
slope), so the force keeps growing as atoms close in; engines also warn or stop below the closest
approach seen in training (artifact `min_distances`).
"""

import copy
import math
from typing import Dict, List

import torch

from .forcefield import ForceField
from .radial import PairTerm
from .term import Term

SPACING = 0.002  # Å between knots: interpolation errors ~1e-9 relative on smooth terms
R_FIRST = 0.2    # Å, first knot (ZBL diverges as 1/r at r -> 0)


class TabulatedPair(PairTerm):
    def __init__(self, coefficients: torch.Tensor, n_species: int, r_first: float, spacing: float, cutoff: float):
        super().__init__()
        self.n_species = n_species
        self.n_knots = int(coefficients.shape[1])
        self.r_first = float(r_first)
        self.spacing = float(spacing)
        self.cutoff = float(cutoff)
        # (S*S*n_knots, 4): c0 + c1 t + c2 t^2 + c3 t^3 on interval k of pair (a, b), t in [0, 1)
        self.register_buffer("coefficients", coefficients.reshape(-1, 4).contiguous())

    def pair_energy(self, first: torch.Tensor, second: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        x = (r - self.r_first) / self.spacing
        interval = torch.clamp(x.detach().floor(), 0.0, float(self.n_knots - 1))
        t = x - interval
        rows = (first * self.n_species + second) * self.n_knots + interval.to(torch.int64)
        c = self.coefficients.to(r.dtype).index_select(0, rows)
        cubic = ((c[:, 3] * t + c[:, 2]) * t + c[:, 1]) * t + c[:, 0]
        # below the first knot a repulsive pair continues as a/r + b (the screened-nuclear 1/r growth,
        # value and slope matched at the knot), so closer atoms are pushed apart ever harder; a pair
        # not repulsive there continues linearly
        slope = c[:, 1] / self.spacing
        a = -slope * self.r_first * self.r_first
        inverse = a / r + (c[:, 0] - a / self.r_first)
        below = torch.where(slope < 0.0, inverse, c[:, 0] + c[:, 1] * t)
        energy = torch.where(x < 0.0, below, cubic)
        return torch.where(r < self.cutoff, energy, torch.zeros_like(energy))


def _summed_pair_energy(terms: List[PairTerm], first: torch.Tensor, second: torch.Tensor,
                        r: torch.Tensor) -> torch.Tensor:
    return torch.stack([t.pair_energy(first, second, r) for t in terms]).sum(0)


def _values_and_slopes(terms: List[PairTerm], first: torch.Tensor, second: torch.Tensor, r: torch.Tensor):
    r = r.clone().requires_grad_(True)
    energy = _summed_pair_energy(terms, first, second, r)
    (slope,) = torch.autograd.grad(energy.sum(), r)
    return energy.detach(), slope


def tabulate(terms: List[PairTerm], n_species: int, spacing: float = SPACING,
             r_first: float = R_FIRST) -> Dict[str, object]:
    """The spline of the terms' summed phi_ab(r), and its largest errors at the interval midpoints."""
    cutoff = max(float(t.cutoff) for t in terms)
    n_knots = int(math.ceil((cutoff - r_first) / spacing)) + 2
    knots = r_first + spacing * torch.arange(n_knots, dtype=torch.float64)
    pairs = torch.cartesian_prod(torch.arange(n_species), torch.arange(n_species))
    first = pairs[:, 0].repeat_interleave(n_knots)
    second = pairs[:, 1].repeat_interleave(n_knots)
    terms = [copy.deepcopy(t).double() for t in terms]
    y, d = _values_and_slopes(terms, first, second, knots.repeat(len(pairs)))
    y, d = y.view(len(pairs), n_knots), d.view(len(pairs), n_knots) * spacing
    y1 = torch.cat([y[:, 1:], y[:, -1:]], 1)
    d1 = torch.cat([d[:, 1:], d[:, -1:]], 1)
    coefficients = torch.stack([y, d, 3.0 * (y1 - y) - 2.0 * d - d1, 2.0 * (y - y1) + d + d1], dim=-1)
    table = TabulatedPair(coefficients, n_species, r_first, spacing, cutoff)
    mid = (knots[:-1] + 0.5 * spacing).clamp(max=cutoff - 1e-9)
    f, s = first.view(len(pairs), n_knots)[:, :-1].flatten(), second.view(len(pairs), n_knots)[:, :-1].flatten()
    exact_e, exact_d = _values_and_slopes(terms, f, s, mid.repeat(len(pairs)))
    table_e, table_d = _values_and_slopes([table], f, s, mid.repeat(len(pairs)))
    return {"table": table, "max_energy_error_eV": float((table_e - exact_e).abs().max()),
            "max_force_error_eV_A": float((table_d - exact_d).abs().max())}


def tabulate_pair_terms(model: ForceField, spacing: float = SPACING) -> Dict[str, object]:
    """A model sharing `model`'s other terms, with its pairwise terms replaced by one spline table."""
    pair_terms = [t for t in model.terms if isinstance(t, PairTerm)]
    if not pair_terms:
        return {"model": model, "tabulated": None}
    result = tabulate(pair_terms, len(model.species), spacing)
    terms: Dict[str, Term] = {"pair_table": result["table"]}
    terms.update({n: t for n, t in zip(model.term_names, model.terms) if not isinstance(t, PairTerm)})
    out = ForceField(model.species, terms, model.reference_energies.detach().tolist())
    info = {"terms": [n for n, t in zip(model.term_names, model.terms) if isinstance(t, PairTerm)],
            "spacing_A": spacing, "r_first_A": R_FIRST,
            "max_energy_error_eV": result["max_energy_error_eV"],
            "max_force_error_eV_A": result["max_force_error_eV_A"]}
    # the table stays float64 (it casts itself to the input's dtype): a float64 artifact of a
    # float32-trained model keeps the table's full precision
    return {"model": out, "tabulated": info}
