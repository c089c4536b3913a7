"""Pure-NN liquid water in GROMACS (NNPot), next to the same box of SPC/E water.

    python examples/gromacs_water/run.py [--model MODEL.pt] [--layout positions|pairs] [--ps 10] [--out OUT]

Wraps a trained ffkit water model (a LAMMPS-convention artifact; default the `fast` tier that
benchmarks/accuracy.py trained on data/water_deepmd) as an NNPot artifact, runs NVE MD
of the 64-water DeePMD box in GROMACS, reports the energy drift and ns/day, then runs the same
box as rigid SPC/E (PME) for the ns/day of pure MM. Results go to OUT/results.json and to
benchmarks/results/gromacs_speed.{json,md}.
"""

import argparse
import json
import sys
from pathlib import Path

from ase.io import read

from ffkit.errors import FFKitError
from ffkit_gromacs.engine import find_gmx, gmx_version
from ffkit_gromacs.nnpot import compile_nnpot_from_artifact
from ffkit_gromacs.runs import drift_per_atom_ps, grompp, mdrun, performance, prepare_pure_nn, prepare_solvated, \
    read_energies
from ffkit_gromacs.speed import record
from ffkit.solvation import order_waters

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data" / "water_deepmd" / "water.extxyz"
DT_PS = 0.0005
# the MM reference: the same box and time step, rigid SPC/E with PME (cut-offs below half the box),
# MM_LENGTH times longer: the NN run's 20 000 steps take SPC/E only a second or two, too short to time
SPCE_NVE = {"rcoulomb": "0.55", "rvdw": "0.55", "tcoupl": "no"}
MM_LENGTH = 10


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(REPO / "benchmarks" / "models" / "water_deepmd_fast.pt"),
                        help="a LAMMPS-convention ffkit artifact (`ffkit compile RUN/best.pt --out model.pt`)")
    parser.add_argument("--layout", default="positions", choices=["positions", "pairs"])
    parser.add_argument("--ps", type=float, default=10.0, help="NVE length in ps (dt 0.5 fs)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(Path(__file__).parent / "out"))
    parser.add_argument("--results", default=str(REPO / "benchmarks" / "results" / "gromacs_speed.json"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    gmx = find_gmx()
    if gmx is None:
        sys.exit("no GROMACS with NNPot: set FFKIT_GMX or run `ffkit deploy gromacs --source TARBALL`")
    artifact = out / "water_nnpot.pt"
    compile_nnpot_from_artifact(args.model, artifact, layout=args.layout)
    water = order_waters(read(DATA, index=0))
    steps = int(round(args.ps / DT_PS))
    length = {"nsteps": steps, "dt": DT_PS}

    nn_files = prepare_pure_nn(out / "nn", water, artifact, 3, {**length, "nstenergy": 20, "nstxout-compressed": 200},
                               residue="SOL")
    grompp(gmx, nn_files)
    print(f"NVE of {len(water)} NN atoms for {args.ps} ps ({args.layout} layout) with {gmx} ...", flush=True)
    mdrun(gmx, nn_files, threads=args.threads)
    energies = read_energies(nn_files.directory / "md.edr")
    nn = performance(nn_files.directory / "md.log")

    mm_files = prepare_solvated(out / "mm", water, overrides={**SPCE_NVE, **length, "nsteps": MM_LENGTH * steps})
    grompp(gmx, mm_files)
    print("the same box as SPC/E ...", flush=True)
    mdrun(gmx, mm_files, threads=args.threads)
    mm = performance(mm_files.directory / "md.log")

    result = {
        "system": "64 waters (DeePMD box, 12.44 Å), NVE", "atoms": len(water), "nn_atoms": len(water),
        "nn_setup": f"pure NN, {Path(args.model).name}, {args.layout} layout", "nn_ns_per_day": nn["ns_per_day"],
        "mm_setup": f"SPC/E rigid, PME 0.55 nm ({MM_LENGTH * args.ps:g} ps)", "mm_ns_per_day": mm["ns_per_day"],
        "drift_meV_per_atom_ps": drift_per_atom_ps(energies, len(water)),
        "temperature_K_mean": float(energies["Temperature"].mean()),
        "ps": float(energies["Time"][-1]), "dt_fs": DT_PS * 1000, "threads": args.threads,
        "gromacs": gmx_version(gmx)[0],
    }
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    record(args.results, f"water_{args.layout}", result)
    for key, value in result.items():
        print(f"  {key:<24} {value}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except FFKitError as exc:
        sys.exit(f"gromacs_water: error: {exc}")
