"""Retrain every tier on the reference data sets and record test accuracy and training time.

    python benchmarks/accuracy.py [--tiers mm fast balanced accurate] [--datasets rmd17_ethanol water_deepmd]
                                  [--minutes-scale 1.0] [--committee 1] [--out benchmarks/results]
    python benchmarks/accuracy.py --train my_train.xyz --test my_test.xyz [--tiers ...] [--out DIR]

rmd17_ethanol: train on train.xyz with 50 frames held out for validation, test on all of
test_MD.xyz. water_deepmd: seeded 90/10 frame split of water.extxyz (20 of the 90% held out
for validation; batch size 1 and half the learning rate, since a frame has 192 atoms). Each tier
has an epoch budget and a wall-time budget (ffkit.bench.BUDGETS, minutes, on this 2-core machine, 1 thread);
the best-validation checkpoint is tested. Writes accuracy.json (one record per dataset x tier,
and per committee size with --committee) and accuracy.md beside it (records not rerun are kept), and
the float32 artifact (the trained precision) of each model to benchmarks/models/<dataset>_<tier>.pt for the engine
benchmarks. With --train/--test any extended XYZ set runs with each tier's default recipe (its optimiser steps,
`ffkit train` without --epochs) and is recorded under the training file's name; no artifact is kept. Data sets can run as parallel processes (--datasets X in each).

--committee N trains N models of each tier at once (seeds 0..N-1, one process and core each, the same
budget), records seed 0 as the tier's record and the committee (mean of the N, `ffkit compile` of
several checkpoints) as a second record with "committee": N, written to
benchmarks/models/<dataset>_<tier>_x<N>.pt. Each member has a core to itself only if data sets
then run one after another.
"""

import argparse
import fcntl
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ffkit.artifact import compile_model  # noqa: E402
from ffkit.bench import BUDGETS, train_parallel, training_budget  # noqa: E402
from ffkit.checkpoints import load_checkpoint  # noqa: E402
from ffkit.committee import compile_committee  # noqa: E402
from ffkit.config import TrainConfig  # noqa: E402
from ffkit.datasets import read_frames, split_frames, write_extxyz  # noqa: E402
from ffkit.evaluation import evaluate_model  # noqa: E402

DATA = ROOT / "data"
TIERS = list(BUDGETS)


def datasets(tmp: Path, names, train=None, test=None):
    """(name, train file, test frames) for each selected reference data set, or for --train/--test."""
    if train:
        yield Path(train).stem, Path(train), read_frames(test)
        return
    if "rmd17_ethanol" in names:
        ethanol = DATA / "rmd17_ethanol"
        yield "rmd17_ethanol", ethanol / "train.xyz", read_frames(ethanol / "test_MD.xyz")
    if "water_deepmd" in names:
        water = read_frames(DATA / "water_deepmd" / "water.extxyz")
        train_frames, test_frames = split_frames(water, 0.1, seed=0)
        path = tmp / "water_train.xyz"
        write_extxyz(train_frames, path)
        yield "water_deepmd", path, test_frames


def markdown(records) -> str:
    lines = ["| dataset | model | n_train | E MAE (meV) | F MAE (meV/Å) | E RMSE (meV) | F RMSE (meV/Å) | params | "
             "train time (s) | epochs | dtype |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        size = r.get("committee", 1)
        model = r["tier"] if size == 1 else f"{r['tier']} ×{size} committee"
        lines.append(f"| {r['dataset']} | {model} | {r['n_train']} | {r['e_mae_meV']:.2f} | {r['f_mae_meV_A']:.2f} "
                     f"| {r['e_rmse_meV']:.2f} | {r['f_rmse_meV_A']:.2f} | {r['n_params']} | {r['train_seconds']:.0f} "
                     f"| {r['epochs']} | {r['dtype']} |")
    return "\n".join(lines) + "\n"


def save_record(record, out: Path) -> list:
    """Add one record to accuracy.json (locked read-modify-write: data sets may run in parallel)."""
    result_file = out / "accuracy.json"
    with open(out / ".accuracy.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        records = json.loads(result_file.read_text()) if result_file.is_file() else []
        key = (record["dataset"], record["tier"], record["committee"])
        records = [r for r in records if (r["dataset"], r["tier"], r.get("committee", 1)) != key]
        records.append(record)
        records.sort(key=lambda r: (r["dataset"], TIERS.index(r["tier"]), r.get("committee", 1)))
        result_file.write_text(json.dumps(records, indent=1) + "\n")
        (out / "accuracy.md").write_text(markdown(records))
    return records


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiers", nargs="+", default=TIERS, choices=TIERS)
    ap.add_argument("--datasets", nargs="+", default=["rmd17_ethanol", "water_deepmd"])
    ap.add_argument("--minutes-scale", type=float, default=1.0, help="multiply every time budget")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--committee", type=int, default=1, metavar="N",
                    help="train N models of each tier at once (seeds 0..N-1) and also record their committee")
    ap.add_argument("--train", help="any extended XYZ training set (instead of --datasets); each tier trains "
                    "for its default number of optimiser steps, with no wall-time budget")
    ap.add_argument("--test", help="its test frames (with --train)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    if bool(args.train) != bool(args.test):
        ap.error("--train and --test go together")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    models = ROOT / "benchmarks" / "models"
    models.mkdir(exist_ok=True)
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, train_file, test_frames in datasets(Path(tmp), args.datasets, args.train, args.test):
            for tier in args.tiers:
                budget = training_budget(tier, periodic=bool(test_frames[0].pbc.all()))
                if args.train:  # the tier's default: optimiser steps, whatever the data
                    budget.update(epochs=None, max_minutes=None,
                                  n_valid=min(budget["n_valid"], max(1, len(read_frames(train_file)) // 20)))
                else:
                    budget["max_minutes"] *= args.minutes_scale
                cfgs = [TrainConfig(data=str(train_file), out=str(Path(tmp) / f"{name}_{tier}_seed{seed}"),
                                    tier=tier, dtype="float32", seed=seed, threads=args.threads,
                                    progress=seed == 0, **budget) for seed in range(args.committee)]
                summaries = train_parallel(cfgs)
                n_train = len(read_frames(train_file)) - budget["n_valid"]
                members = []
                for cfg, summary in zip(cfgs, summaries):
                    result = evaluate_model(Path(cfg.out) / "best.pt", test_frames)
                    model, ckpt = load_checkpoint(Path(cfg.out) / "best.pt")
                    keep = cfg.seed == 0 and not args.train  # only the reference data sets' artifacts are kept
                    members.append(models / f"{name}_{tier}.pt" if keep else Path(cfg.out) / "model.pt")
                    compile_model(model, members[-1], dtype="float32", checkpoint=ckpt, test_metrics=result["metrics"])
                    if cfg.seed == 0:
                        record = {"dataset": name, "tier": tier, "committee": 1, "n_train": n_train,
                                  **result["metrics"], "n_params": summary["n_params"],
                                  "train_seconds": round(summary["seconds"], 1), "epochs": summary["epochs"],
                                  "dtype": "float32", "n_test": len(test_frames)}
                        records = save_record(record, out)
                        print(markdown([record]), flush=True)
                    else:
                        print(f"{name} {tier} seed {cfg.seed}: F MAE {result['metrics']['f_mae_meV_A']:.2f} meV/Å",
                              flush=True)
                if args.committee > 1:
                    path = models / f"{name}_{tier}_x{args.committee}.pt"
                    meta = compile_committee([str(m) for m in members], path, dtype="float32")
                    result = evaluate_model(path, test_frames)
                    record = {"dataset": name, "tier": tier, "committee": args.committee, "n_train": n_train,
                              **result["metrics"], "n_params": meta["n_params"],
                              "train_seconds": round(max(s["seconds"] for s in summaries), 1),
                              "epochs": min(s["epochs"] for s in summaries), "dtype": "float32",
                              "n_test": len(test_frames),
                              "member_f_mae_meV_A": [m["test_metrics"]["f_mae_meV_A"]
                                                     for m in meta["committee"]["members"]]}
                    records = save_record(record, out)
                    print(markdown([record]), flush=True)
    print(markdown(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
