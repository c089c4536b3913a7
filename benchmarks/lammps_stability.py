"""Stability of trained models in LAMMPS: thermostatted runs at 300 K and NVE energy drift.

    python benchmarks/lammps_stability.py [--cases NAME ...] [--ps-scale 1.0]

Each case runs the real `lmp` with `pair_style ffkit` and a committed artifact from
benchmarks/models/ (made by benchmarks/accuracy.py), then `ffkit validate` on the trajectory
(collapse, broken or formed bonds, jumps, temperature or drift). Writes
benchmarks/results/lammps_stability.{json,md} (records of cases not rerun are kept): simulated
ps, wall time, ns/day, the verdict and the numbers behind it. A case that crashes or fails a check is recorded as such, not hidden.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ffkit.artifact import read_metadata  # noqa: E402
from ffkit.validate.run import run_validation  # noqa: E402
from ffkit_lammps_adapter.md import md_script, run, write_atomic_data  # noqa: E402

DATA = ROOT / "data"
MODELS = ROOT / "benchmarks" / "models"

# name -> (model, system, ensemble, ps, timestep fs)
CASES = {
    "ethanol_accurate_nvt": ("rmd17_ethanol_accurate.pt", "ethanol", "nvt", 20.0, 0.5),
    "ethanol_accurate_x2_nvt": ("rmd17_ethanol_accurate_x2.pt", "ethanol", "nvt", 20.0, 0.5),
    "ethanol_fast_nve": ("rmd17_ethanol_fast.pt", "ethanol", "nve", 10.0, 0.5),
    "water_fast_nve": ("water_deepmd_fast.pt", "water", "nve", 5.0, 0.5),
    "water_accurate_nvt": ("water_deepmd_accurate.pt", "water", "nvt", 20.0, 0.5),
}


def system(name: str) -> Atoms:
    if name == "ethanol":
        frame = read(DATA / "rmd17_ethanol" / "test_MD.xyz", index=0)
        atoms = Atoms(numbers=frame.numbers, positions=frame.positions, cell=[30.0] * 3, pbc=True)
        atoms.center()
        return atoms
    atoms = read(DATA / "water_deepmd" / "water.extxyz", index=0)
    atoms.wrap()
    return atoms


def run_case(name: str, work: Path, ps_scale: float) -> dict:
    model_name, system_name, ensemble, ps, dt = CASES[name]
    model = MODELS / model_name
    elements = read_metadata(model)["species_symbols"]
    atoms = system(system_name)
    steps = int(round(ps * ps_scale * 1000.0 / dt))
    workdir = work / name
    workdir.mkdir(parents=True)
    write_atomic_data(atoms, workdir / "data.lmp", elements)
    record = {"case": name, "model": f"benchmarks/models/{model_name}", "atoms": len(atoms), "ensemble": ensemble,
              "timestep_fs": dt, "steps": steps, "ps": steps * dt / 1000.0}
    started = time.perf_counter()
    try:
        timing = run(workdir, md_script(model.resolve(), elements, steps, dt, 300.0, dump_every=100,
                                        thermo_every=100, thermostat=ensemble == "nvt"))
    except RuntimeError as exc:
        return {**record, "completed": False, "verdict": "lmp stopped", "error": str(exc)[:400],
                "wall_seconds": round(time.perf_counter() - started, 1)}
    record.update(completed=True, wall_seconds=round(time.perf_counter() - started, 1),
                  ns_per_day=timing["ns_per_day"], us_per_atom_step=timing["us_per_atom_step"])
    options = {}
    if ensemble == "nvt":  # a thermostat does not conserve E_total: check the temperature instead
        (workdir / "checks.yaml").write_text("energy:\n  max_drift_meV_per_atom_ps: null\n")
        options = {"target_temperature": 300.0, "config": workdir / "checks.yaml"}
    report = run_validation(workdir / "data.lmp", workdir / "traj.dump", log=workdir / "log.lammps",
                            report_dir=workdir / "report", **options)
    record["verdict"] = "all checks passed" if report["passed"] else "checks failed"
    record["checks"] = {c["name"]: {"passed": c["passed"], "value": c.get("value"), "limit": c.get("limit"),
                                    "unit": c.get("unit")} for c in report.get("checks", [])}
    return record


def markdown(records) -> str:
    lines = ["# Stability in LAMMPS (`pair_style ffkit`, trained artifacts from benchmarks/models)", "",
             "300 K start; nvt = Nose-Hoover 300 K; checks by `ffkit validate` (collapse, bonds, jumps, "
             "temperature for nvt, |energy drift| ≤ 1 meV/atom/ps for nve).", "",
             "| case | atoms | ensemble | ps | ns/day | verdict | \\|drift\\| (meV/atom/ps) | \\|T − 300\\| (K) |",
             "| --- | ---: | --- | ---: | ---: | --- | ---: | ---: |"]
    for r in records:
        checks = r.get("checks", {})
        drift = (checks.get("energy.drift") or {}).get("value") if r["ensemble"] == "nve" else None
        temp = (checks.get("energy.temperature") or {}).get("value")
        lines.append(f"| {r['case']} | {r['atoms']} | {r['ensemble']} | {r['ps']:.1f} | "
                     f"{fmt(r.get('ns_per_day'))} | {r['verdict']} | {fmt(drift)} | {fmt(temp)} |")
    return "\n".join(lines) + "\n"


def fmt(value) -> str:
    return "–" if value is None else f"{value:.3g}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    ap.add_argument("--ps-scale", type=float, default=1.0, help="multiply every run length (quick checks)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases:
            print(f"lammps_stability: {name} ...", flush=True)
            records.append(run_case(name, Path(tmp), args.ps_scale))
            print(markdown(records[-1:]).splitlines()[-1], flush=True)
    path = out / "lammps_stability.json"
    kept = [r for r in (json.loads(path.read_text()) if path.is_file() else []) if r["case"] not in args.cases]
    merged = sorted(kept + records, key=lambda r: list(CASES).index(r["case"]))
    path.write_text(json.dumps(merged, indent=1, default=float) + "\n")
    (out / "lammps_stability.md").write_text(markdown(merged))
    print(markdown(merged))
    return 0 if all(r["verdict"] == "all checks passed" for r in records) else 1


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
