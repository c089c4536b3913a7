"""Load any engine's trajectory into an MDAnalysis Universe with elements and explicit units.

MDAnalysis reads LAMMPS, GROMACS and XYZ files, but each needs a hint we can supply here:
LAMMPS data files need their ``atom_style``, dumps need ``format="LAMMPSDUMP"`` and a time step,
extended XYZ carries a cell that MDAnalysis's XYZ reader ignores, and LAMMPS files carry atom
types rather than elements. Bad files stop here with an error naming the file and the fix.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import MDAnalysis as mda
from MDAnalysis.guesser.tables import masses as STANDARD_MASSES

from ffkit.errors import DataError
from ffkit.units import energy_factor, force_factor

# Column layouts MDAnalysis's DATA parser needs, keyed by the LAMMPS atom_style name that
# `write_data` (and ASE) put as a comment after the "Atoms" section header.
DATA_ATOM_STYLES = {
    "full": "id resid type charge x y z",
    "molecular": "id resid type x y z",
    "bond": "id resid type x y z",
    "angle": "id resid type x y z",
    "atomic": "id type x y z",
    "charge": "id type charge x y z",
}
LAMMPS_DATA_SUFFIXES = {".data", ".lmp", ".lammps"}
LAMMPS_DUMP_SUFFIXES = {".dump", ".lammpstrj", ".lammpsdump"}
EXTXYZ_SUFFIXES = {".extxyz", ".xyz"}


class ValidationInputError(DataError):
    """A trajectory, log or option that cannot be used; the message names the file and the fix."""


@dataclass
class LoadedRun:
    """A Universe plus what MDAnalysis does not record: origin engine and force unit."""

    universe: mda.Universe
    topology: Path
    trajectory: Path
    engine: str  # "lammps", "gromacs" or "ase"
    force_to_eV_per_A: float | None  # None when the force unit is unknown (LAMMPS without units)
    times_known: bool = True  # False: frame times are placeholders (extxyz, dump without time step)


def lammps_unit_factors(style: str, source: str) -> tuple[float, float]:
    """(force factor to eV/Å, time-unit factor to ps) for a LAMMPS ``units`` style."""
    time_to_ps = {"metal": 1.0, "real": 1e-3}
    if style not in time_to_ps:
        raise ValidationInputError(
            f"{source}: LAMMPS 'units {style}' is not supported by ffkit validate; "
            "run with 'units metal' or 'units real' (Å-based styles)"
        )
    return force_factor(style, style), time_to_ps[style]


def read_data_atom_style(path: Path) -> str:
    """The atom_style named in a LAMMPS data file's ``Atoms # style`` header."""
    with open(path) as f:
        for line in f:
            match = re.match(r"\s*Atoms\s*(?:#\s*(\S+))?", line)
            if match and line.strip().startswith("Atoms"):
                style = match.group(1)
                if style is None:
                    raise ValidationInputError(
                        f"{path}: the 'Atoms' section has no '# atom_style' comment; pass "
                        "--atom-style (one of " + ", ".join(DATA_ATOM_STYLES) + ")"
                    )
                return style
    raise ValidationInputError(f"{path}: no 'Atoms' section found; is this a LAMMPS data file?")


def check_lammps_dump_complete(path: Path) -> None:
    """Refuse a dump whose last frame is cut short (MDAnalysis would silently drop it)."""
    with open(path, "rb") as f:
        head = [f.readline() for _ in range(9)]
    if not head[0].startswith(b"ITEM: TIMESTEP"):
        raise ValidationInputError(
            f"{path}: not a LAMMPS text dump (first line should be 'ITEM: TIMESTEP')"
        )
    try:
        n_atoms = int(head[3])
    except ValueError:
        raise ValidationInputError(
            f"{path}: line 4 should be the number of atoms, found {head[3][:40]!r}"
        ) from None
    n_columns = len(head[8].split()) - 2
    per_frame = n_atoms + 9
    n_lines, last = 0, b""
    with open(path, "rb") as f:
        for n_lines, line in enumerate(f, 1):
            position = (n_lines - 1) % per_frame
            if position == 0 and not line.startswith(b"ITEM: TIMESTEP") or \
                    position == 8 and not line.startswith(b"ITEM: ATOMS"):
                raise ValidationInputError(
                    f"{path}: line {n_lines} should start frame {n_lines // per_frame + 1} of "
                    f"{n_atoms} atoms; the number of atoms may change between frames, which "
                    "ffkit validate does not support, or the file is corrupt"
                )
            last = line
    n_full, rest = divmod(n_lines, per_frame)
    if rest:
        raise ValidationInputError(
            f"{path}: truncated LAMMPS dump: frame {n_full + 1} (starting at line "
            f"{n_full * per_frame + 1}) has {rest} of {per_frame} lines; the run was "
            "probably killed while writing. Cut the file after the last complete frame "
            f"(head -n {n_full * per_frame}) or rerun."
        )
    if len(last.split()) != n_columns or not last.endswith(b"\n"):
        raise ValidationInputError(
            f"{path}: the last line has {len(last.split())} columns, expected {n_columns}; "
            "the dump is truncated in its last line"
        )


def universe_from_extxyz(path: Path) -> mda.Universe:
    """A Universe (in-memory trajectory with cell and forces) from an extended XYZ file."""
    from ase.io import read

    try:
        frames = read(path, index=":")
    except Exception as exc:  # ASE raises many types for broken files
        raise ValidationInputError(f"{path}: cannot read as extended XYZ: {exc}") from exc
    if not frames:
        raise ValidationInputError(f"{path}: no frames")
    n_atoms = len(frames[0])
    for i, atoms in enumerate(frames):
        if len(atoms) != n_atoms or list(atoms.numbers) != list(frames[0].numbers):
            raise ValidationInputError(
                f"{path}: frame {i} has different atoms than frame 0; a trajectory needs "
                "the same atoms in the same order in every frame"
            )
    positions = np.array([a.get_positions() for a in frames], dtype=np.float32)
    universe = mda.Universe.empty(n_atoms, trajectory=False)
    universe.add_TopologyAttr("elements", frames[0].get_chemical_symbols())
    universe.add_TopologyAttr("names", frames[0].get_chemical_symbols())
    universe.add_TopologyAttr("types", frames[0].get_chemical_symbols())
    universe.add_TopologyAttr("masses", frames[0].get_masses())
    dims = None
    if all(a.pbc.all() for a in frames):
        dims = np.array([list(a.cell.cellpar()) for a in frames], dtype=np.float32)
    forces = None
    try:
        forces = np.array([a.get_forces() for a in frames], dtype=np.float32)
    except Exception:  # frames without stored forces
        forces = None
    from MDAnalysis.coordinates.memory import MemoryReader

    universe.trajectory = MemoryReader(
        positions, dimensions=dims, forces=forces, order="fac", dt=1.0
    )
    universe.trajectory.filename = str(path)
    return universe


def element_from_mass(mass: float) -> str | None:
    """Element whose standard atomic mass is within 0.1 u of ``mass``, if exactly one is."""
    hits = [el for el, m in STANDARD_MASSES.items() if abs(m - mass) < 0.1 and el.isalpha()]
    return hits[0] if len(hits) == 1 else None


def assign_elements(universe: mda.Universe, source: Path, elements: list[str] | None,
                    masses_are_real: bool) -> None:
    """Give every atom an element: from ``elements`` (one per atom type, in type order), from the
    topology, or from the masses of a LAMMPS data file."""
    atoms = universe.atoms
    if elements:
        types = sorted(set(atoms.types), key=lambda t: (len(t), t) if t.isdigit() else (0, t))
        if len(elements) != len(types):
            raise ValidationInputError(
                f"{source}: --elements gives {len(elements)} symbols but the file has "
                f"{len(types)} atom types ({' '.join(types)}); give one symbol per type in type order"
            )
        bad = [e for e in elements if e.capitalize() not in STANDARD_MASSES]
        if bad:
            raise ValidationInputError(f"--elements: unknown element symbol(s) {bad}")
        lookup = {t: e.capitalize() for t, e in zip(types, elements)}
        universe.add_TopologyAttr("elements", [lookup[t] for t in atoms.types])
        return
    if hasattr(atoms, "elements") and all(e and e.capitalize() in STANDARD_MASSES
                                          for e in atoms.elements):
        return
    if masses_are_real:
        by_type = {}
        for t, m in zip(atoms.types, atoms.masses):
            by_type.setdefault(t, m)
        lookup = {t: element_from_mass(m) for t, m in by_type.items()}
        if all(lookup.values()):
            universe.add_TopologyAttr("elements", [lookup[t] for t in atoms.types])
            return
    if hasattr(atoms, "names"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            universe.guess_TopologyAttrs(to_guess=["elements"], force_guess=["elements"])
        if all(e and e.capitalize() in STANDARD_MASSES for e in universe.atoms.elements):
            return
    types = sorted(set(atoms.types))
    raise ValidationInputError(
        f"{source}: cannot tell the element of atom types {' '.join(types)}; pass --elements "
        f"with one symbol per type in type order (e.g. --elements {' '.join(['X'] * len(types))})"
    )


def load_run(topology: str | os.PathLike, trajectory: str | os.PathLike | None = None, *,
             elements: list[str] | None = None, lammps_units: str | None = None,
             timestep_ps: float | None = None, atom_style: str | None = None) -> LoadedRun:
    """Load a run from any supported engine; see the module docstring for what is inferred.

    ``lammps_units`` ("metal"/"real") fixes the force and time units of LAMMPS dumps;
    ``timestep_ps`` sets the MD time step so that dump frame times are in ps.
    """
    topology = Path(topology)
    trajectory = Path(trajectory) if trajectory is not None else topology
    for path in dict.fromkeys((topology, trajectory)):
        if not path.is_file():
            raise ValidationInputError(f"{path}: no such file")
        if path.stat().st_size == 0:
            raise ValidationInputError(f"{path}: file is empty")
    top_suffix, traj_suffix = topology.suffix.lower(), trajectory.suffix.lower()
    engine = "gromacs" if top_suffix in {".tpr", ".gro"} else "lammps"
    top_kwargs, traj_kwargs = {}, {}
    masses_are_real = False
    if top_suffix in EXTXYZ_SUFFIXES:
        if trajectory != topology and traj_suffix not in EXTXYZ_SUFFIXES:
            raise ValidationInputError(
                f"{topology}: an extended XYZ topology goes with an extended XYZ trajectory, "
                f"not {trajectory}"
            )
        universe = universe_from_extxyz(trajectory)  # elements come from the file itself
        return LoadedRun(universe, topology, trajectory, "ase", 1.0, times_known=False)
    if top_suffix in LAMMPS_DATA_SUFFIXES:
        style = atom_style or read_data_atom_style(topology)
        if style not in DATA_ATOM_STYLES:
            raise ValidationInputError(
                f"{topology}: atom_style '{style}' is not supported; use one of "
                + ", ".join(DATA_ATOM_STYLES)
            )
        top_kwargs = {"format": "DATA", "atom_style": DATA_ATOM_STYLES[style]}
        masses_are_real = True
    elif top_suffix in LAMMPS_DUMP_SUFFIXES:
        top_kwargs = {"topology_format": "LAMMPSDUMP"}
    if traj_suffix in LAMMPS_DUMP_SUFFIXES:
        check_lammps_dump_complete(trajectory)
        traj_kwargs = {"format": "LAMMPSDUMP", "dt": timestep_ps if timestep_ps else 1.0}
    elif traj_suffix == ".dcd" and engine == "lammps":
        if lammps_units not in ("metal", "real"):
            raise ValidationInputError(
                f"{trajectory}: a LAMMPS DCD stores times in the units style's time unit; pass "
                "--log (its 'units' line is read) or --units metal|real")
        traj_kwargs = {"format": "LAMMPS", "timeunit": "fs" if lammps_units == "real" else "ps"}
    force_to_ev = energy_factor("kJ/mol")  # MDAnalysis converts GROMACS forces to kJ/(mol·Å)
    if engine == "lammps":
        force_to_ev = None
        if lammps_units:
            force_to_ev, _ = lammps_unit_factors(lammps_units, str(trajectory))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if "topology_format" in top_kwargs:
                universe = mda.Universe(str(topology), str(trajectory),
                                        topology_format="LAMMPSDUMP", **traj_kwargs)
            elif top_kwargs:
                universe = mda.Universe(str(topology), format=top_kwargs["format"],
                                        atom_style=top_kwargs["atom_style"])
                universe.load_new(str(trajectory), **traj_kwargs)
            else:
                universe = mda.Universe(str(topology), str(trajectory), **traj_kwargs)
    except ValidationInputError:
        raise
    except Exception as exc:
        raise ValidationInputError(
            f"cannot load topology {topology} with trajectory {trajectory}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if universe.trajectory.n_frames == 0:
        raise ValidationInputError(f"{trajectory}: no frames")
    assign_elements(universe, topology, elements, masses_are_real)
    times_known = not (traj_suffix in LAMMPS_DUMP_SUFFIXES and not timestep_ps)
    return LoadedRun(universe, topology, trajectory, engine, force_to_ev, times_known)
