"""LAMMPS inputs for ML/MM: an OPLS-AA ethanol (`ffkit.opls_ethanol`) in SPC/E water, `units real`.

The same system as the GROMACS ML/MM example (`ffkit.solvation`): the solute first, then the
waters O, H, H. The data file holds every MM term of the all-MM system (bonded coefficients
included), so one file serves the all-MM run, `pair_style hybridff` and the hand-built
`hybrid/overlay` it is tested against; `pair_coeff_lines` gives the MM pair coefficients of
every type pair (OPLS geometric mixing, written out: LAMMPS's hybrid styles mix only type pairs
whose two types have one sub-style each).
"""

import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ase import Atoms
from ase.data import chemical_symbols

from ffkit.opls_ethanol import ANGLES, ATOM_TYPES, BONDS, DIHEDRALS, bonded_terms, bonded_type, type_atoms

KJ_PER_KCAL = 4.184
# SPC/E (Berendsen et al. 1987) as in the GROMACS topology (ffkit_gromacs.topology.SPCE_ATOMTYPES):
# Z, mass, charge e, sigma nm, epsilon kJ/mol; rigid (SHAKE) O-H 1 Å, H-O-H 109.47°
WATER_TYPES = {"OW": (8, 15.9994, -0.8476, 0.316557, 0.650194), "HW": (1, 1.008, 0.4238, 0.0, 0.0)}
SPECIAL_BONDS = "special_bonds lj/coul 0.0 0.0 0.5"    # OPLS fudge 0.5; SPC/E has no 1-4 pairs


def type_table() -> Dict[str, Tuple[int, float, float, float, float]]:
    """LAMMPS atom types in order: ethanol's OPLS types, then SPC/E's; (Z, mass, charge, sigma Å, epsilon kcal/mol)."""
    return {name: (z, m, q, 10.0 * s, e / KJ_PER_KCAL) for name, (z, m, q, s, e) in {**ATOM_TYPES, **WATER_TYPES}.items()}


def type_elements() -> List[str]:
    """The element of every LAMMPS type, in type order (for `ffkit validate --elements`)."""
    return [chemical_symbols[z] for z, *_ in type_table().values()]


def elements() -> List[str]:
    """`pair_coeff * * ffkit MODEL ...`: ethanol's types map to their elements, water's to NULL (MM only)."""
    return ["NULL" if name in WATER_TYPES else element for name, element in zip(type_table(), type_elements())]


def pair_coeff_lines(style: Optional[str]) -> str:
    """`pair_coeff i j [STYLE] epsilon sigma` for every type pair (geometric mixing, as OPLS and GROMACS
    do); STYLE names the hybrid sub-style, None writes plain lines for the MM style alone."""
    params = list(type_table().values())
    lines = []
    for i, (_, _, _, si, ei) in enumerate(params):
        for j in range(i, len(params)):
            sj, ej = params[j][3], params[j][4]
            name = f" {style}" if style else ""
            lines.append(f"pair_coeff {i + 1} {j + 1}{name} {math.sqrt(ei * ej):.10g} {math.sqrt(si * sj):.10g}")
    return "\n".join(lines) + "\n"


def type_names(system: Atoms, solute: Atoms) -> List[str]:
    """The OPLS / SPC/E type of every atom of `system` (the ethanol `solute` first, then waters O, H, H)."""
    return type_atoms(solute)[0] + ["OW", "HW", "HW"] * ((len(system) - len(solute)) // 3)


def write_mlmm_data(path, system: Atoms, solute: Atoms) -> Path:
    """atom_style full data file of `system` (the ethanol `solute` first, then waters O, H, H) with all MM terms."""
    terms = bonded_terms(solute)[1]
    names = type_names(system, solute)
    table = type_table()
    type_id = {name: k + 1 for k, name in enumerate(table)}

    def kinds(table_of: dict) -> Dict[Tuple[str, ...], int]:
        return {key: k + 1 for k, key in enumerate(table_of)}

    bond_kinds, angle_kinds, dihedral_kinds = kinds(BONDS), kinds(ANGLES), kinds(DIHEDRALS)
    water_bond, water_angle = len(BONDS) + 1, len(ANGLES) + 1

    def kind_of(kinds_: dict, atoms: Sequence[int]) -> int:
        key = tuple(bonded_type(names[a]) for a in atoms)
        return kinds_[key] if key in kinds_ else kinds_[key[::-1]]

    atoms_lines, bonds, angles = [], [], []
    for a, (name, x) in enumerate(zip(names, system.positions)):
        molecule = 1 if a < len(solute) else 2 + (a - len(solute)) // 3
        atoms_lines.append(f"{a + 1} {molecule} {type_id[name]} {table[name][2]:.6f} {x[0]:.10f} {x[1]:.10f} {x[2]:.10f}")
    bonds += [(kind_of(bond_kinds, b), b) for b in terms["bonds"]]
    angles += [(kind_of(angle_kinds, t), t) for t in terms["angles"]]
    dihedrals = [(kind_of(dihedral_kinds, q), q) for q in terms["dihedrals"]]
    for o in range(len(solute), len(system), 3):
        bonds += [(water_bond, (o, o + 1)), (water_bond, (o, o + 2))]
        angles.append((water_angle, (o + 1, o, o + 2)))

    # GROMACS -> LAMMPS: harmonic 1/2 k (x - x0)^2 -> K (x - x0)^2; Ryckaert-Bellemans sum C_n cos^n(phi - 180)
    # -> multi/harmonic sum A_n cos^(n-1)(phi), A_n = (-1)^(n-1) C_(n-1)
    bond_coeffs = [f"{k} {0.5 * kb / KJ_PER_KCAL / 100.0:.10g} {10.0 * b0:.10g}"
                   for k, (b0, kb) in enumerate(BONDS.values(), 1)] + [f"{water_bond} 554.25 1.0"]
    angle_coeffs = [f"{k} {0.5 * kt / KJ_PER_KCAL:.10g} {t0:.10g}"
                    for k, (t0, kt) in enumerate(ANGLES.values(), 1)] + [f"{water_angle} 45.77 109.47"]
    dihedral_coeffs = [f"{k} " + " ".join(f"{(-1) ** n * c / KJ_PER_KCAL:.10g}" for n, c in enumerate(cs[:5]))
                       for k, cs in enumerate(DIHEDRALS.values(), 1)]
    cell = system.cell.lengths()
    lines = [f"ethanol in SPC/E water: {len(system)} atoms ({len(solute)} ethanol, OPLS-AA), units real", "",
             f"{len(system)} atoms", f"{len(bonds)} bonds", f"{len(angles)} angles", f"{len(dihedrals)} dihedrals", "",
             f"{len(table)} atom types", f"{water_bond} bond types", f"{water_angle} angle types",
             f"{len(DIHEDRALS)} dihedral types", "",
             f"0 {cell[0]:.10f} xlo xhi", f"0 {cell[1]:.10f} ylo yhi", f"0 {cell[2]:.10f} zlo zhi", "",
             "Masses", ""] + [f"{k} {m}  # {name}" for k, (name, (_, m, *_)) in enumerate(table.items(), 1)]
    for title, rows in (("Bond Coeffs # harmonic", bond_coeffs), ("Angle Coeffs # harmonic", angle_coeffs),
                        ("Dihedral Coeffs # multi/harmonic", dihedral_coeffs), ("Atoms # full", atoms_lines)):
        lines += ["", title, ""] + rows
    lines += ["", "Bonds", ""] + [f"{n} {k} {a + 1} {b + 1}" for n, (k, (a, b)) in enumerate(bonds, 1)]
    lines += ["", "Angles", ""] + [f"{n} {k} {a + 1} {b + 1} {c + 1}" for n, (k, (a, b, c)) in enumerate(angles, 1)]
    lines += ["", "Dihedrals", ""] + [f"{n} {k} " + " ".join(str(a + 1) for a in q)
                                      for n, (k, q) in enumerate(dihedrals, 1)]
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path


def ml_types() -> str:
    """The LAMMPS types of the ML region (ethanol), for `group ml type ...`."""
    return " ".join(str(k) for k, name in enumerate(type_table(), 1) if name not in WATER_TYPES)
