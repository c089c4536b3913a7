"""Frames -> batched atomic graphs (tensors), the input form of `ForceField` in training and testing.

Neighbour lists are computed once per frame at the model cutoff (image shifts included), so an
epoch costs only the model; a batch is the disjoint union of its frames' graphs.
"""

from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np
import torch

from .datasets import Frame
from .errors import DataError
from .neighbors import edges


@dataclass
class Graph:
    """One frame, or a batch of frames glued together (`batch` says which atom is whose)."""

    species: torch.Tensor      # (N,) int64, model species index
    positions: torch.Tensor    # (N, 3)
    edge_index: torch.Tensor   # (2, E) int64
    shifts: torch.Tensor       # (E, 3) Å, r_ij = x_j - x_i + shift
    batch: torch.Tensor        # (N,) int64 frame index
    n_frames: int
    energy: Optional[torch.Tensor] = None   # (n_frames,) eV
    forces: Optional[torch.Tensor] = None   # (N, 3) eV/Å
    cell: Optional[torch.Tensor] = None     # (n_frames, 3, 3)

    @property
    def n_atoms(self) -> int:
        return int(self.species.shape[0])

    def atoms_per_frame(self) -> torch.Tensor:
        return torch.bincount(self.batch, minlength=self.n_frames)

    def to(self, dtype: torch.dtype) -> "Graph":
        def conv(t):
            return None if t is None else t.to(dtype)
        return Graph(self.species, self.positions.to(dtype), self.edge_index, self.shifts.to(dtype),
                     self.batch, self.n_frames, conv(self.energy), conv(self.forces), conv(self.cell))


def species_indices(numbers, species: Sequence[int], where: str) -> np.ndarray:
    """Map atomic numbers to model species indices, refusing elements the model does not know
    (`where` names the structure in the message)."""
    lookup = {int(z): i for i, z in enumerate(species)}
    unknown = sorted({int(z) for z in numbers} - set(lookup))
    if unknown:
        from ase.data import chemical_symbols
        names = ", ".join(chemical_symbols[z] for z in unknown)
        known = ", ".join(chemical_symbols[z] for z in species)
        raise DataError(f"{where}: element(s) {names} not in the model (it knows {known}); "
                        "use a model that includes them or remove these structures")
    return np.array([lookup[int(z)] for z in numbers], dtype=np.int64)


def frame_graph(frame: Frame, species: Sequence[int], cutoff: float) -> Graph:
    edge_index, shifts = edges(frame.positions, frame.cell, frame.pbc, cutoff)
    return Graph(
        species=torch.from_numpy(species_indices(frame.numbers, species, frame.where)),
        positions=torch.from_numpy(np.asarray(frame.positions, dtype=np.float64)),
        edge_index=torch.from_numpy(np.asarray(edge_index, dtype=np.int64)),
        shifts=torch.from_numpy(np.asarray(shifts, dtype=np.float64)),
        batch=torch.zeros(len(frame.numbers), dtype=torch.int64),
        n_frames=1,
        energy=None if frame.energy is None else torch.tensor([float(frame.energy)], dtype=torch.float64),
        forces=None if frame.forces is None else torch.from_numpy(np.asarray(frame.forces, dtype=np.float64)),
        cell=torch.from_numpy(np.asarray(frame.cell, dtype=np.float64)).unsqueeze(0),
    )


def collate(graphs: List[Graph]) -> Graph:
    offsets = np.cumsum([0] + [g.n_atoms for g in graphs[:-1]])
    has_energy = all(g.energy is not None for g in graphs)
    has_forces = all(g.forces is not None for g in graphs)
    return Graph(
        species=torch.cat([g.species for g in graphs]),
        positions=torch.cat([g.positions for g in graphs]),
        edge_index=torch.cat([g.edge_index + int(o) for g, o in zip(graphs, offsets)], dim=1),
        shifts=torch.cat([g.shifts for g in graphs]),
        batch=torch.cat([torch.full((g.n_atoms,), k, dtype=torch.int64) for k, g in enumerate(graphs)]),
        n_frames=len(graphs),
        energy=torch.cat([g.energy for g in graphs]) if has_energy else None,
        forces=torch.cat([g.forces for g in graphs]) if has_forces else None,
        cell=torch.cat([g.cell for g in graphs]),
    )
