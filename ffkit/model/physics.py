"""Physics terms with learnable parameters: the MM end of the ladder.

All three are pairwise and strictly local (zero at their cutoff, smooth), so they cost what a
classical pair style costs per edge. Their parameters start at physical values and are refined
by training together with the ML terms.
"""

import math
from typing import List

import torch
import torch.nn.functional as F
from ase.data import covalent_radii
from torch import nn

from .radial import PairTerm, PolynomialEnvelope, pair_index, symmetric_pair_table
from .term import register_term

COULOMB_EV_A = 14.399645  # e^2 / (4 pi eps0) in eV Å

# Grimme D2 C6 coefficients (J nm^6 / mol), converted to eV Å^6 below; others default to 5 eV Å^6.
_D2_C6 = {1: 0.14, 6: 1.75, 7: 1.23, 8: 0.70, 9: 0.75, 15: 7.84, 16: 5.57, 17: 5.07}
_J_NM6_PER_MOL_TO_EV_A6 = 1.0e-3 * 1.0e6 / 96.485332


def _inverse_softplus(x: torch.Tensor) -> torch.Tensor:
    return x + torch.log(-torch.expm1(-x))


@register_term("zbl")
class ZBLRepulsion(PairTerm):
    """Universal (ZBL) screened nuclear repulsion, switched off below bonding distances.

    It is what keeps MD stable when two atoms come closer than any training frame: the ML terms
    are blind there. The switch goes from 1 at 0.6 d_cov to 0 at 0.9 d_cov (d_cov = sum of
    covalent radii), so equilibrium bonds are left to the other terms. One learnable scale per
    element pair.
    """

    def __init__(self, species: List[int]):
        super().__init__()
        z = torch.tensor(species, dtype=torch.get_default_dtype())
        self.n_species = len(species)
        zz = z[:, None] * z[None, :]
        screening = 0.46850 / (z[:, None].pow(0.23) + z[None, :].pow(0.23))
        rcov = torch.tensor([covalent_radii[s] for s in species], dtype=z.dtype)
        dcov = rcov[:, None] + rcov[None, :]
        self.register_buffer("nuclear_coulomb", COULOMB_EV_A * zz.flatten())
        self.register_buffer("screening", screening.flatten())
        self.register_buffer("r_on", (0.6 * dcov).flatten())
        self.register_buffer("r_off", (0.9 * dcov).flatten())
        self.raw_scale = nn.Parameter(_inverse_softplus(torch.ones(len(species), len(species))))
        self.cutoff = float((0.9 * dcov).max())

    def pair_energy(self, first: torch.Tensor, second: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        pidx = pair_index(first, second, self.n_species)
        x = r / self.screening[pidx]
        phi = (0.18175 * torch.exp(-3.19980 * x) + 0.50986 * torch.exp(-0.94229 * x)
               + 0.28022 * torch.exp(-0.40290 * x) + 0.02817 * torch.exp(-0.20162 * x))
        r_on = self.r_on[pidx]
        r_off = self.r_off[pidx]
        t = torch.clamp((r - r_on) / (r_off - r_on), 0.0, 1.0)
        switch = 1.0 - t * t * t * (10.0 - 15.0 * t + 6.0 * t * t)  # C2 smoothstep, 1 -> 0
        scale = F.softplus(symmetric_pair_table(self.raw_scale)).flatten()[pidx]
        return scale * self.nuclear_coulomb[pidx] / r * phi * switch


@register_term("dispersion")
class Dispersion(PairTerm):
    """Rational-damped C6 dispersion, -C6_ab / (r^6 + R0_ab^6), enveloped to zero at the cutoff.

    C6_ab = sqrt(C6_a C6_b) with per-element C6 starting at Grimme-D2 values; R0_ab learnable.
    """

    def __init__(self, species: List[int], cutoff: float):
        super().__init__()
        self.n_species = len(species)
        self.cutoff = float(cutoff)
        c6 = torch.tensor([_D2_C6.get(s, 5.0 / _J_NM6_PER_MOL_TO_EV_A6) * _J_NM6_PER_MOL_TO_EV_A6 for s in species])
        self.raw_c6 = nn.Parameter(_inverse_softplus(c6.to(torch.get_default_dtype())))
        self.raw_r0 = nn.Parameter(_inverse_softplus(torch.full((len(species), len(species)), 2.5)))
        self.envelope = PolynomialEnvelope(cutoff)

    def pair_energy(self, first: torch.Tensor, second: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        c6 = F.softplus(self.raw_c6)
        c6_pair = torch.sqrt(c6[:, None] * c6[None, :]).flatten()
        r0 = F.softplus(symmetric_pair_table(self.raw_r0)).flatten()
        pidx = pair_index(first, second, self.n_species)
        return -c6_pair[pidx] / (r.pow(6) + r0[pidx].pow(6)) * self.envelope(r)


@register_term("coulomb")
class DampedShiftedCoulomb(PairTerm):
    """Coulomb between learnable per-element charges, damped shifted force (Fennell & Gezelter 2006).

    DSF makes energy and force go to zero at the cutoff, so electrostatics stays local (one ghost
    shell in LAMMPS) at the price of a screened long-range tail. The per-element self-energy is a
    constant absorbed by the reference energies, so it is left out. Charges start at zero.
    """

    def __init__(self, species: List[int], cutoff: float, alpha: float = 0.2):
        super().__init__()
        self.cutoff = float(cutoff)
        self.alpha = float(alpha)
        self.charges = nn.Parameter(torch.zeros(len(species)))
        self.coulomb_constant = COULOMB_EV_A
        rc = self.cutoff
        erfc_rc = math.erfc(alpha * rc)
        self.shift = erfc_rc / rc
        self.force_shift = erfc_rc / rc ** 2 + 2.0 * alpha / math.sqrt(math.pi) * math.exp(-(alpha * rc) ** 2) / rc

    def pair_energy(self, first: torch.Tensor, second: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        qq = self.charges[first] * self.charges[second]
        kernel = torch.erfc(self.alpha * r) / r - self.shift + self.force_shift * (r - self.cutoff)
        kernel = torch.where(r < self.cutoff, kernel, torch.zeros_like(kernel))
        return self.coulomb_constant * qq * kernel
