"""Per-element reference energies, subtracted so that a model learns only the interaction energy.

Either measured (isolated-atom calculations at the same level of theory) or fitted by least squares
of total energies on element counts.
"""

import warnings
from typing import Dict, Sequence

import numpy as np
from ase.data import chemical_symbols

from .datasets import Frame, read_frames
from .errors import DataError


def isolated_atom_energies(path, **read_options) -> Dict[int, float]:
    """{atomic number: energy in eV} from an extxyz of single-atom frames (forces not needed)."""
    read_options.setdefault("require_forces", False)
    energies: Dict[int, float] = {}
    for frame in read_frames(path, **read_options):
        if frame.n_atoms != 1:
            raise DataError(f"{frame.where}: an isolated-atom frame must hold exactly one atom, this "
                            f"one has {frame.n_atoms}; pass a file of single-atom calculations")
        z = int(frame.numbers[0])
        if z in energies and energies[z] != frame.energy:
            raise DataError(f"{frame.where}: a second, different energy for {chemical_symbols[z]} "
                            f"({frame.energy} eV, earlier {energies[z]} eV); keep one per element")
        energies[z] = frame.energy
    return energies


def fit_reference_energies(frames: Sequence[Frame], species: Sequence[int]) -> Dict[int, float]:
    """Least-squares per-element energies: E_frame ≈ Σ_elements count × e_element.

    When the element counts do not determine the split (e.g. every frame is the same molecule or
    water of the same composition) this warns and returns the minimum-norm solution, which still
    reproduces the mean energy of each composition, so the model learns the same thing.
    """
    if not len(frames):
        raise DataError("no frames to fit reference energies on")
    species = [int(z) for z in species]
    column = {z: k for k, z in enumerate(species)}
    counts = np.zeros((len(frames), len(species)))
    energies = np.zeros(len(frames))
    for row, frame in enumerate(frames):
        if frame.energy is None:
            raise DataError(f"{frame.where}: no energy, so it cannot enter the reference-energy fit; "
                            "read the data with energies or give isolated-atom energies")
        unknown = sorted({int(z) for z in frame.numbers} - set(column))
        if unknown:
            raise DataError(f"{frame.where}: element(s) {', '.join(chemical_symbols[z] for z in unknown)} "
                            f"are not in species {[chemical_symbols[z] for z in species]}; add them")
        np.add.at(counts[row], [column[int(z)] for z in frame.numbers], 1.0)
        energies[row] = frame.energy
    solution, _, rank, _ = np.linalg.lstsq(counts, energies, rcond=1e-10)
    if rank < len(species):
        warnings.warn(
            f"reference energies: the element counts of the {len(frames)} frames fix only {rank} "
            f"combination(s) of the {len(species)} element energies ({', '.join(chemical_symbols[z] for z in species)}), "
            "so the split between elements is not identifiable; using the minimum-norm solution. "
            "Give isolated-atom energies (reference: PATH) for physically meaningful values.",
            stacklevel=2,
        )
    return {z: float(e) for z, e in zip(species, solution)}
