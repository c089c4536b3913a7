"""Speed of `pair_style ffkit` in LAMMPS against the SPC/E anchor and the bare TorchScript call.

    python benchmarks/lammps_speed.py [--tiers mm fast balanced accurate] [--dtypes float32 float64]
                                      [--replicate 3] [--big-replicate 5] [--repeats 3] [--out benchmarks/results]

Water box: the first frame of ../shared/data/water_deepmd replicated (3x3x3 = 5184 atoms). Cases,
interleaved within each repeat (medians reported, so machine load hits every case alike):
- `ffkit <tier> <dtype>`: NVE MD with the venv's `lmp`, 0.5 fs, 1 rank (µs/atom/step from the
  loop time of the measured run, after a warm-up run);
- `bare <tier> <dtype>`: the same artifact called from Python on the same frame (ghost layout from
  ffkit.neighbors), forward + backward, 1 thread: plugin overhead = ffkit / bare;
- `ffkit null`: an artifact that returns zeros at once (4 Å cutoff): the plugin's own cost
  (neighbour list -> graph, tensors, force scatter) per atom-step;
- `mm-anchor`: SPC/E, lj/cut/coul/long 10 Å + PPPM 1e-4, SHAKE, 2 fs, 1 and 2 ranks;
- `ffkit <fastest tier>` on the big box (5x5x5 = 24000 atoms), 1 and 2 ranks: MPI speed-up.
Models are untrained tiers from ffkit.model.tiers (speed does not depend on the weights).
Writes lammps_speed.json (records: case, ranks, atoms, us_per_atom_step, ns_per_day, ratio_to_mm,
plus timestep_fs, steps, cpu_percent) and lammps_speed.md.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ase.io  # noqa: E402
import torch  # noqa: E402

from ffkit.artifact import compile_model  # noqa: E402
from ffkit.model.tiers import TIERS, build_model  # noqa: E402
from ffkit.neighbors import ghost_layout  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
VENV_BIN = Path(sys.executable).parent
TARGET_SECONDS = 4.0  # measured run length per case and repeat


class NullArtifact(torch.nn.Module):
    """Zero energy and forces with no work: what remains of a step is the plugin's own cost."""

    def __init__(self, cutoff: float):
        super().__init__()
        self.ffkit_format_version: int = 1
        self.cutoff: float = cutoff
        self.species: List[int] = [1, 8]
        self.dtype_name: str = "float32"
        self.energy_unit: str = "eV"
        self.length_unit: str = "angstrom"

    def forward(self, positions: torch.Tensor, species: torch.Tensor, edge_index: torch.Tensor, n_local: int,
                compute_virial: bool) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (torch.zeros(n_local, dtype=positions.dtype), torch.zeros_like(positions),
                torch.zeros(0, 6, dtype=positions.dtype))


def write_null_artifact(path: Path, cutoff: float = 4.0) -> Path:
    meta = {"format": "ffkit-artifact", "format_version": 1, "engine": "lammps", "species": [1, 8],
            "species_symbols": ["H", "O"], "cutoff": cutoff, "dtype": "float32", "tier": "null",
            "units": {"energy": "eV", "length": "angstrom", "force": "eV/angstrom"}}
    torch.jit.script(NullArtifact(cutoff)).save(str(path), _extra_files={"metadata.json": json.dumps(meta)})
    return path


def water_box(replicate: int):
    atoms = ase.io.read(SHARED / "water_deepmd" / "water.extxyz", index=0)
    atoms.wrap()
    return atoms.repeat((replicate,) * 3)


def write_spce_data(atoms, path: Path) -> None:
    """atom_style full data file: each O with its two nearest H (minimum image) as one SPC/E molecule."""
    o_index = np.where(atoms.numbers == 8)[0]
    h_index = np.where(atoms.numbers == 1)[0]
    cell = atoms.cell.lengths()
    delta = atoms.positions[h_index][None, :, :] - atoms.positions[o_index][:, None, :]
    delta -= cell * np.round(delta / cell)
    dist = np.linalg.norm(delta, axis=2)
    owner = np.argmin(dist, axis=0)  # each H to its nearest O
    counts = np.bincount(owner, minlength=len(o_index))
    if not (counts == 2).all():
        raise SystemExit(f"water frame: {np.sum(counts != 2)} oxygens do not own exactly two hydrogens")
    lines, bonds, angles, atom_id = [], [], [], 0
    for mol, o in enumerate(o_index):
        hs = h_index[owner == mol]
        ids = []
        for k, (a, typ, q) in enumerate([(o, 1, -0.8476), (hs[0], 2, 0.4238), (hs[1], 2, 0.4238)]):
            atom_id += 1
            ids.append(atom_id)
            x, y, z = atoms.positions[a] if k == 0 else atoms.positions[o] + delta[mol, np.where(h_index == a)[0][0]]
            lines.append(f"{atom_id} {mol + 1} {typ} {q} {x:.10f} {y:.10f} {z:.10f}")
        bonds += [(ids[0], ids[1]), (ids[0], ids[2])]
        angles.append((ids[1], ids[0], ids[2]))
    text = [f"SPC/E water from water_deepmd frame 0\n\n{atom_id} atoms\n{len(bonds)} bonds\n{len(angles)} angles\n",
            "2 atom types\n1 bond types\n1 angle types\n",
            f"0 {cell[0]} xlo xhi\n0 {cell[1]} ylo yhi\n0 {cell[2]} zlo zhi\n",
            "Masses\n\n1 15.9994\n2 1.008\n", "Atoms # full\n\n" + "\n".join(lines) + "\n",
            "Bonds\n\n" + "\n".join(f"{k + 1} 1 {a} {b}" for k, (a, b) in enumerate(bonds)) + "\n",
            "Angles\n\n" + "\n".join(f"{k + 1} 1 {a} {b} {c}" for k, (a, b, c) in enumerate(angles)) + "\n"]
    path.write_text("\n".join(text))


MM_INPUT = """units real
atom_style full
read_data {data}
pair_style lj/cut/coul/long 10.0
pair_coeff 1 1 0.15535 3.166
pair_coeff * 2 0.0 1.0
bond_style harmonic
bond_coeff 1 1000.0 1.0
angle_style harmonic
angle_coeff 1 100.0 109.47
kspace_style pppm 1.0e-4
neighbor 2.0 bin
neigh_modify every 1 delay 0 check yes
velocity all create 300 4928459 loop geom
fix shake all shake 1e-4 20 0 b 1 a 1
fix nve all nve
timestep 2.0
thermo 1000
timer full
run {warmup}
run {steps}
"""

ML_INPUT = """units metal
atom_style atomic
read_data {data}
pair_style ffkit
pair_coeff * * {model} O H
neighbor 1.0 bin
velocity all create 300 4928459 loop geom
fix nve all nve
timestep 0.0005
thermo 1000
timer full
run {warmup}
run {steps}
"""


def run_lammps(workdir: Path, script: str, ranks: int) -> dict:
    (workdir / "in.lmp").write_text(script)
    command = [str(VENV_BIN / "lmp"), "-in", "in.lmp", "-log", "none", "-nocite"]
    if ranks > 1:
        command = [str(VENV_BIN / "mpirun"), "-np", str(ranks)] + command
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"lmp failed in {workdir}:\n{out.stdout[-3000:]}\n{out.stderr[-2000:]}")
    loop, steps, atoms = re.findall(r"Loop time of ([\d.e+-]+) on \d+ procs for (\d+) steps with (\d+) atoms",
                                    out.stdout)[-1]
    cpu = re.findall(r"^Pair\s*\|(?:[^|]*\|){4}\s*([\d.]+)\s*\|", out.stdout, flags=re.M)
    return {"seconds": float(loop), "steps": int(steps), "atoms": int(atoms),
            "cpu_percent": float(cpu[-1]) if cpu else None}


def bare_call(model_path: Path, atoms, repeats: int = 3) -> float:
    """Median wall seconds of one forward+backward of the artifact on `atoms` (1 thread), after warm-up."""
    files = {"metadata.json": ""}
    module = torch.jit.load(str(model_path), _extra_files=files)
    meta = json.loads(files["metadata.json"])
    layout = ghost_layout(atoms.positions, np.asarray(atoms.cell), np.asarray(atoms.pbc), meta["cutoff"])
    lookup = {z: k for k, z in enumerate(meta["species"])}
    species = torch.from_numpy(np.array([lookup[z] for z in atoms.numbers], dtype=np.int64)[layout.owner])
    positions = torch.from_numpy(layout.positions).to(getattr(torch, meta["dtype"]))
    edges = torch.from_numpy(np.ascontiguousarray(layout.edge_index))
    times = []
    for k in range(repeats + 2):
        start = time.perf_counter()
        module(positions, species, edges, layout.n_local, False)
        if k >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(case: dict, work: Path) -> dict:
    """One timing of one case; returns seconds per step and the atom count."""
    if case["kind"] == "bare":
        seconds = bare_call(case["model"], case["atoms"])
        return {"seconds_per_step": seconds, "atoms": len(case["atoms"]), "steps": 1, "cpu_percent": None}
    script = case["template"].format(data=case["data"], model=case.get("model", ""), warmup=case["warmup"],
                                     steps=case["steps"])
    result = run_lammps(work, script, case["ranks"])
    return {"seconds_per_step": result["seconds"] / result["steps"], "atoms": result["atoms"],
            "steps": result["steps"], "cpu_percent": result["cpu_percent"]}


def calibrate_steps(case: dict, work: Path) -> None:
    """Pick a step count giving ~TARGET_SECONDS per measured run (bare calls need none)."""
    if case["kind"] == "bare":
        return
    probe = dict(case, warmup=1, steps=1)
    per_step = measure(probe, work)["seconds_per_step"]
    case["steps"] = int(min(max(3, TARGET_SECONDS / per_step), 2000))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiers", nargs="+", default=list(TIERS))
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--replicate", type=int, default=3)
    parser.add_argument("--big-replicate", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    work = Path(tempfile.mkdtemp(prefix="ffkit_lammps_speed_"))
    box = water_box(args.replicate)
    ase.io.write(work / "water.data", box, format="lammps-data", specorder=["O", "H"], units="metal", masses=True)
    write_spce_data(box, work / "spce.data")

    cases = []
    for ranks in (1, 2):
        cases.append({"name": "mm-anchor", "kind": "lammps", "ranks": ranks, "template": MM_INPUT,
                      "data": work / "spce.data", "warmup": 10, "steps": 0, "timestep_fs": 2.0})
    cases.append({"name": "ffkit null (plugin overhead, 4 A)", "kind": "lammps", "ranks": 1, "template": ML_INPUT,
                  "data": work / "water.data", "model": write_null_artifact(work / "null.pt"), "warmup": 2,
                  "steps": 0, "timestep_fs": 0.5})
    for tier in args.tiers:
        for dtype in args.dtypes:
            model = work / f"{tier}_{dtype}.pt"
            compile_model(build_model(tier, [1, 8]), model, dtype=dtype)
            cases.append({"name": f"ffkit {tier} {dtype}", "kind": "lammps", "ranks": 1, "template": ML_INPUT,
                          "data": work / "water.data", "model": model, "warmup": 2, "steps": 0,
                          "timestep_fs": 0.5, "tier": tier, "dtype": dtype})
            cases.append({"name": f"bare {tier} {dtype}", "kind": "bare", "ranks": 1, "model": model, "atoms": box,
                          "timestep_fs": 0.5, "tier": tier, "dtype": dtype})

    for case in cases:
        calibrate_steps(case, work)
    timings = {id(c): [] for c in cases}
    for repeat in range(args.repeats):
        for case in cases:
            timings[id(case)].append(measure(case, work))
            print(f"repeat {repeat}: {case['name']} ({case['ranks']} rank) "
                  f"{timings[id(case)][-1]['seconds_per_step'] * 1e3:.2f} ms/step", flush=True)

    # MPI speed-up of the fastest ML case on the big box, measured after the main table
    records = [summarise(case, timings[id(case)]) for case in cases]
    ml = [r for r in records if r["case"].startswith("ffkit ") and "tier" in r]
    fastest = min(ml, key=lambda r: r["us_per_atom_step"])
    big = water_box(args.big_replicate)
    ase.io.write(work / "big.data", big, format="lammps-data", specorder=["O", "H"], units="metal", masses=True)
    model = work / f"{fastest['tier']}_{fastest['dtype']}.pt"
    big_cases = [{"name": f"{fastest['case']} big box", "kind": "lammps", "ranks": ranks, "template": ML_INPUT,
                  "data": work / "big.data", "model": model, "warmup": 2, "steps": 0, "timestep_fs": 0.5,
                  "tier": fastest["tier"], "dtype": fastest["dtype"]} for ranks in (1, 2)]
    for case in big_cases:
        calibrate_steps(case, work)
    big_timings = {id(c): [] for c in big_cases}
    for repeat in range(args.repeats):
        for case in big_cases:
            big_timings[id(case)].append(measure(case, work))
    records += [summarise(case, big_timings[id(case)]) for case in big_cases]

    anchor = next(r for r in records if r["case"] == "mm-anchor" and r["ranks"] == 1)["us_per_atom_step"]
    for r in records:
        r["ratio_to_mm"] = r["us_per_atom_step"] / anchor
    for r in records:
        if r["case"].startswith("ffkit ") and "tier" in r and "big box" not in r["case"]:
            bare = next(b for b in records if b["case"] == "bare" + r["case"][len("ffkit"):])
            r["overhead_vs_bare"] = r["us_per_atom_step"] / bare["us_per_atom_step"]
    big_1, big_2 = (next(r for r in records if "big box" in r["case"] and r["ranks"] == n) for n in (1, 2))
    big_2["speedup_vs_1_rank"] = big_1["us_per_atom_step"] / big_2["us_per_atom_step"]

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lammps_speed.json").write_text(json.dumps(records, indent=1) + "\n")
    (args.out / "lammps_speed.md").write_text(markdown(records, args))
    print(markdown(records, args))


def summarise(case: dict, timings) -> dict:
    seconds = statistics.median(t["seconds_per_step"] for t in timings)
    atoms = timings[0]["atoms"]
    cpu = [t["cpu_percent"] for t in timings if t["cpu_percent"] is not None]
    record = {"case": case["name"], "ranks": case["ranks"], "atoms": atoms,
              "us_per_atom_step": seconds / atoms * 1e6,
              "ns_per_day": case["timestep_fs"] * 1e-6 * 86400.0 / seconds if case["kind"] != "bare" else None,
              "timestep_fs": case["timestep_fs"], "steps": timings[0]["steps"], "repeats": len(timings),
              "cpu_percent": statistics.median(cpu) if cpu else None}
    for key in ("tier", "dtype"):
        if key in case:
            record[key] = case[key]
    return record


def markdown(records, args) -> str:
    lines = [f"# LAMMPS speed (`pair_style ffkit`), water box, median of {args.repeats} interleaved repeats",
             "",
             "Wall time of the whole MD step (µs per atom per step); `bare` = the artifact's forward+backward "
             "called from Python on the same frame. ML steps 0.5 fs, SPC/E 2 fs with SHAKE. "
             "Untrained tiers (speed does not depend on weights). `cpu %` = LAMMPS `timer full` CPU share "
             "of the Pair section (< 100 means other processes competed for the 2 cores).",
             "",
             "| case | ranks | atoms | µs/atom/step | ns/day | × MM anchor | × bare | cpu % |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in records:
        ns = f"{r['ns_per_day']:.3g}" if r["ns_per_day"] else "–"
        over = f"{r['overhead_vs_bare']:.2f}" if "overhead_vs_bare" in r else "–"
        cpu = f"{r['cpu_percent']:.0f}" if r["cpu_percent"] else "–"
        name = r["case"] + (f" (speed-up {r['speedup_vs_1_rank']:.2f}×)" if "speedup_vs_1_rank" in r else "")
        lines.append(f"| {name} | {r['ranks']} | {r['atoms']} | {r['us_per_atom_step']:.3g} | {ns} | "
                     f"{r['ratio_to_mm']:.3g} | {over} | {cpu} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
