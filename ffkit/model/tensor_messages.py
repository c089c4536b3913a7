"""Equivariant Cartesian-tensor messages: atoms carry 3x3 tensors per channel (TensorNet-like).

Each atom i holds, per channel c, a 3x3 matrix X_ic = I_ic + A_ic + S_ic: a scalar (times the
identity), an antisymmetric part (a vector, as its skew matrix) and a symmetric traceless part
(rank 2). Rotations act as R X R^T on all three, so matrix products of such tensors are
equivariant: that is how directions, not only distances and angles' cosines, travel between atoms
(l <= 2 features, which carry most of MACE's and NequIP's accuracy).

- Embedding: X_i = sum_j f(r_ij) [f_I 1 + f_A skew(r^_ij) + f_S (r^ r^^T - 1/3)], with radial
  channels that depend on both elements; then each part is mixed over channels and gated by a
  small network of the per-channel norms.
- Interaction (`interactions: 1`): neighbours' normalised tensors Y_j, weighted by radial
  channels per part, are summed into M_i; P_i = Y_i M_i + M_i Y_i raises the body order and
  brings the neighbours' directions in; X_i += D + D D, D the channel-mixed, normalised P.
  With `interactions: 0` the product is the atom's own Y_i Y_i: strictly local.
- Readout: per channel the scalar, |A|^2 and |S|^2 of every layer -> one atomic network.

With an interaction, an atom's energy reaches two cutoffs (`layers = 2`): engines give every
neighbour of a local atom its own neighbourhood (ghost centres numbered right after the locals, as
`ghost_layout(layers=2)` and the LAMMPS plugin do).
"""

from typing import Any, Dict, List, Sequence

import torch
from torch import nn

from .descriptor_terms import DescriptorTerm
from .radial import BesselBasis
from .readout import ElementNetworks
from .term import register_term


# A per-channel 3x3 tensor X = s 1 + A + S is held as 10 numbers on dim 1 of (N, 10, C), channels
# last ("parts"): the scalar part s = tr X / 3, the vector w of the antisymmetric part (A = skew(w):
# A_21 = w0, A_02 = w1, A_10 = w2) and the six entries of the symmetric traceless part S (00, 11, 22,
# 01, 02, 12). Mixing over channels is then one matrix product per part, and sums over edges add 10
# numbers per edge and channel where 3x3 matrices take 27. Only the products Y M + M Y and D D see
# 3x3 matrices.


def to_matrices(parts: torch.Tensor) -> torch.Tensor:
    """(N, 10, C) parts -> (N, C, 3, 3) matrices s 1 + skew(w) + S."""
    s, w0, w1, w2, q00, q11, q22, q01, q02, q12 = parts.unbind(1)
    return torch.stack([s + q00, q01 - w2, q02 + w1,
                        q01 + w2, s + q11, q12 - w0,
                        q02 - w1, q12 + w0, s + q22], dim=-1).unflatten(-1, (3, 3))


def to_parts(x: torch.Tensor) -> torch.Tensor:
    """(N, C, 3, 3) matrices -> (N, 10, C) parts."""
    x00, x01, x02, x10, x11, x12, x20, x21, x22 = x.flatten(-2).unbind(-1)
    s = (x00 + x11 + x22) / 3.0
    return torch.stack([s, 0.5 * (x21 - x12), 0.5 * (x02 - x20), 0.5 * (x10 - x01), x00 - s, x11 - s, x22 - s,
                        0.5 * (x01 + x10), 0.5 * (x02 + x20), 0.5 * (x12 + x21)], dim=1)


def scale_parts(parts: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Each part of (N, 10, C) scaled by its own factor (N, 3, C): scalar, antisymmetric, symmetric."""
    s, w, q = parts.split([1, 3, 6], dim=1)
    fs, fw, fq = factors.split(1, dim=1)
    return torch.cat([s * fs, w * fw, q * fq], dim=1)


def squared_norms(parts: torch.Tensor) -> torch.Tensor:
    """Per atom and channel, the squared Frobenius norms of the scalar (3 s^2), antisymmetric (2 |w|^2)
    and symmetric parts of (N, 10, C) parts -> (N, 3, C)."""
    s, w, diagonal, off = (parts * parts).split([1, 3, 3, 3], dim=1)
    return torch.cat([3.0 * s, 2.0 * w.sum(1, keepdim=True),
                      diagonal.sum(1, keepdim=True) + 2.0 * off.sum(1, keepdim=True)], dim=1)


def invariants(parts: torch.Tensor) -> torch.Tensor:
    """Per channel: the scalar part, |A|^2 and |S|^2 of (N, 10, C) parts -> (N, 3C)."""
    norms = squared_norms(parts)
    return torch.cat([parts[:, 0], norms[:, 1], norms[:, 2]], dim=1)


def normalised(parts: torch.Tensor) -> torch.Tensor:
    """X / (|X| + 1) per channel: keeps products of tensors O(1) whatever the neighbour count."""
    return parts / (torch.sqrt(squared_norms(parts).sum(1, keepdim=True)) + 1.0)


def symmetrised_product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """A B + B A of (N, 10, C) parts, as parts."""
    ma, mb = to_matrices(a), to_matrices(b)
    return to_parts(ma @ mb + mb @ ma)


class PartMixing(nn.Module):
    """Separate channel mixing (C -> C, no bias) of the scalar, antisymmetric and symmetric parts:
    a linear map of each part keeps it what it is, so the result stays equivariant."""

    def __init__(self, channels: int):
        super().__init__()
        self.weights = nn.Parameter(torch.randn(3, channels, channels) / channels ** 0.5)

    def forward(self, parts: torch.Tensor) -> torch.Tensor:
        """Mixed (N, 10, C) parts."""
        s, w, q = parts.split([1, 3, 6], dim=1)
        ws, ww, wq = self.weights.unbind(0)
        return torch.cat([s @ ws, w @ ww, q @ wq], dim=1)


class EdgeRadials(nn.Module):
    """Radial channels (E, 3, C), one set per part, as a learned mix of the Bessel basis times a
    learned factor per ordered element pair."""

    def __init__(self, n_species: int, n_basis: int, channels: int):
        super().__init__()
        self.n_species = n_species
        self.channels = channels
        self.mix = nn.Linear(n_basis, 3 * channels, bias=False)
        self.pair_factors = nn.Parameter(torch.ones(n_species * n_species, 3 * channels))

    def forward(self, basis: torch.Tensor, pair: torch.Tensor) -> torch.Tensor:
        return (self.mix(basis) * self.pair_factors.index_select(0, pair)).view(-1, 3, self.channels)


@register_term("tensor_messages")
class TensorMessagesML(DescriptorTerm):
    def __init__(self, n_species: int, cutoff: float, n_basis: int = 8, channels: int = 32, interactions: int = 1,
                 hidden: Sequence[int] = (128, 128), avg_neighbors: float = 10.0, shared_readout: bool = True):
        super().__init__()
        if interactions not in (0, 1):
            raise ValueError(f"tensor_messages: interactions must be 0 or 1, not {interactions}")
        self.cutoff = float(cutoff)
        self.layers = interactions + 1
        self.interactions = interactions
        self.n_species = n_species
        self.channels = channels
        self.inv_neighbors = 1.0 / float(avg_neighbors)
        self.basis = BesselBasis(cutoff, n_basis)
        self.embed_radials = EdgeRadials(n_species, n_basis, channels)
        self.embed_norm = nn.LayerNorm(channels)
        self.embed_gates = nn.Sequential(nn.Linear(channels, 2 * channels), nn.SiLU(),
                                         nn.Linear(2 * channels, 3 * channels))
        self.embed_mixing = PartMixing(channels)
        self.message_radials = EdgeRadials(n_species, n_basis, channels)
        self.pre_mixing = PartMixing(channels)
        self.post_mixing = PartMixing(channels)
        self.readout = ElementNetworks(n_species, 6 * channels, list(hidden), shared_readout)

    @classmethod
    def from_spec(cls, spec: Dict[str, Any], species: List[int], avg_neighbors: float) -> "TensorMessagesML":
        return cls(len(species), avg_neighbors=avg_neighbors, **spec)

    def embedding(self, species: torch.Tensor, edge_index: torch.Tensor, unit: torch.Tensor,
                  basis: torch.Tensor, n_centres: int) -> torch.Tensor:
        """X (n_centres, 10, C) of atoms 0..n_centres-1 from their own neighbourhoods:
        X = sum_j r0 1 + r1 skew(u) + r2 (u u^T - 1/3), then each part mixed over channels and gated by
        a network of the layer-normed per-channel norms."""
        radial = self.embed_radials(basis, species[edge_index[0]] * self.n_species + species[edge_index[1]])
        x, y, z = unit[:, 0], unit[:, 1], unit[:, 2]
        third = 1.0 / 3.0
        directions = torch.stack([torch.ones_like(x), x, y, z, x * x - third, y * y - third, z * z - third,
                                  x * y, x * z, y * z], dim=1)  # (E, 10): the parts of 1, skew(u), u u^T - 1/3
        edge = scale_parts(directions.unsqueeze(-1).expand(-1, -1, self.channels), radial)
        summed = torch.zeros(n_centres, 10, self.channels, dtype=unit.dtype, device=unit.device)
        x0 = summed.index_add(0, edge_index[0], edge) * self.inv_neighbors
        gates = self.embed_gates(self.embed_norm(squared_norms(x0).sum(1))).view(-1, 3, self.channels)
        return scale_parts(self.embed_mixing(x0), gates)

    def messages(self, y: torch.Tensor, radial: torch.Tensor, centres: torch.Tensor, neighbours: torch.Tensor,
                 n_atoms: int) -> torch.Tensor:
        """M_i = sum_j r0 s_j 1 + r1 A_j + r2 S_j: the neighbours' parts weighted by radial channels (E, 3, C)."""
        per_edge = scale_parts(y.index_select(0, neighbours), radial)
        summed = torch.zeros(n_atoms, 10, self.channels, dtype=y.dtype, device=y.device)
        return summed.index_add(0, centres, per_edge) * self.inv_neighbors

    def features(self, species: torch.Tensor, edge_index: torch.Tensor, vectors: torch.Tensor,
                 lengths: torch.Tensor, n_atoms: int) -> torch.Tensor:
        # with an interaction, the ghosts that are centres (numbered right after the locals) need X too
        n_centres = n_atoms
        if self.interactions > 0 and edge_index.shape[1] > 0:
            n_centres = max(n_atoms, int(edge_index[0].max()) + 1)
        unit = vectors / lengths.unsqueeze(-1)
        basis = self.basis(lengths)
        x = self.embedding(species, edge_index, unit, basis, n_centres)
        y = self.pre_mixing(normalised(x))
        if self.interactions > 0:
            local = edge_index[0] < n_atoms
            centres, neighbours = edge_index[0][local], edge_index[1][local]
            radial = self.message_radials(basis[local], species[centres] * self.n_species + species[neighbours])
            m = self.messages(y, radial, centres, neighbours, n_atoms)
        else:
            m = y
        d = self.post_mixing(normalised(symmetrised_product(y[:n_atoms], m)))
        dd = to_matrices(d)
        x_local = x[:n_atoms]
        return torch.cat([invariants(x_local), invariants(x_local + d + to_parts(dd @ dd))], dim=1)
