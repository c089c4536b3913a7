"""Does the committee's force spread flag real errors? Measured on rMD17 ethanol and in LAMMPS.

    python benchmarks/committee_uncertainty.py [--minutes 4] [--heads 3] [--out benchmarks/results]

Members: the committed `fast` ethanol artifact (benchmarks/models/rmd17_ethanol_fast.pt, seed 0)
and two more `fast` models trained with seeds 1 and 2 (in parallel, --minutes each), compiled
into one committee artifact. With `--heads N` instead: one `fast` model with N heads (`heads: N`
on its 3-body term: N networks on one descriptor, the committee LAMMPS runs at about one model's
cost), trained with `fast`'s budget times N minutes (each step trains every head), compiled
into a committee of its heads; results in committee_heads.*. Then:
- on all 1000 test_MD frames (ASE calculator): each frame's largest per-atom force spread against
  its largest force error of the committee mean, their rank correlation, and the mean's force MAE;
- in LAMMPS (`pair_style ffkit`, `compute pair ffkit`): one ethanol molecule at 300, 1000 and
  2000 K (Nose-Hoover, 2 ps each): the max spread per thermo row, which should grow as the
  molecule leaves the training distribution (rMD17 was sampled at 500 K).
Writes committee.json, committee.md and committee.png (spread vs error) under --out.
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ffkit.artifact import read_metadata  # noqa: E402
from ffkit.bench import train_parallel, training_budget  # noqa: E402
from ffkit.calculator import FFKitCalculator  # noqa: E402
from ffkit.committee import compile_committee  # noqa: E402
from ffkit.config import TrainConfig  # noqa: E402
from ffkit.validate.energy import read_lammps_log  # noqa: E402
from ffkit_lammps_adapter.md import md_script, run, write_atomic_data  # noqa: E402

DATA = ROOT / "data" / "rmd17_ethanol"
TEMPERATURES = (300.0, 1000.0, 2000.0)


def train_members(work: Path, minutes: float, seeds=(1, 2)) -> list:
    budget = {**training_budget("fast", periodic=False), "max_minutes": minutes}
    cfgs = [TrainConfig(data=str(DATA / "train.xyz"), out=str(work / f"seed{seed}"), tier="fast", seed=seed,
                        progress=False, threads=1, **budget) for seed in seeds]
    print(f"training fast seeds {', '.join(map(str, seeds))} at once, {minutes:g} min each", flush=True)
    train_parallel(cfgs)
    return [Path(cfg.out) / "best.pt" for cfg in cfgs]


def train_heads(work: Path, heads: int) -> tuple:
    """One `fast` model with `heads` heads; its best checkpoint and the minutes it was given."""
    from ffkit.training import train

    budget = training_budget("fast", periodic=False)
    budget["max_minutes"] *= heads
    cfg = TrainConfig(data=str(DATA / "train.xyz"), out=str(work / "heads"), tier="fast", progress=False, threads=1,
                      terms={"three_body": {"heads": heads}}, **budget)
    print(f"training one fast model with {heads} heads, at most {budget['max_minutes']:g} min", flush=True)
    summary = train(cfg)
    return Path(cfg.out) / "best.pt", budget["max_minutes"], summary["epochs"]


def test_frames_study(committee: Path) -> dict:
    from ase.io import read

    calc = FFKitCalculator(committee)
    spreads, errors, abs_errors = [], [], []
    for atoms in read(DATA / "test_MD.xyz", index=":"):
        reference = atoms.get_forces()
        atoms.calc = calc
        forces = atoms.get_forces()
        spreads.append(calc.results["max_force_std"])
        errors.append(float(np.abs(forces - reference).max()))
        abs_errors.append(float(np.abs(forces - reference).mean()))
    spreads, errors = np.array(spreads), np.array(errors)
    ranks = [np.argsort(np.argsort(a)) for a in (spreads, errors)]
    return {"frames": len(spreads), "spearman": float(np.corrcoef(*ranks)[0, 1]),
            "spread_eV_A": spreads.tolist(), "max_error_eV_A": errors.tolist(),
            "committee_f_mae_meV_A": 1e3 * float(np.mean(abs_errors))}


def lammps_study(committee: Path, work: Path) -> list:
    from ase import Atoms
    from ase.io import read

    frame = read(DATA / "test_MD.xyz", index=0)
    atoms = Atoms(numbers=frame.numbers, positions=frame.positions, cell=[30.0] * 3, pbc=True)
    atoms.center()
    elements = read_metadata(committee)["species_symbols"]
    rows = []
    for temperature in TEMPERATURES:
        workdir = work / f"md_{temperature:.0f}K"
        workdir.mkdir()
        write_atomic_data(atoms, workdir / "data.lmp", elements)
        script = md_script(committee.resolve(), elements, 4000, 0.5, temperature, dump_every=100, thermo_every=20,
                           thermostat=True)
        script = script.replace("thermo_style custom step time temp pe ke etotal press",
                                "compute dev all pair ffkit\nthermo_style custom step time temp pe c_dev[1] c_dev[2]")
        run(workdir, script)
        spread = read_lammps_log(workdir / "log.lammps").runs[-1]["c_dev[1]"]
        rows.append({"temperature_K": temperature, "ps": 2.0, "mean_max_spread_eV_A": float(np.mean(spread)),
                     "p95_max_spread_eV_A": float(np.percentile(spread, 95)),
                     "max_spread_eV_A": float(np.max(spread))})
        print(f"LAMMPS {temperature:.0f} K: mean max spread {rows[-1]['mean_max_spread_eV_A']:.3f} eV/Å", flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=4.0, help="training budget of each new member")
    ap.add_argument("--heads", type=int, default=0, metavar="N",
                    help="study the N heads of one fast model instead of 3 independent members")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.heads:
            checkpoint, minutes, epochs = train_heads(work, args.heads)
            members = [checkpoint]
            described = [f"the {args.heads} heads of one fast model ({epochs} epochs, {minutes:g} min at most)"]
            title, name = f"{args.heads} heads of one `fast` ethanol model (descriptors shared)", "committee_heads"
        else:
            members = [ROOT / "benchmarks" / "models" / "rmd17_ethanol_fast.pt"] + train_members(work, args.minutes)
            described = ["benchmarks/models/rmd17_ethanol_fast.pt (seed 0)", f"fast, seed 1, {args.minutes:g} min",
                         f"fast, seed 2, {args.minutes:g} min"]
            title, name = "3 `fast` ethanol models", "committee"
        committee = work / "committee.pt"
        compile_committee([str(m) for m in members], committee, dtype="float32")
        study = test_frames_study(committee)
        md = lammps_study(committee, work)
    result = {"title": title, "members": described, "test_MD": study, "lammps": md}
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    plot(study, out / f"{name}.png")
    (out / f"{name}.md").write_text(markdown(result, f"{name}.png"))
    print(markdown(result, f"{name}.png"))
    return 0


def plot(study: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.2))
    ax.scatter(study["spread_eV_A"], study["max_error_eV_A"], s=6, alpha=0.5)
    ax.set_xlabel("largest per-atom force spread of the committee (eV/Å)")
    ax.set_ylabel("largest force error of the mean (eV/Å)")
    ax.set_title(f"rMD17 ethanol, {study['frames']} test frames: Spearman {study['spearman']:.2f}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(result: dict, png: str) -> str:
    s = result["test_MD"]
    lines = [f"# Committee of {result['title']}: does the force spread flag errors?", "",
             "Members: " + "; ".join(result["members"]) + ".", "",
             f"On {s['frames']} test_MD frames: rank correlation (Spearman) between a frame's largest per-atom "
             f"force spread and its largest force error: **{s['spearman']:.2f}**; committee-mean force MAE "
             f"{s['committee_f_mae_meV_A']:.1f} meV/Å. Scatter: {png}.", "",
             "In LAMMPS (one molecule, Nose-Hoover, 2 ps each; `compute pair ffkit`, c_ID[1] every 20 steps):", "",
             "| T (K) | mean of max spread (eV/Å) | 95th percentile | max |", "| ---: | ---: | ---: | ---: |"]
    for row in result["lammps"]:
        lines.append(f"| {row['temperature_K']:.0f} | {row['mean_max_spread_eV_A']:.3f} | "
                     f"{row['p95_max_spread_eV_A']:.3f} | {row['max_spread_eV_A']:.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
