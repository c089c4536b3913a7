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

from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from .descriptor_terms import DescriptorTerm
from .radial import BesselBasis
from .readout import ElementNetworks
from .term import register_term


def decompose(x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scalar (trace / 3, shape (..., C)), antisymmetric and symmetric traceless parts of (..., C, 3, 3)."""
    scalar = x.diagonal(dim1=-2, dim2=-1).sum(-1) / 3.0
    transposed = x.transpose(-1, -2)
    eye = torch.eye(3, dtype=x.dtype, device=x.device)
    return scalar, 0.5 * (x - transposed), 0.5 * (x + transposed) - scalar[..., None, None] * eye


def invariants(x: torch.Tensor) -> torch.Tensor:
    """Per channel: the scalar part, |A|^2 and |S|^2 of (N, C, 3, 3) tensors -> (N, 3C)."""
    scalar, anti, sym = decompose(x)
    return torch.cat([scalar, (anti * anti).sum((-1, -2)), (sym * sym).sum((-1, -2))], dim=1)


def normalised(x: torch.Tensor) -> torch.Tensor:
    """x / (|x| + 1) per channel: keeps products of tensors O(1) whatever the neighbour count."""
    return x / (torch.linalg.vector_norm(x, dim=(-1, -2), keepdim=True) + 1.0)


# A per-channel 3x3 tensor as 10 numbers: the scalar part s, the vector w of the antisymmetric part
# (A = skew(w): A_21 = w0, A_02 = w1, A_10 = w2) and the six entries of a symmetric matrix Q (00, 11,
# 22, 01, 02, 12), for X = s 1 + A + Q. Sums over edges (the embedding, the messages) run in this form:
# 10 numbers per edge and channel where 3x3 matrices of each part take 27.


def compact(x: torch.Tensor) -> torch.Tensor:
    """(..., C, 3, 3) -> (..., C, 10): s = tr/3, w of (X - X^T)/2, and the symmetric traceless part."""
    scalar, anti, sym = decompose(x)
    return torch.stack([scalar, anti[..., 2, 1], anti[..., 0, 2], anti[..., 1, 0], sym[..., 0, 0], sym[..., 1, 1],
                        sym[..., 2, 2], sym[..., 0, 1], sym[..., 0, 2], sym[..., 1, 2]], dim=-1)


def assemble(c: torch.Tensor) -> torch.Tensor:
    """(..., C, 10) -> (..., C, 3, 3): s 1 + skew(w) + Q."""
    s, w0, w1, w2, q00, q11, q22, q01, q02, q12 = c.unbind(-1)
    return torch.stack([s + q00, q01 - w2, q02 + w1,
                        q01 + w2, s + q11, q12 - w0,
                        q02 - w1, q12 + w0, s + q22], dim=-1).unflatten(-1, (3, 3))


class PartMixing(nn.Module):
    """Separate channel mixing (C -> C, no bias) of the scalar, antisymmetric and symmetric parts:
    a linear map of each part keeps it what it is, so the result stays equivariant."""

    def __init__(self, channels: int):
        super().__init__()
        self.weights = nn.Parameter(torch.randn(3, channels, channels) / channels ** 0.5)

    def forward(self, x: torch.Tensor, gates: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Mixed (N, C, 3, 3) tensors; with gates (N, 3, C), each part scaled per atom and channel."""
        scalar, anti, sym = decompose(x)
        eye = torch.eye(3, dtype=x.dtype, device=x.device)
        s = scalar @ self.weights[0]
        a = torch.einsum("nkab,kl->nlab", anti, self.weights[1])
        t = torch.einsum("nkab,kl->nlab", sym, self.weights[2])
        if gates is not None:
            s, a, t = s * gates[:, 0], a * gates[:, 1, :, None, None], t * gates[:, 2, :, None, None]
        return s[..., None, None] * eye + a + t


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
        """X (n_centres, C, 3, 3) of atoms 0..n_centres-1 from their own neighbourhoods:
        X = sum_j r0 1 + r1 skew(u) + r2 (u u^T - 1/3), summed in compact form (s, w, Q) =
        (r0 - r2/3, r1 u, r2 u u^T)."""
        radial = self.embed_radials(basis, species[edge_index[0]] * self.n_species + species[edge_index[1]])
        r0, r1, r2 = radial[:, 0], radial[:, 1], radial[:, 2]
        x, y, z = unit[:, 0], unit[:, 1], unit[:, 2]
        outer = torch.stack([x * x, y * y, z * z, x * y, x * z, y * z], dim=1)  # (E, 6): Q's entries
        edge = torch.cat([(r0 - r2 / 3.0).unsqueeze(-1), r1.unsqueeze(-1) * unit.unsqueeze(1),
                          r2.unsqueeze(-1) * outer.unsqueeze(1)], dim=-1)  # (E, C, 10)
        summed = torch.zeros(n_centres, self.channels, 10, dtype=unit.dtype, device=unit.device)
        x0 = assemble(summed.index_add(0, edge_index[0], edge) * self.inv_neighbors)
        norms = self.embed_norm((x0 * x0).sum((-1, -2)))
        return self.embed_mixing(x0, self.embed_gates(norms).view(-1, 3, self.channels))

    def messages(self, y: torch.Tensor, radial: torch.Tensor, centres: torch.Tensor, neighbours: torch.Tensor,
                 n_atoms: int) -> torch.Tensor:
        """M_i = sum_j r0 s_j 1 + r1 A_j + r2 S_j: the neighbours' parts weighted by radial channels (E, 3, C),
        summed in compact form."""
        r = radial.transpose(1, 2)  # (E, C, 3): each part's weight, repeated over its components below
        weights = torch.cat([r[..., 0:1], r[..., 1:2].expand(-1, -1, 3), r[..., 2:3].expand(-1, -1, 6)], dim=-1)
        per_edge = weights * compact(y).index_select(0, neighbours)
        summed = torch.zeros(n_atoms, self.channels, 10, dtype=y.dtype, device=y.device)
        return assemble(summed.index_add(0, centres, per_edge) * self.inv_neighbors)

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
        y_local = y[:n_atoms]
        product = normalised(y_local @ m + m @ y_local)
        d = self.post_mixing(product)
        x_local = x[:n_atoms]
        return torch.cat([invariants(x_local), invariants(x_local + d + d @ d)], dim=1)
