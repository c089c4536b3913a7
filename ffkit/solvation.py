"""Solvated systems for ML/MM set-ups, engine-free: a solute at the centre of a water box.

The same coordinates go to every engine (GROMACS .gro, LAMMPS data), so that their ML/MM runs can
be compared atom by atom.
"""

from typing import Dict, List

import numpy as np

from .errors import FFKitError


def order_waters(atoms):
    """The same water frame with atoms reordered O, H, H per molecule and each molecule made whole.

    DeePMD-style data list all oxygens, then all hydrogens; a topology needs molecules. Each H
    goes to its nearest O (minimum image); every O must end with exactly two H within 1.3 Å.
    """
    oxygens = [int(k) for k in np.flatnonzero(atoms.numbers == 8)]
    hydrogens = [int(k) for k in np.flatnonzero(atoms.numbers == 1)]
    if len(oxygens) + len(hydrogens) != len(atoms) or len(hydrogens) != 2 * len(oxygens):
        raise FFKitError(f"not a pure water frame: {len(oxygens)} O, {len(hydrogens)} H, {len(atoms)} atoms")
    owner: Dict[int, List[int]] = {o: [] for o in oxygens}
    whole = atoms.positions.copy()
    for h in hydrogens:
        vectors = atoms.get_distances(h, oxygens, mic=True, vector=True)
        nearest = int(np.argmin(np.linalg.norm(vectors, axis=1)))
        if np.linalg.norm(vectors[nearest]) > 1.3:
            raise FFKitError(f"hydrogen {h} is {np.linalg.norm(vectors[nearest]):.2f} Å from the nearest oxygen")
        owner[oxygens[nearest]].append(h)
        whole[h] = atoms.positions[oxygens[nearest]] - vectors[nearest]
    bad = [o for o, hs in owner.items() if len(hs) != 2]
    if bad:
        raise FFKitError(f"oxygen(s) {bad[:5]} do not have exactly two hydrogens within 1.3 Å")
    order = [k for o in oxygens for k in (o, *owner[o])]
    ordered = atoms[order]
    ordered.positions = whole[order]
    return ordered


def solvate(solute, water, clearance: float = 2.4):
    """`solute` (ASE) at the centre of the water box `water` (O, H, H per molecule, e.g. from
    `order_waters`), without the waters that have an atom closer than `clearance` Å to it.

    Returns the combined Atoms (solute first) and the number of waters kept. The solute is put
    whole at the centre, so it needs a box wider than itself plus twice the clearance.
    """
    solute = solute.copy()
    centre = np.asarray(water.cell).sum(0) / 2
    solute.positions += centre - solute.positions.mean(0)
    lengths = water.cell.lengths()                      # rectangular, as write_gro requires
    keep = []
    for o in range(0, len(water), 3):
        molecule = [o, o + 1, o + 2]
        vectors = water.positions[molecule][:, None] - solute.positions[None]
        vectors -= lengths * np.round(vectors / lengths)    # minimum image
        if np.linalg.norm(vectors, axis=-1).min() > clearance:
            keep += molecule
    if not keep:
        raise FFKitError(f"no water is farther than {clearance} Å from the solute in a {water.cell.lengths()} Å box")
    system = solute + water[keep]
    system.cell = water.cell
    system.pbc = True
    return system, len(keep) // 3
