"""What every energy term of a `ForceField` provides, and the registry that builds terms by name.

A config names a term by its type (`type: many_body`); each term class registers that name with
`register_term` in its own module, so adding a term type touches only the module defining it.
"""

from typing import Any, Callable, Dict, List, Optional, Type

import torch
from torch import nn

from ..errors import FFKitError
from .readout import ElementNetworks


class Term(nn.Module):
    """One energy term: per-atom energies from the edges shorter than its `cutoff`.

    ForceField and the trainer use terms only through this interface, so any mix of terms trains
    and runs the same way.
    """

    cutoff: float  # Å; the ForceField passes a term only its edges shorter than this
    layers: int = 1  # how many cutoffs deep an atom's energy reaches (2 with message passing)

    def forward(self, species: torch.Tensor, edge_index: torch.Tensor, vectors: torch.Tensor,
                lengths: torch.Tensor, n_atoms: int) -> torch.Tensor:
        """Energies (eV, shape (n_atoms,)) of atoms 0..n_atoms-1, given species indices of all atoms
        (ghosts included), edges (centre, neighbour), r_ij vectors (Å) and their lengths."""
        raise NotImplementedError

    @classmethod
    def from_spec(cls, spec: Dict[str, Any], species: List[int], avg_neighbors: float) -> "Term":
        """The term a config's spec (without `type`) describes. By default the constructor takes the
        atomic numbers, as physics terms do; ML terms override this to pass element counts."""
        return cls(species, **spec)

    def learned_readout(self) -> Optional[ElementNetworks]:
        """The atomic networks that make this an ML term, or None; training decays their weight
        matrices and normalises ML terms by the neighbour count within the shortest such cutoff."""
        return None

    def set_statistics(self, species: torch.Tensor, edge_index: torch.Tensor, vectors: torch.Tensor,
                       lengths: torch.Tensor, n_atoms: int, energy_scale: float) -> None:
        """Data-dependent initialisation from a sample of training edges (same arguments as forward)
        and the data's RMS force; terms whose parameters start at physical values need none."""


TERM_TYPES: Dict[str, Type[Term]] = {}


def register_term(kind: str) -> Callable[[Type[Term]], Type[Term]]:
    """Class decorator: configs may name the term class `kind` (`type: kind`)."""
    def register(cls: Type[Term]) -> Type[Term]:
        TERM_TYPES[kind] = cls
        return cls
    return register


def make_term(kind: str, spec: Dict[str, Any], species: List[int], avg_neighbors: float) -> Term:
    """A term of registered type `kind` from its config spec (the `type` key is ignored)."""
    if kind not in TERM_TYPES:
        raise FFKitError(f"unknown term type {kind!r}; known: {', '.join(TERM_TYPES)}")
    args = {k: v for k, v in spec.items() if k != "type"}
    return TERM_TYPES[kind].from_spec(args, species, avg_neighbors)
