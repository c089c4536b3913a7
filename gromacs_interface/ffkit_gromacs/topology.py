"""Topology and coordinate files for systems whose atoms (all or some) are NN atoms.

grompp needs an atomic-number column in `[atomtypes]` for every type once NNPot is active.
For a pure-NN system the MM part must contribute nothing: zero charges and zero LJ (GROMACS
keeps the MM charges of NN atoms, "mechanical embedding"), so a pure-NN topology is written
with both zeroed. Frames for comparisons go to .trr (full float32 precision), not .gro.
"""

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from ase.data import atomic_masses, chemical_symbols

from ffkit.errors import FFKitError


def split_molecules(numbers: Sequence[int], molecule_size: int) -> List[int]:
    """The atomic numbers of one molecule, checking every molecule of the system repeats them."""
    numbers = [int(z) for z in numbers]
    if molecule_size < 1 or len(numbers) % molecule_size:
        raise FFKitError(f"{len(numbers)} atoms do not split into molecules of {molecule_size} atoms")
    first = numbers[:molecule_size]
    for start in range(0, len(numbers), molecule_size):
        if numbers[start:start + molecule_size] != first:
            raise FFKitError(f"atoms {start}..{start + molecule_size - 1} are "
                             f"{[chemical_symbols[z] for z in numbers[start:start + molecule_size]]}, not a "
                             f"repeat of the first molecule {[chemical_symbols[z] for z in first]}")
    return first


def pure_nn_topology(numbers: Sequence[int], molecule_size: int, name: str = "MOL",
                     system: str = "ffkit NN system") -> str:
    """A .top whose only interactions come from the NN: zero charges, zero LJ, no bonded terms."""
    molecule = split_molecules(numbers, molecule_size)
    types: Dict[int, str] = {z: f"{chemical_symbols[z]}_nn" for z in sorted(set(molecule))}
    lines = ["[ defaults ]", "; nbfunc comb-rule gen-pairs fudgeLJ fudgeQQ", "  1      2         no        1.0     1.0",
             "", "[ atomtypes ]", "; name   at.num   mass      charge  ptype  sigma  epsilon"]
    lines += [f"  {t:<7} {z:>3d}  {atomic_masses[z]:9.4f}   0.0     A      0.0    0.0" for z, t in types.items()]
    lines += ["", "[ moleculetype ]", "; name  nrexcl", f"  {name}  1", "", "[ atoms ]",
              "; nr  type      resnr  residue  atom  cgnr  charge  mass"]
    for k, (z, atom) in enumerate(zip(molecule, atom_names(molecule)), start=1):
        lines.append(f"  {k:<3d} {types[z]:<9} 1      {name:<8} {atom:<5} {k:<5d} 0.0     {atomic_masses[z]:.4f}")
    lines += ["", "[ system ]", f"  {system}", "", "[ molecules ]", f"  {name}  {len(numbers) // molecule_size}", ""]
    return "\n".join(lines)


def atom_names(numbers: Sequence[int]) -> List[str]:
    """Names of a molecule's atoms, element + count (O1, H1, H2): the .gro and the .top must agree."""
    counts: Dict[int, int] = {}
    names = []
    for z in numbers:
        counts[int(z)] = counts.get(int(z), 0) + 1
        names.append(f"{chemical_symbols[int(z)]}{counts[int(z)]}")
    return names


def write_gro(path, atoms, molecules: Sequence[Tuple[str, int]], title: str = "ffkit") -> Path:
    """Coordinates for grompp (nm, 3 decimals: enough to start MD, not for comparisons).

    `molecules` lists (residue name, atom count) in order and must cover every atom; atom names
    follow `atom_names` per residue.
    """
    path = Path(path)
    cell = np.asarray(atoms.cell) / 10.0
    if np.abs(cell - np.diag(np.diag(cell))).max() > 1e-9:
        raise FFKitError(f"{path}: only rectangular boxes are written here, got cell {cell.tolist()} nm")
    if sum(n for _, n in molecules) != len(atoms):
        raise FFKitError(f"{path}: molecules cover {sum(n for _, n in molecules)} atoms, the system has {len(atoms)}")
    x = atoms.positions / 10.0
    lines = [title, f"{len(atoms):5d}"]
    start = 0
    for resnr, (residue, size) in enumerate(molecules, start=1):
        for k, name in enumerate(atom_names(atoms.numbers[start:start + size]), start=start):
            lines.append(f"{resnr % 100000:5d}{residue[:5]:<5}{name[:5]:>5}{(k + 1) % 100000:5d}"
                         f"{x[k, 0]:8.3f}{x[k, 1]:8.3f}{x[k, 2]:8.3f}")
        start += size
    lines.append(f"{cell[0, 0]:10.5f}{cell[1, 1]:10.5f}{cell[2, 2]:10.5f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_trr(path, frames) -> Path:
    """Frames (ASE Atoms) as a .trr trajectory with float32 nm positions and boxes, for `mdrun -rerun`."""
    import MDAnalysis as mda
    from MDAnalysis.coordinates.TRR import TRRWriter

    path = Path(path)
    universe = mda.Universe.empty(len(frames[0]), trajectory=True)
    with TRRWriter(str(path), len(frames[0])) as writer:
        for step, atoms in enumerate(frames):
            universe.atoms.positions = atoms.positions
            universe.dimensions = list(atoms.cell.cellpar())
            universe.trajectory.ts.frame = step
            universe.trajectory.ts.time = float(step)
            writer.write(universe.atoms)
    return path


# SPC/E water (Berendsen et al. 1987), rigid by SETTLE: the MM solvent and the MM reference.
SPCE_ATOMTYPES = """  OW       8    15.9994  -0.8476  A  0.316557  0.650194
  HW       1     1.0080   0.4238  A  0.0       0.0
"""

SPCE_MOLECULE = """[ moleculetype ]
; name  nrexcl
  SOL   2

[ atoms ]
; nr type resnr residue atom cgnr charge   mass
  1   OW   1     SOL     O1   1    -0.8476  15.9994
  2   HW   1     SOL     H1   1     0.4238   1.0080
  3   HW   1     SOL     H2   1     0.4238   1.0080

[ settles ]
; OW funct doh  dhh
  1   1      0.1  0.16330

[ exclusions ]
  1 2 3
  2 1 3
  3 1 2
"""


OPLS_DEFAULTS = "[ defaults ]\n; nbfunc comb-rule gen-pairs fudgeLJ fudgeQQ\n  1      3         yes       0.5     0.5\n"


def spce_topology(n_waters: int, system: str = "SPC/E water") -> str:
    """A complete .top for `n_waters` SPC/E waters (geometric mixing, like OPLS-AA)."""
    return solvated_topology("", "", None, n_waters, system)


def solvated_topology(solute_atomtypes: str, solute_molecule: str, solute_name: Optional[str], n_waters: int,
                      system: str) -> str:
    """One solute molecule (OPLS-style: geometric mixing, fudge 0.5) followed by SPC/E waters."""
    molecules = (f"  {solute_name}  1\n" if solute_name else "") + f"  SOL  {n_waters}\n"
    return (OPLS_DEFAULTS + "\n[ atomtypes ]\n; name at.num mass charge ptype sigma epsilon\n" + solute_atomtypes
            + SPCE_ATOMTYPES + "\n" + (solute_molecule + "\n" if solute_molecule else "") + SPCE_MOLECULE
            + f"\n[ system ]\n  {system}\n\n[ molecules ]\n" + molecules)


