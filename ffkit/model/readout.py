"""Atomic networks (Behler–Parrinello), per element or shared: invariant features -> atomic energy.

Features are standardised with statistics taken from training data before training starts
(`set_statistics`), and outputs scaled by the RMS force of the data, so the networks see and
produce O(1) numbers whatever the descriptor's scale or the system's energy scale.
"""

import copy
from typing import List

import torch
from torch import nn


def mlp(n_in: int, hidden: List[int]) -> nn.Sequential:
    layers: List[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(n_in, width), nn.SiLU()]
        n_in = width
    layers.append(nn.Linear(n_in, 1))
    return nn.Sequential(*layers)


class ElementNetworks(nn.Module):
    """One network per element, or (`shared`) one network for all, told the element by a one-hot input.

    Shared: every atom trains the same weights (a third of the parameters for three elements),
    which overfits less on small data sets (the `accurate` tier, see tiers.py).

    With `heads` > 1 there are that many independent sets of networks on the same features: a
    committee whose members share everything but their networks, so an engine computes the
    descriptor once for all of them (issue #18). The output is head `head`'s energy, or with
    `head` = -1 the mean over heads; `networks` holds head h's networks at [h * per_head, (h + 1) * per_head).
    """

    def __init__(self, n_species: int, n_features: int, hidden: List[int], shared: bool = False, heads: int = 1):
        super().__init__()
        if heads < 1:
            raise ValueError(f"heads must be >= 1, not {heads}")
        self.n_species = n_species
        self.shared = shared
        self.n_heads = heads
        self.head = -1
        self.per_head = 1 if shared else n_species
        n_in = n_features + n_species if shared else n_features
        self.networks = nn.ModuleList([mlp(n_in, hidden) for _ in range(heads * self.per_head)])
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_std", torch.ones(n_features))
        self.register_buffer("output_scale", torch.ones(()))

    @torch.jit.unused
    def set_statistics(self, features: torch.Tensor, energy_scale: float) -> None:
        self.feature_mean.copy_(features.mean(0))
        self.feature_std.copy_(features.std(0).clamp_min(1e-6))
        self.output_scale.fill_(energy_scale)

    @torch.jit.unused
    def single_head(self, head: int) -> "ElementNetworks":
        """A one-head copy holding head `head`'s networks: one committee member, an ordinary readout."""
        member = copy.deepcopy(self)
        member.networks = nn.ModuleList(list(member.networks)[head * self.per_head:(head + 1) * self.per_head])
        member.n_heads, member.head = 1, -1
        return member

    def forward(self, features: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        x = (features - self.feature_mean) / self.feature_std
        if self.shared:
            x = torch.cat([x, torch.nn.functional.one_hot(species, self.n_species).to(x.dtype)], dim=1)
        out = torch.zeros(features.shape[0], dtype=features.dtype, device=features.device)
        for k, net in enumerate(self.networks):  # (TorchScript unrolls this loop: no `continue`)
            if self.head < 0 or k // self.per_head == self.head:
                if self.shared:
                    out = out + net(x).squeeze(-1)
                else:
                    idx = (species == k % self.per_head).nonzero().squeeze(-1)
                    if idx.numel() > 0:
                        out = out.index_add(0, idx, net(x.index_select(0, idx)).squeeze(-1))
        if self.head < 0 and self.n_heads > 1:
            out = out / self.n_heads
        return out * self.output_scale
