"""Energies and forces of a `ForceField` on a batched graph: the one place autograd forces are made."""

from typing import Tuple

import torch

from .graphs import Graph
from .model.forcefield import ForceField


def energy_and_forces(model: ForceField, graph: Graph, training: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-frame energies (eV) and per-atom forces -dE/dx (eV/Å).

    With `training`, the force graph is kept (create_graph) so a force loss can be backpropagated.
    """
    positions = graph.positions.detach().requires_grad_(True)
    vectors = positions[graph.edge_index[1]] - positions[graph.edge_index[0]] + graph.shifts
    atom_energy = model(graph.species, graph.edge_index, vectors, graph.n_atoms)
    energy = torch.zeros(graph.n_frames, dtype=atom_energy.dtype).index_add(0, graph.batch, atom_energy)
    (grad,) = torch.autograd.grad(energy.sum(), positions, create_graph=training)
    return energy, -grad
