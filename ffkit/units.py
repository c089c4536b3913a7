"""Unit conversion to ffkit's internal units, eV and Å (forces in eV/Å).

Constants are CODATA 2018. Per-mole energies are per mole of structures, as in MD codes:
1 eV = 96.48533212 kJ/mol = 23.060548 kcal/mol.
"""

from .errors import DataError

EV_PER_HARTREE = 27.211386245988
ANGSTROM_PER_BOHR = 0.529177210903
KJ_PER_MOL_PER_EV = 96.48533212
KCAL_PER_MOL_PER_EV = KJ_PER_MOL_PER_EV / 4.184

# eV per unit
ENERGY_UNITS = {
    "eV": 1.0,
    "meV": 1e-3,
    "kJ/mol": 1.0 / KJ_PER_MOL_PER_EV,
    "kcal/mol": 1.0 / KCAL_PER_MOL_PER_EV,
    "hartree": EV_PER_HARTREE,
    "Ry": EV_PER_HARTREE / 2.0,
}

# Å per unit
LENGTH_UNITS = {
    "angstrom": 1.0,
    "nm": 10.0,
    "bohr": ANGSTROM_PER_BOHR,
}

# Other spellings users write (case-insensitive); "meV" must be written exactly, it is not MeV.
ALIASES = {
    "ev": "eV", "kj/mol": "kJ/mol", "kcal/mol": "kcal/mol",
    "ha": "hartree", "hartree": "hartree", "ry": "Ry", "rydberg": "Ry",
    "angstrom": "angstrom", "ang": "angstrom", "a": "angstrom", "å": "angstrom",
    "nm": "nm", "bohr": "bohr",
}

# The Å-based LAMMPS `units` styles, so engine output can be converted by style name.
LAMMPS_STYLES = {
    "metal": ("eV", "angstrom"),
    "real": ("kcal/mol", "angstrom"),
}


def _lookup(unit: str, table: dict, kind: str, position: int) -> float:
    if unit in LAMMPS_STYLES:
        unit = LAMMPS_STYLES[unit][position]
    if unit not in table and isinstance(unit, str):
        unit = ALIASES.get(unit.lower(), unit)
    if unit not in table:
        raise DataError(
            f"unknown {kind} unit {unit!r}; accepted: {', '.join(table)}"
            f" (or a LAMMPS units style: {', '.join(LAMMPS_STYLES)})"
        )
    return table[unit]


def energy_factor(unit: str) -> float:
    """Multiply an energy in `unit` by this to get eV (`unit` may be a LAMMPS style: metal, real)."""
    return _lookup(unit, ENERGY_UNITS, "energy", 0)


def length_factor(unit: str) -> float:
    """Multiply a length in `unit` by this to get Å (`unit` may be a LAMMPS style: metal, real)."""
    return _lookup(unit, LENGTH_UNITS, "length", 1)


def force_factor(energy_unit: str, length_unit: str) -> float:
    """Multiply a force in energy_unit/length_unit by this to get eV/Å."""
    return energy_factor(energy_unit) / length_factor(length_unit)
