"""OPLS-AA ethanol, typed from its geometry: the MM side of an ML/MM ethanol, for every engine.

With mechanical embedding an engine keeps the ML atoms' MM charges and LJ for their interaction
with MM atoms and removes the MM terms inside the ML region, so the ML ethanol still needs a
complete MM description. All parameters are OPLS-AA (W. L. Jorgensen, D. S. Maxwell,
J. Tirado-Rives, J. Am. Chem. Soc. 118, 11225 (1996)) as distributed in GROMACS's
`share/top/oplsaa.ff` (atom types opls_135 CH3 carbon, opls_157 CH2OH carbon, opls_140 HC,
opls_154 OH, opls_155 HO; bonded types CT/HC/OH/HO), geometric mixing with fudgeLJ = fudgeQQ =
0.5, in GROMACS units (nm, kJ/mol). Types are assigned from elements and covalent bonds (ASE's
natural cut-offs × 1.2), so any ethanol conformer, e.g. an rMD17 frame, can be typed.
"""

from itertools import combinations
from typing import Dict, List, Tuple

from ase import Atoms
from ase.neighborlist import natural_cutoffs, neighbor_list

from .errors import FFKitError

# type: (atomic number, mass, charge e, sigma nm, epsilon kJ/mol); "CO" is opls_157 (bonded type CT)
ATOM_TYPES = {"CT": (6, 12.011, -0.18, 0.35, 0.276144), "CO": (6, 12.011, 0.145, 0.35, 0.276144),
              "HC": (1, 1.008, 0.06, 0.25, 0.12552), "OH": (8, 15.9994, -0.683, 0.312, 0.71128),
              "HO": (1, 1.008, 0.418, 0.0, 0.0)}
# harmonic bonds (b0 nm, kb kJ/mol/nm^2) and angles (theta0 deg, k kJ/mol/rad^2) by bonded type,
# Ryckaert-Bellemans dihedrals C0..C5 (kJ/mol): oplsaa.ff/ffbonded.itp
BONDS = {("CT", "CT"): (0.1529, 224262.4), ("CT", "HC"): (0.109, 284512.0), ("CT", "OH"): (0.141, 267776.0),
         ("HO", "OH"): (0.0945, 462750.4)}
ANGLES = {("HC", "CT", "HC"): (107.8, 276.144), ("CT", "CT", "HC"): (110.7, 313.8),
          ("CT", "CT", "OH"): (109.5, 418.4), ("HC", "CT", "OH"): (109.5, 292.88), ("CT", "OH", "HO"): (108.5, 460.24)}
DIHEDRALS = {("HC", "CT", "CT", "HC"): (0.6276, 1.8828, 0.0, -2.5104, 0.0, 0.0),
             ("HC", "CT", "CT", "OH"): (0.97905, 2.93716, 0.0, -3.91622, 0.0, 0.0),
             ("CT", "CT", "OH", "HO"): (-0.4435, 3.83255, 0.72801, -4.11705, 0.0, 0.0),
             ("HC", "CT", "OH", "HO"): (0.9414, 2.8242, 0.0, -3.7656, 0.0, 0.0)}


def bonded_type(atom_type: str) -> str:
    return "CT" if atom_type == "CO" else atom_type


def lookup(table: Dict[Tuple[str, ...], tuple], types: Tuple[str, ...], what: str) -> tuple:
    key = tuple(bonded_type(t) for t in types)
    if key in table:
        return table[key]
    if key[::-1] in table:
        return table[key[::-1]]
    raise FFKitError(f"no OPLS-AA {what} parameters for {'-'.join(key)}: the molecule is not ethanol")


def type_atoms(mol: Atoms) -> Tuple[List[str], List[Tuple[int, int]]]:
    """OPLS-AA types and covalent bonds (0-based) of an ethanol; anything else is refused."""
    i, j = neighbor_list("ij", mol, natural_cutoffs(mol, mult=1.2))
    bonds = sorted({(int(a), int(b)) for a, b in zip(i, j) if a < b})
    neighbours = {a: sorted({int(b) for b in j[i == a]}) for a in range(len(mol))}
    types = []
    for a, z in enumerate(mol.numbers):
        has_oxygen = any(mol.numbers[b] == 8 for b in neighbours[a])
        types.append({8: "OH", 6: "CO" if has_oxygen else "CT", 1: "HO" if has_oxygen else "HC"}.get(int(z), "?"))
    if sorted(mol.get_chemical_symbols()) != sorted("CCOHHHHHH") or len(bonds) != 8 \
            or sorted(types) != sorted(["CT", "CO", "OH", "HO"] + ["HC"] * 5):
        raise FFKitError(f"not an ethanol: {mol.get_chemical_formula()} with {len(bonds)} covalent bonds "
                         f"(types {types}); ethanol is C2H6O with 8 bonds")
    return types, bonds


def bonded_terms(mol: Atoms) -> Tuple[List[str], Dict[str, list]]:
    """OPLS-AA types and the bonded terms of an ethanol (0-based atom indices): bonds, angles,
    proper dihedrals and the 1-4 pairs they imply."""
    types, bonds = type_atoms(mol)
    neighbours: Dict[int, List[int]] = {a: [] for a in range(len(mol))}
    for a, b in bonds:
        neighbours[a].append(b)
        neighbours[b].append(a)
    angles = [(a, centre, b) for centre in range(len(mol)) for a, b in combinations(sorted(neighbours[centre]), 2)]
    dihedrals = [(a, b, c, d) for b, c in bonds for a in neighbours[b] if a != c for d in neighbours[c] if d != b]
    pairs = sorted({tuple(sorted((a, d))) for a, _, _, d in dihedrals})
    return types, {"bonds": bonds, "pairs": pairs, "angles": angles, "dihedrals": dihedrals}
