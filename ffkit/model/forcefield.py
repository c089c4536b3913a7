"""The model: a sum of strictly local energy terms on top of per-element reference energies.

This is the one object every other part uses: training optimises it, `ffkit compile` wraps it for
an engine, tests check its symmetries. Its input is a graph (centre, neighbour, r_ij vector), so
the same code serves periodic training data (vectors with image shifts) and engines' ghost atoms.
"""

import copy
from typing import Dict, List

import torch
from torch import nn

from .term import Term


class ForceField(nn.Module):
    def __init__(self, species: List[int], terms: Dict[str, Term], reference_energies: List[float]):
        super().__init__()
        self.species: List[int] = list(species)
        self.term_names: List[str] = list(terms.keys())
        self.terms = nn.ModuleList(list(terms.values()))
        self.cutoff: float = max(float(t.cutoff) for t in terms.values())
        # how many cutoffs deep an atom's energy reaches: 2 with message passing (docs/design.md §2)
        self.term_layers: List[int] = [int(t.layers) for t in terms.values()]
        self.layers: int = max(self.term_layers)
        # learnable: a fitted offset is only a start (the terms add their own mean energy)
        self.reference_energies = nn.Parameter(torch.tensor(reference_energies, dtype=torch.float64))

    def forward(self, species: torch.Tensor, edge_index: torch.Tensor, vectors: torch.Tensor,
                n_atoms: int) -> torch.Tensor:
        """Per-atom energies (eV) of atoms 0..n_atoms-1; r_ij = vectors (Å) for each edge (i, j)."""
        lengths = torch.linalg.vector_norm(vectors, dim=-1)
        energy = self.reference_energies.to(vectors.dtype)[species[:n_atoms]]
        for k, term in enumerate(self.terms):
            keep = lengths < term.cutoff
            # with message passing, ghosts are centres too (their states feed local atoms); strictly
            # local terms see only the local atoms' edges
            if self.layers > 1 and self.term_layers[k] == 1:
                keep = keep & (edge_index[0] < n_atoms)
            if bool(keep.all()):
                energy = energy + term(species, edge_index, vectors, lengths, n_atoms)
            else:
                energy = energy + term(species, edge_index[:, keep], vectors[keep], lengths[keep], n_atoms)
        return energy

    @torch.jit.unused
    def heads(self) -> int:
        """How many networks each ML term has (`heads` in its spec): 1, or the size of a committee
        whose members share every term's descriptor and differ only in their networks."""
        counts = {r.n_heads for r in (t.learned_readout() for t in self.terms) if r is not None and r.n_heads > 1}
        if len(counts) > 1:
            raise ValueError(f"ML terms of one model must have the same number of heads, not {sorted(counts)}")
        return counts.pop() if counts else 1

    @torch.jit.unused
    def set_head(self, head: int) -> None:
        """Make every multi-head term give head `head`'s energy (-1: the mean over heads)."""
        for readout in (t.learned_readout() for t in self.terms):
            if readout is not None and readout.n_heads > 1:
                readout.head = head

    @torch.jit.unused
    def head_member(self, head: int) -> "ForceField":
        """Head `head` as an ordinary one-head model (a copy): one member of the committee the heads are."""
        member = copy.deepcopy(self)
        for term in member.terms:
            readout = term.learned_readout()
            if readout is not None and readout.n_heads > 1:
                term.readout = readout.single_head(head)
        return member

    @torch.jit.unused
    def count_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
