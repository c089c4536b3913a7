"""`ffkit demo`: the main job end to end on the data shipped inside the package.

Train a small model on rMD17 ethanol, test it on held-out frames, compile it to an artifact, run
1 ps of NVE MD with it inside LAMMPS (`pair_style ffkit`), validate that trajectory with
MDAnalysis, and print where everything went — a few minutes on a laptop-class CPU.
"""

import json
import time
from pathlib import Path

from . import bundled


def run_demo(args) -> int:
    from .artifact import compile_model
    from .checkpoints import load_checkpoint
    from .config import TrainConfig
    from .datasets import read_frames
    from .evaluation import evaluate_model, write_json
    from .plots import parity
    from .training import train

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run_dir = out / "run"
    started = time.perf_counter()
    print(f"ffkit demo: training tier 'fast' on {bundled.path('ethanol_train.xyz').name} -> {run_dir}")
    cfg = TrainConfig(data=str(bundled.path("ethanol_train.xyz")), out=str(run_dir), tier="fast",
                      n_valid=30, epochs=args.epochs or 300, batch_size=8, lr=1e-2, seed=0)
    resume = (run_dir / "last.pt").is_file()
    summary = train(cfg, resume=resume)

    model, ckpt = load_checkpoint(run_dir / "best.pt")
    test_path = bundled.path("ethanol_test.xyz")
    test_frames = read_frames(test_path)
    artifact = out / "model.pt"
    ckpt_result = evaluate_model(run_dir / "best.pt", test_frames)
    compile_model(model, artifact, dtype="float64", checkpoint=ckpt, test_metrics=ckpt_result["metrics"])
    art_result = evaluate_model(artifact, test_frames)
    write_json(art_result, artifact, test_path, out / "test_metrics.json")
    parity(art_result, out / "parity.png", "ffkit demo: tier 'fast' on rMD17 ethanol (held-out frames)")
    md = _lammps_md(artifact, test_frames[0], out / "md")
    verdict = _validate(artifact, out / "md", out / "validate")
    elapsed = time.perf_counter() - started

    m = art_result["metrics"]
    rows = [("tier", "fast"), ("parameters", summary["n_params"]), ("epochs", summary["epochs"]),
            ("train frames", len(read_frames(bundled.path("ethanol_train.xyz"))) - 30),
            ("test frames", len(test_frames)),
            ("energy MAE (meV/molecule)", f"{m['e_mae_meV']:.2f}"), ("force MAE (meV/Å)", f"{m['f_mae_meV_A']:.2f}"),
            ("energy RMSE (meV/molecule)", f"{m['e_rmse_meV']:.2f}"), ("force RMSE (meV/Å)", f"{m['f_rmse_meV_A']:.2f}"),
            ("LAMMPS MD (ns/day, 1 core)", f"{md['ns_per_day']:.2f}"),
            ("LAMMPS MD (µs/atom/step)", f"{md['us_per_atom_step']:.1f}"),
            ("validation", verdict), ("wall time (s)", f"{elapsed:.0f}")]
    width = max(len(k) for k, _ in rows)
    print("\nresults")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    print("\nfiles")
    for label, path in (("checkpoints", run_dir), ("training curves", run_dir / "training.png"),
                        ("artifact (LAMMPS/ASE)", artifact), ("test metrics", out / "test_metrics.json"),
                        ("parity plot", out / "parity.png"), ("LAMMPS run", out / "md"),
                        ("validation report", out / "validate" / "report.md")):
        print(f"  {label:<22} {path}")
    (out / "summary.json").write_text(json.dumps({k: str(v) for k, v in rows}, indent=2) + "\n")
    return 0


def _lammps_md(artifact: Path, frame, workdir: Path) -> dict:
    """1 ps NVE (0.5 fs, 300 K) of one ethanol molecule in a 30 Å periodic box, in the real lmp."""
    from ase import Atoms

    from .artifact import read_metadata
    from .engines import engine

    atoms = Atoms(numbers=frame.numbers, positions=frame.positions, cell=[30.0, 30.0, 30.0], pbc=True)
    atoms.center()
    elements = read_metadata(artifact)["species_symbols"]
    print(f"ffkit demo: 1 ps NVE MD in LAMMPS with pair_style ffkit -> {workdir}")
    lammps = engine("lammps", needs="run_nve")
    return lammps.run_nve(artifact, atoms, elements, workdir, steps=2000, timestep_fs=0.5, dump_every=20)


def _validate(artifact: Path, md_dir: Path, report_dir: Path) -> str:
    """`ffkit validate` on the demo's own trajectory; returns the verdict line."""
    from .validate.run import run_validation

    report = run_validation(md_dir / "data.lmp", md_dir / "traj.dump", log=md_dir / "log.lammps", model=artifact,
                            report_dir=report_dir)
    return "all checks passed" if report["passed"] else "some checks failed (see the report)"
