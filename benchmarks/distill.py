"""What distillation buys: a cheap student taught by an accurate teacher, against the same tier
trained on the QM frames alone, both tested against QM.

    python benchmarks/distill.py [--datasets rmd17_ethanol water_deepmd] [--tier fast]
                                 [--teacher accurate] [--sampler MODEL] [--frames 5000] [--baseline]
                                 [--seed 0] [--max-spread EV_PER_A] [--out benchmarks/results]

Teacher: a committed artifact of the data set (benchmarks/models, trained by benchmarks/accuracy.py):
`accurate` by default, or e.g. `--teacher accurate_x2` (the ×2 committee, which can teach an
`accurate` student: `--tier accurate`). Names joined by `+` (`--teacher accurate_x2+equivariant`)
make a committee of those artifacts, each weighing as one model; LAMMPS does not run a committee with a
message-passing member, so such a teacher labels the MD of `--sampler` (a committed artifact).
Student: `ffkit distill` with its defaults (NVT MD at 300, 600 and 900 K, --frames teacher MD
frames, 500 rattled/strained frames, QM weight 3) and the tier's default
number of optimiser steps. Data and test frames as benchmarks/accuracy.py: rMD17 ethanol train.xyz
(50 validation frames held out), tested on all of test_MD.xyz; water: the seeded 90/10 split.

Recorded per data set and frame count: the student's test errors against QM; its force error
against the teacher on 200 frames of a separate 300 K teacher (or sampler) trajectory; its stability in
LAMMPS (NVT 100 ps at 300 K, 20 ps at 600 K, judged by `ffkit validate`); with --baseline, the
same for the tier trained on the QM frames alone for the same optimiser steps, in the same run. Results
merge into distill.json and distill.md (records not rerun are kept); runs stay in
benchmarks/.distill/ (resumable: rerunning continues them).
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accuracy import datasets  # noqa: E402  (the split benchmarks/accuracy.py trains the teachers on)
from ffkit.artifact import compile_model  # noqa: E402
from ffkit.checkpoints import load_checkpoint  # noqa: E402
from ffkit.config import TrainConfig  # noqa: E402
from ffkit.committee import compile_committee  # noqa: E402
from ffkit.datasets import read_frames  # noqa: E402
from ffkit.distill import DistillPlan, distill, label, teacher_md  # noqa: E402
from ffkit.evaluation import evaluate_model  # noqa: E402
from ffkit.training import train  # noqa: E402

WORK = ROOT / "benchmarks" / ".distill"


def error_against_teacher(student: Path, teacher: Path, start, work: Path, sampler=None, frames: int = 200) -> float:
    """Force MAE (meV/Å) of the student against the teacher on a 300 K teacher (or sampler) trajectory it never
    saw."""
    from ffkit.artifact import read_metadata

    done = work / "samples.npz"
    if not done.is_file():
        meta = read_metadata(teacher)
        s = teacher_md(teacher, start, work, meta["species_symbols"], sampler=sampler, committee="committee" in meta,
                       temperature=300.0, steps=frames * 20, every=20, seed=777)
        np.savez(done, positions=s["positions"], forces=s["forces"])
    samples = np.load(done)
    predicted = label(student, samples["positions"], start)["forces"]
    return 1000.0 * float(np.mean(np.abs(predicted - samples["forces"])))


def stability(artifact: Path, start, work: Path) -> dict:
    """`ffkit validate` verdicts of NVT runs in LAMMPS: 100 ps at 300 K and 20 ps at 600 K (0.5 fs steps;
    a molecule sits in a 30 Å box). Temperature checked, not energy drift (a thermostat does not conserve it)."""
    from ffkit.artifact import read_metadata
    from ffkit.validate.run import run_validation
    from ffkit_lammps_adapter.md import md_script, run, write_atomic_data

    atoms = start.to_atoms()
    if not atoms.pbc.any():
        atoms.set_cell([30.0] * 3)
        atoms.center()
        atoms.pbc = True
    elements = read_metadata(artifact)["species_symbols"]
    verdicts = {}
    for temperature, ps in ((300.0, 100.0), (600.0, 20.0)):
        case = work / f"nvt_{temperature:g}K"
        report = case / "report" / "report.json"
        if not report.is_file():
            case.mkdir(parents=True, exist_ok=True)
            write_atomic_data(atoms, case / "data.lmp", elements)
            steps = int(ps * 2000)
            try:
                run(case, md_script(artifact.resolve(), elements, steps, 0.5, temperature, dump_every=200,
                                    thermo_every=200, thermostat=True))
            except RuntimeError as exc:
                verdicts[f"{temperature:g} K, {ps:g} ps"] = f"lmp stopped: {str(exc)[:200]}"
                continue
            (case / "checks.yaml").write_text("energy:\n  max_drift_meV_per_atom_ps: null\n")
            run_validation(case / "data.lmp", case / "traj.dump", log=case / "log.lammps",
                           report_dir=case / "report", config=case / "checks.yaml", target_temperature=temperature)
        result = json.loads(report.read_text())
        verdicts[f"{temperature:g} K, {ps:g} ps"] = "passed" if result["passed"] else \
            "failed: " + ", ".join(result["failed_checks"])
    return verdicts


def markdown(records) -> str:
    lines = ["| dataset | model | teacher MD frames | training frames | F MAE vs QM (meV/Å) | E MAE vs QM (meV) | "
             "F MAE vs teacher (meV/Å) | optimiser steps | NVT 300 K 100 ps / 600 K 20 ps |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in records:
        model = r["model"] if r["model"] != "QM only" else f"{r.get('tier', 'fast')}, QM only"
        vs_teacher = f"{r['f_mae_vs_teacher_meV_A']:.2f}" if r.get("f_mae_vs_teacher_meV_A") is not None else "–"
        lines.append(f"| {r['dataset']} | {model} | {r['teacher_md_frames']} | {r['training_frames']} | "
                     f"{r['f_mae_meV_A']:.2f} | {r['e_mae_meV']:.2f} | {vs_teacher} | {r['steps']} | "
                     f"{' / '.join((r.get('stability') or {}).values()) or '–'} |")
    return "\n".join(lines) + "\n"


def save(record, out: Path) -> None:
    path = out / "distill.json"
    records = json.loads(path.read_text()) if path.is_file() else []
    def key(r):
        return r["dataset"], r.get("tier", "fast"), r["model"], r["teacher_md_frames"]

    records = [r for r in records if key(r) != key(record)] + [record]
    records.sort(key=lambda r: (r["dataset"], r.get("tier", "fast") != "fast", r["model"] != "QM only",
                                r["model"], r["teacher_md_frames"]))
    path.write_text(json.dumps(records, indent=1) + "\n")
    (out / "distill.md").write_text(markdown(records))
    print(markdown([record]), flush=True)


def committed(dataset: str, names: str, work: Path) -> Path:
    """The committed artifact `names` of `dataset`, or for A+B the committee of those (built in `work` once)."""
    paths = [ROOT / "benchmarks" / "models" / f"{dataset}_{n}.pt" for n in names.split("+")]
    if len(paths) == 1:
        return paths[0]
    out = work / f"teacher_{names}.pt"
    if not out.is_file():
        compile_committee(paths, out, dtype="float32")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["rmd17_ethanol"], choices=["rmd17_ethanol", "water_deepmd"])
    ap.add_argument("--tier", default="fast")
    ap.add_argument("--teacher", default="accurate", help="committed artifact benchmarks/models/DATASET_TEACHER.pt; "
                    "A+B: the committee of two of them")
    ap.add_argument("--sampler", help="committed artifact whose MD draws the frames the teacher labels")
    ap.add_argument("--frames", nargs="+", type=int, default=[5000], help="teacher MD frames (one student each)")
    ap.add_argument("--baseline", action="store_true", help="also train the tier on the QM frames alone")
    ap.add_argument("--seed", type=int, default=0, help="the distillation's seed: validation split, MD starts "
                    "and velocities, perturbations and the student's initial weights")
    ap.add_argument("--max-spread", type=float, help="eV/Å: drop teacher frames where a committee teacher's force "
                    "spread is larger")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    for name, train_file, test_frames in datasets(WORK, args.datasets):
        work = WORK / name
        work.mkdir(parents=True, exist_ok=True)
        teacher, sampler = committed(name, args.teacher, work), args.sampler and committed(name, args.sampler, work)
        # the teacher's own (or its sampler's) 300 K trajectory the students are compared on
        teacher_traj = work / (f"teacher_300K_{args.teacher}" + (f"_on_{args.sampler}" if sampler else ""))
        periodic = bool(test_frames[0].pbc.all())
        n_valid = 20 if periodic else 50
        for frames in args.frames:
            variant = ((f" on the MD of {args.sampler}" if sampler else "")
                       + (f", seed {args.seed}" if args.seed else "")
                       + (f", spread ≤ {args.max_spread:g} eV/Å" if args.max_spread is not None else ""))
            run = work / (f"{args.tier}_{frames}" + ("" if args.teacher == "accurate" else f"_from_{args.teacher}")
                          + (f"_on_{args.sampler}" if sampler else "")
                          + (f"_seed{args.seed}" if args.seed else "")
                          + (f"_spread{args.max_spread:g}" if args.max_spread is not None else ""))
            plan = DistillPlan(teacher=str(teacher), data=str(train_file), tier=args.tier, md_frames=frames,
                               n_valid=n_valid, seed=args.seed, max_spread=args.max_spread,
                               sampler=str(sampler) if sampler else None)
            summary = distill(plan, run, resume=(run / "plan.json").is_file())
            result = evaluate_model(run / "student.pt", test_frames)["metrics"]
            start = read_frames(train_file, index=0)[0]
            save({"dataset": name, "tier": args.tier, "model": f"{args.tier} distilled from {args.teacher}{variant}",
                  "teacher_md_frames": frames, "seed": args.seed, "max_spread": args.max_spread,
                  "training_frames": summary["frames"]["training_frames"], **result,
                  "f_mae_vs_teacher_meV_A": error_against_teacher(run / "student.pt", teacher, start, teacher_traj,
                                                                  sampler),
                  "sampler": args.sampler, "steps": summary["steps"], "frames": summary["frames"],
                  "n_test": len(test_frames),
                  "stability": stability(run / "student.pt", start, run / "stability")}, out)
        if args.baseline:
            run = work / f"{args.tier}_qm_only"
            cfg = TrainConfig(data=str(train_file), out=str(run), tier=args.tier, n_valid=n_valid, dtype="float32",
                              seed=0)  # the student's settings, on the QM frames alone
            summary = train(cfg, resume=(run / "last.pt").is_file())
            model, ckpt = load_checkpoint(run / "best.pt")
            compile_model(model, run / "model.pt", dtype="float32", checkpoint=ckpt)
            result = evaluate_model(run / "model.pt", test_frames)["metrics"]
            start = read_frames(train_file, index=0)[0]
            save({"dataset": name, "tier": args.tier, "model": "QM only", "teacher_md_frames": 0,
                  "training_frames": len(read_frames(train_file)) - n_valid, **result,
                  "f_mae_vs_teacher_meV_A": error_against_teacher(run / "model.pt", teacher, start, teacher_traj,
                                                                  sampler),
                  "steps": summary["steps"], "n_test": len(test_frames),
                  "stability": stability(run / "model.pt", start, run / "stability")}, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
