"""The `ffkit` command line: one subcommand per step of the data flow (docs/design.md §1)."""

import argparse
import json
import sys
from typing import List, Optional

from .errors import FFKitError


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--energy-key", default=None, help="name of the energy field in the data (default: energy)")
    p.add_argument("--forces-key", default=None, help="name of the forces field in the data (default: forces)")
    p.add_argument("--energy-unit", default=None, help="unit of energies in the data: eV (default), meV, "
                   "kcal/mol, kJ/mol, hartree, Ry")
    p.add_argument("--length-unit", default=None, help="unit of lengths in the data: angstrom (default), nm, bohr")


def _frames_or_fraction(text: str):
    value = float(text)
    return int(value) if value.is_integer() else value  # 0 and 50 are frame counts, 0.1 a fraction


def _train(args) -> int:
    from .config import load_config
    from .training import train

    overrides = {"data": args.data, "out": args.out, "valid": args.valid, "tier": args.tier,
                 "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "dtype": args.dtype,
                 "seed": args.seed, "n_valid": args.n_valid, "reference": args.reference,
                 "energy_key": args.energy_key, "forces_key": args.forces_key, "energy_unit": args.energy_unit,
                 "length_unit": args.length_unit, "threads": args.threads, "max_minutes": args.max_minutes}
    if args.no_progress:
        overrides["progress"] = False
    cfg = load_config(args.config, overrides)
    summary = train(cfg, resume=args.resume)
    print(f"trained {summary['epochs']} epochs in {summary['seconds']:.0f} s, "
          f"{summary['n_params']} parameters; best validation F MAE {summary['best_valid_f_mae_meV_A']:.2f} meV/Å")
    print(f"checkpoints: {cfg.out}/best.pt, {cfg.out}/last.pt; curves: {cfg.out}/training.png")
    return 0


def _test(args) -> int:
    from pathlib import Path

    from .datasets import read_frames
    from .evaluation import evaluate_model, write_json

    kw = {k: v for k, v in (("energy_key", args.energy_key), ("forces_key", args.forces_key),
                            ("energy_unit", args.energy_unit), ("length_unit", args.length_unit)) if v}
    frames = read_frames(args.data, **kw)
    result = evaluate_model(args.model, frames)
    m = result["metrics"]
    print(f"{args.model} on {args.data} ({len(frames)} frames)")
    print(f"  energy  MAE {m['e_mae_meV']:9.3f} meV    RMSE {m['e_rmse_meV']:9.3f} meV   (per structure)")
    print(f"  forces  MAE {m['f_mae_meV_A']:9.3f} meV/Å  RMSE {m['f_rmse_meV_A']:9.3f} meV/Å (per component)")
    if args.json:
        write_json(result, args.model, args.data, args.json)
        print(f"  metrics: {args.json}")
    if args.plot:
        from .plots import parity
        parity(result, Path(args.plot), f"{Path(args.model).name} on {Path(args.data).name}")
        print(f"  parity plot: {args.plot}")
    return 0


def _compile(args) -> int:
    from .artifact import checkpoint_metrics, compile_model, is_artifact, read_metadata, recast_artifact
    from .checkpoints import load_checkpoint
    from .engine_parity import write_proven
    from .engines import engine

    source, model, ckpt, source_meta = args.checkpoint[0], None, None, None
    if is_artifact(source):
        source_meta = read_metadata(source)
    else:
        model, ckpt = load_checkpoint(source)
    # a multi-head model is a committee whose members share their descriptors: LAMMPS runs it as one, with
    # the force spread; other engines run the mean of its heads as one model
    heads = model.heads() if model is not None else 1
    if len(args.checkpoint) > 1 or (heads > 1 and args.engine == "lammps"):
        if args.engine != "lammps":
            raise FFKitError(f"a committee ({len(args.checkpoint)} models) is compiled for --engine lammps only; "
                             f"--engine {args.engine} takes one checkpoint")
        from .committee import compile_committee

        def build(draft):
            return compile_committee(args.checkpoint, draft, dtype=args.dtype)
        model = None  # the reference is the committee artifact run from Python
    elif source_meta is not None and args.engine == "lammps":
        def build(draft):
            return recast_artifact(source, draft, args.dtype)
    elif source_meta is not None:
        def build(draft):
            return engine(args.engine, needs="compile_artifact").compile_artifact(source, draft, layout=args.layout)
    elif args.engine == "lammps":
        def build(draft):
            return compile_model(model, draft, dtype=args.dtype, checkpoint=ckpt, test_metrics=checkpoint_metrics(ckpt))
    else:
        def build(draft):
            return engine(args.engine, needs="compile_artifact").compile_artifact(
                model, draft, ckpt, layout=args.layout, test_metrics=checkpoint_metrics(ckpt))
    meta = write_proven(build, args.out, frame_file=args.frame, checkpoint=ckpt, source_meta=source_meta, model=model,
                        skip=args.no_check)
    committee = f"committee of {meta['committee']['size']} models, " if "committee" in meta else ""
    print(f"wrote {args.out}: {meta['engine']} artifact, {committee}species {' '.join(meta['species_symbols'])}, "
          f"cutoff {meta['cutoff']} {meta['units']['length'].replace('angstrom', 'Å')}, {meta['dtype']}, "
          f"{meta['n_params']} parameters")
    parity = meta["engine_parity"]
    if parity.get("checked", True):
        print(f"engine parity ({parity['engine']}, {parity['frame']}, against the {parity['reference']}): forces "
              f"within {parity['force_max_abs_error_eV_A']:.2g} eV/Å ({parity['force_max_rel_error']:.2g} of the "
              f"largest), energy within {parity['energy_abs_error_eV']:.2g} eV")
    return 0


def _distill(args) -> int:
    from .distill import DistillPlan, distill

    plan = DistillPlan(teacher=args.teacher, data=args.data, tier=args.tier, temperatures=args.temperatures,
                       md_frames=args.frames, starts=args.starts, every=args.every, rattled=args.rattled,
                       rattle_A=args.rattle, strain=args.strain, qm_weight=args.qm_weight, max_spread=args.max_spread,
                       n_valid=args.n_valid, seed=args.seed, sampler=args.sampler)
    read_options = {k: v for k, v in (("energy_key", args.energy_key), ("forces_key", args.forces_key),
                                      ("energy_unit", args.energy_unit), ("length_unit", args.length_unit)) if v}
    summary = distill(plan, args.out, epochs=args.epochs, max_minutes=args.max_minutes, dtype=args.dtype,
                      threads=args.threads, progress=not args.no_progress, resume=args.resume,
                      read_options=read_options)
    counts = summary["frames"]
    print(f"distilled {args.teacher} into a {args.tier} student: {counts['training_frames']} training frames "
          f"({counts['qm_train']} QM x {counts['qm_weight']}, {counts['teacher_md']} teacher MD, "
          f"{counts['teacher_perturbed']} rattled/strained, {counts['dropped_by_spread']} dropped by spread); "
          f"best validation F MAE on QM frames {summary['best_valid_f_mae_meV_A']:.2f} meV/Å")
    print(f"student artifact: {summary['artifact']}; run: {args.out}")
    return 0


def _info(args) -> int:
    from .artifact import read_metadata

    print(json.dumps(read_metadata(args.model), indent=2))
    return 0


def _demo(args) -> int:
    from .demo import run_demo

    return run_demo(args)


def _bench(args) -> int:
    from .bench import run_bench

    return run_bench(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ffkit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a force field")
    p.add_argument("--data", help="training data (extxyz, DeePMD folder, or .npz)")
    p.add_argument("--tier", help="model preset: mm, fast, balanced, accurate, equivariant")
    p.add_argument("--out", help="run directory (checkpoints, history, plots)")
    p.add_argument("--valid", help="validation data (default: hold out --n-valid frames of --data)")
    p.add_argument("--n-valid", type=_frames_or_fraction, default=None, help="frames (>=1) or fraction (<1) held out")
    p.add_argument("--epochs", type=int, help="default: the tier's number of optimiser steps (see README), "
                   "whatever the data size")
    p.add_argument("--batch-size", type=int, help="frames per optimiser step (default: the tier's, 8; equivariant 4)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default: the tier's, see README)")
    p.add_argument("--dtype", choices=["float32", "float64"])
    p.add_argument("--seed", type=int)
    p.add_argument("--reference", help="'fit' or an isolated-atoms extxyz for per-element reference energies")
    p.add_argument("--threads", type=int)
    p.add_argument("--max-minutes", type=float, help="stop (and save) after the epoch that passes this time")
    p.add_argument("--config", help="YAML file with any of the options above and more (model terms)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from last.pt")
    p.add_argument("--no-progress", action="store_true")
    _add_data_options(p)
    p.set_defaults(func=_train)

    p = sub.add_parser("test", help="E and F errors of a checkpoint or artifact on labelled data")
    p.add_argument("model")
    p.add_argument("--data", required=True)
    p.add_argument("--json")
    p.add_argument("--plot")
    _add_data_options(p)
    p.set_defaults(func=_test)

    p = sub.add_parser("compile", help="checkpoint -> TorchScript artifact with metadata (an artifact in: "
                       "recast to --dtype, or wrapped for --engine gromacs)")
    p.add_argument("checkpoint", nargs="+", help="a checkpoint; several (checkpoints or LAMMPS artifacts) make a "
                   "committee artifact whose force spread flags extrapolation")
    p.add_argument("--out", required=True)
    p.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    p.add_argument("--engine", default="lammps", choices=["lammps", "gromacs"])
    p.add_argument("--layout", default="positions", choices=["positions", "pairs"],
                   help="GROMACS NNPot inputs: positions+numbers+box+pbc, or 2026 atom-pairs+pair-shifts")
    p.add_argument("--frame", help="structure file whose frame 0 the artifact is proven on in its engine "
                   "(default: the checkpoint's training data)")
    p.add_argument("--no-check", action="store_true", help="skip the engine parity check (recorded as skipped)")
    p.set_defaults(func=_compile)

    p = sub.add_parser("distill", help="train a cheap tier on frames an accurate model (the teacher) samples "
                       "and labels, plus the QM frames")
    p.add_argument("teacher", help="LAMMPS artifact of the teacher (a committee's spread filters its frames)")
    p.add_argument("--data", required=True, help="the QM data (its frames start the teacher's MD and stay in training)")
    p.add_argument("--tier", default="fast", help="the student's tier (default: fast)")
    p.add_argument("--out", required=True, help="run folder (samples, data, student run, student.pt)")
    p.add_argument("--temperatures", nargs="+", type=float, default=[300.0, 600.0, 900.0], metavar="K")
    p.add_argument("--frames", type=int, default=5000, help="teacher MD frames in all (default 5000)")
    p.add_argument("--starts", type=int, default=4, help="MD runs per temperature, from different QM frames")
    p.add_argument("--every", type=int, default=20, help="MD steps (0.5 fs) between kept frames")
    p.add_argument("--rattled", type=int, default=500, help="rattled or strained QM frames labelled by the teacher")
    p.add_argument("--rattle", type=float, default=0.05, help="rattle amplitude (Å, Gaussian per coordinate)")
    p.add_argument("--strain", type=float, default=0.03, help="largest uniform strain of strained frames")
    p.add_argument("--qm-weight", type=int, default=3, help="each QM training frame counts this many times")
    p.add_argument("--max-spread", type=float, help="eV/Å: drop frames where a committee teacher's force spread "
                   "is larger")
    p.add_argument("--sampler", help="LAMMPS artifact whose MD draws the frames, which the teacher labels from "
                   "Python (for a teacher LAMMPS does not run, e.g. a committee of message-passing models)")
    p.add_argument("--n-valid", type=int, default=50, help="QM frames held out to validate the student")
    p.add_argument("--epochs", type=int, help="student epochs (default: the tier's optimiser steps)")
    p.add_argument("--max-minutes", type=float)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue the distillation in --out")
    p.add_argument("--no-progress", action="store_true")
    _add_data_options(p)
    p.set_defaults(func=_distill)

    p = sub.add_parser("info", help="print an artifact's metadata as JSON")
    p.add_argument("model")
    p.set_defaults(func=_info)

    p = sub.add_parser("demo", help="the main job end to end on the bundled data")
    p.add_argument("--out", default="ffkit_demo")
    p.add_argument("--epochs", type=int, default=None)
    p.set_defaults(func=_demo)

    from .bench import BUDGETS

    p = sub.add_parser("bench", help="speed-accuracy front: test errors, and speed in LAMMPS against the MM anchor")
    p.add_argument("--data", required=True, help="training data; the timed box is built from its frame 0")
    p.add_argument("--test", help="test data (default: hold out a seeded 10%% of --data)")
    p.add_argument("--tiers", nargs="+", choices=list(BUDGETS),
                   help="train these tiers first (default: every tier, unless --models)")
    p.add_argument("--models", nargs="+", help="compiled LAMMPS artifacts to measure instead of training")
    p.add_argument("--system", help="periodic structure file (extxyz, ...) to time instead of a box built from "
                   "--data; replicated up to --atoms")
    p.add_argument("--atoms", type=int, default=5000, help="minimum atoms in the timed box (default 5000)")
    p.add_argument("--density", type=float, help="g/cm³ for packing molecules (default: ethanol 0.789, water 0.997)")
    p.add_argument("--steps", type=int, help="timed MD steps per run (default: calibrated to ~4 s a run)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved timing repeats; medians are reported")
    p.add_argument("--epochs", type=int, help="training epochs per tier (default: the accuracy benchmark's)")
    p.add_argument("--minutes", type=float, help="training wall-time budget per tier (default: the benchmark's)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"], help="dtype of trained artifacts")
    p.add_argument("--peers", help="peers.json of benchmarks/peers.py: peers trained and timed here on the same "
                   "test frames, drawn as filled markers")
    p.add_argument("--out", default="ffkit_bench/", help="output path stem OUT (OUT.csv, .json, .md, .png) or a "
                   "directory (DIR/pareto.*); work files go to OUT_work/")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    _add_data_options(p)
    p.set_defaults(func=_bench)

    from .engines import adapters
    from .validate import cli as validate_cli

    validate_cli.add_parser(sub)
    for adapter in adapters().values():
        if hasattr(adapter, "add_commands"):
            adapter.add_commands(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except FFKitError as exc:
        print(f"ffkit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ffkit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
