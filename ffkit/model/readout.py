"""Atomic networks (Behler–Parrinello), per element or shared: invariant features -> atomic energy.

Features are standardised with statistics taken from training data before training starts
(`set_statistics`), and outputs scaled by the RMS force of the data, so the networks see and
produce O(1) numbers whatever the descriptor's scale or the system's energy scale.
"""

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
    """

    def __init__(self, n_species: int, n_features: int, hidden: List[int], shared: bool = False):
        super().__init__()
        self.n_species = n_species
        self.shared = shared
        self.networks = nn.ModuleList([mlp(n_features + n_species, hidden)] if shared
                                      else [mlp(n_features, hidden) for _ in range(n_species)])
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_std", torch.ones(n_features))
        self.register_buffer("output_scale", torch.ones(()))

    @torch.jit.unused
    def set_statistics(self, features: torch.Tensor, energy_scale: float) -> None:
        self.feature_mean.copy_(features.mean(0))
        self.feature_std.copy_(features.std(0).clamp_min(1e-6))
        self.output_scale.fill_(energy_scale)

    def forward(self, features: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        x = (features - self.feature_mean) / self.feature_std
        if self.shared:
            one_hot = torch.nn.functional.one_hot(species, self.n_species).to(x.dtype)
            return self.networks[0](torch.cat([x, one_hot], dim=1)).squeeze(-1) * self.output_scale
        out = torch.zeros(features.shape[0], dtype=features.dtype, device=features.device)
        for s, net in enumerate(self.networks):
            idx = (species == s).nonzero().squeeze(-1)
            if idx.numel() > 0:
                out = out.index_put((idx,), net(x.index_select(0, idx)).squeeze(-1))
        return out * self.output_scale
