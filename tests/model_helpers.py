"""Small models with non-trivial weights, and their E and F on an ASE Atoms, for model tests."""

import numpy as np
import torch

from ffkit.datasets import Frame
from ffkit.graphs import collate, frame_graph
from ffkit.model.tiers import build_model
from ffkit.predict import energy_and_forces


def perturbed_model(tier, species, avg_neighbors=6.0, scale=0.05, seed=1):
    """float64 model of `tier` whose zero-initialised weights (pair tables, charges) are non-zero."""
    torch.manual_seed(seed)
    model = build_model(tier, species, avg_neighbors=avg_neighbors).double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn_like(p))
    return model


def atoms_frame(atoms):
    return Frame(numbers=atoms.numbers.astype(np.int64), positions=atoms.positions.astype(np.float64),
                 cell=np.asarray(atoms.cell, dtype=np.float64), pbc=np.asarray(atoms.pbc), energy=None,
                 forces=None, source="test")


def energy_forces(model, atoms):
    """Total energy (eV) and forces (eV/Å) of `atoms` from a ForceField, in float64."""
    graph = collate([frame_graph(atoms_frame(atoms), model.species, model.cutoff)]).to(torch.float64)
    e, f = energy_and_forces(model, graph)
    return float(e.detach().sum()), f.detach().numpy()
