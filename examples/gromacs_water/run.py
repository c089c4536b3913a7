"""Pure-NN liquid water in GROMACS (NNPot), next to the same box of SPC/E water.

    python examples/gromacs_water/run.py [--checkpoint RUN/best.pt] [--ps 10] [--out OUT]

Trains a 'fast' water model on ../shared/data/water_deepmd (unless --checkpoint is given),
compiles it with `ffkit compile --engine gromacs`, runs NVE MD of 64 waters in GROMACS,
reports the energy drift and ns/day, then runs the same box as rigid SPC/E (PME) for the ns/day
of pure MM. Results go to OUT/results.json.
"""

import argparse
import json
import sys
from pathlib import Path

from ase.io import read

from ffkit.checkpoints import load_checkpoint
from ffkit.config import TrainConfig
from ffkit.training import train
from ffkit_gromacs.engine import find_gmx, gmx_version
from ffkit_gromacs.nnpot import compile_nnpot_from_checkpoint
from ffkit_gromacs.runs import RunFiles, drift_per_atom_ps, grompp, mdrun, performance, prepare_pure_nn, read_energies
from ffkit_gromacs.topology import order_waters, spce_topology, write_gro
from ffkit_gromacs.mdp import nn_index_groups, write_index, write_mdp

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "water_deepmd" / "water.extxyz"
DT_PS = 0.0005


def train_water(out: Path, minutes: float) -> Path:
    cfg = TrainConfig(data=str(DATA), out=str(out), tier="fast", n_valid=20, epochs=200, batch_size=4, lr=5e-3,
                      seed=0, max_minutes=minutes)
    train(cfg, resume=(out / "last.pt").is_file())
    return out / "best.pt"


def run_mm(gmx, directory: Path, atoms, steps: int, threads: int) -> dict:
    directory.mkdir(parents=True, exist_ok=True)
    write_gro(directory / "conf.gro", atoms, [("SOL", 3)] * (len(atoms) // 3))
    (directory / "topol.top").write_text(spce_topology(len(atoms) // 3))
    write_index(directory / "index.ndx", nn_index_groups(len(atoms), range(len(atoms))))
    write_mdp(directory / "grompp.mdp", {
        "integrator": "md", "dt": DT_PS, "nsteps": steps, "cutoff-scheme": "Verlet", "coulombtype": "PME",
        "rcoulomb": 0.55, "vdwtype": "cut-off", "rvdw": 0.55, "constraints": "none", "tcoupl": "no",
        "pcoupl": "no", "gen-vel": "yes", "gen-temp": 300, "nstenergy": 20, "nstcalcenergy": 1})
    files = RunFiles(directory, directory / "grompp.mdp", directory / "conf.gro", directory / "topol.top",
                     directory / "index.ndx")
    grompp(gmx, files)
    mdrun(gmx, files, threads=threads)
    return performance(directory / "md.log")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="a trained ffkit water checkpoint (default: train one)")
    parser.add_argument("--train-minutes", type=float, default=15.0)
    parser.add_argument("--ps", type=float, default=10.0, help="NVE length in ps (dt 0.5 fs)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(Path(__file__).parent / "out"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    gmx = find_gmx()
    if gmx is None:
        sys.exit("no GROMACS with NNPot: set FFKIT_GMX or run `ffkit deploy gromacs --source TARBALL`")
    checkpoint = Path(args.checkpoint) if args.checkpoint else train_water(out / "train", args.train_minutes)
    model, ckpt = load_checkpoint(checkpoint)
    artifact = out / "water_nnpot.pt"
    compile_nnpot_from_checkpoint(model, ckpt, artifact)
    atoms = order_waters(read(DATA, index=0))
    steps = int(round(args.ps / DT_PS))
    files = prepare_pure_nn(out / "nn", atoms, artifact, 3, {"nsteps": steps, "dt": DT_PS, "nstenergy": 20,
                                                             "nstxout-compressed": 200}, residue="SOL")
    grompp(gmx, files)
    print(f"NVE, {len(atoms)} NN atoms, {args.ps} ps with {gmx} ...", flush=True)
    mdrun(gmx, files, threads=args.threads)
    energies = read_energies(files.directory / "md.edr")
    nn = performance(files.directory / "md.log")
    mm = run_mm(gmx, out / "mm", atoms, steps, args.threads)
    result = {
        "gromacs": gmx_version(gmx)[0], "atoms": len(atoms), "ps": float(energies["Time"][-1]),
        "drift_meV_per_atom_ps": drift_per_atom_ps(energies, len(atoms)),
        "temperature_K_mean": float(energies["Temperature"].mean()),
        "nn_ns_per_day": nn["ns_per_day"], "mm_spce_pme_ns_per_day": mm["ns_per_day"], "dt_fs": DT_PS * 1000,
        "threads": args.threads, "checkpoint": str(checkpoint),
    }
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    for key, value in result.items():
        print(f"  {key:<24} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
