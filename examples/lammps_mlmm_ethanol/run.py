"""ML/MM in LAMMPS: one ethanol run by an ffkit model (`pair_style hybridff`) in SPC/E water.

    python examples/lammps_mlmm_ethanol/run.py [--model MODEL.pt] [--ps 10] [--out OUT]

The same system as examples/gromacs_mlmm_ethanol (first rMD17 ethanol test frame at the centre of
2×2×2 DeePMD water boxes, waters within 2.4 Å removed, OPLS-AA ethanol, SPC/E water, PME/PPPM with
1 nm cut-offs), run by `in.mlmm.lmp` four times: ML/MM NVT at 300 K, ML/MM NPT at 300 K and 1 atm
(LAMMPS gets the model's virial; GROMACS NNPot adds none, so there ML/MM runs at constant volume),
and all-MM NVT and NPT beside them, for the cost of the ML region and the drift of an MM-only run.
`ffkit validate` checks the ML/MM NVT run. Results go to OUT/results.json, the speeds also to
benchmarks/results/lammps_mlmm_speed.{json,md}.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from ase.io import read

from ffkit.errors import FFKitError
from ffkit.solvation import order_waters, solvate
from ffkit_lammps_adapter.md import run as run_lammps
from ffkit_lammps_adapter.mlmm import pair_coeff_lines, type_elements, write_mlmm_data

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DATA = REPO / "data"
DT_FS = 0.5


def write_system(out: Path):
    """system.data and both pair-coefficient files; returns (atoms, ML atoms)."""
    solute = read(DATA / "rmd17_ethanol" / "test_MD.xyz", index=0)
    water = order_waters(read(DATA / "water_deepmd" / "water.extxyz", index=0)).repeat((2, 2, 2))
    system, _ = solvate(solute, water)
    write_mlmm_data(out / "system.data", system, solute)
    (out / "pair_coeffs_hybrid.lmp").write_text(pair_coeff_lines("lj/cut/coul/long"))
    (out / "pair_coeffs_mm.lmp").write_text(pair_coeff_lines(None))
    return len(system), len(solute)


def thermo_table(log: Path):
    """The last thermo block of a LAMMPS log as {column: array}."""
    lines = log.read_text().splitlines()
    start = max(k for k, line in enumerate(lines) if line.split()[:2] == ["Step", "Time"])
    rows = []
    for line in lines[start + 1:]:
        try:
            rows.append([float(v) for v in line.split()])
        except ValueError:
            break
    return dict(zip(lines[start].split(), np.array(rows).T))


def md(out: Path, name: str, mode: str, ensemble: str, model: Path, steps: int, equilibrate: int) -> dict:
    work = out / name
    work.mkdir(parents=True, exist_ok=True)
    for shared in ("system.data", "pair_coeffs_hybrid.lmp", "pair_coeffs_mm.lmp"):
        target = work / shared
        if not target.exists():
            target.symlink_to(out / shared)
    header = "".join(f'variable {key} string "{value}"\n' for key, value in
                     (("mode", mode), ("ensemble", ensemble), ("model", model), ("steps", steps),
                      ("equilibrate", equilibrate)))
    perf = run_lammps(work, header + (HERE / "in.mlmm.lmp").read_text())
    thermo = thermo_table(work / "log.lammps")
    half = len(thermo["Step"]) // 2
    ps = thermo["Time"] / 1000.0
    drift = np.polyfit(ps, thermo["Econserve"], 1)[0]  # econserve holds the thermostat's and barostat's energy
    return {"ns_per_day": perf["ns_per_day"], "ps": float(ps[-1]),
            "temperature_K_mean": float(thermo["Temp"][half:].mean()),
            "density_g_cm3_mean_second_half": float(thermo["Density"][half:].mean()),
            "density_g_cm3_std_second_half": float(thermo["Density"][half:].std()),
            "drift_kcal_mol_per_ps": float(drift), "directory": str(work)}


def validate(run_dir: Path) -> dict:
    """`ffkit validate` on a run: its exit code and verdict file."""
    report = run_dir / "validate_report"
    command = [sys.executable, "-m", "ffkit", "validate", str(run_dir / "system.data"), str(run_dir / "traj.dump"),
               "--log", str(run_dir / "log.lammps"), "--elements", *type_elements(), "--report", str(report)]
    done = subprocess.run(command, capture_output=True, text=True)
    print(done.stdout[-3000:], done.stderr[-2000:], sep="\n")
    return {"exit_code": done.returncode, "report": str(report)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(REPO / "benchmarks" / "models" / "rmd17_ethanol_fast.pt"),
                        help="a LAMMPS ffkit artifact for C, H, O (`ffkit compile RUN/best.pt --out model.pt`)")
    parser.add_argument("--ps", type=float, default=10.0, help="length of each run (measured)")
    parser.add_argument("--equilibrate-ps", type=float, default=2.0, help="before each run (not measured)")
    parser.add_argument("--out", default=str(HERE / "out"))
    parser.add_argument("--results", default=str(REPO / "benchmarks" / "results" / "lammps_mlmm_speed.json"))
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    model = Path(args.model).resolve()
    n_atoms, n_ml = write_system(out)
    steps = int(round(args.ps * 1000.0 / DT_FS))
    equilibrate = int(round(args.equilibrate_ps * 1000.0 / DT_FS))
    print(f"{n_atoms} atoms ({n_ml} ML), {args.equilibrate_ps:g} + {args.ps:g} ps each: ML/MM NVT, ML/MM NPT, "
          "all-MM NVT, all-MM NPT ...", flush=True)
    runs = {name: md(out, name, mode, ensemble, model, steps, equilibrate)
            for name, mode, ensemble in (("mlmm_nvt", "mlmm", "nvt"), ("mlmm_npt", "mlmm", "npt"),
                                         ("mm_nvt", "mm", "nvt"), ("mm_npt", "mm", "npt"))}
    runs["mlmm_nvt"]["validate"] = validate(Path(runs["mlmm_nvt"]["directory"]))
    result = {"atoms": n_atoms, "ml_atoms": n_ml, "model": model.name, "dt_fs": DT_FS, **runs,
              "cost_of_ml_region": runs["mm_nvt"]["ns_per_day"] / runs["mlmm_nvt"]["ns_per_day"],
              "load_average_1min": round(os.getloadavg()[0], 2),
              "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    write_speed(Path(args.results), result)
    print(json.dumps(result, indent=2))
    return 0 if runs["mlmm_nvt"]["validate"]["exit_code"] == 0 else 1


def write_speed(path: Path, result: dict) -> None:
    """benchmarks/results/lammps_mlmm_speed.{json,md}: ns/day of ML/MM next to all-MM, one run each."""
    path.parent.mkdir(parents=True, exist_ok=True)
    keep = {k: result[k] for k in ("atoms", "ml_atoms", "model", "dt_fs", "cost_of_ml_region", "load_average_1min",
                                   "measured")}
    keep.update({name: {k: result[name][k] for k in ("ns_per_day", "ps", "temperature_K_mean",
                                                     "density_g_cm3_mean_second_half", "drift_kcal_mol_per_ps")}
                 for name in ("mlmm_nvt", "mlmm_npt", "mm_nvt", "mm_npt")})
    path.write_text(json.dumps(keep, indent=1) + "\n")
    rows = [("ML/MM NVT (`pair_style hybridff`)", keep["mlmm_nvt"]), ("ML/MM NPT (`pair_style hybridff`)",
                                                                       keep["mlmm_npt"]),
            ("all-MM NVT (OPLS-AA ethanol)", keep["mm_nvt"]), ("all-MM NPT (OPLS-AA ethanol)", keep["mm_npt"])]
    lines = ["# ML/MM ethanol in SPC/E water in LAMMPS, next to all-MM",
             "",
             "Written by `examples/lammps_mlmm_ethanol/run.py`; do not edit by hand. "
             f"{keep['atoms']} atoms ({keep['ml_atoms']} ML: {keep['model']}), PPPM 1e-5 with 10 Å cut-offs, "
             f"SHAKE water, dt {keep['dt_fs']:g} fs, 1 MPI rank, 1 thread, one run after the other "
             f"(load average {keep['load_average_1min']} at the end, {keep['measured']}).",
             "",
             "| run | ns/day | ps | T (K), 2nd half | density (g/cm³), 2nd half | drift of econserve (kcal/mol/ps) |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for label, r in rows:
        lines.append(f"| {label} | {r['ns_per_day']:.2f} | {r['ps']:g} | {r['temperature_K_mean']:.1f} | "
                     f"{r['density_g_cm3_mean_second_half']:.4f} | {r['drift_kcal_mol_per_ps']:+.4f} |")
    lines += ["", f"The 9 ML atoms cost {keep['cost_of_ml_region']:.2f}× the all-MM run's time per step."]
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (FFKitError, RuntimeError) as exc:
        sys.exit(f"lammps_mlmm_ethanol: error: {exc}")
