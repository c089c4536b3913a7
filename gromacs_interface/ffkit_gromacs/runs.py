"""Set up, run and read GROMACS NNPot runs: what the examples and the real-GROMACS tests share.

A run directory holds conf.gro, topol.top, index.ndx and grompp.mdp; `grompp` and `mdrun` run
the real `gmx` there and raise GROMACS's own error text on failure; energies come from the .edr
(pyedr), forces from the .trr (MDAnalysis, converted back to kJ/mol/nm).
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np

from ffkit.errors import FFKitError

from .checks import check_artifact, check_elements
from .engine import run_gmx
from .mdp import nn_index_groups, nnpot_settings, write_index, write_mdp
from ffkit.solvation import solvate

from .topology import pure_nn_topology, solvated_topology, spce_topology, write_gro

# Pure NN: every pair is NN-NN, so grompp excludes all MM non-bonded pairs; zero charges and plain
# cut-offs anyway (with PME a pure-NN run drifted, docs/design.md §5), short so small boxes pass grompp.
PURE_NN_MD = {
    "integrator": "md", "dt": "0.0005", "nsteps": "200", "cutoff-scheme": "Verlet",
    "coulombtype": "cut-off", "rcoulomb": "0.4", "vdwtype": "cut-off", "rvdw": "0.4",
    "nstcalcenergy": "1", "nstenergy": "10", "nstlog": "100", "nstxout": "0", "nstvout": "0", "nstfout": "0",
    "tcoupl": "no", "pcoupl": "no", "constraints": "none", "comm-mode": "linear",
    "gen-vel": "yes", "gen-temp": "300", "gen-seed": "1",
}

# Solvated systems (ML/MM and their all-MM references): PME, 1 nm cut-offs, NVT at 300 K; the NN
# solute's bonds are flexible, hence 0.5 fs. v-rescale keeps a conserved energy to check drift on.
SOLVATED_MD = {
    "integrator": "md", "dt": "0.0005", "nsteps": "200", "cutoff-scheme": "Verlet",
    "coulombtype": "PME", "rcoulomb": "1.0", "vdwtype": "cut-off", "rvdw": "1.0", "DispCorr": "EnerPres",
    "nstcalcenergy": "1", "nstenergy": "20", "nstlog": "1000", "nstxout": "0", "nstvout": "0", "nstfout": "0",
    "tcoupl": "v-rescale", "tc-grps": "System", "tau-t": "0.5", "ref-t": "300", "pcoupl": "no",
    "constraints": "none", "comm-mode": "linear", "gen-vel": "yes", "gen-temp": "300", "gen-seed": "1",
}


@dataclass
class Solute:
    """One MM-typed molecule for `prepare_solvated`: residue name, atoms, and its topology pieces."""
    name: str
    atoms: Any                      # ase.Atoms, in topology order
    atomtypes: str                  # `[ atomtypes ]` lines, with the atomic-number column
    moleculetype: str               # the `[ moleculetype ]` block


@dataclass
class RunFiles:
    directory: Path
    mdp: Path
    gro: Path
    top: Path
    ndx: Path

    @property
    def tpr(self) -> Path:
        return self.directory / "topol.tpr"

    @property
    def n_atoms(self) -> int:
        return int(self.gro.read_text().splitlines()[1])


def prepare_pure_nn(directory, atoms, artifact, molecule_size: int, overrides: Optional[Mapping[str, Any]] = None,
                    residue: str = "MOL", allow_wrong_pressure: bool = False) -> RunFiles:
    """A pure-NN run of `atoms` (ASE, rectangular box) with the NNPot artifact `artifact`."""
    check_elements(atoms.numbers, check_artifact(artifact), f"{artifact} for {atoms.get_chemical_formula()}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    gro = write_gro(directory / "conf.gro", atoms, [(residue, molecule_size)] * (len(atoms) // molecule_size))
    top = directory / "topol.top"
    top.write_text(pure_nn_topology(atoms.numbers, molecule_size, name=residue))
    ndx = write_index(directory / "index.ndx", nn_index_groups(len(atoms), range(len(atoms))))
    settings = {**PURE_NN_MD, **nnpot_settings(artifact, "NN"), **(overrides or {})}
    mdp = write_mdp(directory / "grompp.mdp", settings, allow_wrong_pressure=allow_wrong_pressure)
    return RunFiles(directory, mdp, gro, top, ndx)


def prepare_solvated(directory, water, solute: Optional[Solute] = None, artifact=None,
                     overrides: Optional[Mapping[str, Any]] = None, clearance: float = 2.4) -> RunFiles:
    """SPC/E water (`water`: O, H, H per molecule) with `solute` at its centre; with `artifact`
    the solute is the NN group (ML/MM, mechanical embedding), without it everything is MM.

    The index file has groups System, and the solute's name and Water when there is a solute.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if solute is None:
        if artifact is not None:
            raise FFKitError("an NN artifact needs a solute to run on: pass solute=Solute(...)")
        system, n_waters, groups = water, len(water) // 3, {"System": list(range(len(water)))}
        top = spce_topology(n_waters)
        molecules = [("SOL", 3)] * n_waters
    else:
        system, n_waters = solvate(solute.atoms, water, clearance)
        groups = nn_index_groups(len(system), range(len(solute.atoms)), solute.name, "Water")
        top = solvated_topology(solute.atomtypes, solute.moleculetype, solute.name, n_waters,
                                f"{solute.name} in SPC/E water")
        molecules = [(solute.name, len(solute.atoms))] + [("SOL", 3)] * n_waters
    settings = dict(SOLVATED_MD)
    if artifact is not None:
        check_elements(solute.atoms.numbers, check_artifact(artifact), f"{artifact} for {solute.name}")
        settings.update(nnpot_settings(artifact, solute.name))
    settings.update(overrides or {})
    gro = write_gro(directory / "conf.gro", system, molecules)
    (directory / "topol.top").write_text(top)
    ndx = write_index(directory / "index.ndx", groups)
    mdp = write_mdp(directory / "grompp.mdp", settings)
    return RunFiles(directory, mdp, gro, directory / "topol.top", ndx)


def grompp(gmx, files: RunFiles, maxwarn: int = 0, check: bool = True):
    return run_gmx(gmx, ["grompp", "-f", files.mdp.name, "-c", files.gro.name, "-p", files.top.name,
                         "-n", files.ndx.name, "-o", files.tpr.name, "-maxwarn", maxwarn], cwd=files.directory,
                   check=check)


def mdrun(gmx, files: RunFiles, deffnm: str = "md", rerun: Optional[Path] = None, threads: int = 1,
          extra: Sequence[str] = (), check: bool = True, timeout: Optional[float] = None):
    args = ["mdrun", "-s", files.tpr.name, "-deffnm", deffnm, "-ntmpi", "1", "-ntomp", threads, "-nb", "cpu",
            "-pin", "off", *extra]
    if rerun is not None:
        args += ["-rerun", str(rerun)]
    return run_gmx(gmx, args, cwd=files.directory, check=check, env={"OMP_NUM_THREADS": str(threads)},
                   timeout=timeout)


def embedding_report(grompp_output: str) -> Dict[str, int]:
    """What grompp says it did to the topology for the NN group, e.g. {'embedded NNP atoms': 9,
    'exclusions made': 9, 'bonds removed': 20, 'angles removed': 13, 'dihedrals removed': 12}."""
    found = re.findall(r"^Number of (.+?): (\d+)", grompp_output, re.M)
    return {re.sub(r"InteractionFunction::| \(.*?\)", "", name): int(n) for name, n in found}


def molecule_interactions(gmx, tpr, molecule: str) -> Dict[str, int]:
    """Interactions of each kind that the run input holds for `molecule` (from `gmx dump` of the
    .tpr), kinds with none left out: what mdrun will compute, after grompp's NNPot changes. For
    ethanol all-MM {'Bond': 8, 'Angle': 13, 'Ryckaert-Bell.': 12, 'LJ-14': 12}; as the NN group
    {'Connect Bonds': 8}."""
    text = run_gmx(gmx, ["dump", "-s", Path(tpr).name], cwd=Path(tpr).parent).stdout
    for block in re.split(r"^\s*moltype \(\d+\):\s*$", text, flags=re.M)[1:]:
        lines = block.lstrip().splitlines()
        if not lines or lines[0].strip() != f'name="{molecule}"':
            continue
        counts: Dict[str, int] = {}
        kind = None
        for line in lines[1:]:
            if re.match(r"^\s*moltype|^\s*(molblock|groups)", line):
                break
            title = re.match(r"^\s*(\S.*?):\s*$", line)
            if title and title.group(1) != "iatoms":
                kind = title.group(1)
            elif kind and re.match(r"^\s*\d+ type=-?\d+ \(", line):   # connections: type -1
                counts[kind] = counts.get(kind, 0) + 1
        return counts
    raise FFKitError(f"{tpr}: no molecule type named {molecule!r} in `gmx dump -s` output")


def read_energies(edr) -> Dict[str, np.ndarray]:
    """All energy terms of an .edr file (kJ/mol, bar, nm...), e.g. 'NN Potential', 'Vir-XX'."""
    import pyedr

    edr = Path(edr)
    if not edr.is_file():
        raise FFKitError(f"{edr}: energy file not found (did mdrun run?)")
    return {k: np.asarray(v) for k, v in pyedr.edr_to_dict(str(edr)).items()}


def read_forces(trr) -> np.ndarray:
    """Forces of every frame of a .trr in kJ/mol/nm, shape (frames, atoms, 3)."""
    from MDAnalysis.coordinates.TRR import TRRReader

    reader = TRRReader(str(trr), convert_units=False)
    frames = [ts.forces.copy() for ts in reader if ts.has_forces]
    reader.close()
    if not frames:
        raise FFKitError(f"{trr}: no forces stored (set nstfout in the mdp)")
    return np.asarray(frames, dtype=np.float64)


def performance(log) -> Dict[str, float]:
    """ns/day and hours/ns from mdrun's log 'Performance:' line."""
    text = Path(log).read_text(errors="replace")
    match = re.search(r"^Performance:\s+([\d.]+)\s+([\d.]+)", text, re.M)
    if not match:
        raise FFKitError(f"{log}: no 'Performance:' line (the run did not finish)")
    return {"ns_per_day": float(match.group(1)), "hours_per_ns": float(match.group(2))}


def drift_per_atom_ps(energies: Mapping[str, np.ndarray], n_atoms: int) -> float:
    """Linear drift of the conserved energy in meV/atom/ps (1 kJ/mol = 10.364 meV)."""
    time = energies["Time"]
    conserved = energies.get("Conserved En.", energies["Total Energy"])
    slope = np.polyfit(time, conserved, 1)[0]          # kJ/mol/ps
    return float(slope / 96.48533212 * 1000.0 / n_atoms)
