"""GROMACS topology blocks for an OPLS-AA ethanol (`ffkit.opls_ethanol`): the MM side of an ML/MM ethanol."""

from typing import Dict, Tuple

from ase import Atoms

from ffkit.opls_ethanol import ANGLES, ATOM_TYPES, BONDS, DIHEDRALS, bonded_terms, lookup

from .topology import atom_names

RESIDUE = "ETH"


def ethanol_atomtypes() -> str:
    """The `[ atomtypes ]` lines (with the atomic-number column NNPot requires)."""
    return "".join(f"  {t:<4} {z:>2d} {m:9.4f}  0.0  A  {s}  {e}\n" for t, (z, m, _, s, e) in ATOM_TYPES.items())


def ethanol_moleculetype(mol: Atoms) -> Tuple[str, Dict[str, int]]:
    """The `[ moleculetype ]` block for `mol` (atoms in its own order) and how many terms of each kind."""
    types, terms = bonded_terms(mol)
    bonds, pairs, angles, dihedrals = terms["bonds"], terms["pairs"], terms["angles"], terms["dihedrals"]

    def numbers(atoms) -> str:
        return " ".join(f"{k + 1:>3d}" for k in atoms)

    lines = ["[ moleculetype ]", "; name  nrexcl", f"  {RESIDUE}   3", "", "[ atoms ]",
             "; nr type resnr residue atom cgnr charge mass"]
    lines += [f"  {a + 1:>2d} {t:<3} 1 {RESIDUE} {name:<4} 1 {ATOM_TYPES[t][2]:>7.3f} {ATOM_TYPES[t][1]:8.4f}"
              for a, (t, name) in enumerate(zip(types, atom_names(mol.numbers)))]
    lines += ["", "[ bonds ]"]
    lines += [f"  {numbers(b)} 1 {' '.join(map(str, lookup(BONDS, tuple(types[k] for k in b), 'bond')))}"
              for b in bonds]
    lines += ["", "[ pairs ]"] + [f"  {numbers(p)} 1" for p in pairs]
    lines += ["", "[ angles ]"]
    lines += [f"  {numbers(t)} 1 {' '.join(map(str, lookup(ANGLES, tuple(types[k] for k in t), 'angle')))}"
              for t in angles]
    lines += ["", "[ dihedrals ]"]
    lines += [f"  {numbers(q)} 3 {' '.join(map(str, lookup(DIHEDRALS, tuple(types[k] for k in q), 'dihedral')))}"
              for q in dihedrals]
    counts = {"bonds": len(bonds), "pairs": len(pairs), "angles": len(angles), "dihedrals": len(dihedrals)}
    return "\n".join(lines) + "\n", counts
