"""ML/MM in GROMACS: one ethanol run by an ffkit model (NNPot) in SPC/E water, next to all-MM.

    python examples/gromacs_mlmm_ethanol/run.py [--model MODEL.pt] [--ps 10] [--out OUT]

Wraps a trained ffkit ethanol model (a LAMMPS-convention artifact; default the `fast` tier that
benchmarks/accuracy.py trained on rMD17 ethanol) as an NNPot artifact, puts the first rMD17 test
frame at the centre of 2×2×2 copies of the DeePMD water box (waters within 2.4 Å removed; rigid
SPC/E), and runs NVT (v-rescale, 300 K, PME) with mechanical embedding: the NN gives ethanol's
internal energy, ethanol keeps its OPLS-AA charges and LJ towards the water. Then the same
system runs with ethanol in OPLS-AA. What grompp removed inside the NN group, what the run
input still holds for ethanol in both runs, the drift and ns/day go to OUT/results.json, the
speeds also to benchmarks/results/gromacs_speed.{json,md}.
"""

import argparse
import json
import sys
from pathlib import Path

from ase.io import read

from ffkit.errors import FFKitError
from ffkit_gromacs.engine import find_gmx, gmx_version
from ffkit_gromacs.ethanol import RESIDUE, ethanol_atomtypes, ethanol_moleculetype
from ffkit_gromacs.nnpot import compile_nnpot_from_artifact
from ffkit_gromacs.runs import Solute, drift_per_atom_ps, embedding_report, grompp, mdrun, molecule_interactions, \
    performance, prepare_solvated, read_energies
from ffkit_gromacs.speed import record
from ffkit.solvation import order_waters

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data"
DT_PS = 0.0005


def ethanol_in_water():
    """The solute (first rMD17 ethanol test frame, OPLS-AA typed), the 2×2×2 DeePMD water box, and
    how many MM terms of each kind the ethanol topology has."""
    mol = read(DATA / "rmd17_ethanol" / "test_MD.xyz", index=0)
    molecule, counts = ethanol_moleculetype(mol)
    water = order_waters(read(DATA / "water_deepmd" / "water.extxyz", index=0)).repeat((2, 2, 2))
    return Solute(RESIDUE, mol, ethanol_atomtypes(), molecule), water, counts


def run(gmx, files, threads: int) -> dict:
    report = grompp(gmx, files)
    interactions = molecule_interactions(gmx, files.tpr, RESIDUE)
    mdrun(gmx, files, threads=threads)
    energies = read_energies(files.directory / "md.edr")
    return {"ns_per_day": performance(files.directory / "md.log")["ns_per_day"], "ps": float(energies["Time"][-1]),
            "temperature_K_mean": float(energies["Temperature"].mean()),
            "drift_meV_per_atom_ps": drift_per_atom_ps(energies, files.n_atoms),
            "grompp_nnpot_report": embedding_report(report.stdout + report.stderr),
            "ethanol_interactions_in_tpr": interactions}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(REPO / "benchmarks" / "models" / "rmd17_ethanol_fast.pt"),
                        help="a LAMMPS-convention ffkit artifact (`ffkit compile RUN/best.pt --out model.pt`)")
    parser.add_argument("--ps", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(Path(__file__).parent / "out"))
    parser.add_argument("--results", default=str(REPO / "benchmarks" / "results" / "gromacs_speed.json"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    gmx = find_gmx()
    if gmx is None:
        sys.exit("no GROMACS with NNPot: set FFKIT_GMX or run `ffkit deploy gromacs --source TARBALL`")
    artifact = out / "ethanol_nnpot.pt"
    compile_nnpot_from_artifact(args.model, artifact)
    solute, water, mm_terms = ethanol_in_water()
    length = {"nsteps": int(round(args.ps / DT_PS)), "dt": DT_PS}
    mlmm_files = prepare_solvated(out / "mlmm", water, solute, artifact, length)
    mm_files = prepare_solvated(out / "mm", water, solute, None, length)
    n_atoms = mlmm_files.n_atoms
    print(f"{n_atoms} atoms ({len(solute.atoms)} NN), {args.ps} ps ML/MM, then all-MM, with {gmx} ...", flush=True)
    mlmm = run(gmx, mlmm_files, args.threads)
    mm = run(gmx, mm_files, args.threads)
    result = {"gromacs": gmx_version(gmx)[0], "atoms": n_atoms, "nn_atoms": len(solute.atoms),
              "ethanol_mm_terms_in_topology": mm_terms, "mlmm": mlmm, "mm": mm, "dt_fs": DT_PS * 1000,
              "threads": args.threads, "model": Path(args.model).name}
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    record(args.results, "ethanol_in_water_mlmm", {
        "system": f"ethanol + {(n_atoms - len(solute.atoms)) // 3} SPC/E waters, NVT", "atoms": n_atoms,
        "nn_atoms": len(solute.atoms),
        "nn_setup": f"ML/MM mechanical embedding, {Path(args.model).name}, PME 1 nm",
        "nn_ns_per_day": mlmm["ns_per_day"], "mm_setup": "all-MM (OPLS-AA ethanol), PME 1 nm",
        "mm_ns_per_day": mm["ns_per_day"], "drift_meV_per_atom_ps": mlmm["drift_meV_per_atom_ps"],
        "ps": mlmm["ps"], "dt_fs": DT_PS * 1000, "threads": args.threads, "gromacs": result["gromacs"]})
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except FFKitError as exc:
        sys.exit(f"gromacs_mlmm_ethanol: error: {exc}")
