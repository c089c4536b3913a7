"""`ffkit bench`: the speed–accuracy front — accuracy on held-out frames, speed inside LAMMPS.

    ffkit bench --data data/rmd17_ethanol/train.xyz --test data/rmd17_ethanol/test_MD.xyz \\
        --models benchmarks/models/rmd17_ethanol_*.pt --out benchmarks/results/pareto_ethanol
    ffkit bench --data data/water_deepmd/water.extxyz \\
        --models benchmarks/models/water_deepmd_*.pt --out benchmarks/results/pareto_water
    ffkit bench --data train.xyz --test test.xyz --tiers mm fast --out runs/bench/   # trains first

One point per model: force and energy MAE/RMSE on the test frames (`ffkit test`'s evaluation of
the artifact) against µs per atom per MD step with `pair_style ffkit` in LAMMPS (1 rank, 1 thread)
on a condensed box of at least --atoms atoms made from the data: a periodic frame replicated, or
copies of a molecule packed at liquid density (≥ 2 Å between molecules). The MM anchor, SPC/E
water with lj/cut/coul/long + PPPM, runs on a water box of the same size (the same box when the
data are water), interleaved with the models; medians of --repeats (the LAMMPS adapter's timing).

Without --test a seeded 10% of --data is held out (the split benchmarks/accuracy.py uses for
water, so its water artifacts are tested on frames they never saw). Without --models each tier
is trained first with the budgets below (those of benchmarks/accuracy.py) or --epochs/--minutes.
Writes OUT.csv, OUT.json, OUT.md and OUT.png (OUT/pareto.* when --out is a directory) and keeps
training runs, artifacts and LAMMPS inputs and logs in OUT_work/.
"""

import os
import time
from pathlib import Path

from .engines import engine
from .errors import FFKitError

# tier -> (epochs, minutes on molecules, minutes on periodic frames, batch size), for this 2-core
# machine with 1 thread; frames of hundreds of atoms train with batch 1 and half the tier's rate.
BUDGETS = {
    "mm": (600, 3.0, 2.0, 16),
    "fast": (600, 8.0, 5.0, 8),
    "balanced": (600, 10.0, 6.0, 8),
    "accurate": (1200, 28.0, 25.0, 8),
    "equivariant": (5000, 115.0, 115.0, 4),
}
LIQUID_DENSITY = {"C2H6O": 0.789, "H2O": 0.997}  # g/cm³ at 20–25 °C, by Hill formula
TEST_FRACTION = 0.1


def training_budget(tier: str, periodic: bool) -> dict:
    """TrainConfig fields for one tier: epochs, max_minutes, batch_size, lr, n_valid."""
    from .recipes import learning_rate

    epochs, molecule_minutes, periodic_minutes, batch = BUDGETS[tier]
    lr = learning_rate(tier)
    if periodic:
        return {"epochs": epochs, "max_minutes": periodic_minutes, "batch_size": 1, "lr": lr / 2, "n_valid": 20}
    return {"epochs": epochs, "max_minutes": molecule_minutes, "batch_size": batch, "lr": lr, "n_valid": 50}


def train_parallel(configs) -> list:
    """Train each TrainConfig in a process of its own, all at once (one core each); their summaries, in order.

    Committees: members of one budget train side by side in the wall time of one."""
    from .training import train

    if len(configs) == 1:
        return [train(configs[0])]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(len(configs), mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(train, configs))


def output_stem(out) -> Path:
    """--out names files OUT.{csv,json,md,png}; an existing directory or a trailing / means OUT/pareto.*."""
    text = str(out)
    return Path(text) / "pareto" if text.endswith(("/", os.sep)) or Path(text).is_dir() else Path(text)


def build_system(frames, data_path, min_atoms: int, density=None, system_path=None):
    """The box to time and one sentence saying how it was made.

    --system: that periodic file, replicated up to min_atoms. Periodic data: frame 0 replicated.
    Molecules (no periodicity): copies of frame 0 packed on an fcc lattice at `density` g/cm³
    (default: LIQUID_DENSITY of its formula).
    """
    from .boxes import pack, replicate

    if system_path is not None:
        from ase.io import read
        from ase.io.formats import UnknownFileTypeError

        if not Path(system_path).is_file():
            raise FFKitError(f"--system {system_path}: file not found")
        try:
            atoms = read(system_path)
        except (UnknownFileTypeError, StopIteration, ValueError, KeyError, IndexError) as exc:
            raise FFKitError(f"--system {system_path}: ASE cannot read it ({type(exc).__name__}: {exc}); "
                             "give an extended XYZ (or another format ASE reads) with a periodic cell") from None
        if not atoms.pbc.all():
            raise FFKitError(f"--system {system_path}: not periodic in x, y and z (pbc={atoms.pbc.tolist()}); "
                             "give a periodic box with its cell")
        box = replicate(atoms, min_atoms)
        return box, f"{system_path} ({len(atoms)} atoms) replicated to {len(box)} atoms"
    first = frames[0].to_atoms()
    if first.pbc.all():
        box = replicate(first, min_atoms)
        return box, f"frame 0 of {data_path} ({len(first)} atoms, periodic) replicated to {len(box)} atoms"
    if first.pbc.any():
        raise FFKitError(f"{data_path}, frame 0: periodic in some directions only (pbc={first.pbc.tolist()}); "
                         "give a fully periodic box with --system")
    formula = first.get_chemical_formula(mode="hill")
    density = density or LIQUID_DENSITY.get(formula)
    if density is None:
        raise FFKitError(f"{data_path}: no liquid density known for {formula} to pack copies of it into a box; "
                         "give --density in g/cm³ (or a periodic box with --system)")
    try:
        box = pack(first, min_atoms, density)
    except ValueError as exc:
        raise FFKitError(f"{data_path}, frame 0: {exc}") from None
    return box, (f"{len(box) // len(first)} copies of {formula} (frame 0 of {data_path}) on an fcc lattice at "
                 f"{density} g/cm³, ≥ 2 Å between molecules: {len(box)} atoms")


def check_models(paths, symbols, dataset: str = "") -> list:
    """(label, path, metadata) for each LAMMPS artifact, tiers in BUDGETS order; refuses ones that cannot run
    the data. A second artifact of one tier is labelled by its file name without the `dataset_` prefix."""
    from .artifact import read_metadata

    models, labels = [], set()
    for path in paths:
        meta = read_metadata(path)
        if meta.get("engine") != "lammps":
            raise FFKitError(f"{path}: compiled for engine {meta.get('engine')!r}; ffkit bench runs LAMMPS "
                             "artifacts: compile with `ffkit compile CHECKPOINT --engine lammps`")
        missing = sorted(set(symbols) - set(meta["species_symbols"]))
        if missing:
            raise FFKitError(f"{path}: the model knows elements {' '.join(meta['species_symbols'])} but the "
                             f"benchmark data also hold {' '.join(missing)}; give models trained on these data")
        label = meta.get("tier") or Path(path).stem
        if "committee" in meta and meta.get("tier"):
            label = f"{label}_x{meta['committee']['size']}"
        if label in labels:
            label = Path(path).stem.removeprefix(f"{dataset}_") if dataset else Path(path).stem
        labels.add(label)
        models.append((label, Path(path), meta))
    order = list(BUDGETS)  # tiers from MM to many-body, then anything else in the order given
    return sorted(models, key=lambda m: order.index(m[0]) if m[0] in order else len(order))


def train_tiers(tiers, train_path: Path, read_options: dict, periodic: bool, work: Path, args) -> list:
    """Train each tier (float32) and compile its best checkpoint to work/models/TIER.pt in --dtype."""
    from .artifact import compile_model
    from .checkpoints import load_checkpoint
    from .config import TrainConfig
    from .datasets import read_frames
    from .training import train

    n_frames = len(read_frames(train_path, **read_options))
    paths = []
    for k, tier in enumerate(tiers):
        budget = training_budget(tier, periodic)
        budget["n_valid"] = min(budget["n_valid"], max(1, n_frames // 10))
        budget["epochs"] = args.epochs or budget["epochs"]
        budget["max_minutes"] = args.minutes or budget["max_minutes"]
        run_dir = work / "train" / tier
        print(f"ffkit bench: [{k + 1}/{len(tiers)}] training tier {tier!r} on {train_path} (at most "
              f"{budget['epochs']} epochs or {budget['max_minutes']:g} min) -> {run_dir}", flush=True)
        cfg = TrainConfig(data=str(train_path), out=str(run_dir), tier=tier, dtype="float32", seed=0,
                          progress=args.progress, **budget, **read_options)
        train(cfg)
        model, ckpt = load_checkpoint(run_dir / "best.pt")
        paths.append(work / "models" / f"{tier}.pt")
        compile_model(model, paths[-1], dtype=args.dtype, checkpoint=ckpt)
    return paths


def measure_accuracy(models, frames, progress: bool) -> list:
    """Test-set metrics (meV, meV/Å) of each artifact, as `ffkit test` computes them."""
    from tqdm import tqdm

    from .evaluation import evaluate_model

    results = []
    with tqdm(models, unit="model", disable=not progress, dynamic_ncols=True) as bar:
        for label, path, _ in bar:
            bar.set_description(f"test {label} on {len(frames)} frames")
            results.append(evaluate_model(path, frames)["metrics"])
    return results


def load_data(args, work: Path):
    """Frames of --data and the test frames; the training file and how to read it; a note on the test set."""
    from .datasets import read_frames, split_frames, write_extxyz

    options = {k: v for k, v in (("energy_key", args.energy_key), ("forces_key", args.forces_key),
                                 ("energy_unit", args.energy_unit), ("length_unit", args.length_unit)) if v}
    frames = read_frames(args.data, **options)
    if args.test:
        return frames, read_frames(args.test, **options), Path(args.data), options, args.test
    train_frames, test_frames = split_frames(frames, TEST_FRACTION, seed=0)
    train_path = work / "train.xyz"
    if not args.models:  # training reads the split back, already in eV and Å
        work.mkdir(parents=True, exist_ok=True)
        write_extxyz(train_frames, train_path)
    return frames, test_frames, train_path, {}, f"a seeded {TEST_FRACTION:.0%} of {args.data} (seed 0)"


def run_bench(args) -> int:
    from ase.data import chemical_symbols

    from .pareto import measured_peer_points, pareto_front, peer_points, plot, write_tables

    if args.models and args.tiers:
        raise FFKitError("give --tiers (train those tiers) or --models (take those artifacts), not both")
    for name in ("atoms", "repeats", "steps", "epochs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise FFKitError(f"--{name} must be at least 1, not {value}")
    stem = output_stem(args.out)
    work = Path(f"{stem}_work")
    frames, test_frames, train_path, train_options, test_note = load_data(args, work)
    system, system_note = build_system(frames, args.data, args.atoms, args.density, args.system)
    numbers = {int(z) for f in frames + test_frames for z in set(f.numbers.tolist())} | set(system.numbers.tolist())
    symbols = {chemical_symbols[z] for z in numbers}
    if args.models:
        models = check_models(args.models, symbols, Path(args.data).parent.name)
    else:
        paths = train_tiers(args.tiers or list(BUDGETS), train_path, train_options, bool(frames[0].pbc.all()), work,
                            args)
        models = check_models(paths, symbols)
        print(f"ffkit bench: artifacts in {work / 'models'}; time them again with --models {work / 'models'}/*.pt")

    accuracy = measure_accuracy(models, test_frames, args.progress)
    measured = []
    if args.peers:  # read before the timing, so that a wrong --peers fails before it
        from .datasets import dataset_hash
        from .pareto import read_measured_peers

        measured = read_measured_peers(args.peers, dataset_hash(test_frames))
    lammps = engine("lammps", needs="time_models")
    # measured peers are placed by their call's ratio to accurate's TorchScript call (benchmarks/peers.py),
    # so accurate's MD step on that path is timed too when a peer was measured on these test frames
    anchor, timings, anchor_note = lammps.time_models(models, system, work, args.repeats, args.steps, args.progress,
                                                      torchscript_also=("accurate",) if measured else ())
    records = [{**timing, "model": str(path), "dtype": meta["dtype"], "n_params": meta.get("n_params"),
                "cutoff_A": meta["cutoff"], **metrics, "n_test": len(test_frames)}
               for (_, path, meta), metrics, timing in zip(models, accuracy, timings)]
    ethanol = not frames[0].pbc.any() and frames[0].to_atoms().get_chemical_formula(mode="hill") == "C2H6O"
    peers = peer_points() if ethanol else []
    if measured:
        accurate_us = next((r["torchscript_us_per_atom_step"] for r in records if r["tier"] == "accurate"), None)
        peers += measured_peer_points(measured, accurate_us)
    steps = f"{args.steps} steps" if args.steps else "steps calibrated to ~4 s a run"
    setup = {"training data": f"{args.data} ({len(frames)} frames)",
             "test data": f"{test_note} ({len(test_frames)} frames); E per structure, F per component",
             "system": system_note, "MM anchor": anchor_note,
             "timing": (f"LAMMPS, 1 rank, 1 thread, wall time of the whole MD step (ML NVE 0.5 fs, SPC/E 2 fs with "
                        f"SHAKE), median of {args.repeats} interleaved repeat(s), {steps}"),
             "peers": ("published rMD17 ethanol accuracy" if ethanol else "no published accuracy for these data")
             + (f"; measured here: {args.peers}" if args.peers else ""),
             "date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count()}
    stem.parent.mkdir(parents=True, exist_ok=True)
    write_tables(records, peers, stem, anchor=anchor, setup=setup)
    plot(records, anchor["us_per_atom_step"], Path(f"{stem}.png"),
         f"{Path(args.data).parent.name}/{Path(args.data).name}: {len(system)}-atom box in LAMMPS, 1 core", peers,
         anchor_label=f"MM anchor, SPC/E + PPPM ({anchor['atoms']} atoms)")
    print(Path(f"{stem}.md").read_text())
    print(f"Pareto front: {', '.join(r['tier'] for r in pareto_front(records))}\n"
          f"wrote {stem}.csv, {stem}.json, {stem}.md, {stem}.png; work files in {work}")
    return 0
