"""ASE calculator running a compiled artifact (not the checkpoint), exactly as an engine would.

Periodic images become explicit ghost atoms (`ffkit.neighbors.ghost_layout`), the artifact is
called with the LAMMPS convention, and ghost forces are folded back onto their owners — so the
numbers from Python, LAMMPS and GROMACS can be compared on identical frames. A message-passing
artifact (two cutoffs deep) in a periodic cell is called the way GROMACS calls it instead: on the
atoms' own pair list with image vectors (`forward_pairs`), since two shells of ghosts hold 17x the
atoms of a 192-atom water box (3290 in all) and every one of them would be a centre.
"""

from typing import Any, Dict, List, Optional

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

from .artifact import forces_from_pair_gradients, load_artifact
from .datasets import MIN_DISTANCE
from .errors import DataError
from .graphs import species_indices
from .neighbors import edges, ghost_layout
from .precision import torch_dtype


class FFKitCalculator(Calculator):
    """ASE calculator of an artifact; a committee artifact also gives results["forces_std"] (per atom) and
    results["max_force_std"] (eV/Å), the spread of the members' forces that flags extrapolation."""

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(self, model_path, threads: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        self.model_path = str(model_path)
        self.module, self.metadata = load_artifact(model_path, engine="lammps")
        self.committee = "committee" in self.metadata
        if self.committee:
            self.implemented_properties = self.implemented_properties + ["forces_std", "max_force_std"]
        self.dtype = torch_dtype(self.metadata["dtype"], what=f"{model_path}: metadata 'dtype'")
        self.cutoff = float(self.metadata["cutoff"])
        self.layers = int(self.metadata.get("layers", 1))  # 2: ghosts need their own neighbours
        self.threads = threads  # torch threads while this calculator computes; the global setting is restored

    def _refuse_overlaps(self, vectors: np.ndarray, pairs: np.ndarray) -> None:
        """Atoms closer than the data readers accept are a broken structure: say so instead of returning NaN.
        vectors: (E, 3) pair vectors; pairs: (2, E) the atoms (owners) of each pair."""
        if len(vectors) == 0:
            return
        d = np.linalg.norm(vectors, axis=1)
        k = int(np.argmin(d))
        if d[k] < MIN_DISTANCE:
            i, j = pairs[:, k]
            raise DataError(f"FFKitCalculator({self.model_path}): atoms {i} and {j} are {d[k]:.4f} Å apart "
                            f"(< {MIN_DISTANCE} Å): overlapping atoms, where the model's energy is not defined; "
                            "fix the structure (a duplicated atom?)")

    def calculate(self, atoms=None, properties: List[str] = ("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        previous = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            self._calculate(self.atoms, properties)
        finally:
            torch.set_num_threads(previous)

    def _calculate(self, atoms, properties: List[str]) -> None:
        if len(atoms) == 0:
            raise DataError(f"FFKitCalculator({self.model_path}): the Atoms object has no atoms; give it a structure")
        species = species_indices(atoms.numbers, self.metadata["species"], f"model {self.model_path}")
        pbc = np.asarray(atoms.pbc, dtype=bool)
        want_stress = "stress" in properties and pbc.all()
        if self.layers > 1 and pbc.any() and not self.committee:
            energies, forces, virial, spread = self._on_pairs(atoms, species, pbc)
        else:
            energies, forces, virial, spread = self._on_ghosts(atoms, species, pbc, want_stress)
        self.results = {"energy": float(energies.sum()), "free_energy": float(energies.sum()),
                        "energies": energies, "forces": forces, **spread}
        if want_stress:
            v = virial.sum(0)
            w = np.array([[v[0], v[3], v[4]], [v[3], v[1], v[5]], [v[4], v[5], v[2]]])
            stress = -w / atoms.get_volume()
            self.results["stress"] = stress.flat[[0, 4, 8, 5, 2, 1]]
        elif "stress" in properties:
            from ase.calculators.calculator import PropertyNotImplementedError
            raise PropertyNotImplementedError("stress needs a periodic cell in all three directions")

    def _on_ghosts(self, atoms, species: np.ndarray, pbc: np.ndarray, want_stress: bool):
        """Per-atom energies, forces (n, 3), virials (per atom, 6) and a committee's force spread, the LAMMPS
        way: ghost atoms."""
        layout = ghost_layout(atoms.positions, np.asarray(atoms.cell), pbc, self.cutoff, self.layers)
        self._refuse_overlaps(layout.positions[layout.edge_index[1]] - layout.positions[layout.edge_index[0]],
                              layout.owner[layout.edge_index])
        n = layout.n_local
        positions = torch.from_numpy(np.ascontiguousarray(layout.positions)).to(self.dtype)
        all_species = torch.from_numpy(species[layout.owner])
        edge_index = torch.from_numpy(np.ascontiguousarray(layout.edge_index, dtype=np.int64))
        spread: Dict[str, Any] = {}
        if self.committee:
            atom_energy, forces, virial, member_forces = self.module.forward_committee(
                positions, all_species, edge_index, n, want_stress)
            spread = force_spread(member_forces.detach().double().numpy(), layout.owner, n)
        else:
            atom_energy, forces, virial = self.module(positions, all_species, edge_index, n, want_stress)
        folded = np.zeros((n, 3))
        np.add.at(folded, layout.owner, forces.detach().double().numpy())
        return atom_energy.detach().double().numpy(), folded, virial.detach().double().numpy(), spread

    def _on_pairs(self, atoms, species: np.ndarray, pbc: np.ndarray):
        """The same from the atoms' own pairs r_ij = x_j - x_i + shift (formed in double), as GROMACS calls it;
        the virial -sum r_ij (x) dE/dr_ij comes as one row (xx, yy, zz, xy, xz, yz)."""
        edge_index, shifts = edges(atoms.positions, np.asarray(atoms.cell), pbc, self.cutoff)
        vectors = atoms.positions[edge_index[1]] - atoms.positions[edge_index[0]] + shifts
        self._refuse_overlaps(vectors, edge_index)
        pairs = torch.from_numpy(edge_index)
        atom_energy, grad = self.module.forward_pairs(torch.from_numpy(vectors).to(self.dtype),
                                                      torch.from_numpy(species), pairs, len(atoms))
        grad = grad.detach().double()
        forces = forces_from_pair_gradients(grad, pairs, torch.zeros(len(atoms), 3, dtype=torch.float64))
        w = -(vectors.T @ grad.numpy())
        return atom_energy.detach().double().numpy(), forces.numpy(), w.flat[[0, 4, 8, 1, 2, 5]][None], {}


def force_spread(member_forces: np.ndarray, owner: np.ndarray, n_local: int) -> Dict[str, Any]:
    """Per-atom spread of committee forces, after folding ghost forces onto their owners (as LAMMPS's reverse
    communication does): sqrt of the mean over members and components of (F_m - mean F)^2."""
    folded = np.zeros((n_local,) + member_forces.shape[::2])
    np.add.at(folded, owner, member_forces.transpose(1, 0, 2))
    std = np.sqrt(((folded - folded.mean(axis=1, keepdims=True)) ** 2).mean(axis=(1, 2)))
    return {"forces_std": std, "max_force_std": float(std.max()) if n_local else 0.0}
