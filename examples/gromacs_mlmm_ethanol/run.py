"""ML/MM in GROMACS: one ethanol run by an ffkit model (NNPot) in SPC/E water, next to pure MM.

    python examples/gromacs_mlmm_ethanol/run.py [--checkpoint RUN/best.pt] [--ps 10] [--out OUT]

Trains a 'fast' model on rMD17 ethanol (unless --checkpoint is given), compiles it for NNPot,
puts an ethanol at the centre of 8 copies of the DeePMD water box (waters overlapping it
removed; SPC/E, rigid), and runs NVT (v-rescale, 300 K) with mechanical embedding: the NN gives
ethanol's internal energy, ethanol keeps OPLS-AA-style charges and LJ towards the water. Then
the same system runs with ethanol in pure MM. grompp's report of the MM terms it removed inside
the NN group, the conserved-energy drift and ns/day go to OUT/results.json.
"""

import argparse
import json
import re
import sys
from itertools import combinations
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read
from ase.neighborlist import natural_cutoffs, neighbor_list

from ffkit.checkpoints import load_checkpoint
from ffkit.config import TrainConfig
from ffkit.training import train
from ffkit_gromacs.engine import find_gmx, gmx_version
from ffkit_gromacs.mdp import nn_index_groups, nnpot_settings, write_index, write_mdp
from ffkit_gromacs.nnpot import compile_nnpot_from_checkpoint
from ffkit_gromacs.runs import RunFiles, drift_per_atom_ps, grompp, mdrun, performance, read_energies
from ffkit_gromacs.topology import SPCE_ATOMTYPES, SPCE_MOLECULE, atom_names, order_waters, write_gro

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DT_PS = 0.0005

# OPLS-AA-style ethanol, typed by hand: charge (e), sigma (nm), epsilon (kJ/mol)
TYPES = {"CT": (6, 12.011, 0.35, 0.276144), "CO": (6, 12.011, 0.35, 0.276144), "HC": (1, 1.008, 0.25, 0.12552),
         "OH": (8, 15.9994, 0.312, 0.71128), "HO": (1, 1.008, 0.0, 0.0)}
CHARGES = {"CT": -0.18, "CO": 0.145, "HC": 0.06, "OH": -0.683, "HO": 0.418}
BONDS = {("CO", "CT"): (0.1529, 224262.4), ("CT", "HC"): (0.109, 284512.0), ("CO", "HC"): (0.109, 284512.0),
         ("CO", "OH"): (0.141, 267776.0), ("HO", "OH"): (0.0945, 462750.4)}
ANGLES = {"CT": {("HC", "HC"): (107.8, 276.144), ("CO", "HC"): (110.7, 313.8)},
          "CO": {("HC", "HC"): (107.8, 276.144), ("CT", "HC"): (110.7, 313.8), ("CT", "OH"): (109.5, 418.4),
                 ("HC", "OH"): (109.5, 292.88)},
          "OH": {("CO", "HO"): (108.5, 460.24)}}
RB = {("HC", "CT", "CO", "HC"): "0.62760 1.88280 0.0 -2.51040 0.0 0.0",
      ("HC", "CT", "CO", "OH"): "0.97905 2.93716 0.0 -3.91622 0.0 0.0",
      ("CT", "CO", "OH", "HO"): "-0.44350 3.83255 0.72801 -4.11705 0.0 0.0",
      ("HC", "CO", "OH", "HO"): "0.94140 2.82420 0.0 -3.76560 0.0 0.0"}


def ethanol_types(mol: Atoms):
    """OPLS types from elements and bonds; the bonds (0-based) found from covalent radii."""
    i, j = neighbor_list("ij", mol, natural_cutoffs(mol, mult=1.2))
    bonded = {a: set(j[i == a].tolist()) for a in range(len(mol))}
    types = []
    for a, z in enumerate(mol.numbers):
        if z == 8:
            types.append("OH")
        elif z == 6:
            types.append("CO" if any(mol.numbers[b] == 8 for b in bonded[a]) else "CT")
        else:
            types.append("HO" if any(mol.numbers[b] == 8 for b in bonded[a]) else "HC")
    bonds = sorted({tuple(sorted(p)) for p in zip(i.tolist(), j.tolist())})
    return types, bonds, bonded


def ethanol_molecule(mol: Atoms) -> tuple:
    types, bonds, bonded = ethanol_types(mol)
    lines = ["[ moleculetype ]", "  ETH  3", "", "[ atoms ]"]
    lines += [f"  {a + 1} {t} 1 ETH {name} 1 {CHARGES[t]} {TYPES[t][1]}"
              for a, (t, name) in enumerate(zip(types, atom_names(mol.numbers)))]
    lines += ["", "[ bonds ]"]
    lines += [f"  {a + 1} {b + 1} 1 {' '.join(map(str, BONDS[tuple(sorted((types[a], types[b])))]))}" for a, b in bonds]
    angles, dihedrals = [], []
    for centre in range(len(mol)):
        for a, b in combinations(sorted(bonded[centre]), 2):
            key = tuple(sorted((types[a], types[b])))
            angles.append(f"  {a + 1} {centre + 1} {b + 1} 1 {' '.join(map(str, ANGLES[types[centre]][key]))}")
    for b, c in bonds:
        for a in bonded[b] - {c}:
            for d in bonded[c] - {b}:
                key = (types[a], types[b], types[c], types[d])
                params = RB.get(key) or RB[key[::-1]]
                dihedrals.append(f"  {a + 1} {b + 1} {c + 1} {d + 1} 3 {params}")
    pairs = sorted({tuple(sorted((int(line.split()[0]), int(line.split()[3])))) for line in dihedrals})
    lines += ["", "[ pairs ]"] + [f"  {a} {d} 1" for a, d in pairs]
    lines += ["", "[ angles ]"] + angles + ["", "[ dihedrals ]"] + dihedrals
    return "\n".join(lines) + "\n", {"bonds": len(bonds), "pairs": len(pairs), "angles": len(angles),
                                     "dihedrals": len(dihedrals)}


def build_system(out: Path):
    """Ethanol (first rMD17 test frame) at the centre of a 2x2x2 DeePMD water box, overlaps removed."""
    mol = read(DATA / "rmd17_ethanol" / "test_MD.xyz", index=0)
    water = order_waters(read(DATA / "water_deepmd" / "water.extxyz", index=0)).repeat((2, 2, 2))
    centre = np.diag(np.asarray(water.cell)) / 2
    mol.positions += centre - mol.positions.mean(0)
    oxygens = np.flatnonzero(water.numbers == 8)
    keep = []
    for o in oxygens:
        molecule = [o, o + 1, o + 2]
        if np.linalg.norm(water.positions[molecule][:, None] - mol.positions[None], axis=-1).min() > 2.4:
            keep += molecule
    system = mol + water[keep]
    system.cell = water.cell
    system.pbc = True
    molecule_text, counts = ethanol_molecule(mol)
    atomtypes = "".join(f"  {t:<4} {z:>2d} {m:9.4f} 0.0 A {s} {e}\n" for t, (z, m, s, e) in TYPES.items())
    top = ("[ defaults ]\n  1 3 yes 0.5 0.5\n\n[ atomtypes ]\n" + atomtypes + SPCE_ATOMTYPES + "\n" + molecule_text
           + "\n" + SPCE_MOLECULE + f"\n[ system ]\n  ethanol in SPC/E\n\n[ molecules ]\n  ETH 1\n  SOL {len(keep) // 3}\n")
    out.mkdir(parents=True, exist_ok=True)
    (out / "topol.top").write_text(top)
    gro = write_gro(out / "conf.gro", system, [("ETH", len(mol))] + [("SOL", 3)] * (len(keep) // 3))
    write_index(out / "index.ndx", nn_index_groups(len(system), range(len(mol)), "Ethanol", "Water"))
    return system, len(mol), counts, gro


def run_case(gmx, out: Path, name: str, nnpot: dict, steps: int, threads: int) -> dict:
    directory = out / name
    directory.mkdir(parents=True, exist_ok=True)
    for f in ("topol.top", "conf.gro", "index.ndx"):
        (directory / f).write_text((out / f).read_text())
    mdp = write_mdp(directory / "grompp.mdp", {
        "integrator": "md", "dt": DT_PS, "nsteps": steps, "cutoff-scheme": "Verlet", "coulombtype": "PME",
        "rcoulomb": 1.0, "vdwtype": "cut-off", "rvdw": 1.0, "DispCorr": "EnerPres", "constraints": "none",
        "tcoupl": "v-rescale", "tc-grps": "System", "tau-t": 0.1, "ref-t": 300, "pcoupl": "no",
        "gen-vel": "yes", "gen-temp": 300, "gen-seed": 1, "nstenergy": 20, "nstcalcenergy": 1, "nstlog": 1000,
        "nstxout-compressed": 200, **nnpot})
    files = RunFiles(directory, mdp, directory / "conf.gro", directory / "topol.top", directory / "index.ndx")
    report = grompp(gmx, files)
    mdrun(gmx, files, threads=threads)
    energies = read_energies(directory / "md.edr")
    removed = {kind: int(n) for kind, n in re.findall(r"Number of (\w+) removed: (\d+)", report.stdout + report.stderr)}
    return {"ns_per_day": performance(directory / "md.log")["ns_per_day"], "ps": float(energies["Time"][-1]),
            "temperature_K_mean": float(energies["Temperature"].mean()), "grompp_removed": removed,
            "drift_meV_per_atom_ps": drift_per_atom_ps(energies, len(read(directory / "conf.gro")))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="a trained ffkit ethanol checkpoint (default: train one)")
    parser.add_argument("--train-minutes", type=float, default=10.0)
    parser.add_argument("--ps", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(Path(__file__).parent / "out"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    gmx = find_gmx()
    if gmx is None:
        sys.exit("no GROMACS with NNPot: set FFKIT_GMX or run `ffkit deploy gromacs --source TARBALL`")
    checkpoint = Path(args.checkpoint) if args.checkpoint else None
    if checkpoint is None:
        cfg = TrainConfig(data=str(DATA / "rmd17_ethanol" / "train.xyz"), out=str(out / "train"), tier="fast",
                          n_valid=50, epochs=300, batch_size=8, lr=1e-2, seed=0, max_minutes=args.train_minutes)
        train(cfg, resume=(out / "train" / "last.pt").is_file())
        checkpoint = out / "train" / "best.pt"
    model, ckpt = load_checkpoint(checkpoint)
    artifact = out / "ethanol_nnpot.pt"
    compile_nnpot_from_checkpoint(model, ckpt, artifact)
    system, n_nn, counts, _ = build_system(out)
    steps = int(round(args.ps / DT_PS))
    print(f"{len(system)} atoms ({n_nn} NN), {args.ps} ps ML/MM then pure MM with {gmx} ...", flush=True)
    mlmm = run_case(gmx, out, "mlmm", nnpot_settings(artifact, "Ethanol"), steps, args.threads)
    mm = run_case(gmx, out, "mm", {}, steps, args.threads)
    result = {"gromacs": gmx_version(gmx)[0], "atoms": len(system), "nn_atoms": n_nn,
              "ethanol_mm_terms": counts, "mlmm": mlmm, "mm": mm, "dt_fs": DT_PS * 1000, "threads": args.threads,
              "checkpoint": str(checkpoint)}
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
